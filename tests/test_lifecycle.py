"""The run lifecycle (``anyvar.queueing.runs``) in process, against the machine's Redis: each
transition from each state, as workers and the API use them, and the work directory's view of
a run's files. The service tests (test_async, test_fanout, test_runs) drive the same
transitions through real workers; these pin the rules themselves in seconds."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

from anyvar.queueing import CANCELLED, workdir
from anyvar.queueing.runs import RunIdInUse, RunStore, outputs

REDIS_URL = f"redis://127.0.0.1:6379/{os.environ.get('ANYVAR_LIFECYCLE_REDIS_DB', '10')}"


@pytest.fixture
def store() -> Iterator[RunStore]:
    try:
        redis.Redis.from_url(REDIS_URL).ping()
    except redis.ConnectionError:
        pytest.fail(f"Redis is not reachable at {REDIS_URL}: scripts/services.sh starts it")
    store = RunStore.from_url(REDIS_URL, result_expires=60, active_ttl=600)
    store.client.flushdb()
    yield store
    store.client.flushdb()


def queued(store: RunStore) -> str:
    run_id = uuid.uuid4().hex
    store.reserve(run_id, {"kind": "vcf", "input": f"/nowhere/{run_id}.input"})
    return run_id


def running(store: RunStore) -> str:
    run_id = queued(store)
    assert store.start(run_id, f"/nowhere/{run_id}.input") == "queued"
    return run_id


def test_a_run_goes_from_queued_to_running_to_succeeded_with_its_outputs(store):
    run_id = queued(store)
    assert store.get(run_id)["status"] == "queued"
    task_input = f"/nowhere/{run_id}.input"
    assert store.start(run_id, task_input) == "queued"
    assert store.start(run_id, task_input) == "running", "a redelivered task finds it running"
    assert store.succeed(run_id, ["/a.part-0", "/a.part-1"]) == "succeeded"
    run = store.get(run_id)
    assert (run["status"], run["phase"]) == ("succeeded", "done")
    assert outputs(run) == ["/a.part-0", "/a.part-1"], "one result shape: files in order"
    assert float(run["finished_at"]) > 0
    assert 0 < store.client.ttl(store.key(run_id)) <= 60, "an ended run lives result_expires"


def test_the_first_failure_is_the_one_recorded(store):
    run_id = running(store)
    assert store.fail(run_id, error="chunk 3 broke", error_code="INVALID_VCF", line=7) == "failed"
    assert store.fail(run_id, error="chunk 5 broke", error_code="RUN_FAILURE") == ""
    assert store.succeed(run_id, ["/late"]) == "", "an ended run stays as it is"
    run = store.get(run_id)
    assert (run["status"], run["error"], run["error_code"], run["line"]) == (
        "failed",
        "chunk 3 broke",
        "INVALID_VCF",
        "7",
    )
    assert outputs(run) == []


def test_a_queued_run_is_cancelled_at_once_and_never_starts(store):
    run_id = queued(store)
    assert store.cancel(run_id) == "queued"
    run = store.get(run_id)
    assert (run["status"], run["phase"], run["error_code"]) == (
        "cancelled",
        "done",
        CANCELLED["error_code"],
    )
    assert store.start(run_id, f"/nowhere/{run_id}.input") == "cancelled", "its task, later"
    assert store.get(run_id)["status"] == "cancelled"


@pytest.mark.parametrize("outcome", ["succeeded", "failed", "cancelled"])
def test_a_cancel_while_running_wins_over_the_outcome_the_worker_reports(store, outcome):
    run_id = running(store)
    assert store.cancel(run_id) == "running"
    assert store.get(run_id)["status"] == "cancelling"
    assert store.cancel(run_id) == "cancelling", "cancelling twice changes nothing"
    assert store.end(run_id, outcome, outputs='["/x"]') == "cancelled"
    run = store.get(run_id)
    assert (run["status"], run["error"], run["error_code"]) == (
        "cancelled",
        CANCELLED["error"],
        CANCELLED["error_code"],
    )
    assert outputs(run) == [], "a cancelled run has no result"


@pytest.mark.parametrize("ended", ["succeeded", "failed"])
def test_cancelling_an_ended_run_deletes_it_and_frees_its_id(store, ended):
    run_id = running(store)
    store.end(run_id, ended)
    with pytest.raises(RunIdInUse):
        store.reserve(run_id, {"kind": "vcf"})
    assert store.cancel(run_id) == ended
    run = store.get(run_id)
    assert (run["status"], run["deleted"], run["collected"]) == (ended, "1", "1")
    store.reserve(run_id, {"kind": "vcf"})
    assert store.get(run_id)["status"] == "queued"


def test_unknown_runs_have_no_transitions(store):
    assert store.start("nope", "/x") == ""
    assert store.end("nope", "succeeded") == ""
    assert store.cancel("nope") == ""
    assert store.get("nope") is None


def test_a_task_of_a_run_the_id_named_before_does_not_start_the_new_one(store):
    """Cancelled while queued, then submitted again: the first run's task, delivered late,
    must not take the second run (found by CI: it ran it on the first run's removed input)."""
    run_id = queued(store)
    first_input = f"/nowhere/{run_id}.input"
    store.cancel(run_id)
    store.update(run_id, collected=1)
    store.reserve(run_id, {"kind": "vcf", "input": "/nowhere/second.input"})
    assert store.start(run_id, first_input) == "replaced"
    assert store.get(run_id)["status"] == "queued"
    assert store.start(run_id, "/nowhere/second.input") == "queued"


def test_a_replaced_run_hands_back_its_files_for_removal(store, tmp_path: Path):
    run_id = running(store)
    result = tmp_path / f"{run_id}.x.output"
    store.set_outputs(run_id, [result])
    store.succeed(run_id, [result])
    store.update(run_id, collected=1)
    old_input, old_outputs = store.reserve(run_id, {"kind": "vcf"})
    assert old_input == f"/nowhere/{run_id}.input"
    assert workdir.run_files({"input": old_input, "outputs": old_outputs})[:2] == [
        old_input,
        str(result),
    ]


def test_the_work_directory_keeps_exactly_what_a_run_still_needs(store, tmp_path: Path):
    """A running run's input and the result it writes are kept, with the output's
    half-written leftover; once it succeeded its input goes and its result stays; once it
    failed everything goes."""
    day = tmp_path / "20260101"
    day.mkdir()
    run_id = running(store)
    input_path, output = day / f"{run_id}.a.input", day / f"{run_id}.b.output"
    leftover = day / f".{output.name}.123.0.partial"
    for f in (input_path, output, leftover, day / f"{run_id}.old.output"):
        f.write_text("x")
    store.update(run_id, input=input_path)
    store.set_outputs(run_id, [output])
    assert leftover.as_posix() in workdir.output_files_of(store.get(run_id))

    assert workdir.sweep(tmp_path, store, grace=0) == 2, "the leftover and a replaced output"
    assert input_path.exists() and output.exists()
    store.succeed(run_id, [output])
    assert workdir.sweep(tmp_path, store, grace=0) == 1 and not input_path.exists()
    assert output.exists(), "a succeeded run's result stays until it expires"
    store.update(run_id, status="failed")
    assert workdir.sweep(tmp_path, store, grace=0) == 1 and not output.exists()
