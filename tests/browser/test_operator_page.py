"""The operator dashboard in a real browser: log in, create and edit a scene, add frames with a
preview, exclude a pixel, start and stop the show."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from tests.browser.conftest import console_errors
from tests.browser.test_observer_page import log_in
from tests.helpers.factories import auth, make_user

pytestmark = pytest.mark.browser


def _png(rgb: tuple[int, int, int], size=(200, 120)) -> bytes:
    image = np.zeros((size[1], size[0], 3), np.uint8)
    image[:] = rgb[::-1]
    ok, data = cv2.imencode(".png", image)
    assert ok
    return data.tobytes()


def test_operator_creates_a_scene_adds_frames_excludes_and_runs_the_show(live_server, new_context, session):
    owner, owner_token = make_user(session, "scene_admin", "moderator")
    client = live_server.app.test_client()
    page = new_context(1200, 1600).new_page()
    errors = console_errors(page)
    page.goto(f"{live_server.url}/operator")
    log_in(page, owner)
    page.wait_for_function("document.body.dataset.state === 'ready'")

    page.fill("#scene-name", "North stand")
    page.select_option("#scene-method", "qr")
    page.fill("#scene-width", "120")
    page.fill("#scene-height", "40")
    page.fill("#scene-anchors", "a1 0 0\nA2 120 0\nA3 120 40\nA4 0 40")
    page.fill("#geo-lat", "51.5")
    page.fill("#geo-lon", "-0.12")
    page.fill("#geo-bearing", "90")
    page.fill("#geo-mpu", "1")
    page.click("#scene-save")
    page.wait_for_function("document.getElementById('scene-saved').textContent.includes('created')")
    scenes = client.get("/api/scenes", headers=auth(owner_token)).json
    assert len(scenes) == 1
    scene = scenes[0]
    assert (scene["name"], scene["method"], scene["width"], scene["height"]) == ("North stand", "qr", 120, 40)
    assert [(a["key"], a["x"], a["y"]) for a in scene["anchors"]] == [
        ("A1", 0, 0), ("A2", 120, 0), ("A3", 120, 40), ("A4", 0, 40)]
    assert (scene["geo_lat"], scene["geo_lon"], scene["geo_bearing_deg"]) == (51.5, -0.12, 90)
    assert f"/s/{scene['id']}" in page.locator("#scene-links").inner_text()

    # A bad anchor line is refused in the page, with a message saying what to write.
    page.fill("#scene-anchors", "A1 0")
    page.click("#scene-save")
    assert "KEY x y" in page.locator("#scene-error").inner_text()
    page.fill("#scene-anchors", "A1 0 0\nA2 120 0\nA3 120 40\nA4 0 40")
    page.fill("#scene-name", "North stand, lower tier")
    page.click("#scene-save")
    page.wait_for_function("document.getElementById('scene-saved').textContent === 'Saved.'")
    assert client.get(f"/api/scenes/{scene['id']}", headers=auth(owner_token)).json["name"] == "North stand, lower tier"

    # Frames: the chosen file is previewed before it is uploaded.
    page.set_input_files("#frame-file", files=[{"name": "red.png", "mimeType": "image/png",
                                                "buffer": _png((255, 0, 0))}])
    page.wait_for_function("document.querySelector('#frame-file-preview img')?.complete")
    assert "not uploaded yet" in page.locator("#frame-file-preview").inner_text()
    page.fill("#frame-duration", "750")
    page.click("#frame-upload")
    page.wait_for_function("document.querySelectorAll('#frames .frame').length === 1")
    frames = client.get(f"/api/scenes/{scene['id']}/frames", headers=auth(owner_token)).json
    assert [f["duration_ms"] for f in frames] == [750]
    page.wait_for_function("document.querySelector('#frames .frame img')?.naturalWidth === 200")

    # A pixel joins; the live map counts it; the operator excludes it.
    guest = client.post("/api/guests", json={}).json["token"]
    client.post(f"/api/scenes/{scene['id']}/join", headers=auth(guest))
    page.select_option("#scene-select", str(scene["id"]))
    page.wait_for_function("document.querySelector('[data-count=\"Joined, not placed yet\"]')?.textContent === '1'")
    page.fill("#exclude-number", "0")
    page.fill("#exclude-reason", "strobe app")
    page.click("#exclude-form button[type=submit]")
    page.wait_for_function("document.getElementById('exclude-status').textContent.includes('excluded')")
    pixel = client.get(f"/api/scenes/{scene['id']}/pixels/0", headers=auth(owner_token)).json
    assert (pixel["status"], pixel["excluded_reason"]) == ("excluded", "strobe app")
    page.wait_for_function("document.querySelector('[data-count=\"Excluded\"]')?.textContent === '1'")

    # The show starts a few seconds ahead on the server clock, and stops.
    page.fill("#show-delay", "30")
    page.click("#show-start")
    page.wait_for_function("document.body.dataset.show === 'playing'")
    show = client.get(f"/api/scenes/{scene['id']}/show").json
    assert show["status"] == "playing" and show["start_ms"] is not None
    page.click("#show-stop")
    page.wait_for_function("document.body.dataset.show !== 'playing'")
    assert client.get(f"/api/scenes/{scene['id']}/show").json["start_ms"] is None
    assert [e for e in errors if e.startswith("pageerror")] == []
