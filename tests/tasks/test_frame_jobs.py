"""Frame jobs whose worker died: the sweep re-queues a running one whose heartbeat stopped, and a
run that was superseded meanwhile (re-queued and started again) commits no frames."""

from __future__ import annotations

from sqlalchemy import text

from c3s import frame_jobs
from c3s.frames import frames_of, pending_files
from c3s.locate.jobs import sweep_stale_jobs
from c3s.models import FrameJob, Scene, User
from tests.helpers.factories import make_scene, make_user, mp4_bytes


def _queued_job(app, client, session, tmp_path, frames=60) -> FrameJob:
    user, owner = make_user(session, "scene_admin")
    scene = session.get(Scene, make_scene(client, owner)["id"])
    with pending_files(app.extensions["c3s"].store) as pending:
        job = frame_jobs.create_frame_job(session, pending, session.get(User, user.id), scene,
                                          data=mp4_bytes(tmp_path / "v.mp4", frames=frames),
                                          content_type="video/mp4", filename="v.mp4", duration_ms=None)
        session.commit()
    return job


def test_the_sweep_requeues_a_frame_job_whose_heartbeat_stopped(app, client, session, tmp_path):
    silent = _queued_job(app, client, session, tmp_path)
    session.execute(text("UPDATE frame_jobs SET status = 'running', attempts = 1, "
                         "started_at = now() - interval '10 minutes', "
                         "heartbeat_at = now() - interval '90 seconds' WHERE id = :id"), {"id": silent.id})
    session.commit()
    sent = []
    result = sweep_stale_jobs(session, sent.append, queued_after_s=300, running_after_s=60,
                              model=FrameJob)
    assert result.requeued == sent == [silent.id]
    session.expire_all()
    assert session.get(FrameJob, silent.id).status == "queued"
    # A beating job is left alone.
    session.execute(text("UPDATE frame_jobs SET status = 'running', heartbeat_at = now() WHERE id = :id"),
                    {"id": silent.id})
    session.commit()
    assert sweep_stale_jobs(session, sent.append, queued_after_s=300, running_after_s=60,
                            model=FrameJob).requeued == []


def test_a_superseded_run_commits_no_frames(app, client, session, tmp_path):
    job = _queued_job(app, client, session, tmp_path)
    database = app.extensions["c3s"].database

    def taken_over(job_id, fraction):
        # Meanwhile the sweep re-queued the job and another worker started it.
        with database.transaction() as other:
            other.execute(text("UPDATE frame_jobs SET attempts = attempts + 1 WHERE id = :id"), {"id": job_id})

    store = app.extensions["c3s"].store
    outcome = frame_jobs.run_frame_job(session, store, job.id, max_pixels=4_000_000, report=taken_over,
                                       request_build=lambda scene_id: None)
    assert outcome.status == "running" and outcome.frame_ids == []
    assert frames_of(session, job.scene_id) == []
    assert store.get(job.file_id)  # the video stays for the run that took over
