"""A running job's heartbeat: while a task works on a locate or frame job, a thread stamps its
`heartbeat_at` every `C3S_JOB_HEARTBEAT_S`. A worker killed whole (SIGKILL, power loss) stops
stamping, and once the stamp is older than `C3S_JOB_HEARTBEAT_TIMEOUT_S` the beat's sweep counts
the lost worker: the job is re-queued the first time, failed the second
(c3s.locate.jobs.sweep_stale_jobs). A task that retries a transient
error later holds the stamp ahead by the retry's longest delay (`hold`), so the pause until the
retry is not taken for a lost worker."""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta

from sqlalchemy import update
from sqlalchemy.exc import SQLAlchemyError

from c3s.db import Database
from c3s.models import FrameJob, LocateJob, utcnow

log = logging.getLogger(__name__)


def beat(database: Database, job_id: int, model: type[LocateJob | FrameJob] = LocateJob) -> bool:
    """Stamp one running job; False when it is no longer running (done, failed, re-queued)."""
    with database.transaction() as session:
        stamped = session.execute(update(model).where(
            model.id == job_id, model.status == "running").values(heartbeat_at=utcnow()))
        return stamped.rowcount == 1


def hold(database: Database, job_id: int, *, for_s: float, model: type[LocateJob | FrameJob]) -> None:
    """The job's task will retry within `for_s`: stamp the running job's heartbeat that far
    ahead. Best effort: when the database is what failed, the stamp fails too (logged)."""
    try:
        with database.transaction() as session:
            session.execute(update(model).where(model.id == job_id, model.status == "running")
                            .values(heartbeat_at=utcnow() + timedelta(seconds=for_s)))
    except SQLAlchemyError as error:
        log.warning("heartbeat of job %s not held for its retry: %s", job_id, error)


@contextmanager
def heartbeat(database: Database, job_id: int, *, interval_s: float,
              model: type[LocateJob | FrameJob] = LocateJob) -> Iterator[None]:
    """Stamp the job now and every `interval_s` until the block ends."""
    stop = threading.Event()

    def run() -> None:
        while True:
            try:
                if not beat(database, job_id, model):
                    return
            except SQLAlchemyError as error:  # the database briefly away: try at the next beat
                log.warning("heartbeat of job %s not recorded: %s", job_id, error)
            if stop.wait(interval_s):
                return

    thread = threading.Thread(target=run, name=f"heartbeat-{job_id}", daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join(timeout=interval_s + 5)


def job_heartbeat(database: Database, model: type[LocateJob | FrameJob] = LocateJob):
    """What a task passes as a job runner's `heartbeat`: ``job_id -> heartbeat(...)``, or None in
    process (the embedded default), where no worker can die apart from the API."""
    from c3s.services import config

    settings = config()
    if settings.is_embedded:
        return None
    return lambda job: heartbeat(database, job, interval_s=settings.job_heartbeat_s, model=model)

