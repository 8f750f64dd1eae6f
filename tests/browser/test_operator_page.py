"""The operator dashboard in a real browser, step by step: a scene created (and later edited,
never duplicated), only its method's set-up fields, API errors with their detail, frames added
with a preview, reordered and deleted, a phone clicked on the map and excluded, warnings before a
show that would look wrong, a start at least one check-in ahead; and the page on a phone."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
from sqlalchemy import text

from c3s.checkin import MIN_LEAD_MS
from tests.browser.conftest import console_errors
from tests.browser.test_observer_page import log_in
from tests.helpers.factories import auth, make_scene, make_user

pytestmark = pytest.mark.browser


def _png(rgb: tuple[int, int, int], size=(200, 120)) -> bytes:
    image = np.zeros((size[1], size[0], 3), np.uint8)
    image[:] = rgb[::-1]
    ok, data = cv2.imencode(".png", image)
    assert ok
    return data.tobytes()


def _ready(page, url: str, user) -> None:
    page.goto(url)
    log_in(page, user)
    page.wait_for_function("document.body.dataset.state === 'ready'")


def _text_has(page, selector: str, words: str, timeout: int = 10_000) -> None:
    page.wait_for_function(f"document.querySelector({selector!r})?.textContent.includes({words!r})",
                           timeout=timeout)


def test_scene_then_set_up_edit_not_duplicate_and_errors_with_detail(live_server, new_context, session):
    owner, owner_token = make_user(session, "scene_admin", "moderator")
    client = live_server.app.test_client()
    page = new_context(1200, 1400).new_page()
    errors = console_errors(page)
    _ready(page, f"{live_server.url}/operator", owner)

    # No scene yet: only step 1, and nothing breaks.
    assert page.locator("#calibration-card").is_hidden() and page.locator("#show-card").is_hidden()
    assert "No scene yet" in page.locator("#scene-links").inner_text()
    assert page.locator("#scene-save").inner_text() == "Create scene"

    page.fill("#scene-name", "North stand")
    page.select_option("#scene-method", "qr")
    page.fill("#scene-width", "120")
    page.fill("#scene-height", "40")
    page.click("#scene-save")
    _text_has(page, "#scene-saved", "created")
    [scene] = client.get("/api/scenes", headers=auth(owner_token)).json
    assert (scene["name"], scene["method"], scene["width"], scene["height"]) == ("North stand", "qr", 120, 40)
    assert f"/s/{scene['id']}" in page.locator("#scene-links").inner_text()

    # Step 2 shows only the QR method's fields; a bad anchor line says what to write.
    assert page.locator("#scene-anchors").is_visible() and page.locator("#geo-lat").is_hidden()
    assert page.locator("#seatmap-file").is_hidden() and page.locator("#speakers").is_hidden()
    page.fill("#scene-anchors", "A1 0")
    page.click("#setup-save")
    _text_has(page, "#setup-status", "KEY x y")
    page.fill("#scene-anchors", "a1 0 0\nA2 120 0\nA3 120 40\nA4 0 40")
    page.click("#setup-save")
    _text_has(page, "#setup-status", "saved")
    assert [(a["key"], a["x"], a["y"]) for a in client.get(f"/api/scenes/{scene['id']}", headers=auth(owner_token)).json["anchors"]] == [
        ("A1", 0, 0), ("A2", 120, 0), ("A3", 120, 40), ("A4", 0, 40)]
    # An anchor outside the scene: the API's reason, not "1 error(s)".
    page.fill("#scene-anchors", "A1 500 0")
    page.click("#setup-save")
    _text_has(page, "#setup-status", "outside")

    # "New scene", then choosing the existing scene and saving edits it: no duplicate.
    page.click("#new-scene")
    assert page.locator("#scene-save").inner_text() == "Create scene"
    page.select_option("#scene-select", str(scene["id"]))
    page.wait_for_function("document.getElementById('scene-save').textContent === 'Save changes'")
    page.fill("#scene-name", "North stand, lower tier")
    page.click("#scene-save")
    page.wait_for_function("document.getElementById('scene-saved').textContent === 'Saved.'")
    scenes = client.get("/api/scenes", headers=auth(owner_token)).json
    assert [s["name"] for s in scenes] == ["North stand, lower tier"]

    # A seat scene shows only the seat map; a map without x and y says which columns are missing.
    page.click("#new-scene")
    page.fill("#scene-name", "Seats")
    page.select_option("#scene-method", "seat")
    page.fill("#scene-width", "50")
    page.fill("#scene-height", "20")
    page.click("#scene-save")
    _text_has(page, "#scene-saved", "created")
    assert page.locator("#seatmap-file").is_visible() and page.locator("#scene-anchors").is_hidden()
    page.set_input_files("#seatmap-file", files=[{"name": "seats.csv", "mimeType": "text/csv",
                                                  "buffer": b"section,row,seat\nA,1,1\n"}])
    page.click("#seatmap-upload")
    _text_has(page, "#seatmap-status", "lacks column(s) x, y")
    assert len(client.get("/api/scenes", headers=auth(owner_token)).json) == 2
    assert [e for e in errors if e.startswith("pageerror")] == []


def test_frames_map_click_exclude_warnings_and_start_lead(live_server, new_context, session):
    owner, owner_token = make_user(session, "scene_admin", "moderator")
    client = live_server.app.test_client()
    scene = make_scene(client, owner_token, name="Floor", width=100.0, height=50.0)
    sid = scene["id"]
    page = new_context(1200, 1600).new_page()
    errors = console_errors(page)
    _ready(page, f"{live_server.url}/operator?refresh_ms=1000", owner)

    # Before anything: the show step warns that nothing would show.
    _text_has(page, "#show-warnings", "No frames yet")
    _text_has(page, "#show-warnings", "No phone is placed")

    # Frames: previewed before upload, then thumbnails that can be reordered and deleted.
    for name, rgb in (("red.png", (255, 0, 0)), ("blue.png", (0, 0, 255))):
        page.set_input_files("#frame-file", files=[{"name": name, "mimeType": "image/png", "buffer": _png(rgb)}])
        page.wait_for_function("document.querySelector('#frame-file-preview img')?.complete")
        assert "not uploaded yet" in page.locator("#frame-file-preview").inner_text()
        page.fill("#frame-duration", "750")
        page.click("#frame-upload")
        _text_has(page, "#frame-status", "added")
    page.wait_for_function("document.querySelectorAll('#frames .frame').length === 2")
    page.wait_for_function("[...document.querySelectorAll('#frames img.thumb')].every((i) => i.naturalWidth === 200)")
    ids = [f["id"] for f in client.get(f"/api/scenes/{sid}/frames", headers=auth(owner_token)).json]
    page.click("#frames .frame:nth-child(2) [data-action=move]:first-child")
    _text_has(page, "#frame-status", "moved")
    assert [f["id"] for f in client.get(f"/api/scenes/{sid}/frames", headers=auth(owner_token)).json] == ids[::-1]
    page.click(f"#frames .frame[data-frame-id='{ids[0]}'] [data-action=delete]")
    _text_has(page, "#frame-status", "deleted")
    assert [f["id"] for f in client.get(f"/api/scenes/{sid}/frames", headers=auth(owner_token)).json] == [ids[1]]

    # Two phones join, one is placed; click its numbered dot, see it, exclude it with a reason.
    for _ in range(2):
        guest = client.post("/api/guests", json={}).json["token"]
        client.post(f"/api/scenes/{sid}/join", headers=auth(guest))
    session.execute(text("UPDATE pixels SET status = 'located', x = 5, y = 25, sigma = 0.1, confidence = 1, "
                         "located_by = 'qr', located_at = now() WHERE scene_id = :s AND number = 1"), {"s": sid})
    session.execute(text("UPDATE scenes SET layout_version = layout_version + 1 WHERE id = :s"), {"s": sid})
    session.commit()
    page.wait_for_function("document.querySelector('[data-count=\"Placed\"]')?.textContent === '1'")
    _text_has(page, "#show-warnings", "Only 1 phone(s) are placed")
    # The 200 x 120 frame, contained in the 100 x 50 scene, spans x 8.3 to 91.7: the phone at x 5 is outside.
    _text_has(page, "#show-warnings", "Frame 1 has no placed phone inside it")
    page.evaluate("document.getElementById('scene-map').scrollIntoView({block: 'center'})")
    box = page.locator("#scene-map").bounding_box()
    scale = min((640 - 20) / 100, (360 - 20) / 50)  # the map's transform: 10 px margin
    page.mouse.click(box["x"] + (10 + 5 * scale) * box["width"] / 640, box["y"] + (10 + 25 * scale) * box["height"] / 360)
    page.wait_for_selector("#pixel-detail h3")
    assert page.locator("#pixel-detail h3").inner_text() == "Pixel 1"
    assert page.locator("[data-count=pixel-by]").inner_text() == "qr"
    page.fill("#pixel-detail-reason", "laser pointer")
    page.click("#pixel-detail-exclude")
    _text_has(page, "#exclude-status", "Pixel 1 excluded")
    pixel = client.get(f"/api/scenes/{sid}/pixels/1", headers=auth(owner_token)).json
    assert (pixel["status"], pixel["excluded_reason"]) == ("excluded", "laser pointer")

    # The start is at least one check-in ahead, whatever is typed, and the page says when.
    assert page.input_value("#show-delay") == str(MIN_LEAD_MS // 1000)
    page.fill("#show-delay", "2")
    page.click("#show-start")
    page.wait_for_function("document.body.dataset.show === 'playing'")
    _text_has(page, "#show-status", "Phones begin at")
    show = client.get(f"/api/scenes/{sid}/show").json
    created = client.get("/api/time").json["server_ms"]
    assert show["start_ms"] - created > MIN_LEAD_MS - 3000
    assert page.input_value("#show-delay") == str(MIN_LEAD_MS // 1000)
    page.wait_for_selector("[data-count=live-fetched]")
    page.click("#show-stop")
    page.wait_for_function("document.body.dataset.show !== 'playing'")
    assert client.get(f"/api/scenes/{sid}/show").json["start_ms"] is None
    assert [e for e in errors if e.startswith("pageerror")] == []


def test_dashboard_fits_a_phone_and_its_selects_are_dark(live_server, new_context, session):
    owner, owner_token = make_user(session, "scene_admin")
    make_scene(live_server.app.test_client(), owner_token, anchors=[{"key": "A1", "x": 1, "y": 1}])
    page = new_context(390, 844).new_page()
    errors = console_errors(page)
    _ready(page, f"{live_server.url}/operator", owner)
    page.wait_for_selector("#frames-card:not([hidden])")
    assert page.evaluate("document.scrollingElement.scrollWidth <= window.innerWidth")
    assert page.evaluate("getComputedStyle(document.getElementById('scene-select')).colorScheme") == "dark"
    assert [e for e in errors if e.startswith("pageerror")] == []


def test_an_operator_sees_only_their_scenes(live_server, new_context, session):
    _, other_token = make_user(session, "scene_admin")
    make_scene(live_server.app.test_client(), other_token, name="Someone else's")
    mine, mine_token = make_user(session, "scene_admin")
    make_scene(live_server.app.test_client(), mine_token, name="Mine")
    page = new_context(1000, 900).new_page()
    _ready(page, f"{live_server.url}/operator", mine)
    options = page.locator("#scene-select option").all_inner_texts()
    assert len(options) == 1 and "Mine" in options[0], options


def test_a_new_person_signs_up_and_is_told_how_to_get_scene_admin(live_server, new_context, session):
    page = new_context(1000, 900).new_page()
    errors = console_errors(page)
    page.goto(f"{live_server.url}/operator")
    page.click("#show-signup")
    page.fill("#signup-email", "new.operator@example.org")
    page.fill("#signup-password", "short")
    page.click("#signup-form button[type=submit]")
    _text_has(page, "#signup-form .error", "at least 10 characters")
    page.fill("#signup-password", "a long enough password")
    page.click("#signup-form button[type=submit]")
    page.wait_for_function("document.body.dataset.state === 'ready'")
    assert page.locator("#rights-note").is_visible()
    assert "c3s grant --email new.operator@example.org --permission scene_admin" in page.locator("#rights-note").inner_text()
    assert page.locator("#new-scene").is_disabled()
    assert [e for e in errors if e.startswith("pageerror")] == []
