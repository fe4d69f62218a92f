"""``GET /metrics`` scraped from a real API with a real Celery worker: the figures of runs the
workers finished reach the API's scrape through Redis, and they match what ran."""

from __future__ import annotations

from pathlib import Path

from async_service import allele_ids, check_submitted, poll_until_done, redis_client, start_stack
from prometheus_client.parser import text_string_to_metric_families
from service import records, table_counts

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
    db = f"sqlite:///{tmp_path / 'db.sqlite3'}"
    stack = start_stack(tmp_path / "stack", "metrics-q", source, db)
    try:
        api = stack.api
        before = scrape(api)
        assert value(before, "anyvar_records_annotated_total", kind="vcf", mode="sync") is None
        assert value(before, "anyvar_runs", state="succeeded") == 0
        assert value(before, "anyvar_queue_length", queue="metrics-q") == 0

        sync = api.put_vcf(vcf)
        assert sync.status_code == 200, sync.text
        rows_after_sync = table_counts(db)["alleles"]
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
        # Stored counts the rows new to the database: all of the first run's, none of the
        # second's (every allele of it was registered already).
        assert rows_after_sync > 0 and table_counts(db)["alleles"] == rows_after_sync
        assert value(after, "anyvar_alleles_stored_total", kind="vcf", mode="sync") == (
            rows_after_sync
        )
        assert value(after, "anyvar_alleles_stored_total", kind="vcf", mode="async") is None
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

        # Variation batches, sync and async: definitions, alleles found and new rows.
        lines = records(vcf.read_text())
        definitions = [f"{f[0]}-{f[1]}-{f[3]}-{f[4].split(',')[0]}" for f in lines[:40]]
        definitions.append("chr1-1-A-not-a-definition")
        rows = table_counts(db)["alleles"]
        # Alleles of the VCF are registered already; a changed ALT is new.
        changed = [d[:-1] + ("T" if d[-1] != "T" else "C") for d in definitions[:20]]
        r = api.client.put("/variations", json=[{"definition": d} for d in changed])
        assert r.status_code == 200, r.text
        found = {a["object_id"] for a in r.json() if "object_id" in a}
        new_sync = table_counts(db)["alleles"] - rows
        assert new_sync > 0
        r = api.client.put(
            "/variations", params={"run_async": "true"},
            json=[{"definition": d} for d in definitions + changed],
        )  # fmt: skip
        run_id = check_submitted(r, None, prefix="/variations")
        done, _ = poll_until_done(api, run_id, prefix="/variations")
        assert done.status_code == 200, done.text
        new_async = table_counts(db)["alleles"] - rows - new_sync
        after = scrape(api)
        found_async = sum(1 for a in done.json() if "object_id" in a)
        assert found_async < len(definitions + changed)  # the bad one
        figures = {
            "sync": (len(changed), len(found), new_sync),
            "async": (len(definitions + changed), found_async, new_async),
        }
        for mode, (definitions_sent, alleles, stored) in figures.items():
            labels = {"kind": "variations", "mode": mode}
            assert value(after, "anyvar_records_annotated_total", **labels) == definitions_sent
            assert value(after, "anyvar_alleles_annotated_total", **labels) == alleles
            assert (value(after, "anyvar_alleles_stored_total", **labels) or 0) == stored, mode
            assert value(after, "anyvar_runs_finished_total", outcome="succeeded", **labels) == 1
    except BaseException:
        print(stack.logs())
        raise
    finally:
        stack.stop()
