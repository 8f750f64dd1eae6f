"""Helpers for the browser tests: scenes over the API, screenshots as arrays, composed photos."""

from __future__ import annotations

import time

import cv2
import numpy as np


def server_ms() -> float:
    """The server's clock: the live server runs in this process, on this machine's clock."""
    return time.time() * 1000.0


def auth(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def screenshot_rgb(page, clip: dict | None = None) -> np.ndarray:
    """A screenshot of the page as an (H, W, 3) uint8 RGB array."""
    png = page.screenshot(clip=clip, animations="allow", caret="initial")
    bgr = cv2.imdecode(np.frombuffer(png, np.uint8), cv2.IMREAD_COLOR)
    return cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)


def hex_rgb(color: str) -> np.ndarray:
    color = color.lstrip("#")
    return np.array([int(color[i:i + 2], 16) for i in (0, 2, 4)], dtype=np.int16)


def encode_jpeg(rgb: np.ndarray, quality: int = 92) -> bytes:
    ok, data = cv2.imencode(".jpg", cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, quality])
    assert ok
    return data.tobytes()


def compose_photo(tiles: list[tuple[np.ndarray, float, float]], scene_size: tuple[float, float], *,
                  px_per_unit: float, photo_size: tuple[int, int], tilt: float = 0.12) -> np.ndarray:
    """Paste RGB tiles centred at their scene positions on a white scene image, then view it
    with perspective (as a camera off to one side would) into a `photo_size` (w, h) photo."""
    width, height = scene_size
    flat = np.full((int(round(height * px_per_unit)), int(round(width * px_per_unit)), 3), 235, np.uint8)
    for tile, x, y in tiles:
        th, tw = tile.shape[:2]
        top, left = int(round(y * px_per_unit - th / 2)), int(round(x * px_per_unit - tw / 2))
        flat[top:top + th, left:left + tw] = tile
    fh, fw = flat.shape[:2]
    pw, ph = photo_size
    source = np.float32([[0, 0], [fw, 0], [fw, fh], [0, fh]])
    # The far (top) edge of the stand looks narrower than the near one.
    target = np.float32([[pw * tilt, ph * 0.06], [pw * (1 - tilt * 0.6), ph * 0.03],
                         [pw * 0.98, ph * 0.97], [pw * 0.02, ph * 0.94]])
    homography = cv2.getPerspectiveTransform(source, target)
    return cv2.warpPerspective(flat, homography, (pw, ph), flags=cv2.INTER_AREA,
                               borderMode=cv2.BORDER_CONSTANT, borderValue=(90, 90, 90))
