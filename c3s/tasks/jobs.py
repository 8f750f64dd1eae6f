"""How a task runs a worker's job: to its final status, recording on the job why it failed when
the error is not one the task retries."""

from __future__ import annotations

import logging
from collections.abc import Callable

from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session

from c3s import job_failures
from c3s.db import Database
from c3s.models import FrameJob, LocateJob
from c3s.tasks.heartbeat import hold

log = logging.getLogger(__name__)


def final_status(session: Session, job_id: int, run: Callable[[], LocateJob | FrameJob | None],
                 fail_unexpectedly: Callable[[Session, int, Exception], None],
                 transient: tuple[type[BaseException], ...],
                 retrying: Callable[[int], None] | None = None) -> str:
    """Run the job; returns its final status ("missing" when there is no such job). An error in
    `transient` is raised for the task to retry, once ``retrying(job_id)`` is told (it holds the
    job's heartbeat over the pause: a retry is not a lost worker); any other is recorded on the
    job first."""
    try:
        job = run()
    except transient:
        if retrying is not None:
            retrying(job_id)
        raise
    except Exception as error:
        # Not a known transient failure: record why on the job, then fail loudly.
        fail_unexpectedly(session, job_id, error)
        raise
    return job.status if job is not None else "missing"


def redelivered(task) -> bool:
    """Whether the broker gave the task's message back (its worker was lost mid-run, or shut
    down holding it) rather than delivering it for the first time."""
    return bool((task.request.delivery_info or {}).get("redelivered"))


def pause_for_retry(task, database: Database, model: type[LocateJob | FrameJob], job_id: int, *,
                    within_s: float) -> None:
    """What a job's task does before Celery retries a transient error (within `within_s`): hold
    the job's heartbeat over the pause, so the sweep does not take it for a lost worker. With
    the task's retries used up there is no retry: the job fails with the reason instead (best
    effort: the database may be what is away; the sweep then finds the job)."""
    if task.max_retries is None or task.request.retries < task.max_retries:
        hold(database, job_id, for_s=within_s, model=model)
        return
    try:
        with database.session() as session:
            if job_failures.unfinished(session, model, job_id) is not None:
                job_failures.fail(session, model, job_id, job_failures.services_away_reason(model))
    except SQLAlchemyError as error:
        log.warning("job %s not failed after its last retry: %s", job_id, error)
