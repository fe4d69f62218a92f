"""The lifecycle of asynchronous runs, kept in Redis (the result backend) under
``anyvar:run:<id>``: every change of a run's state is one of the transitions here, atomic in
Redis, used by workers and the API alike.

    reserve -> queued --start--> running --end(succeeded | failed)--> succeeded | failed
               queued --cancel--> cancelled
                        running --cancel--> cancelling --end(any)--> cancelled

A run is recorded before its task is published, so a poll never sees an unknown id for a run
that exists, and the id is reserved atomically, so two submissions cannot both take it. A
finished run's result is ``outputs``, the files it is made of in order (one, or the parts of a
run spread over workers). Only paths and small metadata live here: files stay in the shared
work directory.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from anyvar.exceptions import StorageError, VcfFormatError
from anyvar.queueing import ACTIVE, CANCELLED

if TYPE_CHECKING:
    import redis

FINISHED = ("succeeded", "failed")
"""Runs whose result (or failure) is kept until it is collected."""
INDEX = "anyvar:runs"
"""Sorted set of run ids by submission time, for listing runs (members of expired runs are
dropped when a listing finds them gone)."""
# What AnyVar (Celery) calls each state in its "run id in use" message.
CELERY_NAMES = {
    "queued": "PENDING",
    "running": "STARTED",
    "cancelling": "STARTED",
    "succeeded": "SUCCESS",
    "failed": "FAILURE",
}

# Takes the id unless a run holds it: active, or finished and not yet collected, and lists it
# in the index. KEYS: record, index; ARGV: ttl, submission time, run id, field/value pairs.
# Returns {1, old input, old outputs} (the caller removes a replaced run's files) or {0, status}.
_RESERVE = """
local key = KEYS[1]
local status = redis.call('HGET', key, 'status')
if status then
  local collected = redis.call('HGET', key, 'collected')
  if status == 'queued' or status == 'running' or status == 'cancelling' then
    return {0, status}
  end
  if (status == 'succeeded' or status == 'failed') and collected ~= '1' then
    return {0, status}
  end
end
local old = redis.call('HMGET', key, 'input', 'outputs')
redis.call('DEL', key)
redis.call('HSET', key, unpack(ARGV, 4))
redis.call('EXPIRE', key, tonumber(ARGV[1]))
redis.call('ZADD', KEYS[2], tonumber(ARGV[2]), ARGV[3])
return {1, old[1] or '', old[2] or ''}
"""

# A worker takes a run: running from queued (or from running: delivered again after its worker
# was lost), unless the task is of another run that had this id (cancelled while queued, then
# submitted again: its input is not the record's). KEYS: record; ARGV: the task's input.
# Returns the state it found ('' for none, 'replaced' for another run's task).
_START = """
local status = redis.call('HGET', KEYS[1], 'status')
if not status then return '' end
local input = redis.call('HGET', KEYS[1], 'input')
if input and input ~= '' and input ~= ARGV[1] then return 'replaced' end
if status == 'queued' or status == 'running' then
  redis.call('HSET', KEYS[1], 'status', 'running')
end
return status
"""

# Ends an active run: with its outcome from queued or running, as cancelled from cancelling
# (the client's cancel wins); an ended run stays as it is. KEYS: record; ARGV: outcome, ttl,
# time, the cancelled error and code, field/value pairs. Returns the state it recorded ('' for
# none).
_END = """
local status = redis.call('HGET', KEYS[1], 'status')
local ended
if status == 'queued' or status == 'running' then
  ended = ARGV[1]
  redis.call('HSET', KEYS[1], 'status', ended, 'phase', 'done', 'finished_at', ARGV[3],
             unpack(ARGV, 6))
elseif status == 'cancelling' then
  ended = 'cancelled'
  redis.call('HSET', KEYS[1], 'status', ended, 'phase', 'done', 'finished_at', ARGV[3],
             'error', ARGV[4], 'error_code', ARGV[5])
else
  return ''
end
redis.call('EXPIRE', KEYS[1], tonumber(ARGV[2]))
return ended
"""

# A client's cancel: a queued run ends cancelled, a running one is being cancelled (its worker
# ends it), a finished one is deleted (collected: its id may be used again at once). KEYS:
# record; ARGV: ttl, time, the cancelled error and code. Returns the state it found.
_CANCEL = """
local status = redis.call('HGET', KEYS[1], 'status')
if status == 'queued' then
  redis.call('HSET', KEYS[1], 'status', 'cancelled', 'phase', 'done', 'finished_at', ARGV[2],
             'error', ARGV[3], 'error_code', ARGV[4])
  redis.call('EXPIRE', KEYS[1], tonumber(ARGV[1]))
elseif status == 'running' then
  redis.call('HSET', KEYS[1], 'status', 'cancelling')
elseif status == 'succeeded' or status == 'failed' then
  redis.call('HSET', KEYS[1], 'deleted', '1', 'collected', '1')
end
return status or ''
"""


def failure_of(e: BaseException) -> dict[str, Any]:
    """What the record of a run that ``e`` ended says: the error, its code, and the line of
    bad input. The codes: INVALID_VCF, STORAGE_ERROR (the database went away mid-run: the sync
    path's 503 code and words, so a client can tell it from a fault of the run, and
    resubmitting completes it), TIME_LIMIT_EXCEEDED and WORKER_LOST_ERROR (Celery's, where it
    recorded the failure for us), RUN_FAILURE for the rest (and RUN_CANCELLED, ``CANCELLED``)."""
    if isinstance(e, VcfFormatError):
        return {"error": f"Invalid VCF: {e}", "error_code": "INVALID_VCF", "line": e.line}
    if isinstance(e, StorageError):
        return {"error": f"Storage unavailable: {e}", "error_code": "STORAGE_ERROR"}
    code = {
        "TimeLimitExceeded": "TIME_LIMIT_EXCEEDED",
        "SoftTimeLimitExceeded": "TIME_LIMIT_EXCEEDED",
        "WorkerLostError": "WORKER_LOST_ERROR",
    }.get(type(e).__name__, "RUN_FAILURE")
    return {"error": str(e) or type(e).__name__, "error_code": code}


def time_limit_failure(seconds: float) -> dict[str, Any]:
    """A run stopped at its soft time limit (``CELERY_SOFT_TIME_LIMIT``)."""
    return {
        "error": f"Run exceeded the soft time limit of {seconds} s",
        "error_code": "TIME_LIMIT_EXCEEDED",
    }


def outputs(run: dict[str, str]) -> list[str]:
    """The files a run's result is made of, in order (none before it has one)."""
    return json.loads(run.get("outputs") or "[]")


def _cancelled() -> tuple[str, str]:
    return CANCELLED["error"], CANCELLED["error_code"]


class RunIdInUse(Exception):
    def __init__(self, run_id: str, status: str) -> None:
        super().__init__(
            f"An existing run with id {run_id} is {CELERY_NAMES.get(status, status.upper())}. "
            "Fetch the completed run result before submitting with the same run_id."
        )


@dataclass
class RunStore:
    client: redis.Redis
    result_expires: int
    active_ttl: int
    """How long an active run's record lives: longer than any run can take."""

    @classmethod
    def from_url(cls, url: str, result_expires: int, active_ttl: int) -> RunStore:
        # Imported here: the API imports the lifecycle without the queueing extra installed.
        import redis

        return cls(redis.Redis.from_url(url, decode_responses=True), result_expires, active_ttl)

    @staticmethod
    def key(run_id: str) -> str:
        return f"anyvar:run:{run_id}"

    def get(self, run_id: str) -> dict[str, str] | None:
        return self.client.hgetall(self.key(run_id)) or None

    def check_available(self, run_id: str) -> None:
        """Cheap early check (the reservation itself is atomic)."""
        run = self.get(run_id)
        if run and (
            run["status"] in ACTIVE or (run["status"] in FINISHED and run.get("collected") != "1")
        ):
            raise RunIdInUse(run_id, run["status"])

    def reserve(self, run_id: str, fields: dict[str, Any]) -> tuple[str, str]:
        """Records a queued run; returns the files of the run it replaced (or empty strings)."""
        now = time.time()
        record = {"status": "queued", "phase": "queued", "submitted_at": f"{now:.3f}", **fields}
        args: list[Any] = [self.active_ttl, f"{now:.3f}", run_id]
        for k, v in record.items():
            args += [k, "" if v is None else str(v)]
        result = self.client.eval(_RESERVE, 2, self.key(run_id), INDEX, *args)
        if result[0] == 0:
            raise RunIdInUse(run_id, result[1])
        return result[1], result[2]

    def start(self, run_id: str, input: str) -> str:
        """A worker takes the run whose input is ``input`` (see ``_START``); returns the state
        it found, or ``replaced`` when the id now names another run."""
        return self.client.eval(_START, 1, self.key(run_id), str(input))

    def update(self, run_id: str, **fields: Any) -> None:
        self.client.hset(
            self.key(run_id), mapping={k: "" if v is None else str(v) for k, v in fields.items()}
        )

    def set_outputs(self, run_id: str, files: list[str]) -> None:
        """The files the run's result will be, recorded before they are written, so that
        whoever ends the run (or replaces it, or a sweep) finds and removes them."""
        self.update(run_id, outputs=json.dumps([str(f) for f in files]))

    def end(self, run_id: str, outcome: str, **fields: Any) -> str:
        """Ends the run with ``outcome`` (succeeded, failed or cancelled) and ``fields`` (a
        failure's error and code) unless a client cancelled it meanwhile (it ends cancelled)
        or it ended already (nothing changes); returns the state recorded, '' for none. The
        record then lives ``result_expires`` seconds."""
        args: list[Any] = [outcome, self.result_expires, f"{time.time():.3f}", *_cancelled()]
        for k, v in fields.items():
            args += [k, "" if v is None else str(v)]
        return self.client.eval(_END, 1, self.key(run_id), *args)

    def succeed(self, run_id: str, files: list[str]) -> str:
        """Ends the run with its result, the ``files`` it is made of in order."""
        return self.end(run_id, "succeeded", outputs=json.dumps([str(f) for f in files]))

    def fail(self, run_id: str, **failure: Any) -> str:
        """Ends the run as failed with ``failure`` (error, error_code, line); the first
        failure of a run spread over workers is the one recorded."""
        return self.end(run_id, "failed", **failure)

    def cancel(self, run_id: str) -> str:
        """A client's cancel (see ``_CANCEL``); returns the state it found, '' for none."""
        args = [self.result_expires, f"{time.time():.3f}", *_cancelled()]
        return self.client.eval(_CANCEL, 1, self.key(run_id), *args)

    def status(self, run_id: str) -> str | None:
        return self.client.hget(self.key(run_id), "status")

    def list(
        self, states: tuple[str, ...] | None, limit: int, after: tuple[float, str] | None
    ) -> tuple[list[tuple[str, dict[str, str]]], tuple[float, str] | None]:
        """Runs newest first (only those in ``states``), at most ``limit``, after the run at
        position ``after`` (submission time, id); returns them and the position of the last one
        when more may follow. Index entries whose record expired are dropped on the way."""
        found: list[tuple[float, str, dict[str, str]]] = []
        batch = max(limit + 1, 100)
        while len(found) <= limit:
            top = "+inf" if after is None else repr(after[0])
            raw = self.client.zrevrangebyscore(
                INDEX, top, "-inf", start=0, num=batch, withscores=True
            )
            # Entries of the same time as ``after`` come in descending id order: those up to
            # ``after`` itself were on earlier pages.
            entries = [(m, t) for m, t in raw if after is None or t < after[0] or m < after[1]]
            if not entries:
                break
            pipe = self.client.pipeline()
            for member, _ in entries:
                pipe.hgetall(self.key(member))
            gone = []
            for (member, score), record in zip(entries, pipe.execute(), strict=True):
                if not record:
                    gone.append(member)
                elif states is None or record.get("status") in states:
                    found.append((score, member, record))
            if gone:
                self.client.zrem(INDEX, *gone)
            after = (entries[-1][1], entries[-1][0])
            if len(raw) < batch:
                break  # the index is exhausted
        page = [(member, record) for _, member, record in found[:limit]]
        if len(found) > limit:
            score, member, _ = found[limit - 1]
            return page, (score, member)
        return page, None
