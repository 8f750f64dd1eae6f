"""The observer page in a real browser: log in, upload a crowd photo with a progress bar, and
see the real worker's result with the detections drawn over the photo."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from c3s.vision.qrcode import anchor_payload, pixel_payload, render_qr_png
from tests.browser.conftest import console_errors
from tests.browser.helpers import compose_photo, encode_jpeg
from tests.helpers.factories import auth, make_scene, make_user

pytestmark = pytest.mark.browser

ANCHORS = [{"key": "A1", "x": 6, "y": 6}, {"key": "A2", "x": 94, "y": 6},
           {"key": "A3", "x": 94, "y": 54}, {"key": "A4", "x": 6, "y": 54}]


def _code(payload: str) -> np.ndarray:
    png = render_qr_png(payload, module_px=4)
    return cv2.cvtColor(cv2.imdecode(np.frombuffer(png, np.uint8), cv2.IMREAD_COLOR), cv2.COLOR_BGR2RGB)


def log_in(page, user, password: str = "correct horse battery") -> None:
    page.fill("#login-email", user.email)
    page.fill("#login-password", password)
    page.click("#login-form button[type=submit]")


def test_observer_uploads_a_photo_and_sees_what_was_located(worker_server, new_context, session):
    owner, owner_token = make_user(session, "scene_admin", "observer")
    client = worker_server.app.test_client()
    scene = make_scene(client, owner_token, height=60.0, anchors=ANCHORS)
    for _ in range(6):
        guest = client.post("/api/guests", json={}).json["token"]
        assert client.post(f"/api/scenes/{scene['id']}/join", headers=auth(guest)).status_code == 201
    positions = [(25 + 17 * (i % 3), 20 + 20 * (i // 3)) for i in range(6)]
    tiles = [(_code(anchor_payload(scene["id"], a["key"])), a["x"], a["y"]) for a in ANCHORS]
    tiles += [(_code(pixel_payload(scene["id"], n)), x, y) for n, (x, y) in enumerate(positions)]
    photo = encode_jpeg(compose_photo(tiles, (100, 60), px_per_unit=10, photo_size=(1000, 640)))

    page = new_context(900, 900).new_page()
    errors = console_errors(page)
    page.goto(f"{worker_server.url}/observe/{scene['id']}")
    log_in(page, owner)
    page.wait_for_function("document.body.dataset.state === 'ready'")
    assert page.locator("#media-input").get_attribute("capture") == "environment"
    assert page.locator("#media-input").get_attribute("accept") == "image/*,video/*"
    page.set_input_files("#media-input", files=[{"name": "crowd.jpg", "mimeType": "image/jpeg", "buffer": photo}])
    page.click("#upload-button")
    page.wait_for_function("document.body.dataset.state === 'job-done'", timeout=60_000)

    assert page.locator("#upload-progress").evaluate("p => p.value") == 1
    counts = {dt: dd for dt, dd in zip(page.locator("#job-counts dt").all_inner_texts(),
                                       page.locator("#job-counts dd").all_inner_texts(), strict=True)}
    assert counts["Codes found"] == "10"
    assert counts["Phones recognised"] == "6"
    assert counts["Phones placed (new)"] == "6"
    assert counts["Anchors used"] == "4"
    assert counts["Rejected"] == "0"
    assert page.evaluate("window.c3s.drawn") == 6
    # The markers are drawn where the worker saw each phone, over the photo itself.
    detections = page.evaluate("window.c3s.job.stats.detections")
    assert sorted(d["number"] for d in detections) == list(range(6))
    for d in detections:
        ring = page.evaluate(f"""(() => {{
            const g = document.getElementById('detections').getContext('2d');
            const r = Math.max(6, Math.min(1000, 640) / 60);
            const px = g.getImageData({d['x_img']} + r, {d['y_img']}, 1, 1).data;
            return [px[0], px[1], px[2]];
        }})()""")
        assert ring[1] > 200 and ring[0] < 80, ring  # the green ring around the detection
    located = client.get(f"/api/scenes/{scene['id']}/pixels", headers=auth(owner_token)).json["pixels"]
    for pixel in located:
        x, y = positions[pixel["number"]]
        assert pixel["status"] == "located" and abs(pixel["x"] - x) < 1.5 and abs(pixel["y"] - y) < 1.5
    assert [e for e in errors if e.startswith("pageerror")] == []


def test_observer_sees_why_an_upload_failed(worker_server, new_context, session):
    owner, owner_token = make_user(session, "scene_admin", "observer")
    client = worker_server.app.test_client()
    scene = make_scene(client, owner_token, height=60.0)  # no anchors: nothing can be mapped
    guest = client.post("/api/guests", json={}).json["token"]
    client.post(f"/api/scenes/{scene['id']}/join", headers=auth(guest))
    photo = encode_jpeg(compose_photo([(_code(pixel_payload(scene["id"], 0)), 50, 30)], (100, 60),
                                      px_per_unit=8, photo_size=(800, 480)))
    page = new_context(600, 800).new_page()
    page.goto(f"{worker_server.url}/observe/{scene['id']}")
    log_in(page, owner)
    page.wait_for_function("document.body.dataset.state === 'ready'")
    page.set_input_files("#media-input", files=[{"name": "crowd.jpg", "mimeType": "image/jpeg", "buffer": photo}])
    page.click("#upload-button")
    page.wait_for_function("document.body.dataset.state === 'job-failed'", timeout=60_000)
    assert "anchor" in page.locator("#job-status").inner_text()
