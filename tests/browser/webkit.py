"""WebKitGTK (Safari's engine) for the browser tests: Debian's WebKitWebDriver drives its
MiniBrowser through Selenium, on an Xvfb display of its own. A missing package fails the tests
that need it (install `webkit2gtk-driver` and `xvfb`: ops/dev/system-deps.sh), never skips them."""

from __future__ import annotations

import glob
import os
import shutil
import subprocess
from collections.abc import Callable, Iterator

import pytest

DRIVER = os.environ.get("C3S_WEBKIT_DRIVER", "/usr/bin/WebKitWebDriver")


def _minibrowser() -> str | None:
    found = sorted(glob.glob("/usr/lib/*/webkit*gtk*/MiniBrowser") + glob.glob("/usr/libexec/webkit*gtk*/MiniBrowser"))
    return os.environ.get("C3S_WEBKIT_BROWSER") or (found[-1] if found else None)


@pytest.fixture(scope="session")
def xvfb_display() -> Iterator[str]:
    """A private X display (Xvfb picks a free number and tells it on a pipe)."""
    if shutil.which("Xvfb") is None:
        pytest.fail("Xvfb is missing: install the Debian package 'xvfb' (ops/dev/system-deps.sh)")
    read, write = os.pipe()
    process = subprocess.Popen(["Xvfb", "-displayfd", str(write), "-screen", "0", "1400x1800x24",
                                "-nolisten", "tcp"], pass_fds=(write,), stdout=subprocess.DEVNULL,
                               stderr=subprocess.DEVNULL)
    os.close(write)
    with os.fdopen(read) as pipe:
        number = pipe.readline().strip()
    if not number:
        process.kill()
        pytest.fail("Xvfb did not start")
    yield f":{number}"
    process.terminate()
    process.wait(timeout=10)


@pytest.fixture()
def new_webkit(xvfb_display) -> Iterator[Callable]:
    """Start WebKitGTK browsers (each its own profile, like separate phones); all quit afterwards."""
    browser = _minibrowser()
    if not os.access(DRIVER, os.X_OK) or browser is None:
        pytest.fail(f"WebKitGTK is missing ({DRIVER}, MiniBrowser): install the Debian package "
                    "'webkit2gtk-driver' (ops/dev/system-deps.sh)")
    from selenium import webdriver
    from selenium.webdriver.webkitgtk.options import Options
    from selenium.webdriver.webkitgtk.service import Service

    drivers = []

    def make(width: int = 390, height: int = 844):
        options = Options()
        options.binary_location = browser
        options.add_argument("--automation")
        service = Service(executable_path=DRIVER, env={**os.environ, "DISPLAY": xvfb_display})
        driver = webdriver.WebKitGTK(options=options, service=service)
        drivers.append(driver)
        driver.set_window_size(width, height)
        driver.set_script_timeout(30)
        return driver

    yield make
    for driver in drivers:
        driver.quit()


def wait_js(driver, condition: str, timeout_s: float = 15.0):
    """Wait until the JavaScript expression `condition` is truthy; returns its value."""
    from selenium.webdriver.support.ui import WebDriverWait

    return WebDriverWait(driver, timeout_s, poll_frequency=0.1).until(
        lambda d: d.execute_script(f"return ({condition});"),
        message=f"still false after {timeout_s} s: {condition}")
