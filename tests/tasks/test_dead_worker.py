"""A worker SIGKILLed whole (its pool and its main process, as a lost machine) while running a
locate job: the job's heartbeat stops, the beat's sweep re-queues it within the heartbeat timeout
and the job runs once more, to `done`. Intervals are shortened through the settings."""

from __future__ import annotations

import os
import signal
import time

import pytest
import redis
from sqlalchemy import func, select

from c3s.models import LocateJob, Observation
from c3s.web import create_app
from tests.helpers.factories import auth, big_crowd_stand, multipart
from tests.helpers.services import BROKER_KEY_PREFIX, BROKER_URL, REDIS_URL
from tests.helpers.workers import start_worker, stop_worker, worker_env

pytestmark = pytest.mark.slow

PREFIX = f"{BROKER_KEY_PREFIX}dead-worker:"
SETTINGS = {"C3S_JOB_HEARTBEAT_S": "0.5", "C3S_JOB_HEARTBEAT_TIMEOUT_S": "3",
            "C3S_SWEEP_INTERVAL_S": "1"}


@pytest.fixture()
def workers(pg_url, shared_instance, tmp_path):
    env = {**worker_env(pg_url, shared_instance), "C3S_BROKER_KEY_PREFIX": PREFIX, **SETTINGS}
    started = []

    def start(*args: str):
        started.append(start_worker(env, tmp_path / f"worker{len(started)}.log", args=args))
        return started[-1]

    yield start
    for process in started:
        stop_worker(process)
    broker = redis.Redis.from_url(BROKER_URL)
    keys = list(broker.scan_iter(match=f"{PREFIX}*"))
    if keys:
        broker.delete(*keys)


def _job(session, job_id) -> LocateJob:
    session.expire_all()
    return session.get(LocateJob, job_id)


def _wait(session, job_id, done, what, timeout_s=120.0) -> LocateJob:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        job = _job(session, job_id)
        if done(job):
            return job
        time.sleep(0.05)
    raise AssertionError(f"job {job_id} is {job.status} (attempt {job.attempts}), not {what}")


def test_a_job_of_a_worker_killed_whole_is_requeued_and_runs_once_more(
        workers, clean_db, pg_url, redis_client, shared_instance, session):
    app = create_app({"database_url": pg_url, "redis_url": REDIS_URL, "broker_url": BROKER_URL,
                      "broker_key_prefix": PREFIX, "instance_path": shared_instance, "testing": True})
    client = app.test_client()
    observer, data = big_crowd_stand(client, session)

    workers("-Q", "show", "--beat")  # the sweep, every second
    doomed = workers("-Q", "locate")
    response = client.post("/api/scenes/1/jobs", headers=auth(observer), **multipart(file=(data, "crowd.jpg")))
    assert response.status_code == 202, response.json
    job_id = response.json["id"]
    job = _wait(session, job_id, lambda j: j.status == "running", "running")
    assert job.heartbeat_at is not None

    os.killpg(doomed.pid, signal.SIGKILL)
    killed_at = time.monotonic()
    doomed.wait(timeout=10)
    # Nobody consumes the locate queue now: the re-queued job waits there, visibly `queued`.
    job = _wait(session, job_id, lambda j: j.status == "queued", "re-queued", timeout_s=30)
    requeued_after_s = time.monotonic() - killed_at
    assert job.attempts == 1
    assert requeued_after_s <= 3 + 2 * 1 + 5, requeued_after_s  # timeout + two sweeps + slack

    workers("-Q", "locate")
    job = _wait(session, job_id, lambda j: j.status in ("done", "failed"), "finished")
    assert (job.status, job.attempts) == ("done", 2), (job.status, job.reason)
    located = job.stats["pixels_located"]
    assert located > 150
    assert session.scalar(select(func.count()).select_from(Observation)) == job.stats["observations"]
    time.sleep(3)  # the sweep keeps running: a finished job is left alone
    assert (_job(session, job_id).status, _job(session, job_id).attempts) == ("done", 2)
    app.extensions["c3s"].database.dispose()
