"""Faults a calibration rush must survive, with real workers on the real Redis: a worker process
killed mid-task, the same task delivered twice, and Redis restarted with jobs in flight."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path

import pytest
import redis
from sqlalchemy import func, select, text

from c3s.locate.jobs import sweep_stale_jobs
from c3s.models import LocateJob, Observation, Pixel
from c3s.tasks import send
from tests.helpers.factories import (
    auth,
    big_crowd_stand,
    make_scene,
    make_user,
    multipart,
)
from tests.helpers.services import BROKER_KEY_PREFIX, BROKER_URL, REDIS_URL
from tests.helpers.workers import (
    broker_app_for,
    clear_broker,
    start_worker,
    stop_worker,
    worker_env,
)

pytestmark = pytest.mark.slow
REPO = Path(__file__).resolve().parents[2]


# A broker database of these tests' own, so the session's worker never takes their jobs.
FAULT_BROKER_URL = BROKER_URL.rsplit("/", 1)[0] + "/13"


@pytest.fixture()
def fault_app(clean_db, pg_url, redis_client, shared_instance):
    clear_broker(redis.Redis.from_url(FAULT_BROKER_URL))
    app = broker_app_for(pg_url, shared_instance, FAULT_BROKER_URL)
    yield app
    app.extensions["c3s"].database.dispose()


@pytest.fixture()
def own_worker(pg_url, shared_instance, tmp_path):
    """Start workers of this test's own on the fault broker; all are stopped at the end."""
    env = worker_env(pg_url, shared_instance, FAULT_BROKER_URL)
    workers = []

    def start():
        process = start_worker(env, tmp_path / f"worker{len(workers)}.log")
        workers.append(process)
        return process

    yield start
    for process in workers:
        stop_worker(process)


@pytest.fixture()
def big_stand(fault_app, session):
    """A 12 MP crowd photo of 192 phones (slow enough to be caught mid-task) and its scene."""
    client = fault_app.test_client()
    observer, data = big_crowd_stand(client, session)
    return client, observer, data


def _upload(client, token, data) -> int:
    response = client.post("/api/scenes/1/jobs", headers=auth(token), **multipart(file=(data, "crowd.jpg")))
    assert response.status_code == 202, response.json
    return response.json["id"]


def _wait(session, job_id, statuses, timeout_s=120) -> LocateJob:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        session.expire_all()
        job = session.get(LocateJob, job_id)
        if job.status in statuses:
            return job
        time.sleep(0.02)
    raise AssertionError(f"job {job_id} is {job.status}, not {statuses}, after {timeout_s} s")


def _state(session) -> tuple:
    session.expire_all()
    pixels = session.execute(select(Pixel.number, Pixel.x, Pixel.y, Pixel.status).order_by(Pixel.number)).all()
    return session.scalar(select(func.count()).select_from(Observation)), tuple(pixels)


def _children(pid: int) -> list[int]:
    path = Path(f"/proc/{pid}/task/{pid}/children")
    return [int(p) for p in path.read_text().split()] if path.exists() else []


def _locate_tasks_finished(log_path: Path) -> int:
    """How many locate tasks the worker logged as finished (Celery logs each at INFO)."""
    lines = log_path.read_text(errors="replace").splitlines()
    return sum(1 for line in lines if "Task c3s.tasks.locate.locate_job[" in line and " succeeded in " in line)


def _wait_for(condition, what: str, timeout_s: float = 60) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.05)


def test_killed_worker_process_mid_task_completes_the_job_exactly_once(own_worker, big_stand, session, tmp_path):
    worker = own_worker()
    client, observer, data = big_stand
    job_id = _upload(client, observer, data)
    _wait(session, job_id, ("running",))
    children = _children(worker.pid)
    assert children, "the worker has no pool process"
    for child in children:
        os.kill(child, signal.SIGKILL)
    job = _wait(session, job_id, ("done", "failed"))
    assert job.status == "done" and job.attempts == 2, (job.status, job.reason, job.attempts)
    assert job.worker_losses == 1  # Celery gave the message back at once: counted on the re-run's start
    disturbed = _state(session)

    # The same job run undisturbed from scratch leaves exactly the same state.
    session.execute(text("DELETE FROM observations"))
    session.execute(text("UPDATE pixels SET x = NULL, y = NULL, sigma = NULL, located_by = NULL, "
                         "located_at = NULL, confidence = NULL, status = 'joined'"))
    session.execute(text("UPDATE locate_jobs SET status = 'queued', attempts = 0"))
    session.commit()
    with client.application.app_context():
        send("c3s.tasks.locate.locate_job", job_id)
    assert _wait(session, job_id, ("done", "failed")).status == "done"
    assert _state(session) == disturbed

    # And delivered twice more (a duplicated message): both are taken and finish as no-ops on the
    # done job, which keeps its state and its attempts.
    log = tmp_path / "worker0.log"
    finished = _locate_tasks_finished(log)
    with client.application.app_context():
        send("c3s.tasks.locate.locate_job", job_id)
        send("c3s.tasks.locate.locate_job", job_id)
    _wait_for(lambda: _locate_tasks_finished(log) >= finished + 2, "the two duplicate deliveries to finish")
    assert _state(session) == disturbed
    session.expire_all()
    assert session.get(LocateJob, job_id).attempts == 1


def test_a_job_whose_pool_process_is_killed_twice_fails_with_a_reason(own_worker, big_stand, session):
    # As the kernel's out-of-memory killer does to a pool process whose file needs too much.
    worker = own_worker()
    client, observer, data = big_stand
    job_id = _upload(client, observer, data)
    for attempt in (1, 2):
        _wait_for(lambda attempt=attempt: _running(session, job_id, attempt), f"attempt {attempt} to run")
        children = _children(worker.pid)
        assert children, "the worker has no pool process"
        for child in children:
            os.kill(child, signal.SIGKILL)
    job = _wait(session, job_id, ("done", "failed"))
    assert (job.status, job.attempts, job.worker_losses) == ("failed", 2, 2), (job.status, job.reason)
    assert job.reason.startswith("the worker processing this upload stopped without finishing twice")
    assert session.scalar(select(func.count()).select_from(Observation)) == 0
    # The worker itself lives on and takes the next job.
    assert worker.poll() is None and _children(worker.pid)


def _running(session, job_id, attempt: int) -> bool:
    session.expire_all()
    job = session.get(LocateJob, job_id)
    return (job.status, job.attempts) == ("running", attempt)


def _restart_redis() -> None:
    redis.Redis.from_url(REDIS_URL).shutdown(nosave=True)
    subprocess.run(["bash", str(REPO / "ops/dev/services.sh")], check=True, capture_output=True, timeout=60)


def test_redis_restart_loses_no_job(own_worker, big_stand, session):
    client, observer, data = big_stand
    job_id = _upload(client, observer, data)  # queued while no worker consumes
    queue = f"{BROKER_KEY_PREFIX}locate"
    assert redis.Redis.from_url(FAULT_BROKER_URL).llen(queue) == 1
    _restart_redis()
    assert redis.Redis.from_url(FAULT_BROKER_URL).llen(queue) == 0  # the message is gone
    own_worker()
    with client.application.app_context():
        result = sweep_stale_jobs(session, lambda j: send("c3s.tasks.locate.locate_job", j),
                                  queued_after_s=0, running_after_s=3600)
    assert result.resent == [job_id]
    job = _wait(session, job_id, ("done", "failed"))
    assert job.status == "done" and job.stats["pixels_located"] > 150


def test_a_job_that_loses_its_worker_again_fails_with_a_reason(session, fault_app):
    client = fault_app.test_client()
    _, owner = make_user(session, "scene_admin")
    make_scene(client, owner)
    job = LocateJob(scene_id=1, method="qr", file_id="lost", status="running", attempts=2, worker_losses=1,
                    started_at=text("now() - interval '2 hours'"))
    session.add(job)
    session.commit()
    result = sweep_stale_jobs(session, lambda j: None, queued_after_s=300, running_after_s=3600)
    assert result.failed == [job.id]
    session.expire_all()
    failed = session.get(LocateJob, job.id)
    assert (failed.status, failed.worker_losses) == ("failed", 2)
    assert failed.reason.startswith("the worker processing this upload stopped without finishing twice")
