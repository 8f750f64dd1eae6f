"""Locate tasks: take a job id, re-read the job and its file, and run it."""

from __future__ import annotations

from celery import shared_task
from pymongo.errors import PyMongoError
from sqlalchemy.exc import OperationalError

from c3s.locate.jobs import fail_unexpectedly, run_job
from c3s.web.context import config, services

# Known transient failures: the database or the file store briefly unreachable.
TRANSIENT = (OperationalError, PyMongoError, ConnectionError, TimeoutError)


@shared_task(name="c3s.tasks.locate.locate_job", bind=True, autoretry_for=TRANSIENT,
             retry_backoff=2, retry_backoff_max=120, retry_jitter=True, max_retries=8)
def locate_job(self, job_id: int) -> str:
    """Locate the pixels seen in one upload; returns the job's final status."""
    with services().database.session() as session:
        try:
            job = run_job(session, services().store, job_id, max_pixels=config().max_image_pixels)
        except TRANSIENT:
            raise
        except Exception as error:
            # Not a known transient failure: record why on the job, then fail loudly.
            fail_unexpectedly(session, job_id, error)
            raise
        return job.status if job is not None else "missing"
