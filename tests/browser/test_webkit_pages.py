"""The pixel and operator pages in WebKitGTK (Safari's engine) through Selenium: the code on
screen decodes, the full-screen control is visible and clear of it, every hint line shows, a
placed phone hears so within seconds, an excluded phone reads its reason; the dashboard logs
in, creates a scene, shows only its method's fields, fits a phone and draws dark selects."""

from __future__ import annotations

import time

import cv2
import numpy as np
import pytest
import zxingcpp
from selenium.webdriver.common.by import By

from c3s.checkin import PLACING_CHECKIN_MS
from c3s.vision.qrcode import pixel_payload
from tests.browser.test_pixel_states import _place
from tests.browser.webkit import wait_js
from tests.helpers.factories import auth, make_scene, make_user

pytestmark = pytest.mark.browser


def _rect(driver, element_id: str) -> dict:
    return driver.execute_script(f"return document.getElementById('{element_id}').getBoundingClientRect().toJSON();")


def test_pixel_page_in_webkit(live_server, new_webkit, session):
    _, owner = make_user(session, "scene_admin")
    client = live_server.app.test_client()
    scene = make_scene(client, owner)
    phone = new_webkit(390, 844)
    phone.get(f"{live_server.url}/s/{scene['id']}")
    wait_js(phone, "document.body.dataset.state === 'calibrating' && document.getElementById('qr')?.complete")
    # The whole window as the observer's camera sees it (an element screenshot of an SVG image
    # comes back black in WebKitGTK).
    shot = cv2.imdecode(np.frombuffer(phone.get_screenshot_as_png(), np.uint8), cv2.IMREAD_GRAYSCALE)
    assert [r.text for r in zxingcpp.read_barcodes(shot)] == [pixel_payload(scene["id"], 0)]

    code, button, hint = _rect(phone, "qr"), _rect(phone, "fullscreen-button"), _rect(phone, "hint")
    if phone.execute_script("return document.fullscreenEnabled"):
        assert button["width"] > 40 and button["height"] > 30
        assert button["top"] >= code["bottom"] - 1  # in the hint bar, not on the code
    else:  # an engine without the Fullscreen API: no dead button
        assert button["width"] == 0
    assert code["bottom"] <= hint["top"] + 1
    assert phone.execute_script("const h = document.getElementById('hint'); return h.scrollHeight <= h.clientHeight + 1;")

    placed_at = time.monotonic()
    _place(session, scene["id"], 0)
    wait_js(phone, "document.body.dataset.placed === 'yes'", timeout_s=10)
    assert time.monotonic() - placed_at < PLACING_CHECKIN_MS * 1.25 / 1000 + 2

    client.post(f"/api/scenes/{scene['id']}/pixels/0/exclude", json={"reason": "flash photography"},
                headers=auth(owner))
    phone.refresh()
    wait_js(phone, "document.body.dataset.state === 'excluded'")
    assert phone.find_element(By.ID, "message").text == "flash photography"


def test_operator_page_in_webkit(live_server, new_webkit, session):
    owner, owner_token = make_user(session, "scene_admin")
    client = live_server.app.test_client()
    browser = new_webkit(390, 844)
    browser.get(f"{live_server.url}/operator")
    wait_js(browser, "!document.getElementById('login-form').hidden")
    browser.find_element(By.ID, "login-email").send_keys(owner.email)
    browser.find_element(By.ID, "login-password").send_keys("correct horse battery")
    browser.find_element(By.CSS_SELECTOR, "#login-form button[type=submit]").click()
    wait_js(browser, "document.body.dataset.state === 'ready'")
    assert browser.execute_script("return getComputedStyle(document.getElementById('scene-select')).colorScheme") == "dark"

    browser.find_element(By.ID, "scene-name").send_keys("Webkit stand")
    browser.execute_script("document.getElementById('scene-method').value = 'gps'")
    browser.find_element(By.ID, "scene-width").send_keys("80")
    browser.find_element(By.ID, "scene-height").send_keys("30")
    browser.find_element(By.ID, "scene-save").click()
    wait_js(browser, "document.getElementById('scene-saved').textContent.includes('created')")
    [scene] = client.get("/api/scenes", headers=auth(owner_token)).json
    assert (scene["name"], scene["method"]) == ("Webkit stand", "gps")
    assert browser.find_element(By.ID, "geo-lat").is_displayed()
    assert not browser.find_element(By.ID, "scene-anchors").is_displayed()
    wait_js(browser, "document.querySelector('#show-warnings')?.textContent.includes('No phone is placed')")
    assert browser.execute_script("return document.scrollingElement.scrollWidth <= window.innerWidth")


def test_seat_form_in_webkit_scrolls_and_claims(live_server, new_webkit, session):
    from tests.browser.test_calibration_methods import SEATS

    _, owner = make_user(session, "scene_admin")
    client = live_server.app.test_client()
    scene = make_scene(client, owner, method="seat", units="seat")
    assert client.put(f"/api/scenes/{scene['id']}/seatmap", data=SEATS, content_type="text/csv",
                      headers=auth(owner)).status_code == 200
    phone = new_webkit(390, 600)
    phone.get(f"{live_server.url}/s/{scene['id']}")
    wait_js(phone, "document.body.dataset.state === 'calibrating'")
    for field, value in (("seat-section", "A"), ("seat-row", "1"), ("seat-seat", "9")):
        phone.find_element(By.ID, field).send_keys(value)
    phone.find_element(By.CSS_SELECTOR, "#seat-form button[type=submit]").click()
    wait_js(phone, "document.querySelector('#seat-suggestions button')")
    assert phone.execute_script("return getComputedStyle(document.body).overflowY") != "hidden"
    assert phone.execute_script("return document.scrollingElement.scrollHeight > window.innerHeight")
    phone.execute_script("window.scrollTo(0, document.scrollingElement.scrollHeight)")
    wait_js(phone, "window.scrollY > 0")
    submit = phone.execute_script(
        "return document.querySelector('#seat-form button[type=submit]').getBoundingClientRect().toJSON()")
    assert 0 <= submit["top"] and submit["bottom"] <= phone.execute_script("return window.innerHeight")
    phone.find_element(By.CSS_SELECTOR, "#seat-suggestions button").click()
    phone.find_element(By.CSS_SELECTOR, "#seat-form button[type=submit]").click()
    wait_js(phone, "document.body.dataset.placed === 'yes'", timeout_s=10)
    assert phone.find_element(By.ID, "headline").text == "You are on the screen"
    assert "holding" not in phone.find_element(By.ID, "panel").text.lower()
