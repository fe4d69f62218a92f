"""Registering definitions over REST: ``PUT /variations`` in batches of 1,000 (as AnyVLM sends
them) and ``PUT /variation`` one at a time, ours against AnyVar 1.0.0 (PyPI) on the same
PostgreSQL server and the same SeqRepo, in one run.

    .venv/bin/python benchmarks/bench_variations.py                      # 20,000 definitions
    .venv/bin/python benchmarks/bench_variations.py --definitions 100000 --anyvar-definitions 2000
    .venv/bin/python benchmarks/bench_variations.py --clients 2   # two clients sending batches

Definitions are gnomAD-style ``chrom-pos-ref-alt`` of the generated VCF's single-ALT records,
on a synthetic reference; liftover is on in both services (on synthetic sequences it stops at
the accession lookup, in both). Prints definitions/second, the ratio to AnyVar 1.0.0, and
peak memory of each API process; the stored rows are checked against the answers."""

from __future__ import annotations

import argparse
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
from bench_annotate import BIN, REPO, log, prepare
from bench_service import Databases, clean_env, server

BATCH = 1000
TARGET_RATIO = 100.0
TARGET_RATE = 20_000.0


def definitions(vcf: Path, count: int) -> list[str]:
    """``chrom-pos-ref-alt`` of the first ``count`` single-ALT records, each once."""
    found: dict[str, None] = {}
    with vcf.open() as f:
        for line in f:
            if line.startswith("#"):
                continue
            chrom, pos, _, ref, alt = line.split("\t", 5)[:5]
            if "," in alt or not alt.isalpha() or not ref.isalpha() or chrom == "chrUn":
                continue
            found[f"{chrom}-{pos}-{ref}-{alt}"] = None
            if len(found) == count:
                break
    return list(found)


def identity_chains(fasta: Path, directory: Path) -> Path:
    """hg38ToHg19 and hg19ToHg38 chain files mapping each contig of ``fasta`` onto itself, so
    that our liftover runs its whole course (coordinates convert; the synthetic reference has
    no GRCh37, so the accession does not) rather than stop at a missing chain file."""
    lengths: dict[str, int] = {}
    name = None
    with fasta.open() as f:
        for line in f:
            if line.startswith(">"):
                name = line[1:].split()[0]
                lengths[name] = 0
            elif name:
                lengths[name] += len(line.strip())
    directory.mkdir(parents=True, exist_ok=True)
    text = "".join(
        f"chain 1000 {c} {n} + 0 {n} {c} {n} + 0 {n} {i + 1}\n{n}\n\n"
        for i, (c, n) in enumerate(lengths.items())
    )
    for file in ("hg38ToHg19.over.chain", "hg19ToHg38.over.chain"):
        (directory / file).write_text(text)
    return directory


def batches(url: str, defs: list[str], clients: int) -> tuple[float, set[str]]:
    """Seconds for ``PUT /variations`` of ``defs`` in batches of ``BATCH``, sent by ``clients``
    clients at once (each waits for its answer before its next batch); the allele ids."""
    chunks = [defs[i : i + BATCH] for i in range(0, len(defs), BATCH)]
    ids: set[str] = set()

    def send(mine: list[list[str]]) -> None:
        with httpx.Client(base_url=url, timeout=3600) as client:
            for chunk in mine:
                r = client.put("/variations", json=[{"definition": d} for d in chunk])
                r.raise_for_status()
                ids.update({a["object_id"] for a in r.json() if a.get("object_id")})

    start = time.perf_counter()
    with ThreadPoolExecutor(clients) as pool:
        list(pool.map(send, [chunks[k::clients] for k in range(clients)]))
    return time.perf_counter() - start, ids


def one_at_a_time(url: str, defs: list[str]) -> tuple[float, set[str]]:
    ids: set[str] = set()
    start = time.perf_counter()
    with httpx.Client(base_url=url, timeout=600) as client:
        for d in defs:
            r = client.put("/variation", json={"definition": d})
            r.raise_for_status()
            if r.json().get("object_id"):
                ids.add(r.json()["object_id"])
    return time.perf_counter() - start, ids


def measure(
    name: str, uvicorn: Path, env: dict, rundir: Path, many: list[str], few: list[str], clients: int
):
    with server(name, uvicorn, env, rundir, rundir / f"{name.replace(' ', '-')}.log") as srv:
        batch_s, batch_ids = batches(srv.url, many, clients)
        single_s, single_ids = one_at_a_time(srv.url, few)
        peak = srv.peak_rss_mb()
    log(
        f"{name}: {len(many):,} batched in {batch_s:.2f} s, "
        f"{len(few):,} one by one in {single_s:.2f} s ({clients} client(s) sending batches)"
    )
    return {
        "batch_rate": len(many) / batch_s,
        "single_rate": len(few) / single_s,
        "ids": batch_ids | single_ids,
        "peak_mb": peak,
    }


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--workdir", type=Path, default=REPO / "benchmarks" / "data")
    p.add_argument("--definitions", type=int, default=20_000, help="ours, in batches")
    p.add_argument("--single", type=int, default=1_000, help="ours, one request each")
    p.add_argument("--anyvar-definitions", type=int, default=2_000, help="AnyVar 1.0.0, batches")
    p.add_argument("--anyvar-single", type=int, default=200, help="AnyVar 1.0.0, one by one")
    p.add_argument("--pg-url", default="postgresql://postgres@127.0.0.1:5432")
    p.add_argument(
        "--clients", type=int, default=1, help="clients sending batches at once (both services)"
    )
    args = p.parse_args(argv)

    data = prepare(args.workdir / "variations", max(args.definitions * 2, 50_000), seed=3)
    defs = definitions(data.vcf, args.definitions)
    if len(defs) < args.definitions:
        sys.exit(f"only {len(defs):,} distinct definitions in {data.vcf}")
    rundir = args.workdir / "variations" / "run"
    rundir.mkdir(parents=True, exist_ok=True)
    seqrepo_uri = f"seqrepo+file://{data.seqrepo}"
    dbs = Databases(args.pg_url)
    results = {}
    try:
        ours_db = dbs.create("ours")
        env = clean_env(
            ANYVAR_STORAGE_URI=ours_db,
            SEQREPO_DATAPROXY_URI=seqrepo_uri,
            ANYVAR_LIFTOVER_CHAIN_DIR=str(identity_chains(data.fasta, rundir / "chains")),
        )
        results["ours"] = measure(
            "ours", BIN / "uvicorn", env, rundir, defs, defs[: args.single], args.clients
        )
        rows, answered = dbs.count(ours_db), len(results["ours"]["ids"])
        if rows != answered:
            sys.exit(f"ours: {rows:,} alleles stored for {answered:,} distinct answered")

        theirs_db = dbs.create("anyvar10", extensions=("btree_gist",))
        env = clean_env(ANYVAR_STORAGE_URI=theirs_db, SEQREPO_DATAPROXY_URI=seqrepo_uri)
        uvicorn10 = REPO / ".venv-anyvar-1.0" / "bin" / "uvicorn"  # made by scripts/setup.sh
        results["AnyVar 1.0.0"] = measure(
            "AnyVar 1.0.0", uvicorn10, env, rundir,
            defs[: args.anyvar_definitions], defs[: args.anyvar_single], args.clients,
        )  # fmt: skip
    finally:
        dbs.drop_all()

    ours, theirs = results["ours"], results["AnyVar 1.0.0"]
    print()
    print(f"{'':14}{'PUT /variations (1,000 a request)':>36}{'PUT /variation':>18}{'peak RSS':>10}")
    for name, r in results.items():
        print(
            f"{name:14}{r['batch_rate']:>27,.0f} defs/s{r['single_rate']:>11,.0f} defs/s"
            f"{r['peak_mb']:>7.0f} MB"
        )
    batch_ratio = ours["batch_rate"] / theirs["batch_rate"]
    single_ratio = ours["single_rate"] / theirs["single_rate"]
    print(f"{'ratio':14}{batch_ratio:>28,.0f}x{single_ratio:>17,.0f}x")
    ok = batch_ratio >= TARGET_RATIO and ours["batch_rate"] >= TARGET_RATE
    print(
        f"target: at least {TARGET_RATIO:.0f}x AnyVar and {TARGET_RATE:,.0f} definitions/s on "
        f"the batch: {'met' if ok else 'NOT met'}"
    )
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
