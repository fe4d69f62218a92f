"""Prometheus metrics for ``GET /metrics``.

Runs end in Celery worker processes, not in the API process that is scraped, so what a run
adds up (runs, records, alleles, durations) is kept in one Redis hash, ``anyvar:metrics``, that
every process increments and the API renders at scrape time. Without Redis (no async runs
configured) the same figures are kept in the API process itself. Request counts and latencies
are per API process (ordinary prometheus_client metrics).
"""

from __future__ import annotations

import logging
import math
import threading
import time
from collections.abc import Iterator
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Histogram
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily
from prometheus_client.registry import Collector

from anyvar.queueing import STATES

log = logging.getLogger(__name__)

KEY = "anyvar:metrics"
"""The Redis hash of run figures: ``<name>|<label values>`` -> number."""
RUN_KEYS = "anyvar:run:*"
RUN_BUCKETS = (0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600, 1800, 3600, math.inf)
REQUEST_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, math.inf)
SCAN_LIMIT = 100_000
"""Run records counted at most per scrape (records expire, so there are rarely this many)."""


def _le(bound: float) -> str:
    return "+Inf" if bound == math.inf else repr(float(bound))


def run_fields(
    kind: str,
    mode: str,
    outcome: str,
    seconds: float,
    records: int = 0,
    alleles: int = 0,
    stored: int = 0,
) -> tuple[dict[str, int], dict[str, float]]:
    """The hash increments one finished run makes: (integer fields, float fields)."""
    labels = f"{kind}|{mode}"
    run = f"{labels}|{outcome}"
    ints = {
        f"runs|{run}": 1,
        f"records|{labels}": int(records),
        f"alleles|{labels}": int(alleles),
        f"stored|{labels}": int(stored),
        f"run_seconds_count|{run}": 1,
    }
    # Buckets are kept cumulative (every bucket at or above the duration), as exposed.
    for bound in RUN_BUCKETS:
        if seconds <= bound:
            ints[f"run_seconds_bucket|{run}|{_le(bound)}"] = 1
    return ints, {f"run_seconds_sum|{run}": float(seconds)}


def record_run(
    client,
    *,
    kind: str,
    outcome: str,
    seconds: float,
    records: int = 0,
    alleles: int = 0,
    stored: int = 0,
    mode: str = "async",
) -> None:
    """Adds one finished run (``outcome``: succeeded, failed or cancelled) to the shared
    figures in Redis. Never raises: metrics must not fail a run."""
    ints, floats = run_fields(kind, mode, outcome, seconds, records, alleles, stored)
    try:
        pipe = client.pipeline(transaction=False)
        for field, n in ints.items():
            if n:
                pipe.hincrby(KEY, field, n)
        for field, x in floats.items():
            pipe.hincrbyfloat(KEY, field, x)
        pipe.execute()
    except Exception as e:  # a broken metrics store is logged, the run's outcome stands
        log.warning("could not record metrics of a %s run: %s", kind, e)


class LocalFigures:
    """The run figures of this process, in the hash's layout (when there is no Redis)."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.values: dict[str, float] = {}

    def record(self, **kw: Any) -> None:
        ints, floats = run_fields(**kw)
        with self.lock:
            for field, n in {**ints, **floats}.items():
                if n:
                    self.values[field] = self.values.get(field, 0) + n

    def read(self) -> dict[str, float]:
        with self.lock:
            return dict(self.values)


class RunCollector(Collector):
    """Renders the run figures (Redis or local), runs by state and the queue length."""

    def __init__(self, state) -> None:
        self.state = state  # the app's state: runs (RunStore) and settings, set at start-up
        self.local = LocalFigures()
        self._broker = None

    def store(self):
        return getattr(self.state, "runs", None)

    def record(self, **kw: Any) -> None:
        """One finished run in this process (the sync ``PUT /vcf``)."""
        store = self.store()
        if store is not None:
            record_run(store.client, **kw)
        else:
            self.local.record(**kw)

    def _figures(self) -> dict[str, float]:
        store = self.store()
        if store is None:
            return self.local.read()
        return {k: float(v) for k, v in store.client.hgetall(KEY).items()}

    def _states(self, client) -> dict[str, int]:
        counts = dict.fromkeys(STATES, 0)
        keys = []
        for key in client.scan_iter(match=RUN_KEYS, count=1000):
            keys.append(key)
            if len(keys) >= SCAN_LIMIT:
                break
        pipe = client.pipeline(transaction=False)
        for key in keys:
            pipe.hget(key, "status")
        for status in pipe.execute() if keys else []:
            if status in counts:
                counts[status] += 1
        return counts

    def _queue_length(self) -> int:
        settings = self.state.settings
        if self._broker is None:
            import redis

            self._broker = redis.Redis.from_url(settings.celery_broker_url, socket_timeout=5)
        return int(self._broker.llen(settings.celery_task_default_queue))

    def collect(self) -> Iterator[Any]:
        try:
            figures = self._figures()
        except Exception as e:
            log.warning("cannot read the run metrics: %s", e)
            figures = {}
        yield from self._from_figures(figures)
        store = self.store()
        if store is None:
            return
        try:
            states = self._states(store.client)
            runs = GaugeMetricFamily(
                "anyvar_runs", "Async runs with a record in Redis, by state", labels=["state"]
            )
            for name, n in states.items():
                runs.add_metric([name], n)
            yield runs
            queue = GaugeMetricFamily(
                "anyvar_queue_length", "Tasks waiting in the Celery queue", labels=["queue"]
            )
            queue.add_metric([self.state.settings.celery_task_default_queue], self._queue_length())
            yield queue
        except Exception as e:
            log.warning("cannot read the run records or the queue: %s", e)

    @staticmethod
    def _from_figures(figures: dict[str, float]) -> Iterator[Any]:
        counters = {
            "runs": CounterMetricFamily(
                "anyvar_runs_finished",
                "Runs finished, by kind, mode (sync or async) and outcome",
                labels=["kind", "mode", "outcome"],
            ),
            "records": CounterMetricFamily(
                "anyvar_records_annotated", "VCF records annotated", labels=["kind", "mode"]
            ),
            "alleles": CounterMetricFamily(
                "anyvar_alleles_annotated",
                "Alleles annotated (VRS ids computed)",
                labels=["kind", "mode"],
            ),
            "stored": CounterMetricFamily(
                "anyvar_alleles_stored",
                "Alleles registered that were new to the database (rows inserted)",
                labels=["kind", "mode"],
            ),
        }
        hist: dict[tuple[str, ...], dict[str, Any]] = {}
        for field, value in sorted(figures.items()):
            name, *labels = field.split("|")
            if name in counters:
                counters[name].add_metric(labels, value)
            elif name == "run_seconds_bucket":
                hist.setdefault(tuple(labels[:3]), {"buckets": {}})["buckets"][labels[3]] = value
            elif name in ("run_seconds_sum", "run_seconds_count"):
                hist.setdefault(tuple(labels), {"buckets": {}})[name] = value
        yield from counters.values()
        seconds = HistogramMetricFamily(
            "anyvar_run_duration_seconds",
            "Duration of finished runs, by kind, mode and outcome",
            labels=["kind", "mode", "outcome"],
        )
        for labels, h in hist.items():
            buckets = [(_le(b), h["buckets"].get(_le(b), 0)) for b in RUN_BUCKETS]
            seconds.add_metric(list(labels), buckets, h.get("run_seconds_sum", 0.0))
        yield seconds


class Metrics:
    """The metrics of one app: its own registry (so that several apps in one process, as in
    tests, do not collide)."""

    def __init__(self, state) -> None:
        self.registry = CollectorRegistry()
        self.runs = RunCollector(state)
        self.registry.register(self.runs)
        self.requests = Counter(
            "anyvar_http_requests",
            "HTTP requests answered by this API process",
            ["method", "route", "status"],
            registry=self.registry,
        )
        self.latency = Histogram(
            "anyvar_http_request_duration_seconds",
            "Time to answer a request (to the end of the response body)",
            ["method", "route"],
            buckets=REQUEST_BUCKETS,
            registry=self.registry,
        )

    def count_sync_runs(self, registry) -> None:
        """Counts the sync ``PUT /vcf`` runs of this process: wraps the registry's
        ``annotate`` (the one call the sync path makes) to record each run's outcome."""
        annotate = registry.annotate

        def counted(*args: Any, **kw: Any):
            started = time.monotonic()
            try:
                summary = annotate(*args, **kw)
            except BaseException:
                self.runs.record(
                    kind="vcf", mode="sync", outcome="failed", seconds=time.monotonic() - started
                )
                raise
            self.runs.record(
                kind="vcf",
                mode="sync",
                outcome="succeeded",
                seconds=time.monotonic() - started,
                records=summary.get("records", 0),
                alleles=summary.get("alleles", 0),
                stored=summary.get("stored", 0) or 0,
            )
            return summary

        registry.annotate = counted


class MetricsMiddleware:
    """Counts and times every HTTP request by method, route template and status (pure ASGI, so
    a streamed body is timed to its end)."""

    def __init__(self, app, metrics: Metrics) -> None:
        self.app, self.metrics = app, metrics

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.monotonic()
        status = [500]

        async def sending(message) -> None:
            if message["type"] == "http.response.start":
                status[0] = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, sending)
        finally:
            route = getattr(scope.get("route"), "path", None) or "unmatched"
            method = scope.get("method", "")
            self.metrics.requests.labels(method, route, str(status[0])).inc()
            self.metrics.latency.labels(method, route).observe(time.monotonic() - started)


def install(app) -> Metrics:
    """The app's metrics and the request middleware (called once, in ``create_app``)."""
    metrics = Metrics(app.state)
    app.state.metrics = metrics
    app.add_middleware(MetricsMiddleware, metrics=metrics)
    return metrics
