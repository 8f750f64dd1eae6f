"""The dashboard's sync card in a real browser: after a calibration clip and a sync check, the
operator sees the newest check's figures, its histogram and the scene coloured by offset."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from c3s.models import Pixel
from tests.browser.conftest import console_errors
from tests.browser.test_observer_page import log_in
from tests.helpers.factories import make_scene, make_user
from tests.web.test_show import add_pixels
from tests.web.test_sync import blink_job

pytestmark = pytest.mark.browser


def element_rgb(page, selector: str) -> np.ndarray:
    png = page.locator(selector).screenshot(animations="allow")
    return cv2.cvtColor(cv2.imdecode(np.frombuffer(png, np.uint8), cv2.IMREAD_COLOR), cv2.COLOR_BGR2RGB)


def test_the_sync_card_shows_the_newest_check(live_server, new_context, session):
    owner, owner_token = make_user(session, "scene_admin")
    scene = make_scene(live_server.app.test_client(), owner_token, method="blink")["id"]
    add_pixels(session, scene, [(5.0 + 10 * i, 5.0 + 10 * j) for j in range(4) for i in range(10)])
    ids = [p.id for p in session.query(Pixel).filter(Pixel.scene_id == scene).order_by(Pixel.number)]
    blink_job(session, scene, {pixel: 40.0 + k for k, pixel in enumerate(ids)})
    late = set(ids[:10])  # the first row of the stand is still 12 ms late after the correction
    blink_job(session, scene, {pixel: 12.0 if pixel in late else 0.5 for pixel in ids})

    page = new_context(1200, 2400).new_page()
    errors = console_errors(page)
    # Seven phones a page: the card follows the report's `next` links to draw all 40.
    page.goto(f"{live_server.url}/operator?refresh_ms=500&sync_limit=7")
    log_in(page, owner)
    page.wait_for_function("window.c3s.sync && window.c3s.sync.check", timeout=15_000)
    assert page.evaluate("window.c3s.sync.check.pixels.numbers") == list(range(40))
    assert page.locator("#sync-card").is_visible()
    figures = page.locator("#sync-figures").inner_text()
    assert "Phones timed\n40" in figures and "Phones corrected\n40" in figures
    assert "95 % land within\n12.0 ms" in figures and "Worst section\nA" in figures
    assert "Earlier checks (p95)" in figures
    for canvas in ("#sync-histogram", "#sync-map"):
        shot = element_rgb(page, canvas)
        assert shot.reshape(-1, 3).std(axis=0).max() > 10, canvas  # drawn, not blank
    # The map shows on-time phones green and the late row orange.
    shot = element_rgb(page, "#sync-map").reshape(-1, 3).astype(int)
    green = ((shot[:, 1] > 200) & (shot[:, 0] < 120)).sum()
    red = ((shot[:, 0] > 200) & (shot[:, 1] < 160) & (shot[:, 2] < 80)).sum()  # not the outline
    assert 2 * red < green < 4 * red  # 30 phones on time, 10 late: the same squares
    assert [e for e in errors if e.startswith("pageerror")] == []
