"""How a worker's job (a locate job, a frame video's decoding) fails: its transaction is rolled
back and the job is recorded `failed` with a reason the uploader can read. And how a job whose
worker was lost is counted: run once more after the first loss, failed on the second."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy.orm import Session

from c3s.models import FrameJob, LocateJob, utcnow

Job = LocateJob | FrameJob

# A job whose worker was lost runs once more; lost again, the job most likely kills its worker
# (a file that needs more memory or time than a worker has) and fails instead of a third run.
LOST_WORKER_RERUNS = 1

# What a job lost its worker doing, and what its uploader can do about it.
_LOST_WHILE = {
    "locate_jobs": ("processing this upload", "upload a smaller photo or a shorter clip"),
    "frame_jobs": ("decoding this video", "upload a shorter or smaller video"),
}


def fail(session: Session, model: type[Job], job_id: int, reason: str) -> Job:
    """Roll back what the job wrote and record it `failed` with `reason`."""
    session.rollback()
    job = session.get(model, job_id)
    job.status, job.reason, job.finished_at = "failed", reason, utcnow()
    session.commit()
    return job


def unexpected_reason(error: Exception, doing: str) -> str:
    """The reason of a job stopped by an error nobody foresaw: its kind, not its details."""
    return (f"internal error while {doing} ({type(error).__name__}); the operators have the "
            "details in the worker log")


def unfinished(session: Session, model: type[Job], job_id: int) -> Job | None:
    """The job after a rollback, unless it is gone or already `done` or `failed`."""
    session.rollback()
    job = session.get(model, job_id)
    return job if job is not None and job.status not in ("done", "failed") else None


def lost_worker_reason(model: type[Job], losses: int) -> str:
    doing, remedy = _LOST_WHILE[model.__tablename__]
    times = "twice" if losses == 2 else f"{losses} times"
    return (f"the worker {doing} stopped without finishing {times} (most often the file needs more "
            f"memory or time than a worker has); {remedy}, or ask the operators to check the workers")


def services_away_reason(model: type[Job]) -> str:
    """The reason of a job whose task used up its retries of a transient error."""
    doing, _ = _LOST_WHILE[model.__tablename__]
    return (f"a service the workers need (the database or the file store) stayed unreachable while {doing}; "
            "upload the file again in a few minutes, or ask the operators to check the services")


def worker_lost(job: Job, now: datetime) -> bool:
    """Count one loss of the job's worker (the caller commits). Past `LOST_WORKER_RERUNS` the
    job is failed with the reason and True is returned; otherwise it may run once more."""
    job.worker_losses += 1
    if job.worker_losses <= LOST_WORKER_RERUNS:
        return False
    job.status, job.reason, job.finished_at = "failed", lost_worker_reason(type(job), job.worker_losses), now
    return True


def lost_on_redelivery(job: Job, redelivered: bool, now: datetime) -> bool:
    """A job starting from a message the broker gave back (`redelivered`) while the job is still
    `running` lost its worker's pool process mid-run (killed: out of memory, say), which Celery
    answers by re-queueing the message at once, before any heartbeat goes stale. That loss is
    counted as the sweep counts a whole worker's; True when the job failed of it. A job whose
    heartbeat is held ahead is waiting for its task's retry after a transient error (a worker
    shut down meanwhile gives that message back too): no loss."""
    if not redelivered or job.status != "running":
        return False
    if job.heartbeat_at is not None and _aware(job.heartbeat_at) > now:
        return False
    return worker_lost(job, now)


def _aware(moment: datetime) -> datetime:
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)  # SQLite drops the zone
