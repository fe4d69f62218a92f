"""Asynchronous runs: the Celery app (``celery_worker``), run state in Redis (``runs``) and the
shared work directory (``workdir``)."""
