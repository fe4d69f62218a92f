"""A bounded load test: many clients at once against one API (uvicorn), two Celery workers and
PostgreSQL, doing what users do, for a few minutes.

    .venv/bin/python benchmarks/bench_load.py                    # 50 clients, 180 s
    .venv/bin/python benchmarks/bench_load.py --clients 20 --seconds 60

Each client picks, again and again: a sync ``PUT /vcf`` of a small VCF (``--vcf-records``), an
async one (submit, poll ``Location`` honouring ``Retry-After``, download), a ``PUT /variations``
batch of 1,000 definitions, or lookups (``GET /object/{id}`` of an allele it registered,
``GET /variations`` around it); a client in a process of its own times ``GET /service-info``
every 0.1 s. The API's and the workers' memory are sampled every second.

It fails (exit 1) on any error answer or transport error, on an allele answered but not in the
database at the end (nothing lost), on a ``/service-info`` p99 over 100 ms, or on API memory
that keeps growing (the last third's peak more than 25 % over the first third's). Redis
database ``--db`` (default 12) is flushed first and last; the PostgreSQL database is dropped."""

from __future__ import annotations

import argparse
import contextlib
import multiprocessing
import random
import shutil
import statistics
import sys
import tempfile
import threading
import time
from collections import Counter
from pathlib import Path

import httpx
import psycopg
from bench_annotate import BIN, REPO, log, prepare, write_slice
from bench_async import flush_redis, worker
from bench_service import Databases, clean_env, proc_status_kb, server

P99_TARGET = 0.100


class Load:
    """What the clients saw, shared between their threads."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.done: Counter[str] = Counter()
        self.errors: list[str] = []
        self.ids: set[str] = set()
        self.info_seconds: list[float] = []

    def ok(self, kind: str, ids: set[str] = frozenset()) -> None:
        with self.lock:
            self.done[kind] += 1
            self.ids |= ids

    def error(self, kind: str, what: str) -> None:
        with self.lock:
            self.errors.append(f"{kind}: {what[:300]}")


def vcf_ids(text: str) -> set[str]:
    ids = set()
    for line in text.splitlines():
        if line and not line.startswith("#"):
            info = line.split("\t")[7]
            for field in info.split(";"):
                if field.startswith("VRS_Allele_IDs="):
                    ids.update(i for i in field[15:].split(",") if i.startswith("ga4gh:VA."))
    return ids


def client(url: str, load: Load, vcf: bytes, defs: list[str], stop: float, seed: int) -> None:
    rng = random.Random(seed)
    mine: list[str] = []
    with httpx.Client(base_url=url, timeout=300) as c:
        while time.monotonic() < stop:
            kind = rng.choice(["sync_vcf", "async_vcf", "variations", "lookup", "lookup"])
            try:
                if kind == "sync_vcf":
                    r = c.put("/vcf", files={"vcf": ("in.vcf", vcf)})
                    r.raise_for_status()
                    ids = vcf_ids(r.text)
                elif kind == "async_vcf":
                    r = c.put("/vcf", params={"run_async": "true"}, files={"vcf": ("in.vcf", vcf)})
                    if r.status_code != 202:
                        raise httpx.HTTPStatusError(r.text, request=r.request, response=r)
                    location = r.headers["Location"]
                    while (r := c.get(location)).status_code == 202:
                        time.sleep(min(float(r.headers.get("Retry-After", 1)), 0.5))
                    r.raise_for_status()
                    ids = vcf_ids(r.text)
                elif kind == "variations":
                    start = rng.randrange(0, len(defs) - 1000)
                    r = c.put("/variations", json=[{"definition": d} for d in defs[start:][:1000]])
                    r.raise_for_status()
                    ids = {a["object_id"] for a in r.json() if a.get("object_id")}
                    mine.extend(list(ids)[:5])
                else:
                    if not mine:
                        continue
                    vid = rng.choice(mine)
                    r = c.get(f"/object/{vid}")
                    r.raise_for_status()
                    location = r.json()["data"]["location"]
                    accession = "ga4gh:" + location["sequenceReference"]["refgetAccession"]
                    params = {"accession": accession, "start": location["start"], "end": 10**9}
                    r = c.get("/variations", params={**params, "page_size": 10})
                    r.raise_for_status()
                    ids = set()
                load.ok(kind, ids)
            except (httpx.HTTPError, KeyError, ValueError) as e:
                response = getattr(e, "response", None)
                detail = f"{response.status_code} {response.text}" if response is not None else e
                load.error(kind, str(detail))


def service_info(url: str, stop: float, results: multiprocessing.Queue) -> None:
    """Times ``GET /service-info`` every 0.1 s, as a load balancer's probe would. It runs in a
    process of its own: in the clients' process it would wait for their GIL, and time that."""
    seconds, errors = [], []
    with httpx.Client(base_url=url, timeout=30) as c:
        while time.monotonic() < stop:
            started = time.perf_counter()
            try:
                c.get("/service-info").raise_for_status()
                seconds.append(time.perf_counter() - started)
            except httpx.HTTPError as e:
                errors.append(f"service-info: {e}")
            time.sleep(0.1)
    results.put((seconds, errors))


def sample_memory(pids: dict[str, int], samples: dict[str, list[float]], stop: float) -> None:
    while time.monotonic() < stop:
        for name, pid in pids.items():
            with contextlib.suppress(OSError, RuntimeError):
                samples.setdefault(name, []).append(proc_status_kb(pid, "VmRSS") / 1024)
        time.sleep(1)


def stored(db_url: str, ids: set[str]) -> int:
    """How many of ``ids`` the alleles table holds."""
    with psycopg.connect(db_url) as conn:
        row = conn.execute("SELECT count(*) FROM alleles WHERE id = ANY(%s)", (list(ids),))
        return row.fetchone()[0]


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--clients", type=int, default=50)
    p.add_argument("--seconds", type=float, default=180)
    p.add_argument("--vcf-records", type=int, default=2000)
    p.add_argument("--workdir", type=Path, default=REPO / "benchmarks" / "data")
    p.add_argument("--pg-url", default="postgresql://postgres@127.0.0.1:5432")
    p.add_argument("--db", type=int, default=12, help="Redis database (flushed)")
    args = p.parse_args(argv)

    data = prepare(args.workdir / "load", 200_000, seed=5)
    tmp = Path(tempfile.mkdtemp(prefix="anyvar-load-"))
    small = tmp / "small.vcf"
    write_slice(data.vcf, small, args.vcf_records)
    vcf = small.read_bytes()
    defs = []
    for line in data.vcf.read_text().splitlines():
        f = line.split("\t")
        if not line.startswith("#") and "," not in f[4] and f[4].isalpha() and f[3].isalpha():
            defs.append(f"{f[0]}-{f[1]}-{f[3]}-{f[4]}")
    redis_url = f"redis://127.0.0.1:6379/{args.db}"
    flush_redis(redis_url)
    dbs = Databases(args.pg_url)
    load = Load()
    memory: dict[str, list[float]] = {}
    try:
        db = dbs.create("load")
        env = clean_env(
            SEQREPO_DATAPROXY_URI=f"seqrepo+file://{data.seqrepo}",
            ANYVAR_STORAGE_URI=db,
            ANYVAR_VCF_ASYNC_WORK_DIR=str(tmp / "work"),
            ANYVAR_THREADS="1",
            CELERY_BROKER_URL=redis_url,
            CELERY_BACKEND_URL=redis_url,
        )
        logs = tmp / "logs"
        logs.mkdir()
        with (
            server("api", BIN / "uvicorn", env, tmp, logs / "api.log") as api,
            worker("w1", BIN / "celery", "w1@load", env, tmp, logs / "w1.log") as w1,
            worker("w2", BIN / "celery", "w2@load", env, tmp, logs / "w2.log") as w2,
        ):
            stop = time.monotonic() + args.seconds
            log(f"{args.clients} clients for {args.seconds:.0f} s (logs in {logs})")
            pids = {"api": api.pid, "worker w1": w1.proc.pid, "worker w2": w2.proc.pid}
            threads = [
                threading.Thread(target=client, args=(api.url, load, vcf, defs, stop, i))
                for i in range(args.clients)
            ]
            threads.append(threading.Thread(target=sample_memory, args=(pids, memory, stop)))
            results = multiprocessing.get_context("spawn").Queue()
            probe = multiprocessing.get_context("spawn").Process(
                target=service_info, args=(api.url, stop, results)
            )
            probe.start()
            for t in threads:
                t.start()
            for t in threads:
                t.join()
            load.info_seconds, probe_errors = results.get(timeout=60)
            load.errors += probe_errors
            probe.join()
        found = stored(db, load.ids) if load.ids else 0
    finally:
        dbs.drop_all()
        flush_redis(redis_url)

    info = sorted(load.info_seconds)
    p50 = statistics.median(info) if info else float("nan")
    p99 = info[min(len(info) - 1, int(len(info) * 0.99))] if info else float("nan")
    print()
    print(f"requests done: {dict(load.done)} in {args.seconds:.0f} s by {args.clients} clients")
    print(f"errors: {len(load.errors)}")
    for e in load.errors[:10]:
        print(f"  {e}")
    print(f"alleles answered: {len(load.ids):,}; in the database at the end: {found:,}")
    print(f"GET /service-info: {len(info):,} timed, p50 {p50 * 1000:.1f} ms, "
          f"p99 {p99 * 1000:.1f} ms (target < {P99_TARGET * 1000:.0f} ms)")  # fmt: skip
    growing = False
    for name, rss in memory.items():
        third = max(1, len(rss) // 3)
        first, last = max(rss[:third]), max(rss[-third:])
        print(f"{name} RSS: first third peak {first:.0f} MB, last third peak {last:.0f} MB")
        growing |= name == "api" and last > first * 1.25
    ok = not load.errors and found == len(load.ids) and p99 < P99_TARGET and not growing
    if ok:
        shutil.rmtree(tmp)
    else:
        print(f"logs kept in {tmp / 'logs'}")
    print(f"result: {'passed' if ok else 'FAILED'}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
