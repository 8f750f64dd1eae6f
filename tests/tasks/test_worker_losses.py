"""A job whose worker was lost runs once more, and fails with a reason when its worker is lost
again; `worker_losses` counts the losses, not `attempts` (every start). Losses are noticed by the
sweep (a whole worker gone: the heartbeat stopped) or at the start of a redelivered message (a
pool process killed: Celery gave the message back). A task pausing for its retry after a
transient error holds its heartbeat ahead and is no loss. On PostgreSQL."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session

from c3s import frame_jobs
from c3s.frames import pending_files
from c3s.locate import jobs
from c3s.locate.jobs import sweep_stale_jobs
from c3s.models import FrameJob, LocateJob, Scene, User, utcnow
from c3s.tasks.heartbeat import hold
from c3s.tasks.jobs import final_status, pause_for_retry
from c3s.tasks.locate import RETRY_BACKOFF_MAX_S, locate_job, sweep_stale_jobs_task
from tests.helpers.factories import auth, make_scene, make_user, mp4_bytes

TIMEOUT_S = 60


@pytest.fixture()
def scene(client, session):
    _, owner = make_user(session, "scene_admin")
    return {**make_scene(client, owner), "token": owner}


def _running_job(session, scene, *, attempts=1, silent_s=90.0, **fields) -> LocateJob:
    """A running locate job whose last heartbeat was `silent_s` ago."""
    job = LocateJob(scene_id=scene["id"], method="qr", file_id=f"upload-{attempts}-{silent_s}", status="running",
                    attempts=attempts, started_at=utcnow() - timedelta(minutes=10),
                    heartbeat_at=utcnow() - timedelta(seconds=silent_s), **fields)
    session.add(job)
    session.commit()
    return job


def _sweep(session, model=LocateJob, now=None):
    sent = []
    result = sweep_stale_jobs(session, sent.append, queued_after_s=300, running_after_s=TIMEOUT_S, now=now,
                              model=model)
    session.expire_all()
    return result, sent


def _silence(session, model, job_id, seconds: float) -> None:
    """The job's worker stamped its heartbeat last `seconds` ago (then died)."""
    session.execute(text(f"UPDATE {model.__tablename__} SET heartbeat_at = now() - make_interval(secs => :s) "
                         "WHERE id = :id"), {"s": seconds, "id": job_id})
    session.commit()


def test_first_loss_requeues_the_job_and_the_second_fails_it(session, scene):
    # Many starts already (the task's retries after transient errors): not losses.
    job = _running_job(session, scene, attempts=5)
    result, sent = _sweep(session)
    assert (result.requeued, result.failed, result.resent, sent) == ([job.id], [], [], [job.id])
    lost_once = session.get(LocateJob, job.id)
    assert (lost_once.status, lost_once.worker_losses, lost_once.reason) == ("queued", 1, None)

    assert jobs.start(session, job.id).status == "running"  # the re-run starts, then its worker dies too
    _silence(session, LocateJob, job.id, TIMEOUT_S + 1)
    result, sent = _sweep(session)
    assert (result.requeued, result.failed, sent) == ([], [job.id], [])
    failed = session.get(LocateJob, job.id)
    assert (failed.status, failed.worker_losses, failed.attempts) == ("failed", 2, 6)
    assert failed.reason == (
        "the worker processing this upload stopped without finishing twice (most often the file needs "
        "more memory or time than a worker has); upload a smaller photo or a shorter clip, or ask the "
        "operators to check the workers")
    assert failed.finished_at is not None
    assert _sweep(session)[0].failed == []  # a failed job is left alone


def test_a_beating_job_and_a_queued_one_are_no_loss(session, scene):
    beating = _running_job(session, scene, silent_s=TIMEOUT_S - 5)
    lost_message = LocateJob(scene_id=scene["id"], method="qr", file_id="queued", status="queued",
                             created_at=utcnow() - timedelta(minutes=6))
    session.add(lost_message)
    session.commit()
    result, sent = _sweep(session)
    assert (result.resent, result.requeued, result.failed, sent) == ([lost_message.id], [], [], [lost_message.id])
    assert session.get(LocateJob, beating.id).status == "running"
    # A message lost again and again is sent again each time: nothing ran, nothing is counted.
    for _ in range(3):
        assert _sweep(session)[0].resent == [lost_message.id]
    assert session.get(LocateJob, lost_message.id).worker_losses == 0


def _unreachable_database_error(session, job_id):
    engine = create_engine("postgresql+psycopg2://postgres@127.0.0.1:1/none", connect_args={"connect_timeout": 2})
    try:
        with Session(engine) as away:
            return jobs.start(away, job_id)
    finally:
        engine.dispose()


def _transient_error(app, session, job_id: int, *, retries: int) -> None:
    """The locate task's run meets a real database error on its retry number `retries`."""
    database = app.extensions["c3s"].database
    locate_job.push_request(retries=retries)
    try:
        with pytest.raises(OperationalError):
            final_status(session, job_id, lambda: _unreachable_database_error(session, job_id),
                         jobs.fail_unexpectedly, (OperationalError,),
                         retrying=lambda job: pause_for_retry(locate_job, database, LocateJob, job,
                                                              within_s=RETRY_BACKOFF_MAX_S))
    finally:
        locate_job.pop_request()
    session.expire_all()


def test_a_transient_retry_is_no_lost_worker(app, session, scene):
    database = app.extensions["c3s"].database
    job = _running_job(session, scene, silent_s=5)
    # The task holds the heartbeat over its retry's delay (at most RETRY_BACKOFF_MAX_S, 120 s).
    _transient_error(app, session, job.id, retries=2)
    held = session.get(LocateJob, job.id)
    assert held.heartbeat_at > utcnow() + timedelta(seconds=110)
    # Swept long after the timeout would have run out: the job waits for its retry.
    later = utcnow() + timedelta(seconds=TIMEOUT_S + 100)
    result, _ = _sweep(session, now=later)
    assert (result.requeued, result.failed) == ([], [])
    # The retry arrives, as a message the broker gave back (a worker shut down holding it): no loss.
    assert jobs.start(session, job.id, redelivered=True).status == "running"
    assert session.get(LocateJob, job.id).worker_losses == 0
    # A retry that never comes (its worker lost holding it) is a loss once the hold and the timeout pass.
    hold(database, job.id, for_s=120, model=LocateJob)
    result, _ = _sweep(session, now=utcnow() + timedelta(seconds=120 + TIMEOUT_S + 1))
    assert result.requeued == [job.id]


def test_a_task_out_of_retries_fails_its_job_with_a_reason(app, session, scene):
    job = _running_job(session, scene, silent_s=5, attempts=9)
    _transient_error(app, session, job.id, retries=locate_job.max_retries)  # Celery will not retry
    failed = session.get(LocateJob, job.id)
    assert (failed.status, failed.worker_losses) == ("failed", 0)
    assert failed.reason == (
        "a service the workers need (the database or the file store) stayed unreachable while processing "
        "this upload; upload the file again in a few minutes, or ask the operators to check the services")


def test_a_redelivered_running_job_lost_its_pool_process(session, scene):
    # Celery gives the message of a killed pool process back at once: the next start counts it.
    job = _running_job(session, scene, silent_s=2)
    assert jobs.start(session, job.id, redelivered=True).status == "running"
    assert session.get(LocateJob, job.id).worker_losses == 1
    assert jobs.start(session, job.id, redelivered=True) is None  # lost again: not run a third time
    session.expire_all()
    failed = session.get(LocateJob, job.id)
    assert (failed.status, failed.worker_losses, failed.attempts) == ("failed", 2, 2)
    assert failed.reason.startswith("the worker processing this upload stopped without finishing twice")
    # A first delivery of a running job (a duplicate message while the job runs) is no loss.
    other = _running_job(session, scene, silent_s=2, attempts=3)
    assert jobs.start(session, other.id).status == "running"
    assert session.get(LocateJob, other.id).worker_losses == 0


def test_a_frame_job_lost_twice_fails_and_its_video_is_discarded(app, client, session, scene, tmp_path):
    store = app.extensions["c3s"].store
    user = session.get(User, session.get(Scene, scene["id"]).owner_id)
    with pending_files(store) as pending:
        job = frame_jobs.create_frame_job(session, pending, user, session.get(Scene, scene["id"]),
                                          data=mp4_bytes(tmp_path / "v.mp4"), content_type="video/mp4",
                                          filename="v.mp4", duration_ms=None)
        session.commit()
    session.execute(text("UPDATE frame_jobs SET status = 'running', attempts = 1, started_at = now(), "
                         "heartbeat_at = now() - interval '2 hours' WHERE id = :id"), {"id": job.id})
    session.commit()
    result, sent = _sweep(session, FrameJob)
    assert (result.requeued, sent) == ([job.id], [job.id])
    session.execute(text("UPDATE frame_jobs SET status = 'running', attempts = 2, "
                         "heartbeat_at = now() - interval '2 hours' WHERE id = :id"), {"id": job.id})
    session.commit()
    with app.app_context():  # the beat's task: fails the job and removes its video
        swept = sweep_stale_jobs_task()
    assert swept["frames"] == {"resent": [], "requeued": [], "failed": [job.id]}
    session.expire_all()
    failed = session.get(FrameJob, job.id)
    assert (failed.status, failed.worker_losses, failed.frame_ids) == ("failed", 2, [])
    assert failed.reason.startswith("the worker decoding this video stopped without finishing twice")
    assert "upload a shorter or smaller video" in failed.reason and "/" not in failed.reason
    assert not store.exists(job.file_id)
    body = client.get(f"/api/scenes/{scene['id']}/frame-jobs/{job.id}", headers=auth(scene["token"]))
    assert body.status_code == 200, body.json
    assert (body.json["status"], body.json["worker_losses"]) == ("failed", 2)
