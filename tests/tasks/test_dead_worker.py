"""A worker SIGKILLed whole (its pool and its main process, as a lost machine) while running a
locate job or decoding a frame video: the job's heartbeat stops, the beat's sweep re-queues it
within the heartbeat timeout and the job runs once more, to `done`; killed again, the job fails
with a reason. Intervals are shortened through the settings."""

from __future__ import annotations

import os
import signal
import time

import pytest
import redis
from sqlalchemy import func, select

from c3s.frames import frames_of
from c3s.models import FrameJob, LocateJob, Observation
from c3s.web import create_app
from tests.helpers.factories import (
    auth,
    big_crowd_stand,
    make_scene,
    make_user,
    mp4_bytes,
    multipart,
)
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


def _job(session, job_id, model=LocateJob) -> LocateJob | FrameJob:
    session.expire_all()
    return session.get(model, job_id)


def _wait(session, job_id, done, what, timeout_s=120.0, model=LocateJob) -> LocateJob | FrameJob:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        job = _job(session, job_id, model)
        if done(job):
            return job
        time.sleep(0.05)
    raise AssertionError(f"job {job_id} is {job.status} (attempt {job.attempts}), not {what}")


def _app(pg_url, shared_instance):
    return create_app({"database_url": pg_url, "redis_url": REDIS_URL, "broker_url": BROKER_URL,
                       "broker_key_prefix": PREFIX, "instance_path": shared_instance, "testing": True})


def test_a_job_of_a_worker_killed_whole_is_requeued_and_runs_once_more(
        workers, clean_db, pg_url, redis_client, shared_instance, session):
    app = _app(pg_url, shared_instance)
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
    assert (job.attempts, job.worker_losses) == (1, 1)
    assert requeued_after_s <= 3 + 2 * 1 + 5, requeued_after_s  # timeout + two sweeps + slack

    workers("-Q", "locate")
    job = _wait(session, job_id, lambda j: j.status in ("done", "failed"), "finished")
    assert (job.status, job.attempts, job.worker_losses) == ("done", 2, 1), (job.status, job.reason)
    located = job.stats["pixels_located"]
    assert located > 150
    assert session.scalar(select(func.count()).select_from(Observation)) == job.stats["observations"]
    time.sleep(3)  # the sweep keeps running: a finished job is left alone
    assert (_job(session, job_id).status, _job(session, job_id).attempts) == ("done", 2)
    app.extensions["c3s"].database.dispose()


# 900 frames of 320x240: a few seconds of decoding and writing frames, long enough to be caught.
VIDEO_FRAMES = 900


def _video_of_a_killed_worker(workers, pg_url, shared_instance, session, tmp_path):
    """A frame video uploaded, and its show worker killed mid-decode with no other show worker:
    the app, its client, the uploader's token, the upload's answer and the time of the kill."""
    app = _app(pg_url, shared_instance)
    # The beat on a worker of the locate queue: its sweeps go to the show queue's workers, and the
    # show worker killed here is the only one until a new one starts.
    workers("-Q", "locate", "--beat")
    doomed = workers("-Q", "show")
    client, owner, answer = _upload_video(app, session, tmp_path)
    killed_at = _kill_mid_decode(session, doomed, answer.json["id"], attempt=1)
    return app, client, owner, answer, killed_at


def _upload_video(app, session, tmp_path):
    client = app.test_client()
    _, owner = make_user(session, "scene_admin")
    scene = make_scene(client, owner)
    video = mp4_bytes(tmp_path / "show.mp4", frames=VIDEO_FRAMES, fps=30, size=(320, 240))
    answer = client.post(f"/api/scenes/{scene['id']}/frames", headers=auth(owner),
                         **multipart(file=(video, "show.mp4")))
    assert answer.status_code == 202, answer.json
    return client, owner, answer


def _kill_mid_decode(session, worker, job_id, attempt: int) -> float:
    """SIGKILL the worker's whole process group once it is decoding the job (attempt `attempt`,
    some frames decoded, none committed); returns the monotonic time of the kill."""
    job = _wait(session, job_id, lambda j: j.status == "running" and j.attempts == attempt and j.progress > 0,
                f"decoding (attempt {attempt})", model=FrameJob)
    os.killpg(worker.pid, signal.SIGKILL)
    killed_at = time.monotonic()
    worker.wait(timeout=10)
    job = _job(session, job_id, FrameJob)
    assert (job.status, job.frame_ids) == ("running", []), (job.status, job.reason)
    return killed_at


def test_a_frame_video_of_a_worker_killed_mid_decode_is_requeued_and_decoded_by_a_new_worker(
        workers, clean_db, pg_url, redis_client, shared_instance, session, tmp_path):
    app, client, owner, answer, killed_at = _video_of_a_killed_worker(workers, pg_url, shared_instance, session,
                                                                      tmp_path)
    job_id = answer.json["id"]
    workers("-Q", "show")
    job = _wait(session, job_id, lambda j: j.worker_losses == 1, "re-queued", model=FrameJob)
    requeued_after_s = time.monotonic() - killed_at
    job = _wait(session, job_id, lambda j: j.attempts == 2, "started again", model=FrameJob)
    restarted_after_s = time.monotonic() - killed_at
    print(f"frame job re-queued {requeued_after_s:.1f} s and started again {restarted_after_s:.1f} s "
          "after its worker was killed")
    # The new worker's start, then the timeout and a sweep; the target is 2 minutes.
    assert requeued_after_s <= 120, requeued_after_s

    job = _wait(session, job_id, lambda j: j.status in ("done", "failed"), "finished", model=FrameJob)
    assert (job.status, job.attempts, job.worker_losses) == ("done", 2, 1), (job.status, job.reason)
    assert [frame.id for frame in frames_of(session, job.scene_id)] == job.frame_ids
    assert len(job.frame_ids) == VIDEO_FRAMES  # the killed run committed none of its frames
    shown = client.get(answer.headers["Location"], headers=auth(owner)).json
    assert (shown["status"], shown["attempts"], shown["worker_losses"]) == ("done", 2, 1)
    app.extensions["c3s"].database.dispose()


def test_a_frame_video_whose_worker_is_killed_twice_fails_with_a_reason(
        workers, clean_db, pg_url, redis_client, shared_instance, session, tmp_path):
    app, client, owner, answer, _ = _video_of_a_killed_worker(workers, pg_url, shared_instance, session, tmp_path)
    job_id = answer.json["id"]
    second = workers("-Q", "show")
    _kill_mid_decode(session, second, job_id, attempt=2)

    workers("-Q", "show")  # the sweeps run again: the job is not run a third time
    job = _wait(session, job_id, lambda j: j.status in ("done", "failed"), "failed", model=FrameJob)
    assert (job.status, job.attempts, job.worker_losses) == ("failed", 2, 2), (job.status, job.reason)
    assert job.reason.startswith("the worker decoding this video stopped without finishing twice")
    assert "/" not in job.reason
    assert frames_of(session, job.scene_id) == []
    assert not app.extensions["c3s"].store.exists(job.file_id)  # the video is discarded
    shown = client.get(answer.headers["Location"], headers=auth(owner)).json
    assert (shown["status"], shown["reason"], shown["worker_losses"]) == ("failed", job.reason, 2)
    time.sleep(2)  # the sweep keeps running: a failed job stays failed
    assert _job(session, job_id, FrameJob).status == "failed"
    app.extensions["c3s"].database.dispose()
