"""The landing page leads to the dashboard and to a scene; the API docs render with no network
but this server's (Swagger UI's files are served locally)."""

from __future__ import annotations

import pytest

from tests.browser.conftest import console_errors

pytestmark = pytest.mark.browser


def test_landing_page_leads_to_a_scene_and_the_docs_work_offline(live_server, new_context):
    context = new_context(1000, 900)
    outside = []

    def only_this_server(route):
        if route.request.url.startswith(live_server.url):
            return route.continue_()
        outside.append(route.request.url)
        return route.abort()

    context.route("**/*", only_this_server)
    page = context.new_page()
    errors = console_errors(page)
    page.goto(f"{live_server.url}/")
    assert "giant screen" in page.locator("main").inner_text()
    page.fill("#go-scene", "7")
    page.select_option("#go-where", "/observe/")
    page.click("#go-form button[type=submit]")
    page.wait_for_url(f"{live_server.url}/observe/7")

    page.goto(f"{live_server.url}/api/docs")
    page.wait_for_selector(".swagger-ui .info .title", timeout=20_000)
    assert "C3S API" in page.locator(".swagger-ui .info .title").inner_text()
    page.wait_for_selector(".opblock-tag", timeout=20_000)
    assert outside == [] and [e for e in errors if e.startswith("pageerror")] == []
