"""A filmed clip of blinking phones, uploaded through the API, ends with its pixels located in
PostgreSQL by a real worker; phones already located (by seat or QR) anchor the clip to the scene."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
from sqlalchemy import select

from c3s.models import Pixel
from c3s.vision.blink_synth import make_clip
from tests.helpers.factories import add_pixel, make_scene, make_user
from tests.tasks.test_locate_qr import upload, wait_for

pytestmark = pytest.mark.slow

# The stand seen by the camera: scene units are image pixels / 100 plus an offset.
SCALE, OFFSET = 100.0, np.array([2.0, 1.0])


def to_scene(xy: np.ndarray) -> np.ndarray:
    return xy / SCALE + OFFSET


def test_blink_clip_locates_pixels_through_a_real_worker(worker_app, session, tmp_path):
    client = worker_app.test_client()
    clip = make_clip(150, width=960, height=540, fps=30.0, duration_ms=1500, seed=3)
    path = tmp_path / "clip.mp4"
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), clip.fps, (clip.width, clip.height))
    for frame in clip.frames():
        writer.write(frame)
    writer.release()

    _, owner = make_user(session, "scene_admin")
    scene = make_scene(client, owner, method="blink", width=14.0, height=8.0)
    truth = {}
    anchors_left = 8
    for number, xy in zip(clip.numbers.tolist(), to_scene(clip.xy), strict=True):
        located = anchors_left > 0  # a few phones were located before, e.g. by their seats
        anchors_left -= located
        add_pixel(session, scene["id"], number, size=(14.0, 8.0), xy=xy if located else None,
                  located_by="seat", sigma=0.01)
        truth[number] = xy
    session.commit()
    _, observer = make_user(session, ("observer", scene["id"]))

    job = upload(client, observer, scene["id"], path.read_bytes(), filename="clip.mp4")
    job = wait_for(client, observer, scene["id"], job["id"], timeout_s=120)
    assert job["status"] == "done", job["reason"]
    assert job["stats"]["anchors_used"] >= 4
    located = session.scalars(select(Pixel).where(Pixel.status == "located")).all()
    assert len(located) >= 0.95 * len(truth)
    errors = [np.hypot(p.x - truth[p.number][0], p.y - truth[p.number][1]) for p in located]
    assert np.median(errors) < 0.02  # scene units: 2 image pixels


def test_clip_that_is_not_a_video_fails_with_a_reason(worker_app, session):
    client = worker_app.test_client()
    _, owner = make_user(session, "scene_admin")
    scene = make_scene(client, owner, method="blink")
    _, observer = make_user(session, ("observer", scene["id"]))
    job = upload(client, observer, scene["id"], b"\x00\x00\x00\x18ftypmp42 broken", filename="clip.mp4")
    job = wait_for(client, observer, scene["id"], job["id"])
    assert job["status"] == "failed" and "clip" in job["reason"]
