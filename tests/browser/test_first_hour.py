"""The first hour of a real operator on a fresh app, in Chromium and in WebKitGTK: `c3s
create-admin`, the landing page, log in, create a scene and set its anchors, fetch both posters,
add a frame, two phones join and show their codes, an observer's photo (the phones' screens and
the anchor posters as printed) places them, and the show, started with the default lead, plays
on both phones in the colour of their half of the frame.

With C3S_SCREENSHOT_DIR set, the Chromium run saves the dashboard steps and the phone states
there (the README's pictures in docs/)."""

from __future__ import annotations

import base64
import os
from pathlib import Path

import cv2
import numpy as np
import pypdfium2
import pytest
import zxingcpp
from click.testing import CliRunner

from c3s import posters
from c3s.checkin import MIN_LEAD_MS
from c3s.cli import main
from c3s.vision.qrcode import anchor_payload
from tests.browser.helpers import compose_photo, encode_jpeg
from tests.browser.webkit import wait_js
from tests.helpers.factories import auth, multipart

pytestmark = [pytest.mark.browser, pytest.mark.slow]

EMAIL, PASSWORD = "boss@example.org", "first hour password"
SCENE = (100.0, 60.0)
ANCHORS = [("A1", 8, 8), ("A2", 92, 8), ("A3", 92, 52), ("A4", 8, 52)]
PHONES = [(30.0, 30.0), (70.0, 30.0)]  # left half red, right half blue
TILE_PX, PX_PER_UNIT = 150, 14
SHOTS = os.environ.get("C3S_SCREENSHOT_DIR")


class Chromium:
    """A Playwright page behind the few verbs the test needs."""

    def __init__(self, page):
        self.page = page

    def open(self, url):
        self.page.goto(url)

    def fill(self, element_id, value):
        self.page.fill(f"#{element_id}", value)

    def choose(self, element_id, value):
        self.page.select_option(f"#{element_id}", value)

    def click(self, selector):
        self.page.click(selector)

    def upload(self, element_id, path):
        self.page.set_input_files(f"#{element_id}", str(path))

    def js(self, expression):
        return self.page.evaluate(expression)

    def wait(self, condition, timeout_s=15):
        self.page.wait_for_function(condition, timeout=timeout_s * 1000)

    def screenshot(self) -> np.ndarray:
        return cv2.imdecode(np.frombuffer(self.page.screenshot(), np.uint8), cv2.IMREAD_COLOR)

    def save(self, name, selector=None):
        """Keep a picture of the page (or of one part of it) for the README."""
        if not SHOTS:
            return
        Path(SHOTS).mkdir(parents=True, exist_ok=True)
        path = str(Path(SHOTS) / f"{name}.png")
        if selector:  # the sticky step bar would cover the part's top in the picture
            self.page.evaluate("document.getElementById('steps') && (document.getElementById('steps').style.position = 'static')")
            self.page.locator(selector).screenshot(path=path)
            self.page.evaluate("document.getElementById('steps') && (document.getElementById('steps').style.position = '')")
        else:
            self.page.screenshot(path=path)


class WebKit(Chromium):
    """A Selenium WebKitGTK driver behind the same verbs."""

    def __init__(self, driver):
        self.driver = driver

    def open(self, url):
        self.driver.get(url)

    def _element(self, selector):
        from selenium.webdriver.common.by import By

        return self.driver.find_element(By.CSS_SELECTOR, selector)

    def fill(self, element_id, value):
        element = self._element(f"#{element_id}")
        element.clear()
        if "\n" in value:  # WebKitWebDriver types "\n" as nothing: set the lines directly
            self.driver.execute_script("arguments[0].value = arguments[1]", element, value)
        else:
            element.send_keys(value)

    def choose(self, element_id, value):
        self.driver.execute_script(
            "const s = document.getElementById(arguments[0]); s.value = arguments[1];"
            "s.dispatchEvent(new Event('change'));", element_id, value)

    def click(self, selector):
        element = self._element(selector)
        self.driver.execute_script("arguments[0].scrollIntoView({block: 'center'})", element)
        element.click()

    def upload(self, element_id, path):
        self._element(f"#{element_id}").send_keys(str(path))

    def js(self, expression):
        return self.driver.execute_script(f"return ({expression});")

    def wait(self, condition, timeout_s=15):
        wait_js(self.driver, condition, timeout_s)

    def screenshot(self) -> np.ndarray:
        return cv2.imdecode(np.frombuffer(self.driver.get_screenshot_as_png(), np.uint8), cv2.IMREAD_COLOR)

    def save(self, name, selector=None):
        pass


def _fetch_with_session(browser, path: str) -> tuple[int, str, bytes]:
    """Fetch a file as the dashboard's download buttons do: with the page's session token."""
    script = f"""(async () => {{
        const r = await fetch({path!r}, {{ headers: {{ Authorization: 'Bearer ' + localStorage.getItem('c3s.session_token') }} }});
        const bytes = new Uint8Array(await r.arrayBuffer());
        let text = ''; for (const b of bytes) text += String.fromCharCode(b);
        return [r.status, r.headers.get('Content-Type'), btoa(text)];
    }})()"""
    if isinstance(browser, WebKit):
        status, kind, data = browser.driver.execute_async_script(
            f"const done = arguments[arguments.length - 1]; {script}.then(done);")
    else:
        status, kind, data = browser.js(script)
    return status, kind, base64.b64decode(data)


def _anchor_tiles(pdf: bytes, scene_id: int) -> list[tuple[np.ndarray, float, float]]:
    """Each anchor poster as printed, cut to its code (quiet zone included), as a photo tile."""
    module = posters.anchor_module_mm("a4")
    side_mm = module * 29
    tiles = []
    for (key, x, y), page in zip(ANCHORS, pypdfium2.PdfDocument(pdf), strict=True):
        scale = TILE_PX / side_mm  # pixels per mm
        rgb = np.asarray(page.render(scale=scale * 25.4 / 72).to_pil().convert("RGB"))
        left, top = int(round((210 - side_mm) / 2 * scale)), int(round(posters.MARGIN_MM * scale))
        tile = np.ascontiguousarray(rgb[top:top + TILE_PX, left:left + TILE_PX])
        assert [r.text for r in zxingcpp.read_barcodes(tile)] == [anchor_payload(scene_id, key)]
        tiles.append((tile, x, y))
    return tiles


def _code_tile(phone) -> np.ndarray:
    rect = phone.js("document.getElementById('qr').getBoundingClientRect().toJSON()")
    shot = phone.screenshot()
    ratio = shot.shape[1] / phone.js("window.innerWidth")
    x, y, side = (int(round(rect[k] * ratio)) for k in ("x", "y", "width"))
    crop = cv2.cvtColor(shot[y:y + side, x:x + side], cv2.COLOR_BGR2RGB)
    return cv2.resize(crop, (TILE_PX, TILE_PX), interpolation=cv2.INTER_AREA)


def _frame_file(tmp_path: Path) -> Path:
    image = np.zeros((300, 500, 3), np.uint8)
    image[:, :250] = (0, 0, 255)  # BGR: red on the left
    image[:, 250:] = (255, 0, 0)  # blue on the right
    path = tmp_path / "halves.png"
    cv2.imwrite(str(path), image)
    return path


def _log_in_and_create_scene(operator, base_url: str) -> None:
    operator.open(base_url + "/")
    assert "giant screen" in operator.js("document.body.textContent")
    operator.click("a[href='/operator']")
    operator.wait("!document.getElementById('login-form').hidden")
    operator.save("dashboard-1-login", "#login-form")
    operator.fill("login-email", EMAIL)
    operator.fill("login-password", PASSWORD)
    operator.click("#login-form button[type=submit]")
    operator.wait("document.body.dataset.state === 'ready'")
    operator.fill("scene-name", "Main stand")
    operator.choose("scene-method", "qr")
    operator.fill("scene-width", str(SCENE[0]))
    operator.fill("scene-height", str(SCENE[1]))
    operator.save("dashboard-2-new-scene", "#scene-form")
    operator.click("#scene-save")
    operator.wait("document.getElementById('scene-saved').textContent.includes('created')")
    operator.fill("scene-anchors", "\n".join(f"{k} {x} {y}" for k, x, y in ANCHORS))
    operator.click("#setup-save")
    operator.wait("document.getElementById('setup-status').textContent.includes('saved')")
    operator.save("dashboard-3-set-up", "#setup-card")


def _posters(operator, scene_id: int) -> bytes:
    status, kind, join = _fetch_with_session(operator, f"/api/scenes/{scene_id}/posters/join")
    assert (status, kind) == (200, "application/pdf")
    [page] = pypdfium2.PdfDocument(join)
    gray = np.asarray(page.render(scale=100 / 72, grayscale=True).to_pil().convert("L"))
    assert [r.text for r in zxingcpp.read_barcodes(gray)][0].endswith(f"/s/{scene_id}")
    status, kind, anchors = _fetch_with_session(operator, f"/api/scenes/{scene_id}/posters/anchors")
    assert (status, kind) == (200, "application/pdf") and len(pypdfium2.PdfDocument(anchors)) == 4
    return anchors


def first_hour(base_url: str, app, pg_url: str, operator, phones, tmp_path: Path) -> None:
    made = CliRunner().invoke(main, ["create-admin", "--email", EMAIL],
                              env={"C3S_DATABASE_URL": pg_url, "C3S_ADMIN_PASSWORD": PASSWORD})
    assert made.exit_code == 0, made.output
    _log_in_and_create_scene(operator, base_url)
    client = app.test_client()
    token = client.post("/api/tokens", json={"email": EMAIL, "password": PASSWORD}).json["token"]
    [scene] = client.get("/api/scenes", headers=auth(token)).json
    sid = scene["id"]
    anchor_pdf = _posters(operator, sid)

    operator.upload("frame-file", _frame_file(tmp_path))
    operator.fill("frame-duration", "30000")
    operator.click("#frame-upload")
    operator.wait("document.querySelectorAll('#frames .frame').length === 1")

    for phone in phones:
        phone.open(f"{base_url}/s/{sid}")
        phone.wait("document.body.dataset.state === 'calibrating' && document.getElementById('qr')?.complete")
    phones[0].save("phone-1-code")
    numbers = [phone.js("window.c3s.number") for phone in phones]
    tiles = [(_code_tile(phone), x, y) for phone, (x, y) in zip(phones, PHONES, strict=True)]
    photo = compose_photo(tiles + _anchor_tiles(anchor_pdf, sid), SCENE, px_per_unit=PX_PER_UNIT,
                          photo_size=(1600, 1000), tilt=0.08)
    job = client.post(f"/api/scenes/{sid}/jobs", headers=auth(token), **multipart(file=(encode_jpeg(photo), "stand.jpg")))
    assert job.status_code == 202, job.json
    assert client.get(f"/api/scenes/{sid}/jobs/{job.json['id']}", headers=auth(token)).json["status"] == "done"
    for phone in phones:
        phone.wait("document.body.dataset.placed === 'yes'", timeout_s=10)
    phones[0].save("phone-2-placed")
    for number, (x, _) in zip(numbers, PHONES, strict=True):
        pixel = client.get(f"/api/scenes/{sid}/pixels/{number}", headers=auth(token)).json
        assert pixel["status"] == "located" and abs(pixel["x"] - x) < 2, pixel

    operator.wait("document.querySelector('[data-count=\"Placed\"]')?.textContent === '2'", timeout_s=15)
    operator.wait("document.querySelector('#frames canvas')?.dataset.rendered === 'yes'", timeout_s=15)
    operator.save("dashboard-4-calibration", "#calibration-card")
    operator.save("dashboard-5-frames", "#frames-card")
    operator.click("#show-start")
    operator.wait("document.getElementById('show-status').textContent.includes('Phones begin at')")
    operator.save("dashboard-6-show", "#show-card")
    start_ms = client.get(f"/api/scenes/{sid}/show").json["start_ms"]
    assert start_ms - client.get("/api/time").json["server_ms"] > MIN_LEAD_MS - 5000
    for phone in phones:
        phone.wait("document.body.dataset.state === 'waiting'", timeout_s=20)
        assert "The show starts in" in phone.js("document.getElementById('countdown').textContent")
    phones[0].save("phone-3-waiting")
    for phone, channel in zip(phones, (0, 2), strict=True):  # red on the left, blue on the right
        phone.wait("document.body.dataset.state === 'playing'", timeout_s=MIN_LEAD_MS / 1000 + 10)
        shown = phone.js("getComputedStyle(document.getElementById('screen')).backgroundColor")
        rgb = [int(v) for v in shown[shown.index("(") + 1:-1].split(",")[:3]]
        # Two phones share the scene, so each one's footprint reaches a little over the edge.
        assert rgb[channel] > 200 and rgb[2 - channel] < 100 and rgb[1] < 60, shown
    phones[1].save("phone-4-playing")
    operator.wait("Number(document.querySelector('[data-count=live-playing]')?.textContent) === 2", timeout_s=10)


def test_first_hour_in_chromium(live_server, new_context, pg_url, tmp_path):
    operator = Chromium(new_context(1100, 1300).new_page())
    phones = [Chromium(new_context(390, 664).new_page()) for _ in PHONES]
    first_hour(live_server.url, live_server.app, pg_url, operator, phones, tmp_path)


def test_first_hour_in_webkitgtk(live_server, new_webkit, pg_url, tmp_path):
    operator = WebKit(new_webkit(1100, 1300))
    phones = [WebKit(new_webkit(390, 844)) for _ in PHONES]
    first_hour(live_server.url, live_server.app, pg_url, operator, phones, tmp_path)
