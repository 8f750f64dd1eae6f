"""A task's job stopped by an error nobody foresaw is recorded `failed` with the error's kind
before the error is raised; an error the task retries leaves the job as it was."""

from __future__ import annotations

import pytest
from sqlalchemy.exc import OperationalError

from c3s import frame_jobs
from c3s.locate import jobs as locate_jobs
from c3s.models import FrameJob, LocateJob, Scene
from c3s.tasks.jobs import final_status
from tests.helpers.factories import make_scene, make_user
from tests.tasks.test_frame_jobs import _queued_job

TRANSIENT = (OperationalError,)


def _broken() -> None:
    raise KeyError("no such thing")


def test_an_unexpected_error_fails_the_locate_job_and_is_raised(client, session):
    _, owner = make_user(session, "scene_admin")
    scene = session.get(Scene, make_scene(client, owner)["id"])
    job = LocateJob(scene_id=scene.id, method="qr", file_id="f-1")
    session.add(job)
    session.commit()
    with pytest.raises(KeyError):
        final_status(session, job.id, _broken, locate_jobs.fail_unexpectedly, TRANSIENT)
    session.expire_all()
    failed = session.get(LocateJob, job.id)
    assert failed.status == "failed" and failed.finished_at is not None
    assert failed.reason == ("internal error while locating (KeyError); the operators have the "
                             "details in the worker log")


def test_an_unexpected_error_fails_the_frame_job_and_a_transient_one_does_not(app, client, session,
                                                                               tmp_path):
    job = _queued_job(app, client, session, tmp_path, frames=2)

    def lost() -> None:
        raise OperationalError("SELECT 1", {}, ConnectionError("gone"))

    with pytest.raises(OperationalError):
        final_status(session, job.id, lost, frame_jobs.fail_unexpectedly, TRANSIENT)
    session.expire_all()
    assert session.get(FrameJob, job.id).status == "queued"
    with pytest.raises(KeyError):
        final_status(session, job.id, _broken, frame_jobs.fail_unexpectedly, TRANSIENT)
    session.expire_all()
    assert session.get(FrameJob, job.id).reason == (
        "internal error while decoding the video (KeyError); the operators have the details in the "
        "worker log")
    assert final_status(session, job.id, lambda: session.get(FrameJob, job.id),
                        frame_jobs.fail_unexpectedly, TRANSIENT) == "failed"
    assert final_status(session, 0, lambda: None, frame_jobs.fail_unexpectedly, TRANSIENT) == "missing"
