"""How a task runs a worker's job: to its final status, recording on the job why it failed when
the error is not one the task retries."""

from __future__ import annotations

from collections.abc import Callable

from sqlalchemy.orm import Session

from c3s.models import FrameJob, LocateJob


def final_status(session: Session, job_id: int, run: Callable[[], LocateJob | FrameJob | None],
                 fail_unexpectedly: Callable[[Session, int, Exception], None],
                 transient: tuple[type[BaseException], ...]) -> str:
    """Run the job; returns its final status ("missing" when there is no such job). An error in
    `transient` is raised for the task to retry; any other is recorded on the job first."""
    try:
        job = run()
    except transient:
        raise
    except Exception as error:
        # Not a known transient failure: record why on the job, then fail loudly.
        fail_unexpectedly(session, job_id, error)
        raise
    return job.status if job is not None else "missing"
