"""Asynchronous runs as a client follows them: bad input refused at submission exactly as the
synchronous path refuses it, phases with their own progress up to ``done`` at 100 %, the run
list with paging and filters, a warning when no worker serves the queue, and an ``error`` and
``error_code`` in every error answer. Real uvicorn, Celery prefork workers and Redis."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from async_service import (
    Stack,
    allele_ids,
    library_annotation,
    poll_until_done,
    start_api,
    start_stack,
    wait_for,
)
from test_async import LATE_LINE, late_failure
from test_bad_input import CASES, make_cases, medium_vcf  # noqa: F401 (a fixture)

from anyvar.synthetic import generate

PHASES = ["queued", "annotating", "storing", "done"]


@pytest.fixture(scope="module")
def big(tmp_path_factory) -> tuple[str, Path]:
    """A reference and a 150,000-record VCF over it: enough distinct alleles that storing
    them takes a while (the source URI and the VCF)."""
    fasta, vcf = generate(tmp_path_factory.mktemp("big"), records=150_000, seed=21)
    return f"fasta+file://{fasta}?assembly=GRCh38", vcf


@pytest.fixture(scope="module")
def stack(tmp_path_factory, rdb, big) -> Iterator[Stack]:
    root = tmp_path_factory.mktemp("runs")
    stack = start_stack(
        root,
        "q_runs",
        big[0],
        storage_uri=f"sqlite:///{root / 'db.sqlite3'}",
        workers=[("runs", "prefork", 1)],
    )
    try:
        yield stack
    finally:
        stack.stop()


@pytest.fixture(scope="module")
def cases(synthetic, medium_vcf):  # noqa: F811 (the imported fixture)
    return make_cases(synthetic, medium_vcf)


@pytest.mark.parametrize("name", CASES)
def test_bad_input_is_refused_at_submission_like_sync(name, cases, stack: Stack):
    data = cases[name].data
    sync = stack.api.put_vcf(data, filename="input.vcf.gz")
    submitted = stack.api.put_vcf(data, filename="input.vcf.gz", run_async=True)
    assert sync.status_code == 400, sync.text
    assert submitted.status_code == 400, submitted.text
    assert submitted.json() == sync.json()
    assert submitted.json()["error_code"] == "INVALID_VCF"
    assert submitted.json()["line"] == cases[name].line
    assert stack.files() == [], "the refused upload is not left in the work dir"


def test_phases_reach_done_at_100_percent(stack: Stack, big):
    """With storage: queued → annotating (records) → storing (rows) → done, never backwards,
    each phase's progress never decreasing; the run list then shows done at 100 %."""
    vcf = big[1]
    records = sum(1 for line in vcf.open() if not line.startswith("#"))
    run_id = stack.api.submit(vcf, run_id="phases-1")
    seen: list[tuple[str, float]] = []
    r, pending = poll_until_done(stack.api, run_id, timeout=120, interval=0.02)
    assert r.status_code == 200, r.text
    for body in pending:
        assert body["phase"] in PHASES, body
        seen.append((body["phase"], body["phase_percent"] or 0.0))
    order = [PHASES.index(phase) for phase, _ in seen]
    assert order == sorted(order), seen
    assert {"annotating", "storing"} <= {phase for phase, _ in seen}, seen
    for phase in ("annotating", "storing"):
        values = [v for p, v in seen if p == phase]
        assert values == sorted(values) and all(0 <= v <= 100 for v in values), (phase, values)
    storing = [b for b in pending if b["phase"] == "storing"]
    # Once storing, every record is annotated.
    assert all(b["records_done"] == records and b["percent"] == 100 for b in storing), storing
    listed = stack.api.client.get("/runs", params={"limit": 500}).json()["runs"]
    final = next(run for run in listed if run["run_id"] == run_id)
    assert final["state"] == "succeeded" and final["phase"] == "done", final
    assert final["percent"] == final["phase_percent"] == 100
    assert final["records_done"] == final["records_total"] == records
    assert final["finished_at"] >= final["started_at"] >= final["submitted_at"]


def test_run_list_pages_and_filters(stack: Stack, vectors: Path, tmp_path):
    ids = [f"list-{i}" for i in range(5)]
    for run_id in ids[:4]:
        stack.api.submit(vectors / "input.vcf", run_id=run_id)
    stack.api.submit(late_failure(vectors), "/annotated_vcf", run_id=ids[4])
    for run_id in ids:
        wait_for(
            lambda run_id=run_id: stack.api.client.get(f"/vcf/{run_id}").status_code != 202,
            60,
            f"run {run_id}",
        )
    pages, token = [], None
    while True:
        params = {"limit": 2, **({"page_token": token} if token else {})}
        body = stack.api.client.get("/runs", params=params).json()
        assert len(body["runs"]) <= 2
        pages.append(body["runs"])
        token = body["next_page_token"]
        if token is None:
            break
    listed = [run["run_id"] for page in pages for run in page]
    assert len(listed) == len(set(listed)), "no run on two pages"
    ours = [run_id for run_id in listed if run_id in ids]
    assert ours == ids[::-1], "newest first"
    times = [run["submitted_at"] for page in pages for run in page]
    assert times == sorted(times, reverse=True)
    assert (
        stack.api.client.get("/vcf", params={"limit": 500}).json()["runs"]
        == (stack.api.client.get("/runs", params={"limit": 500}).json()["runs"])
    )

    failed = stack.api.client.get("/runs", params={"state": "failed", "limit": 500}).json()
    assert {run["state"] for run in failed["runs"]} == {"failed"}
    entry = next(run for run in failed["runs"] if run["run_id"] == ids[4])
    assert entry["kind"] == "annotated_vcf" and entry["error_code"] == "INVALID_VCF"
    assert f"line {LATE_LINE}" in entry["error"]
    good = stack.api.client.get("/runs", params={"state": "succeeded", "limit": 500}).json()
    assert set(ids[:4]) <= {run["run_id"] for run in good["runs"]}
    assert ids[4] not in {run["run_id"] for run in good["runs"]}

    for params in ({"limit": 0}, {"state": "lost"}, {"page_token": "nonsense"}):
        r = stack.api.client.get("/runs", params=params)
        assert r.status_code == 422, (params, r.text)
        # FastAPI's validation body (detail) for a bad limit or state; ours for the token
        body = r.json()
        code = body.get("error_code") or r.headers["X-AnyVar-Error-Code"]
        assert (body.get("detail") or body.get("error")) and code == "INVALID_REQUEST", r.text


def test_every_error_answer_is_anyvars_body_or_ours_with_a_code(stack: Stack, vectors: Path):
    """Where AnyVar defines the body (FastAPI's ``detail`` of its routes and of validation,
    its ``{"error": …}`` of a run id in use), it is AnyVar's key for key and our error code is
    in the ``X-AnyVar-Error-Code`` header; elsewhere our ``{error, error_code}``."""
    client = stack.api.client
    deleted = stack.api.submit(vectors / "input.vcf", run_id="errors-deleted")
    poll_until_done(stack.api, deleted)
    client.delete(f"/vcf/{deleted}")
    stack.api.submit(vectors / "input.vcf", run_id="errors-in-use")
    answers = {
        "unknown route": client.get("/no/such/route"),
        "wrong method": client.post("/vcf/abc"),
        "bad parameter": client.put("/vcf", params={"assembly": "hg19"}),
        "bad VCF": stack.api.put_vcf(b"nonsense"),
        "bad VCF, async": stack.api.put_vcf(b"nonsense", run_async=True),
        "unknown run": client.get("/vcf/no-such-run"),
        "cancel unknown run": client.delete("/vcf/no-such-run"),
        "deleted run": client.get(f"/vcf/{deleted}"),
        "unknown object": client.get("/object/ga4gh:VA.nope"),
        "invalid run id": stack.api.put_vcf(vectors / "input.vcf", run_async=True, run_id="a b"),
        "run id in use": stack.api.put_vcf(
            vectors / "input.vcf", run_async=True, run_id="errors-in-use"
        ),
    }
    anyvars = {"unknown route", "wrong method", "bad parameter", "unknown object"}
    codes = {}
    for what, r in answers.items():
        assert r.status_code >= 400, (what, r.status_code, r.text)
        body = r.json()
        if what in anyvars:
            assert list(body) == ["detail"], (what, body)
            code = r.headers["X-AnyVar-Error-Code"]
        elif what == "run id in use":
            assert list(body) == ["error"], (what, body)
            code = r.headers["X-AnyVar-Error-Code"]
        else:
            assert isinstance(body.get("error"), str) and body["error"], (what, body)
            code = body["error_code"]
        assert isinstance(code, str) and code, (what, body)
        codes[what] = (r.status_code, code)
    assert codes["deleted run"] == (410, "RESULT_GONE")
    assert codes["unknown run"] == codes["cancel unknown run"] == (404, "NOT_FOUND")
    assert codes["unknown object"] == (404, "NOT_FOUND")
    assert codes["run id in use"] == (400, "RUN_ID_IN_USE")
    assert codes["bad parameter"] == (422, "INVALID_REQUEST")
    assert "Traceback" not in stack.api.text()


def test_async_result_matches_the_library(stack: Stack, big, tmp_path):
    """The phases' bookkeeping changes nothing in the result (the first 5,000 records)."""
    lines = big[1].read_text().splitlines(keepends=True)
    header = [line for line in lines if line.startswith("#")]
    vcf = tmp_path / "slice.vcf"
    vcf.write_text("".join(header + lines[len(header) : len(header) + 5000]))
    run_id = stack.api.submit(vcf)
    r, _ = poll_until_done(stack.api, run_id, timeout=60)
    assert r.status_code == 200
    expected = library_annotation(vcf, tmp_path / "lib.vcf", big[0])
    assert allele_ids(r.text) == allele_ids(expected) and len(allele_ids(expected)) == 5000


def test_queued_run_without_a_worker_says_so(tmp_path, rdb, vectors, vector_seqrepo_uri):
    """No worker consumes the queue: after ANYVAR_QUEUED_WARNING_SECONDS the poll warns and
    names the queue; once a worker starts, the run completes and the warning is gone."""
    stack = start_stack(
        tmp_path,
        "q_lonely",
        vector_seqrepo_uri,
        env={"ANYVAR_QUEUED_WARNING_SECONDS": "1"},
        workers=[],
    )
    try:
        run_id = stack.api.submit(vectors / "input.vcf")
        first = stack.api.client.get(f"/vcf/{run_id}").json()
        assert "warning" not in first, "not queued long enough yet"
        time.sleep(1.2)
        body = stack.api.client.get(f"/vcf/{run_id}").json()
        assert body["state"] == "queued" and "'q_lonely'" in body["warning"], body
        stack.add_worker("late")
        r, _ = poll_until_done(stack.api, run_id, timeout=60)
        assert r.status_code == 200, r.text
    finally:
        stack.stop()


def test_api_start_names_the_dead_broker(tmp_path, vector_seqrepo_uri):
    env = {
        "SEQREPO_DATAPROXY_URI": vector_seqrepo_uri,
        "ANYVAR_STORAGE_URI": "",
        "ANYVAR_VCF_ASYNC_WORK_DIR": str(tmp_path / "work"),
        "CELERY_BROKER_URL": "redis://127.0.0.1:1/0",
        "CELERY_BACKEND_URL": "redis://127.0.0.1:1/0",
        "TMPDIR": str(tmp_path),
    }
    api = start_api(tmp_path, env, wait=False)
    try:
        assert api.proc.wait(timeout=60) == 3
        text = api.text()
        assert "AnyVar cannot start" in text and "CELERY_BROKER_URL=redis://127.0.0.1:1/0" in text
        assert "Traceback" not in text
    finally:
        api.stop()


def test_the_api_publishes_by_task_name_without_the_workers_code(
    tmp_path: Path, rdb, vector_seqrepo_uri: str
) -> None:
    """The API reaches the broker and the run store at start, and names tasks; the tasks'
    code (and what it imports) stays out of its process."""
    from async_service import REDIS_URL

    script = """
import sys
from fastapi.testclient import TestClient
from anyvar.restapi.main import create_app
with TestClient(create_app()) as client:
    assert client.app.state.runs is not None
print(sorted(m for m in sys.modules if m.startswith("anyvar.queueing")))
"""
    env = {
        **os.environ,
        "CELERY_BROKER_URL": REDIS_URL,
        "CELERY_BACKEND_URL": REDIS_URL,
        "ANYVAR_VCF_ASYNC_WORK_DIR": str(tmp_path),
        "ANYVAR_STORAGE_URI": "",
        "SEQREPO_DATAPROXY_URI": vector_seqrepo_uri,
    }
    done = subprocess.run(
        [sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr[-3000:]
    loaded = done.stdout.strip().splitlines()[-1]
    assert "'anyvar.queueing.app'" in loaded
    for worker_code in ("celery_worker", "tasks", "fanout"):
        assert f"'anyvar.queueing.{worker_code}'" not in loaded, loaded
