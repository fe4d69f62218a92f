"""Our stand-in for AnyVar 1.0.0's ``tests/integration/restapi/conftest.py``: the same
fixtures; ``celery_context`` runs a real Celery worker process of ours (AnyVar's starts one in
the test process) on the Redis database the environment names."""

import os
import subprocess
import sys
import time

import pytest

from anyvar.storage.base import Storage
from tests.conftest import build_vrs_variant_from_dict


@pytest.fixture
def preloaded_alleles(storage: Storage, alleles: dict):
    storage.wipe_db()
    storage.add_objects([build_vrs_variant_from_dict(a["variation"]) for a in alleles.values()])
    return alleles


@pytest.fixture(scope="session")
def vcf_run_id() -> str:
    return "1234"


@pytest.fixture
def celery_context(vcf_run_id: str):
    from anyvar.queueing.celery_worker import celery_app

    worker = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "celery",
            "-A",
            "anyvar.queueing.celery_worker:celery_app",
            "worker",
            "--pool",
            "solo",
            "--loglevel",
            "warning",
        ],
        env=os.environ.copy(),
    )
    try:
        deadline = time.monotonic() + 60
        while not celery_app.control.ping(timeout=1):
            if worker.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("the Celery worker did not start")
        yield
    finally:
        worker.terminate()
        worker.wait(timeout=60)
