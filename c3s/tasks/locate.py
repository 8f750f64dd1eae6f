"""Locate tasks: take a job id, re-read the job and its file, and run it."""

from __future__ import annotations

from celery import shared_task
from pymongo.errors import PyMongoError
from sqlalchemy.exc import OperationalError

from c3s.locate.jobs import fail_unexpectedly, run_job
from c3s.services import config, services
from c3s.tasks.heartbeat import heartbeat

# Known transient failures: the database or the file store briefly unreachable.
TRANSIENT = (OperationalError, PyMongoError, ConnectionError, TimeoutError)


@shared_task(name="c3s.tasks.locate.locate_job", bind=True, autoretry_for=TRANSIENT,
             retry_backoff=2, retry_backoff_max=120, retry_jitter=True, max_retries=8)
def locate_job(self, job_id: int) -> str:
    """Locate the pixels seen in one upload; returns the job's final status."""
    database = services().database
    settings = config()
    # In process (the embedded default) no worker can die apart from the API: no heartbeat.
    beating = None if settings.is_embedded else (
        lambda job: heartbeat(database, job, interval_s=settings.job_heartbeat_s))
    with database.session() as session:
        try:
            job = run_job(session, services().store, job_id, max_pixels=settings.max_image_pixels,
                          request_build=services().request_build, heartbeat=beating)
        except TRANSIENT:
            raise
        except Exception as error:
            # Not a known transient failure: record why on the job, then fail loudly.
            fail_unexpectedly(session, job_id, error)
            raise
        return job.status if job is not None else "missing"


# A queued job whose message has not started within this time is presumed lost (a broker
# restart without persistence, say); a running job whose heartbeat stopped lost its worker.
STALE_QUEUED_S = 300
MAX_ATTEMPTS = 3


@shared_task(name="c3s.tasks.locate.sweep_stale_jobs")
def sweep_stale_jobs_task() -> dict:
    """Re-send lost locate jobs and fail those that keep losing their worker (runs on a beat)."""
    from c3s.locate.jobs import sweep_stale_jobs

    send = services().send
    with services().database.session() as session:
        result = sweep_stale_jobs(session, lambda job_id: send("c3s.tasks.locate.locate_job", job_id),
                                  queued_after_s=STALE_QUEUED_S,
                                  running_after_s=config().job_heartbeat_timeout_s,
                                  max_attempts=MAX_ATTEMPTS)
    return {"requeued": result.requeued, "failed": result.failed}
