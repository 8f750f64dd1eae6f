"""How a task runs a worker's job: to its final status, recording on the job why it failed when
the error is not one the task retries."""

from __future__ import annotations

from collections.abc import Callable

from sqlalchemy.orm import Session

from c3s.models import FrameJob, LocateJob


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
