"""What keeps the event loop answering under load (a liveness probe, ``/service-info``, must
not wait behind busy requests): two thread pools told apart by what their work does with the
GIL, and garbage collection that does not stop the loop for long.

Work that holds the GIL for much of its length (validating and answering definition batches,
lookups, categorical variants) runs on AnyIO's default pool (``run_in_threadpool``), sized to
twice the cores: more threads do not run sooner, they queue for the GIL, and the event loop
queues behind them. Whole-file work in the core (annotating and ingesting a VCF) releases the
GIL but keeps cores busy for minutes: it has a pool of its own, as large as the cores, so that
uploads queue for cores rather than share them with the loop, and a lookup never waits for a
thread behind them.

Measured with ``benchmarks/bench_load.py`` (50 clients, 2 cores), ``GET /service-info`` p99:
365 ms with AnyIO's one pool of 40 threads; 150-220 ms with these pools, where full
collections of 30,000-120,000 objects took 100-250 ms each; 95 ms with the collector below,
and 15 % more requests served than with the one pool."""

from __future__ import annotations

import functools
import gc
from collections.abc import Callable
from typing import Any, TypeVar

import anyio
import anyio.to_thread
from fastapi import FastAPI, Request

from anyvar.config import available_cores

T = TypeVar("T")

# Objects allocated between young collections (CPython's default is 700): a request's objects
# mostly die before one, instead of being promoted towards the full collections that scan
# every object still alive.
YOUNG_COLLECTION_EVERY = 10_000


def install(app: FastAPI) -> None:
    """Sizes both pools and sets the collector; called at the end of the lifespan's start
    (a limiter belongs to the running loop)."""
    cores = available_cores()
    anyio.to_thread.current_default_thread_limiter().total_tokens = max(4, 2 * cores)
    app.state.file_work = anyio.CapacityLimiter(cores)
    _, middle, old = gc.get_threshold()
    gc.set_threshold(YOUNG_COLLECTION_EVERY, middle, old)
    # What exists now (modules, models, the app) lives as long as the process: full
    # collections need not scan it again and again (collected first, so no garbage is kept).
    gc.collect()
    gc.freeze()


async def file_work(request: Request, fn: Callable[..., T], /, *args: Any, **kwargs: Any) -> T:
    """``fn(*args, **kwargs)`` on the whole-file pool."""
    return await anyio.to_thread.run_sync(
        functools.partial(fn, *args, **kwargs), limiter=request.app.state.file_work
    )
