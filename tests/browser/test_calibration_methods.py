"""The pixel page's other calibrations in a real browser (seat form, GPS prompt, microphone),
and playback that survives a dropped connection."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from c3s.positioning.geo import GeoReference, unproject
from tests.browser.conftest import console_errors
from tests.browser.helpers import screenshot_rgb, server_ms
from tests.browser.test_observer_page import log_in
from tests.helpers.factories import auth, make_scene, make_user, multipart

pytestmark = pytest.mark.browser

SEATS = "section,row,seat,x,y\nA,1,1,10,10\nA,1,2,12,10\nA,2,1,10,12\nB,1,1,40,10\n"


def _open(context, base_url: str, scene_id: int):
    page = context.new_page()
    errors = console_errors(page)
    page.goto(f"{base_url}/s/{scene_id}?poll_ms=300")
    page.wait_for_function("document.body.dataset.state === 'calibrating'")
    return page, errors


def _pixel(client, scene_id: int, number: int, token: str) -> dict:
    return client.get(f"/api/scenes/{scene_id}/pixels/{number}", headers=auth(token)).json


def test_seat_form_validates_suggests_and_claims(live_server, new_context, session):
    owner_user, owner = make_user(session, "scene_admin")
    client = live_server.app.test_client()
    scene = make_scene(client, owner, method="seat", units="seat")
    imported = client.put(f"/api/scenes/{scene['id']}/seatmap", data=SEATS, content_type="text/csv",
                          headers=auth(owner))
    assert imported.status_code == 200, imported.json
    page, errors = _open(new_context(), live_server.url, scene["id"])
    assert page.locator("#seat-form").is_visible()

    page.click("#seat-form button[type=submit]")
    assert page.locator("#seat-error").inner_text() == "Please fill in the section."
    page.fill("#seat-section", "a")
    page.fill("#seat-row", "1")
    page.fill("#seat-seat", "7")  # row A-1 has seats 1 and 2 only
    page.click("#seat-form button[type=submit]")
    page.wait_for_selector("#seat-suggestions button")
    suggestions = page.locator("#seat-suggestions button").all_inner_texts()
    assert suggestions[0] == "A · 1 · 2", suggestions
    page.locator("#seat-suggestions button").first.click()
    assert page.input_value("#seat-seat") == "2"
    page.click("#seat-form button[type=submit]")
    page.wait_for_function("document.getElementById('headline').textContent === 'Thank you!'")
    pixel = _pixel(client, scene["id"], 0, owner)
    assert (pixel["status"], pixel["x"], pixel["y"]) == ("located", 12, 10)

    # Another phone claiming the same seat is told plainly.
    other, _ = _open(new_context(), live_server.url, scene["id"])
    other.fill("#seat-section", "A")
    other.fill("#seat-row", "1")
    other.fill("#seat-seat", "2")
    other.click("#seat-form button[type=submit]")
    other.wait_for_selector("#seat-error:not([hidden])")
    assert "Someone else already claimed this seat" in other.locator("#seat-error").inner_text()

    # The operator's live map lists the conflict with both pixels.
    operator = new_context(1000, 1400).new_page()
    operator.goto(f"{live_server.url}/operator")
    log_in(operator, owner_user)
    operator.wait_for_function("document.getElementById('conflicts').textContent.includes('A-1-2')")
    assert "pixels 0, 1" in operator.locator("#conflicts").inner_text()
    assert operator.locator("[data-count='Placed by seat']").inner_text() == "1"
    assert [e for e in errors if e.startswith("pageerror")] == []


def test_gps_prompt_sends_the_fix_and_places_the_pixel(live_server, new_context, session):
    _, owner = make_user(session, "scene_admin")
    client = live_server.app.test_client()
    scene = make_scene(client, owner, method="gps", geo_lat=51.5, geo_lon=-0.12, geo_bearing_deg=90.0,
                       geo_metres_per_unit=1.0, max_gps_accuracy_m=15.0)
    lat, lon = unproject(GeoReference(51.5, -0.12, 90.0, 1.0), 30.0, 20.0)
    context = new_context(geolocation={"latitude": float(lat), "longitude": float(lon), "accuracy": 4},
                          permissions=["geolocation"])
    page, errors = _open(context, live_server.url, scene["id"])
    page.click("#gps-button")
    page.wait_for_function("document.getElementById('gps-status').textContent.startsWith('Sent')")
    pixel = _pixel(client, scene["id"], 0, owner)
    assert pixel["status"] == "located" and abs(pixel["x"] - 30) < 0.5 and abs(pixel["y"] - 20) < 0.5, pixel
    assert [e for e in errors if e.startswith("pageerror")] == []


def test_microphone_recording_is_uploaded_as_wav_and_its_outcome_shown(live_server, new_context, session):
    _, owner = make_user(session, "scene_admin")
    client = live_server.app.test_client()
    scene = make_scene(client, owner, method="sound")
    speakers = [{"x": 0, "y": 0}, {"x": 100, "y": 0}, {"x": 100, "y": 50}, {"x": 0, "y": 50}]
    put = client.put(f"/api/scenes/{scene['id']}/speakers", json={"speakers": speakers}, headers=auth(owner))
    assert put.status_code == 200, put.json
    page, errors = _open(new_context(permissions=["microphone"]), live_server.url, scene["id"])
    page.click("#sound-button")
    # Chromium's synthetic microphone beeps instead of hearing chirps: the recording reaches
    # the locator, which cannot place it, and the page says why.
    page.wait_for_function("/Heard you|could not place you/.test(document.getElementById('sound-status').textContent)",
                           timeout=60_000)
    jobs = client.get(f"/api/scenes/{scene['id']}/jobs", headers=auth(owner)).json
    assert len(jobs) == 1 and jobs[0]["method"] == "sound" and jobs[0]["filename"] == "recording.wav"
    assert jobs[0]["status"] == "failed"
    assert jobs[0]["reason"] in page.locator("#sound-status").inner_text()
    assert [e for e in errors if e.startswith("pageerror")] == []


def _solid_png(rgb) -> bytes:
    image = np.zeros((60, 100, 3), np.uint8)
    image[:] = rgb[::-1]
    return cv2.imencode(".png", image)[1].tobytes()


def test_playback_survives_a_dropped_connection_and_shows_the_end(live_server, new_context, session):
    from c3s.models import Pixel, utcnow

    _, owner = make_user(session, "scene_admin")
    client = live_server.app.test_client()
    scene = make_scene(client, owner, height=60.0)
    colors = [(255, 0, 0), (0, 255, 0)]
    for rgb in colors:
        added = client.post(f"/api/scenes/{scene['id']}/frames", headers=auth(owner),
                            **multipart(file=(_solid_png(rgb), "f.png"), duration_ms="600"))
        assert added.status_code == 201
    context = new_context(200, 200)
    page, errors = _open(context, live_server.url, scene["id"])
    pixel = session.query(Pixel).one()
    pixel.x, pixel.y, pixel.located_by, pixel.located_at, pixel.status, pixel.confidence = (
        50.0, 30.0, "qr", utcnow(), "located", 1.0)
    session.commit()
    start_ms = server_ms() + 1500
    started = client.post(f"/api/scenes/{scene['id']}/show", json={"start_at_ms": start_ms, "loop": True},
                          headers=auth(owner))
    assert started.status_code == 200, started.json
    page.wait_for_function("document.body.dataset.state === 'playing'", timeout=15_000)

    context.set_offline(True)
    seen = set()
    while server_ms() < start_ms + 4000:
        before = server_ms()
        shot = screenshot_rgb(page, clip={"x": 98, "y": 98, "width": 4, "height": 4}).reshape(-1, 3).mean(axis=0)
        after = server_ms()
        allowed = {colors[int((t - start_ms) // 600) % 2] for t in (before - 100, after + 100)}
        assert any(np.abs(shot - np.array(c)).max() < 40 for c in allowed), (shot, allowed)
        seen.add(int((before - start_ms) // 600))
        page.wait_for_timeout(120)
    assert len(seen) >= 4  # several frames went by while offline
    assert page.evaluate("document.body.dataset.state") == "playing"
    context.set_offline(False)

    assert client.delete(f"/api/scenes/{scene['id']}/show", headers=auth(owner)).status_code == 200
    page.wait_for_function("document.body.dataset.state === 'ended'", timeout=15_000)
    assert page.locator("#headline").inner_text() == "The show has ended"
    assert [e for e in errors if e.startswith("pageerror")] == []
