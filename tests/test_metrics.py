"""``GET /metrics`` scraped from a real API with a real Celery worker: the figures of runs the
workers finished reach the API's scrape through Redis, and they match what ran."""

from __future__ import annotations

from pathlib import Path

from async_service import allele_ids, poll_until_done, redis_client, start_stack
from prometheus_client.parser import text_string_to_metric_families

import anyvar
from anyvar.synthetic import generate


def scrape(api) -> dict[tuple[str, frozenset], float]:
    """Every sample of a scrape: (sample name, its labels) -> value."""
    r = api.client.get("/metrics")
    assert r.status_code == 200, r.text
    assert r.headers["content-type"].startswith("text/plain; version=")
    samples = {}
    for family in text_string_to_metric_families(r.text):
        for s in family.samples:
            samples[(s.name, frozenset(s.labels.items()))] = s.value
    return samples


def value(samples, name: str, **labels: str) -> float | None:
    return samples.get((name, frozenset(labels.items())))


def test_metrics_count_sync_and_async_runs(tmp_path: Path) -> None:
    client = redis_client()
    client.flushdb()  # the tests' own database: runs and figures of earlier tests would count
    fasta, vcf = generate(tmp_path / "data", 300)
    source = f"fasta+file://{fasta}?assembly=GRCh38"
    expected = anyvar.annotate_vcf(vcf, tmp_path / "lib.vcf", dataproxy_uri=source, threads=1)
    assert expected["records"] == 300 and expected["alleles"] > 300
    stack = start_stack(
        tmp_path / "stack", "metrics-q", source, f"sqlite:///{tmp_path / 'db.sqlite3'}"
    )
    try:
        api = stack.api
        before = scrape(api)
        assert value(before, "anyvar_records_annotated_total", kind="vcf", mode="sync") is None
        assert value(before, "anyvar_runs", state="succeeded") == 0
        assert value(before, "anyvar_queue_length", queue="metrics-q") == 0

        sync = api.put_vcf(vcf)
        assert sync.status_code == 200, sync.text
        run_id = api.submit(vcf)
        done, _ = poll_until_done(api, run_id)
        assert done.status_code == 200, done.text
        lib = (tmp_path / "lib.vcf").read_text()
        assert allele_ids(sync.text) == allele_ids(done.text) == allele_ids(lib)

        after = scrape(api)
        for mode in ("sync", "async"):
            got = value(after, "anyvar_records_annotated_total", kind="vcf", mode=mode)
            assert got == expected["records"], (mode, got)
            got = value(after, "anyvar_alleles_annotated_total", kind="vcf", mode=mode)
            assert got == expected["alleles"], (mode, got)
            finished = value(
                after, "anyvar_runs_finished_total", kind="vcf", mode=mode, outcome="succeeded"
            )
            assert finished == 1, (mode, finished)
            labels = {"kind": "vcf", "mode": mode, "outcome": "succeeded"}
            assert value(after, "anyvar_run_duration_seconds_count", **labels) == 1
            assert value(after, "anyvar_run_duration_seconds_bucket", le="+Inf", **labels) == 1
            assert 0 < value(after, "anyvar_run_duration_seconds_sum", **labels) < 60
        # Every allele is registered by both runs (idempotent: the second adds no rows).
        for mode in ("sync", "async"):
            stored = value(after, "anyvar_alleles_stored_total", kind="vcf", mode=mode)
            assert stored == expected["alleles"], (mode, stored)
        assert value(after, "anyvar_runs_finished_total", kind="vcf", mode="async",
                     outcome="failed") is None  # fmt: skip

        # The async run's record, counted by state; nothing left in the queue.
        assert value(after, "anyvar_runs", state="succeeded") == 1
        assert value(after, "anyvar_runs", state="queued") == 0
        assert value(after, "anyvar_queue_length", queue="metrics-q") == 0

        # Requests by route template and status (the poll's run id is not a label value).
        assert value(after, "anyvar_http_requests_total", method="PUT", route="/vcf",
                     status="200") == 1  # fmt: skip
        assert value(after, "anyvar_http_requests_total", method="PUT", route="/vcf",
                     status="202") == 1  # fmt: skip
        polls_done = value(
            after, "anyvar_http_requests_total", method="GET", route="/vcf/{run_id}", status="200"
        )
        assert polls_done == 1
        assert (
            value(after, "anyvar_http_requests_total", method="GET", route="/metrics", status="200")
            == 1
        )  # fmt: skip (the first scrape; this one is in progress)
        latency = value(
            after, "anyvar_http_request_duration_seconds_count", method="PUT", route="/vcf"
        )
        assert latency == 2
        assert not any(run_id in dict(labels).get("route", "") for _, labels in after)
    except BaseException:
        print(stack.logs())
        raise
    finally:
        stack.stop()
