"""The state of asynchronous runs, kept in Redis (the result backend) under ``anyvar:run:<id>``.

A run is recorded before its task is published, so a poll never sees an unknown id for a run
that exists, and the id is reserved atomically, so two submissions cannot both take it. Only
paths and small metadata live here: files stay in the shared work directory.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import redis

from anyvar.queueing import ACTIVE, CANCELLED

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
# Returns {1, old input, old output} (the caller removes a replaced run's files) or {0, status}.
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
local old = redis.call('HMGET', key, 'input', 'output')
redis.call('DEL', key)
redis.call('HSET', key, unpack(ARGV, 4))
redis.call('EXPIRE', key, tonumber(ARGV[1]))
redis.call('ZADD', KEYS[2], tonumber(ARGV[2]), ARGV[3])
return {1, old[1] or '', old[2] or ''}
"""

# Moves a run to `to` only from one of the listed states; returns the state it found.
_TRANSITION = """
local status = redis.call('HGET', KEYS[1], 'status')
if not status then return '' end
for i = 3, #ARGV do
  if ARGV[i] == status then
    redis.call('HSET', KEYS[1], 'status', ARGV[1])
    if tonumber(ARGV[2]) > 0 then redis.call('EXPIRE', KEYS[1], tonumber(ARGV[2])) end
    return status
  end
end
return status
"""


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

    def transition(self, run_id: str, to: str, allowed: tuple[str, ...]) -> str:
        """Sets ``to`` if the run is in one of ``allowed``; returns the state it was in."""
        ttl = self.result_expires if to not in ACTIVE else 0
        return self.client.eval(_TRANSITION, 1, self.key(run_id), to, ttl, *allowed)

    def update(self, run_id: str, **fields: Any) -> None:
        self.client.hset(
            self.key(run_id), mapping={k: "" if v is None else str(v) for k, v in fields.items()}
        )

    def finish(self, run_id: str, status: str, **fields: Any) -> None:
        """Records the outcome (any outcome ends the run's phases); the record then lives
        ``result_expires`` seconds."""
        pipe = self.client.pipeline()
        pipe.hset(
            self.key(run_id),
            mapping={
                "status": status,
                "phase": "done",
                "finished_at": f"{time.time():.3f}",
                **{k: "" if v is None else str(v) for k, v in fields.items()},
            },
        )
        pipe.expire(self.key(run_id), self.result_expires)
        pipe.execute()

    def finish_cancelled(self, run_id: str) -> None:
        """Records that the run was cancelled."""
        self.finish(run_id, "cancelled", **CANCELLED)

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
