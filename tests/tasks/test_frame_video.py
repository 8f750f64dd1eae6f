"""A frame video uploaded to an API with a broker: the upload answers 202 at once with a queued
job, a real show worker decodes the video, and the frames appear once the job is done."""

from __future__ import annotations

import time

import pytest

from tests.helpers.factories import auth, make_scene, make_user, mp4_bytes, multipart

pytestmark = pytest.mark.slow


def test_the_show_worker_decodes_a_frame_video(worker_app, session, tmp_path):
    client = worker_app.test_client()
    _, owner = make_user(session, "scene_admin")
    scene = make_scene(client, owner)
    answer = client.post(f"/api/scenes/{scene['id']}/frames", headers=auth(owner),
                         **multipart(file=(mp4_bytes(tmp_path / "show.mp4", frames=60), "show.mp4")))
    assert answer.status_code == 202, answer.json
    assert answer.json["status"] in ("queued", "running") and answer.json["frame_ids"] == []
    deadline, job = time.monotonic() + 60, answer.json
    while job["status"] in ("queued", "running") and time.monotonic() < deadline:
        time.sleep(0.1)
        job = client.get(answer.headers["Location"], headers=auth(owner)).json
    assert (job["status"], job["progress"], job["attempts"]) == ("done", 1.0, 1), job
    listed = client.get(f"/api/scenes/{scene['id']}/frames", headers=auth(owner)).json
    assert [f["id"] for f in listed] == job["frame_ids"] and len(listed) == 60
    assert {f["duration_ms"] for f in listed} == {100}  # 10 fps
