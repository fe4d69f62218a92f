"""Benchmark one async run spread over 1, 2 and 4 worker processes (the fan-out path).

Run with the project's interpreter; Redis must be listening on 127.0.0.1:6379
(``scripts/services.sh`` starts it)::

    .venv/bin/python benchmarks/bench_scale.py                    # 2,000,000 records
    .venv/bin/python benchmarks/bench_scale.py --records 200000 --workers 1 2 --json out.json

What it does:

* generates (or reuses) the synthetic reference, VCF, bgzipped VCF and SeqRepo instance of
  ``bench_annotate.py`` (its ``prepare``);
* for each worker count N (``--workers``, default 1 2 4): one API and N Celery worker
  processes (``--pool=prefork --concurrency=1``, each ``ANYVAR_THREADS=1``), Redis database
  ``--db`` (default 12, flushed first and last), ``ANYVAR_STORAGE_URI=""`` (annotation only,
  so the figure is the workers' scaling, not a database's) and
  ``ANYVAR_VCF_CHUNK_RECORDS=--chunk-records`` (default 125,000: 16 chunks of the default
  file); the bgzipped file goes through ``PUT /vcf?run_async=true`` and the client polls the
  ``Location`` until the result is downloaded; "seconds" is the client's wall time;
* also, on one worker, the same file with ``ANYVAR_VCF_CHUNK_RECORDS=0`` (one task: the
  path without fan-out), the baseline of the speed-ups;
* every fan-out result must be byte-identical to that baseline's;
* the overhead of cutting and joining, as a share of the run: the submission (upload and
  the check that finds the ranges: ``submit``) and the join task (from the worker's log);
* vrs-python (``vrs-annotate vcf``) on a ``--vrs-slice`` (10,000) record slice of the same
  file, its startup left out, for the ratio;
* peak RSS of the API and of every worker process (their largest);
* the machine's ceiling for two processes: ``anyvar annotate --threads 1`` of the same file
  alone, then two at once (on two cores they share memory bandwidth and caches, so two
  at once take longer than one alone), and from it and the one-task run the most any
  fan-out could reach end to end (Amdahl): the one-task run's serial part (upload, check,
  queue hop, download) left as it is, its workers' part done at that ceiling.

On a machine with 2 cores, 4 single-thread workers oversubscribe it: that row shows the cost
of it. The target for 2 cores: two workers at least 1.8x one (``--target``).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import re
import sys
import tempfile
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from pathlib import Path

import redis
from bench_annotate import REPO, format_table, log, ours, prepare, vrs_python, write_slice
from bench_async import CELERY, flush_redis, our_env, run_async, worker
from bench_service import UVICORN, BenchError, count_records, proc_status_kb, server, verdict

from anyvar.config import available_cores


@dataclass
class Row:
    label: str
    workers: int
    chunks: int
    records: int
    seconds: float
    submit_seconds: float
    join_seconds: float
    api_peak_mb: float
    worker_peak_mb: float
    identical: bool
    work_seconds: float = 0.0
    """From the first worker's start to the run's end (its record's started_at and
    finished_at): the part the workers share, without upload, check and download."""

    @property
    def rate(self) -> float:
        return self.records / max(self.seconds, 1e-9)


def pool_children(pid: int) -> list[int]:
    pids: list[int] = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        with contextlib.suppress(FileNotFoundError):
            pids += [int(p) for p in (task / "children").read_text().split()]
    return pids


def join_seconds(log_paths: list[Path], run_id: str) -> float:
    pattern = re.compile(rf"join_chunks\[{re.escape(run_id)}\] succeeded in ([0-9.]+)s")
    for path in log_paths:
        found = pattern.search(path.read_text(errors="replace"))
        if found:
            return float(found.group(1))
    return 0.0


def two_process_ceiling(data, n_records: int, tmp: Path) -> float:
    """How much faster two single-thread annotations finish than one after the other: the
    most two workers of this machine can give the workers' part of a run."""
    log("the machine's ceiling: anyvar annotate --threads 1, alone then two at once ...")

    def one(i: int) -> float:
        out = tmp / f"ceiling-{i}.vcf"
        seconds = ours("ceiling", data.vcf_gz, out, n_records, data.uri, 1, False).seconds
        out.unlink()
        return seconds

    alone = one(0)
    with ThreadPoolExecutor(2) as pool:
        together = max(pool.map(one, [1, 2]))
    return 2 * alone / together


def amdahl(total: float, work: float, ceiling: float, target: float) -> tuple[float, float]:
    """For a run of ``total`` seconds of which ``work`` is the workers' part: the speed-up of
    two workers when that part runs ``ceiling`` times faster and the rest does not, and the
    largest serial part (seconds) that would still allow ``target``."""
    serial = total - work
    best = total / (serial + work / ceiling)
    budget = work * (1 - target / ceiling) / (target - 1)
    return best, budget


def measure(args, data, n_records: int, workers: int, chunk_records: int, tmp: Path) -> Row:
    label = f"{workers} worker(s)" + ("" if chunk_records else ", no fan-out")
    logs = tmp / f"logs-{workers}-{chunk_records}"
    logs.mkdir(parents=True)
    work = tmp / f"work-{workers}-{chunk_records}"
    work.mkdir()
    redis_url = f"redis://127.0.0.1:6379/{args.db}"
    flush_redis(redis_url)
    env = {
        **our_env(data.uri, redis_url, work),
        "ANYVAR_THREADS": "1",
        "ANYVAR_VCF_CHUNK_RECORDS": str(chunk_records),
    }
    with contextlib.ExitStack() as stack:
        log(f"{label}: starting the API and {workers} worker process(es) ...")
        api = stack.enter_context(server("API", UVICORN, env, logs, logs / "api.log"))
        ws = [
            stack.enter_context(
                worker(f"worker {i}", CELERY, f"scale{i}@%h", env, logs, logs / f"w{i}.log")
            )
            for i in range(workers)
        ]
        out = tmp / f"out-{workers}-{chunk_records}.vcf.gz"
        log(f"{label}: {n_records:,} records (bgzip) ...")
        run = run_async(api.url, data.vcf_gz, n_records, label, out, args.poll_interval)
        peaks = [
            proc_status_kb(pid, "VmHWM") * 1024 / 1e6
            for w in ws
            for pid in [w.proc.pid, *pool_children(w.proc.pid)]
        ]
        record = redis.Redis.from_url(redis_url, decode_responses=True).hgetall(
            f"anyvar:run:{run.run_id}"
        )
        row = Row(
            label,
            workers,
            -(-n_records // chunk_records) if chunk_records else 1,
            n_records,
            run.seconds,
            run.submit_seconds,
            join_seconds([w.log_path for w in ws], run.run_id),
            api.peak_rss_mb(),
            max(peaks),
            True,
            float(record["finished_at"]) - float(record["started_at"]),
        )
    flush_redis(redis_url)
    return row


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--records", type=int, default=2_000_000)
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--workers", type=int, nargs="+", default=[1, 2, 4])
    p.add_argument("--chunk-records", type=int, default=125_000)
    p.add_argument("--vrs-slice", type=int, default=10_000)
    p.add_argument("--db", type=int, default=12)
    p.add_argument("--poll-interval", type=float, default=0.2)
    p.add_argument("--target", type=float, default=1.8)
    p.add_argument("--workdir", type=Path, default=REPO / "benchmarks" / "data")
    p.add_argument("--json", type=Path)
    args = p.parse_args(argv)

    data = prepare(args.workdir / f"scale-{args.records}-{args.seed}", args.records, args.seed)
    n_records = count_records(data.vcf)
    with tempfile.TemporaryDirectory(prefix="anyvar-scale-") as d:
        tmp = Path(d)
        rows = [measure(args, data, n_records, 1, 0, tmp)]
        baseline = (tmp / "out-1-0.vcf.gz").read_bytes()
        for workers in args.workers:
            row = measure(args, data, n_records, workers, args.chunk_records, tmp)
            out = tmp / f"out-{workers}-{args.chunk_records}.vcf.gz"
            row.identical = out.read_bytes() == baseline
            out.unlink()
            rows.append(row)

        slice_vcf = tmp / "slice.vcf"
        n = write_slice(data.vcf, slice_vcf, args.vrs_slice)
        empty = tmp / "empty.vcf"
        write_slice(data.vcf, empty, 0)
        log(f"vrs-python on {n:,} records ...")
        startup = vrs_python("startup", empty, tmp / "vp-empty.vcf", 0, data.uri, False).seconds
        theirs = vrs_python("vrs-python", slice_vcf, tmp / "vp.vcf", n, data.uri, False)
        theirs.startup = startup
        machine = two_process_ceiling(data, n_records, tmp)

    base = rows[0].rate
    one_fanout = next((r.rate for r in rows[1:] if r.workers == 1), base)
    head = ("configuration", "chunks", "records/s", "x 1 worker", "x vrs-python", "seconds",
            "workers s", "submit %", "join %", "API MB", "worker MB", "identical")  # fmt: skip
    table = [
        (
            r.label,
            str(r.chunks),
            f"{r.rate:,.0f}",
            f"{r.rate / base:.2f}x",
            f"{r.rate / theirs.rate:.0f}x",
            f"{r.seconds:.2f}",
            f"{r.work_seconds:.2f}",
            f"{100 * r.submit_seconds / r.seconds:.1f}",
            f"{100 * r.join_seconds / r.seconds:.1f}",
            f"{r.api_peak_mb:.0f}",
            f"{r.worker_peak_mb:.0f}",
            "yes" if r.identical else "NO",
        )
        for r in rows
    ]
    print(format_table(head, table))
    print(f"\nvrs-python: {theirs.rate:,.0f} records/s on {n:,} records (startup excluded)")
    print(f"cores available: {available_cores()}; each worker process ANYVAR_THREADS=1")
    two = next((r for r in rows[1:] if r.workers == 2), None)
    one = next((r for r in rows[1:] if r.workers == 1), None)
    ok = all(r.identical for r in rows)
    if two is not None and one is not None:
        print(
            f"the workers' share (first start to end of run): two workers "
            f"{one.work_seconds / two.work_seconds:.2f}x one; the rest of a run (upload, check, "
            f"download) is serial: {100 * (1 - two.work_seconds / two.seconds):.0f}% of the "
            "two-worker run"
        )
    best, budget = amdahl(rows[0].seconds, rows[0].work_seconds, machine, args.target)
    print(
        f"the machine's ceiling (two anyvar annotate --threads 1 at once against one alone): "
        f"{machine:.2f}x; with the one-task run's serial part "
        f"({rows[0].seconds - rows[0].work_seconds:.2f} s) and its workers' part at that "
        f"ceiling, two workers could reach at most {best:.2f}x end to end; {args.target}x "
        + (
            f"needs a serial part under {budget:.2f} s"
            if budget > 0
            else "is above the ceiling itself: no serial part is small enough"
        )
    )
    if two is not None:
        speedup = two.rate / base
        print(
            f"two workers: {speedup:.2f}x one worker without fan-out, "
            f"{two.rate / one_fanout:.2f}x one worker with it "
            f"(target {args.target}x): {verdict(speedup >= args.target)}"
        )
        ok &= speedup >= args.target
    if args.json:
        args.json.write_text(
            json.dumps(
                {
                    "rows": [asdict(r) | {"rate": r.rate} for r in rows],
                    "vrs_python_rate": theirs.rate,
                    "ceiling": machine,
                    "amdahl_best": best,
                    "serial_budget_seconds": budget,
                },
                indent=2,
            )
        )
    return 0 if ok else 1


if __name__ == "__main__":
    try:
        sys.exit(main())
    except BenchError as e:
        sys.exit(f"bench_scale: {e}")
    except KeyboardInterrupt:
        sys.exit(130)
