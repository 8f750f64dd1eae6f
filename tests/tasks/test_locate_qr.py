"""An observer's photo, uploaded through the API, ends with its pixels located in PostgreSQL by a
real Celery worker on the real Redis broker; bad photos end as failed jobs with reasons."""

from __future__ import annotations

import time

import cv2
import numpy as np
import pytest
from sqlalchemy import func, select

from c3s.models import Observation, Pixel
from c3s.tasks import send
from c3s.vision.crowd import render_crowd
from tests.helpers.factories import (
    add_photo_pixels,
    auth,
    make_scene,
    make_user,
    multipart,
    photo_anchors,
)

pytestmark = pytest.mark.slow


def jpeg(image: np.ndarray, quality: int = 90) -> bytes:
    ok, data = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, quality])
    assert ok
    return data.tobytes()


def wait_for(client, token, scene_id, job_id, timeout_s=90):
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        job = client.get(f"/api/scenes/{scene_id}/jobs/{job_id}", headers=auth(token)).json
        if job["status"] in ("done", "failed"):
            return job
        time.sleep(0.2)
    raise AssertionError(f"job {job_id} still {job['status']} after {timeout_s} s")


def upload(client, token, scene_id, data, filename="crowd.jpg"):
    response = client.post(f"/api/scenes/{scene_id}/jobs", headers=auth(token),
                           **multipart(file=(data, filename)))
    assert response.status_code == 202, response.json
    return response.json


@pytest.fixture()
def stand(worker_app, session):
    """A scene whose pixels are the phones of a rendered crowd photo, with its reference anchors."""
    client = worker_app.test_client()
    photo = render_crowd(seed=7, width=2000, height=1500, cols=10, rows=7, module_px=(4.0, 6.0),
                         n_anchors=6, n_foreign=3, scene_id=1)
    _, owner = make_user(session, "scene_admin")
    scene = make_scene(client, owner, width=12.0, height=8.0, anchors=photo_anchors(photo))
    assert scene["id"] == 1
    phones = add_photo_pixels(session, photo, scene_id=1, width=12.0, height=8.0)
    truth = {n: (p.x_scene + 1, p.y_scene + 1, p.visible) for n, p in phones.items()}
    _, observer = make_user(session, ("observer", 1))
    return client, observer, photo, truth


def test_photo_upload_locates_pixels_through_a_real_worker(stand, session):
    client, observer, photo, truth = stand
    job = wait_for(client, observer, 1, upload(client, observer, 1, jpeg(photo.image))["id"])
    assert job["status"] == "done", job["reason"]
    stats = job["stats"]
    foreign_visible = sum(p.visible for p in photo.phones if p.kind == "foreign")
    assert stats["anchors_used"] >= 4 and foreign_visible <= stats["rejected_other_scene"] <= 3
    located = {p.number: p for p in session.scalars(select(Pixel).where(Pixel.status == "located"))}
    visible = [n for n, (_, _, seen) in truth.items() if seen]
    assert len(located) >= 0.95 * len(visible)
    errors = [np.hypot(p.x - truth[n][0], p.y - truth[n][1]) for n, p in located.items()]
    assert np.median(errors) < 0.05 and max(errors) < 0.2  # metres, seats are ~0.7 m apart
    assert stats["pixels_located"] == len(located)

    # The same task delivered again leaves the same state.
    before = {n: (p.x, p.y) for n, p in located.items()}
    count = session.scalar(select(func.count()).select_from(Observation))
    with client.application.app_context():
        send("c3s.tasks.locate.locate_job", job["id"])
    time.sleep(1.0)
    session.expire_all()
    assert session.scalar(select(func.count()).select_from(Observation)) == count
    after = {p.number: (p.x, p.y) for p in session.scalars(select(Pixel).where(Pixel.status == "located"))}
    assert after == before


@pytest.mark.parametrize(("data", "reason"), [
    (b"\xff\xd8\xff\xe0 not really a jpeg", "image"),
    (b"\x89PNG\r\n\x1a\n then nothing", "image"),
])
def test_unreadable_photos_fail_with_a_reason(stand, data, reason):
    client, observer, _, _ = stand
    job = wait_for(client, observer, 1, upload(client, observer, 1, data)["id"])
    assert job["status"] == "failed" and reason in job["reason"]


def test_photo_without_codes_completes_saying_so(stand):
    client, observer, _, _ = stand
    empty = np.full((600, 800, 3), 90, np.uint8)
    job = wait_for(client, observer, 1, upload(client, observer, 1, jpeg(empty))["id"])
    assert job["status"] == "done" and job["stats"]["codes_decoded"] == 0
    assert "no pixels" in job["stats"]["note"]


def test_too_few_anchors_is_a_recorded_reason(stand, session):
    client, observer, photo, _ = stand
    image = photo.image.copy()
    # Cover every anchor code but two.
    covered = [p for p in photo.phones if p.kind == "anchor"][2:]
    for phone in covered:
        x, y = int(phone.x_img), int(phone.y_img)
        cv2.circle(image, (x, y), int(phone.module_px * 20), (40, 40, 40), -1)
    job = wait_for(client, observer, 1, upload(client, observer, 1, jpeg(image))["id"])
    assert job["status"] == "failed" and "at least 4" in job["reason"]
    assert session.scalar(select(func.count()).select_from(Observation)) == 0
