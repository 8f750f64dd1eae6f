"""The pixel page as a product on phone-sized screens: the seat form scrolls on an iPhone 14
viewport, the full-screen control is visible and never covers the code, the hint bar shows all
its lines, a placed phone hears so within seconds (at the page's own check-in pace) in the words
of its method, the waiting screen counts down, and an excluded phone reads the moderator's reason."""

from __future__ import annotations

import time

import pytest
from sqlalchemy import text

from c3s.checkin import PLACING_CHECKIN_MS
from tests.browser.conftest import console_errors
from tests.browser.test_calibration_methods import SEATS
from tests.helpers.factories import auth, make_scene, make_user, multipart, png, quadrant_frame

pytestmark = pytest.mark.browser
IPHONE_14 = (390, 664)  # CSS pixels left to the page by Safari's bars


def _open(context, url: str, state: str = "calibrating"):
    page = context.new_page()
    errors = console_errors(page)
    page.goto(url)
    page.wait_for_function(f"document.body.dataset.state === '{state}'")
    return page, errors


def _box(page, selector: str) -> dict:
    return page.locator(selector).bounding_box()


def _place(session, scene_id: int, number: int, x: float = 10.0, y: float = 10.0) -> None:
    session.execute(text(
        "UPDATE pixels SET status = 'located', x = :x, y = :y, sigma = 0.1, confidence = 1, "
        "located_by = 'qr', located_at = now() WHERE scene_id = :s AND number = :n"),
        {"x": x, "y": y, "s": scene_id, "n": number})
    session.execute(text("UPDATE scenes SET layout_version = layout_version + 1 WHERE id = :s"), {"s": scene_id})
    session.commit()


def test_qr_phone_full_screen_control_hint_and_placement_within_seconds(live_server, new_context, session):
    _, owner = make_user(session, "scene_admin")
    scene = make_scene(live_server.app.test_client(), owner)
    page, errors = _open(new_context(*IPHONE_14), f"{live_server.url}/s/{scene['id']}")
    page.wait_for_function("document.getElementById('qr')?.complete")
    assert page.evaluate("window.c3s.placingPollMs") == PLACING_CHECKIN_MS

    button, code, hint = _box(page, "#fullscreen-button"), _box(page, "#qr"), _box(page, "#hint")
    assert button["width"] > 40 and button["height"] > 30  # visible, not 0 x 0
    assert button["y"] >= code["y"] + code["height"] - 1  # in the hint bar, below the code
    assert code["y"] + code["height"] <= hint["y"] + 1  # the code is not under the hint bar
    assert button["y"] + button["height"] <= IPHONE_14[1]
    # Every line of the hint shows: nothing is cut off.
    assert page.evaluate("(() => { const h = document.getElementById('hint'); "
                         "return h.scrollHeight <= h.clientHeight + 1; })()")

    placed_at = time.monotonic()
    _place(session, scene["id"], 0)
    page.wait_for_function("document.body.dataset.placed === 'yes'", timeout=10_000)
    assert time.monotonic() - placed_at < PLACING_CHECKIN_MS * 1.25 / 1000 + 2
    assert "Keep holding it up" in page.locator("#hint").inner_text()
    assert [e for e in errors if e.startswith("pageerror")] == []


def test_seat_form_scrolls_on_an_iphone_and_seat_users_are_not_told_to_hold_it_up(
        live_server, new_context, session):
    _, owner = make_user(session, "scene_admin")
    client = live_server.app.test_client()
    scene = make_scene(client, owner, method="seat", units="seat")
    assert client.put(f"/api/scenes/{scene['id']}/seatmap", data=SEATS, content_type="text/csv",
                      headers=auth(owner)).status_code == 200
    page, errors = _open(new_context(*IPHONE_14), f"{live_server.url}/s/{scene['id']}")
    page.fill("#seat-section", "A")
    page.fill("#seat-row", "1")
    page.fill("#seat-seat", "9")
    page.locator("#seat-form button[type=submit]").click()
    page.wait_for_selector("#seat-suggestions button")
    page.evaluate("window.scrollTo(0, 0)")
    assert page.evaluate("document.scrollingElement.scrollHeight") > IPHONE_14[1]
    page.mouse.move(200, 300)
    page.mouse.wheel(0, 2000)  # a person's scroll, not a script's
    page.wait_for_function("window.scrollY > 0")
    submit = _box(page, "#seat-form button[type=submit]")
    assert 0 <= submit["y"] and submit["y"] + submit["height"] <= IPHONE_14[1]
    page.locator("#seat-suggestions button").first.click()
    page.locator("#seat-form button[type=submit]").click()
    page.wait_for_function("document.body.dataset.placed === 'yes'", timeout=10_000)
    assert page.locator("#headline").inner_text() == "You are on the screen"
    assert "holding" not in page.locator("#panel").inner_text().lower()
    assert page.locator("#hint").is_hidden()
    assert [e for e in errors if e.startswith("pageerror")] == []


def test_waiting_screen_counts_down_then_plays(live_server, new_context, session):
    _, owner = make_user(session, "scene_admin")
    client = live_server.app.test_client()
    scene = make_scene(client, owner)
    frame = png(quadrant_frame(((255, 0, 0),) * 4, 64, 32))
    assert client.post(f"/api/scenes/{scene['id']}/frames", headers=auth(owner),
                       **multipart(file=(frame, "red.png"), duration_ms="2000")).status_code == 201
    page, errors = _open(new_context(*IPHONE_14), f"{live_server.url}/s/{scene['id']}?poll_ms=300")
    _place(session, scene["id"], 0, 50, 25)
    page.wait_for_function("document.body.dataset.placed === 'yes'")
    start = client.post(f"/api/scenes/{scene['id']}/show", headers=auth(owner),
                        json={"start_at_ms": time.time() * 1000 + 6000}).json
    page.wait_for_function("document.body.dataset.state === 'waiting'", timeout=10_000)
    assert page.locator("#countdown").is_visible()
    assert "The show starts in" in page.locator("#countdown").inner_text()
    first = page.evaluate("window.c3s.countdown")
    page.wait_for_timeout(1300)
    assert page.evaluate("window.c3s.countdown") < first
    page.wait_for_function("document.body.dataset.state === 'playing'", timeout=15_000)
    assert time.time() * 1000 >= start["start_ms"] - 50
    assert page.locator("#countdown").is_hidden()
    assert [e for e in errors if e.startswith("pageerror")] == []


def test_an_excluded_phone_reads_the_moderators_reason(live_server, new_context, session):
    _, owner = make_user(session, "scene_admin")
    client = live_server.app.test_client()
    scene = make_scene(client, owner)
    page, errors = _open(new_context(*IPHONE_14), f"{live_server.url}/s/{scene['id']}?poll_ms=300")
    client.post(f"/api/scenes/{scene['id']}/pixels/0/exclude", json={"reason": "flash photography"},
                headers=auth(owner))
    page.wait_for_function("document.body.dataset.state === 'excluded'")
    assert page.locator("#message").inner_text() == "flash photography"
    page.reload()
    page.wait_for_function("document.body.dataset.state === 'excluded'")
    assert page.locator("#message").inner_text() == "flash photography"
    assert [e for e in errors if e.startswith("pageerror")] == []


def test_without_the_fullscreen_api_an_iphone_is_told_to_add_to_home_screen(live_server, new_context, session):
    """Safari on an iPhone has no Fullscreen API: no dead button, the home-screen way instead."""
    _, owner = make_user(session, "scene_admin")
    scene = make_scene(live_server.app.test_client(), owner, method="seat", units="seat")
    context = new_context(*IPHONE_14, user_agent=(
        "Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) "
        "Version/17.0 Mobile/15E148 Safari/604.1"))
    context.add_init_script("Object.defineProperty(Document.prototype, 'fullscreenEnabled', { get: () => false });")
    page, errors = _open(context, f"{live_server.url}/s/{scene['id']}")
    assert page.locator("#fullscreen-button").is_hidden()
    assert "Add to Home Screen" in page.locator("#home-screen-note").inner_text()
    assert page.locator("#home-screen-note").is_visible()
    assert [e for e in errors if e.startswith("pageerror")] == []
