"""How a worker's job (a locate job, a frame video's decoding) fails: its transaction is rolled
back and the job is recorded `failed` with a reason the uploader can read."""

from __future__ import annotations

from sqlalchemy.orm import Session

from c3s.models import FrameJob, LocateJob, utcnow

Job = LocateJob | FrameJob


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
