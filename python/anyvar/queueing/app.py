"""The Celery app and what the API needs to publish runs: the app configured from the
environment (AnyVar's ``CELERY_*`` variables and defaults), the run store, and ``publish``,
which names tasks by the names in ``anyvar.queueing``. The API imports this module only; the
tasks are in ``tasks`` and ``fanout``, and the worker's entry point is ``celery_worker``."""

from __future__ import annotations

from celery import Celery

from anyvar.config import cannot_start, get_settings
from anyvar.exceptions import SettingsError
from anyvar.queueing import CHUNK_TASK, JOIN_TASK
from anyvar.queueing.runs import RunStore

try:
    settings = get_settings()
except SettingsError as e:  # at import: `celery -A …celery_worker:celery_app worker`
    cannot_start(e)

celery_app = Celery(
    "anyvar", broker=settings.celery_broker_url, backend=settings.celery_backend_url
)
celery_app.conf.update(
    task_default_queue=settings.celery_task_default_queue,
    event_queue_prefix=settings.celery_event_queue_prefix,
    timezone=settings.celery_timezone,
    result_expires=settings.celery_result_expires,
    broker_transport_options={
        "visibility_timeout": settings.celery_broker_transport_options_visibility_timeout
    },
    task_acks_late=settings.celery_task_acks_late,
    task_reject_on_worker_lost=settings.celery_task_reject_on_worker_lost,
    worker_prefetch_multiplier=settings.celery_worker_prefetch_multiplier,
    task_time_limit=settings.celery_task_time_limit,
    # The key Celery reads (AnyVar set `task_soft_time_limit` under another name, so it was
    # silently ignored there). Celery's prefork pool arms the hard timer only when the soft one
    # fires, so a soft limit at or above the hard one would disable the hard limit: drop it.
    task_soft_time_limit=(
        settings.celery_soft_time_limit
        if settings.celery_soft_time_limit < settings.celery_task_time_limit
        else None
    ),
    worker_send_task_events=settings.celery_worker_send_task_events,
    task_track_started=True,
    broker_connection_retry_on_startup=True,
    task_serializer="json",
    result_serializer="json",
    accept_content=["json"],
)


def run_store() -> RunStore:
    return RunStore.from_url(
        settings.celery_backend_url,
        result_expires=settings.celery_result_expires,
        active_ttl=settings.celery_result_expires
        + settings.celery_task_time_limit
        + settings.celery_broker_transport_options_visibility_timeout,
    )


def publish(task_name: str, run_id: str, kwargs: dict, ranges: list) -> None:
    """Sends run ``run_id``: one task, or a chord of chunk tasks and their join when the input
    was cut into ``ranges``. The task (or the join) has the run's id."""
    if not ranges:
        celery_app.send_task(task_name, kwargs=kwargs, task_id=run_id)
        return
    from celery import chord

    chunks = [
        celery_app.signature(CHUNK_TASK, kwargs={**kwargs, "index": i, "range": list(r)}).set(
            task_id=f"{run_id}-chunk-{i}"
        )
        for i, r in enumerate(ranges)
    ]
    join = celery_app.signature(JOIN_TASK, kwargs=kwargs).set(task_id=run_id)
    chord(chunks)(join)
