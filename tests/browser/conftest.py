"""Real-browser fixtures: the app served for real on a free loopback port, and Debian's
headless Chromium driven by Playwright (never a downloaded browser)."""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import pytest
from werkzeug.serving import WSGIRequestHandler, make_server

CHROMIUM = os.environ.get("C3S_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
    "--disable-sync",
    # Many pixel tabs play at once in the end-to-end test: none may be throttled as "hidden".
    "--disable-background-timer-throttling", "--disable-renderer-backgrounding",
    "--disable-backgrounding-occluded-windows",
    # A synthetic microphone (a beep) for the sound calibration page, allowed without a prompt.
    "--use-fake-device-for-media-stream", "--use-fake-ui-for-media-stream",
]


@dataclass
class LiveServer:
    url: str
    app: object


class _QuietHandler(WSGIRequestHandler):
    def log_request(self, *args, **kwargs) -> None:  # hundreds of polls would drown the report
        pass


def _serve(app) -> Iterator[LiveServer]:
    server = make_server("127.0.0.1", 0, app, threaded=True, request_handler=_QuietHandler)
    thread = threading.Thread(target=server.serve_forever, name="c3s-live-server", daemon=True)
    thread.start()
    try:
        yield LiveServer(url=f"http://127.0.0.1:{server.server_port}", app=app)
    finally:
        server.shutdown()
        thread.join(timeout=10)
        server.server_close()


@pytest.fixture()
def live_server(app) -> Iterator[LiveServer]:
    """The app (test PostgreSQL and Redis, tasks in process) served over real HTTP."""
    yield from _serve(app)


@pytest.fixture()
def worker_server(worker_app) -> Iterator[LiveServer]:
    """The app wired to the real Celery worker, served over real HTTP."""
    yield from _serve(worker_app)


@pytest.fixture(scope="session")
def browser():
    """Headless Chromium from Debian. A missing browser fails the browser tests (never skips)."""
    if not os.access(CHROMIUM, os.X_OK):
        pytest.fail(f"Chromium is missing at {CHROMIUM}: install the Debian package 'chromium' "
                    "(make system, or ops/dev/system-deps.sh)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        yield browser
        browser.close()


@pytest.fixture()
def new_context(browser) -> Iterator[Callable]:
    """Make browser contexts (separate storage, like separate phones); all closed afterwards."""
    contexts = []

    def make(width: int = 360, height: int = 640, **options):
        context = browser.new_context(viewport={"width": width, "height": height}, **options)
        context.set_default_timeout(15_000)
        contexts.append(context)
        return context

    yield make
    for context in contexts:
        context.close()


def console_errors(page) -> list[str]:
    """Collect the page's JavaScript errors (uncaught exceptions and console errors)."""
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(f"pageerror: {error}"))
    page.on("console", lambda message: errors.append(f"console: {message.text}")
            if message.type == "error" else None)
    return errors


from tests.browser.webkit import new_webkit, xvfb_display  # noqa: E402,F401 - WebKitGTK fixtures
