"""The observer's sync check in a real browser: the page syncs its clock, films the crowd with
the camera (Chromium's fake camera here) and uploads the clip with its start on the server
clock, so the blink job can time every phone it sees."""

from __future__ import annotations

import pytest

from tests.browser.conftest import console_errors
from tests.browser.helpers import server_ms
from tests.browser.test_observer_page import log_in
from tests.helpers.factories import auth, make_scene, make_user

pytestmark = pytest.mark.browser


def test_a_sync_check_filmed_on_the_page_carries_its_start_on_the_server_clock(live_server, new_context,
                                                                                 session):
    owner, token = make_user(session, "scene_admin", "observer")
    client = live_server.app.test_client()
    scene = make_scene(client, token, method="blink")["id"]
    context = new_context(900, 900)
    context.grant_permissions(["camera"])
    page = context.new_page()
    errors = console_errors(page)
    page.goto(f"{live_server.url}/observe/{scene}?sync_record_ms=1500")
    log_in(page, owner)
    page.wait_for_function("document.body.dataset.state === 'ready'")
    assert page.locator("#sync-check-button").is_visible()
    clicked = server_ms()
    page.click("#sync-check-button")
    page.wait_for_function("window.c3s.syncCheck && ['done', 'failed'].includes(window.c3s.syncCheck.job.status)",
                           timeout=60_000)
    check = page.evaluate("window.c3s.syncCheck")
    assert clicked < check["startMs"] < clicked + 5000  # the recorder's start on the server clock
    job = client.get(f"/api/scenes/{scene}/jobs/{check['job']['id']}", headers=auth(token)).json
    assert job["method"] == "blink" and job["stats"]["options"]["start_ms"] == pytest.approx(check["startMs"])
    assert 1 <= job["stats"]["options"]["fps"] <= 60
    # The fake camera films no phone: the job says so rather than timing anything.
    assert job["status"] == "done", job["reason"]
    assert job["stats"]["sync"]["phones"] == 0
    assert "No phone could be timed" in page.locator("#sync-check-status").inner_text()
    assert [e for e in errors if e.startswith("pageerror")] == []
