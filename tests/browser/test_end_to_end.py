"""End to end in a real browser: 16 pixel tabs join a QR scene and show their codes; their
screenshots become one observer photo seen with perspective; the real worker locates them; the
operator starts the show; every tab shows its frame's colour at its place, at the right time."""

from __future__ import annotations

import time

import cv2
import numpy as np
import pytest

from c3s.vision.qrcode import anchor_payload, render_qr_png
from tests.browser.conftest import console_errors
from tests.browser.helpers import compose_photo, encode_jpeg, screenshot_rgb, server_ms
from tests.browser.test_observer_page import log_in
from tests.helpers.factories import auth, make_scene, make_user, multipart

pytestmark = [pytest.mark.browser, pytest.mark.slow]

SCENE = (100.0, 60.0)
ANCHORS = [{"key": "A1", "x": 6, "y": 6}, {"key": "A2", "x": 94, "y": 6},
           {"key": "A3", "x": 94, "y": 54}, {"key": "A4", "x": 6, "y": 54}]
GRID = [(20.0 + 20 * (i % 4), 12.0 + 12 * (i // 4)) for i in range(16)]
TAB = (160, 220)  # viewport: the code takes the top 160 x 160, the hint the rest
PX_PER_UNIT = 14  # 12 units between rows = 168 px > a 160 px code
PALETTE = [(230, 30, 30), (30, 200, 40), (40, 60, 230), (240, 220, 20)]
# Sixteen tabs screenshotted in turn take up to 5 s a round on two cores (16 pages rendering):
# 5 s frames let each tab be seen in at least two of them.
FRAME_MS = 5000
N_FRAMES = 3
TOLERANCE_MS = 100  # well inside one frame: the colour must be right within 0.1 s


def band(x: float) -> int:
    """Frames are four vertical bands split at x = 30, 50, 70: 10 units from every pixel column,
    farther than any pixel's footprint reaches, so each pixel's area average is one band's colour."""
    return sum(x > edge for edge in (30, 50, 70))


def frame_color(frame: int, x: float, y: float) -> tuple[int, int, int]:
    return PALETTE[(band(x) + frame) % len(PALETTE)]


def frame_png(frame: int) -> bytes:
    """The frame at the scene's aspect ratio (640 x 384 for 100 x 60): four bands whose colours
    rotate from frame to frame. The band edges (192, 320, 448 px) fall on the colour mapper's
    coarse cell edges, so its documented within-cell approximation does not blur them."""
    image = np.zeros((384, 640, 3), np.uint8)
    for b, (x0, x1) in enumerate([(0, 192), (192, 320), (320, 448), (448, 640)]):
        image[:, x0:x1] = PALETTE[(b + frame) % len(PALETTE)]
    ok, data = cv2.imencode(".png", cv2.cvtColor(image, cv2.COLOR_RGB2BGR))
    assert ok
    return data.tobytes()


def anchor_tile(scene_id: int, key: str) -> np.ndarray:
    png = render_qr_png(anchor_payload(scene_id, key), module_px=5)
    return cv2.cvtColor(cv2.imdecode(np.frombuffer(png, np.uint8), cv2.IMREAD_COLOR), cv2.COLOR_BGR2RGB)


def wait_for_job(client, scene_id: int, job_id: int, token: str) -> dict:
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        job = client.get(f"/api/scenes/{scene_id}/jobs/{job_id}", headers=auth(token)).json
        if job["status"] in ("done", "failed"):
            return job
        time.sleep(0.3)
    raise AssertionError(f"job {job_id} did not finish: {job}")


def expected_colors(before: float, after: float, start_ms: float, number_xy) -> set | None:
    """The colours right for a screenshot taken between `before` and `after` (server ms), give
    or take TOLERANCE_MS; None when that window is not wholly inside the show."""
    lo, hi = before - TOLERANCE_MS, after + TOLERANCE_MS
    if lo < start_ms or hi >= start_ms + N_FRAMES * FRAME_MS:
        return None
    frames = range(int((lo - start_ms) // FRAME_MS), int((hi - start_ms) // FRAME_MS) + 1)
    return {frame_color(k, *number_xy) for k in frames}


def open_tabs(new_context, base_url: str, scene_id: int) -> list[tuple[object, list[str]]]:
    """16 phones (separate browser contexts: separate storage) open the pixel link."""
    tabs = []
    for _ in GRID:
        page = new_context(*TAB).new_page()
        errors = console_errors(page)
        page.goto(f"{base_url}/s/{scene_id}?poll_ms=500")
        tabs.append((page, errors))
    for page, _ in tabs:
        page.wait_for_function("document.body.dataset.state === 'calibrating' && document.getElementById('qr')?.complete")
    return tabs


def photograph(tabs, scene_id: int) -> bytes:
    """The observer's photo of the stand: each tab's screen at its place, four reference codes,
    seen with perspective."""
    code_side = min(TAB[0], TAB[1] - 60)
    tiles = [(screenshot_rgb(page, clip={"x": 0, "y": 0, "width": code_side, "height": code_side}), *GRID[i])
             for i, (page, _) in enumerate(tabs)]
    tiles += [(anchor_tile(scene_id, a["key"]), a["x"], a["y"]) for a in ANCHORS]
    return encode_jpeg(compose_photo(tiles, SCENE, px_per_unit=PX_PER_UNIT, photo_size=(1400, 900)))


def sample_colors(tabs, until_ms: float) -> dict[int, list]:
    """Each tab's screen colour from screenshots, round-robin, with the server time bracketing each."""
    samples: dict[int, list] = {page.evaluate("window.c3s.number"): [] for page, _ in tabs}
    while server_ms() < until_ms:
        for page, _ in tabs:
            before = server_ms()
            shot = screenshot_rgb(page, clip={"x": 70, "y": 90, "width": 4, "height": 4})
            after = server_ms()
            samples[page.evaluate("window.c3s.number")].append((before, after, shot.reshape(-1, 3).mean(axis=0)))
    return samples


def check_samples(samples: dict[int, list], start_ms: float, true_xy: dict) -> int:
    """Every screenshot taken inside the show shows the right colour; returns how many were judged."""
    checked = 0
    for number, taken in samples.items():
        judged = []
        for before, after, seen in taken:
            allowed = expected_colors(before, after, start_ms, true_xy[number])
            if allowed is None:
                continue
            ok = any(np.abs(seen - np.array(c)).max() < 40 for c in allowed)
            assert ok, (number, true_xy[number], (before - start_ms, after - start_ms), seen, allowed)
            judged.append(int((before - start_ms) // FRAME_MS))
        assert len(judged) >= 2 and len(set(judged)) >= 2, (number, judged)  # seen in two frames
        checked += len(judged)
    return checked


def check_crowd_preview(operator, true_xy: dict) -> None:
    """The operator's preview draws each located pixel in its frame colour at its place."""
    operator.wait_for_function(
        f"document.querySelectorAll('#frames canvas[data-rendered=yes]').length === {N_FRAMES}", timeout=20_000)
    for k in range(N_FRAMES):
        for number, (x, y) in true_xy.items():
            rgb = operator.evaluate(f"""(() => {{
                const c = document.querySelectorAll('#frames canvas')[{k}];
                const s = c.width / {SCENE[0]};
                return Array.from(c.getContext('2d').getImageData({x} * s, {y} * s, 1, 1).data.slice(0, 3));
            }})()""")
            assert np.abs(np.array(rgb) - frame_color(k, x, y)).max() < 40, (k, number, rgb)


def test_tabs_join_are_located_from_one_photo_and_play_the_show_in_sync(
        worker_server, new_context, session):
    owner, owner_token = make_user(session, "scene_admin", "observer", "moderator")
    client = worker_server.app.test_client()
    scene = make_scene(client, owner_token, width=SCENE[0], height=SCENE[1], anchors=ANCHORS)
    sid = scene["id"]
    for k in range(N_FRAMES):
        added = client.post(f"/api/scenes/{sid}/frames", headers=auth(owner_token),
                            **multipart(file=(frame_png(k), f"frame{k}.png"), duration_ms=str(FRAME_MS)))
        assert added.status_code == 201, added.json

    tabs = open_tabs(new_context, worker_server.url, sid)
    numbers = [page.evaluate("window.c3s.number") for page, _ in tabs]
    assert sorted(numbers) == list(range(16))
    true_xy = {n: GRID[i] for i, n in enumerate(numbers)}

    upload = client.post(f"/api/scenes/{sid}/jobs", headers=auth(owner_token),
                         **multipart(file=(photograph(tabs, sid), "stand.jpg")))
    assert upload.status_code == 202, upload.json
    job = wait_for_job(client, sid, upload.json["id"], owner_token)
    assert job["status"] == "done", job
    assert job["stats"]["pixels_matched"] == 16 and job["stats"]["anchors_used"] >= 4
    pixels = client.get(f"/api/scenes/{sid}/pixels", headers=auth(owner_token)).json["pixels"]
    assert len(pixels) == 16
    for pixel in pixels:
        x, y = true_xy[pixel["number"]]
        assert pixel["status"] == "located", pixel
        assert abs(pixel["x"] - x) < 1.5 and abs(pixel["y"] - y) < 1.5, (pixel, (x, y))

    # The operator starts the show a few seconds ahead on the server clock.
    operator = new_context(1000, 1400).new_page()
    operator_errors = console_errors(operator)
    operator.goto(f"{worker_server.url}/operator?refresh_ms=2000")
    log_in(operator, owner)
    operator.wait_for_function("document.body.dataset.state === 'ready'")
    operator.fill("#show-delay", "6")
    operator.click("#show-start")
    operator.wait_for_function("document.body.dataset.show === 'playing'")
    show = client.get(f"/api/scenes/{sid}/show").json
    start_ms = show["start_ms"]
    assert [f["duration_ms"] for f in show["frames"]] == [FRAME_MS] * N_FRAMES and not show["loop"]

    # Every tab has downloaded its track and waits, black, before the start.
    for page, _ in tabs:
        page.wait_for_function("['waiting', 'playing'].includes(document.body.dataset.state)", timeout=20_000)
    assert server_ms() < start_ms, "the tabs were not ready before the show started"

    samples = sample_colors(tabs, start_ms + N_FRAMES * FRAME_MS + 300)
    assert check_samples(samples, start_ms, true_xy) >= 16 * 2

    # After the last frame every tab says the show ended.
    for page, _ in tabs:
        page.wait_for_function("document.body.dataset.state === 'ended'", timeout=5000)
        assert "ended" in page.locator("#headline").inner_text()

    check_crowd_preview(operator, true_xy)
    for _, errors in [*tabs, (operator, operator_errors)]:
        assert [e for e in errors if e.startswith("pageerror")] == []
