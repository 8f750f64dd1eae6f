"""The show: the operator uploads an animation and starts it; every located phone syncs its clock
with the server, fetches its track once and plays it; the demo then checks, on the server clock,
what each phone shows during every frame.

Phones' clocks are off by up to several seconds (``CLOCK_SPREAD_MS``); each phone estimates the
offset as the pixel page does (several ``/api/time`` samples, the one with the lowest round trip).
"""

from __future__ import annotations

import math
import time
from bisect import bisect_right
from collections.abc import Callable
from dataclasses import dataclass

import cv2
import numpy as np

from c3s.demo import DemoError
from c3s.demo.api import Api

FRAME_WIDTH = 480
FRAME_MS = 500
CLOCK_SPREAD_MS = 3000.0
SYNC_SAMPLES = 3
START_LEAD_MS = 1500.0
LIVE_CHECKS = 40


def draw_frames(n_frames: int, scene_size: tuple[float, float]) -> list[np.ndarray]:
    """An animation with the scene's proportions (RGB uint8): a sunset sky, a sun crossing it,
    and the letters C3S, big enough for a crowd of a few thousand to draw."""
    width = FRAME_WIDTH
    height = max(8, int(round(width * scene_size[1] / scene_size[0])))
    yy = np.linspace(0.0, 1.0, height)[:, None, None]
    top, bottom = np.array([20, 30, 110]), np.array([250, 120, 40])
    sky = ((1 - yy) * top + yy * bottom) * np.ones((1, width, 1))
    frames = []
    for i in range(n_frames):
        phase = i / max(n_frames - 1, 1)
        frame = np.ascontiguousarray(sky.astype(np.uint8))
        centre = (int(width * (0.15 + 0.7 * phase)), int(height * (0.7 - 0.45 * math.sin(math.pi * phase))))
        cv2.circle(frame, centre, int(0.16 * height), (255, 220, 60), -1, cv2.LINE_AA)
        scale = 0.011 * height
        (tw, th), _ = cv2.getTextSize("C3S", cv2.FONT_HERSHEY_DUPLEX, scale, 1)
        thickness = max(2, int(0.06 * height))
        cv2.putText(frame, "C3S", ((width - tw) // 2, (height + th) // 2), cv2.FONT_HERSHEY_DUPLEX,
                    scale, (255, 255, 255), thickness, cv2.LINE_AA)
        frames.append(frame)
    return frames


def png(frame_rgb: np.ndarray) -> bytes:
    ok, data = cv2.imencode(".png", cv2.cvtColor(frame_rgb, cv2.COLOR_RGB2BGR))
    if not ok:
        raise DemoError("PNG encoding failed")
    return data.tobytes()


def upload_frames(api: Api, token: str, scene_id: int, frames: list[np.ndarray],
                  progress: Callable[[int], object]) -> list[int]:
    ids = []
    for i, frame in enumerate(frames):
        added = api.upload(f"/api/scenes/{scene_id}/frames", png(frame), f"frame-{i + 1:02d}.png",
                           "image/png", token=token, fields={"duration_ms": str(FRAME_MS)}, expect=(201,))
        ids.extend(f["id"] for f in added)
        progress(1)
    return ids


def missing_show_api(api: Api) -> str | None:
    """Why this build of the API cannot play a show (no clock endpoint), or None."""
    response = api.call("GET", "/api/time", expect=(200, 404))
    if response.status_code == 404:
        return "this build of the API has no show endpoints (GET /api/time answered 404)"
    return None


def server_ms(api: Api) -> float:
    return float(api.json("GET", "/api/time")["server_ms"])


def start_show(api: Api, token: str, scene_id: int) -> dict:
    """Start the looping show a moment from now; waits until its colour maps are built."""
    api.json("POST", f"/api/scenes/{scene_id}/show", token=token,
             json={"start_at_ms": server_ms(api) + START_LEAD_MS, "loop": True})
    deadline = time.monotonic() + 120
    while True:
        state = api.json("GET", f"/api/scenes/{scene_id}/show")
        if state["maps_ready"]:
            return state
        if time.monotonic() > deadline:
            raise DemoError(f"the colour maps of scene {scene_id} were not built within 120 s")
        time.sleep(0.2)


@dataclass
class Phone:
    """One phone during the show: its clock error, what it estimated, and its track."""

    number: int
    clock_offset_ms: float
    estimated_offset_ms: float = math.nan
    track: dict | None = None

    def local_ms(self) -> float:
        return time.time_ns() / 1e6 + self.clock_offset_ms

    def sync(self, api: Api) -> None:
        """NTP-style: keep the sample with the lowest round trip."""
        best_rtt = math.inf
        for _ in range(SYNC_SAMPLES):
            t0 = self.local_ms()
            server = float(api.json("GET", "/api/time", query_string={"t0": f"{t0:.3f}"})["server_ms"])
            t1 = self.local_ms()
            if t1 - t0 < best_rtt:
                best_rtt = t1 - t0
                self.estimated_offset_ms = (t0 + t1) / 2 - server

    def frame_at(self, server_time_ms: float) -> int:
        """The frame this phone shows when the server clock reads ``server_time_ms``: it reads
        its own clock and corrects it by its estimate. -1 before the start (or without a track)."""
        if self.track is None or self.track["start_ms"] is None:
            return -1
        mine = server_time_ms + self.clock_offset_ms - self.estimated_offset_ms
        elapsed = mine - self.track["start_ms"]
        ends = np.cumsum(self.track["durations_ms"])
        if elapsed < 0:
            return -1
        if self.track["loop"]:
            elapsed %= ends[-1]
        return int(bisect_right(ends.tolist(), elapsed)) if elapsed < ends[-1] else -1


def fetch_tracks(api: Api, token: str, scene_id: int, numbers: list[int], rng: np.random.Generator,
                 progress: Callable[[int], object]) -> tuple[list[Phone], dict[str, int]]:
    """Every phone syncs and its track is fetched (with `token`, the scene's staff, who read every
    pixel's track); a phone that was never located is told so."""
    phones, refused = [], {}
    for number in numbers:
        phone = Phone(number, float(rng.uniform(-CLOCK_SPREAD_MS, CLOCK_SPREAD_MS)))
        phone.sync(api)
        response = api.call("GET", f"/api/scenes/{scene_id}/pixels/{number}/track", token=token,
                            expect=(200, 404))
        if response.status_code == 200:
            phone.track = response.get_json()
        else:
            reason = (response.get_json() or {}).get("detail", {}).get("reason", "refused")
            refused[reason] = refused.get(reason, 0) + 1
        phones.append(phone)
        progress(1)
    return phones, refused


def frame_middles_ms(show: dict) -> list[float]:
    """Server times in the middle of each frame of the first pass."""
    ends = np.cumsum([f["duration_ms"] for f in show["frames"]])
    return [float(show["start_ms"] + end - f["duration_ms"] / 2) for end, f in zip(ends, show["frames"],
                                                                                   strict=True)]


def live_check(api: Api, scene_id: int, phones: list[Phone], rng: np.random.Generator) -> tuple[int, int]:
    """While the show plays, ask the server for a few phones' colour now and compare with what
    their own tracks say: (agreeing, asked)."""
    playing = [p for p in phones if p.track is not None]
    if not playing:
        return 0, 0
    start = playing[0].track["start_ms"]
    wait_s = (start - server_ms(api)) / 1000 + 0.05
    if wait_s > 0:
        time.sleep(wait_s)
    agree = 0
    sample = rng.choice(len(playing), size=min(LIVE_CHECKS, len(playing)), replace=False)
    for index in sample:
        phone = playing[int(index)]
        now = api.json("GET", f"/api/scenes/{scene_id}/pixels/{phone.number}/color")
        agree += now["frame"] >= 0 and now["color"] == phone.track["colors"][now["frame"]]
    return agree, len(sample)


@dataclass(frozen=True)
class Preview:
    """The operator's preview: located positions and each frame's colour map, as the API gives them."""

    numbers: np.ndarray
    positions: np.ndarray
    maps: list[np.ndarray]


def operator_preview(api: Api, token: str, scene_id: int, show: dict) -> Preview:
    """The layout and every frame's colour map, read as the operator dashboard reads them."""
    from c3s.vision.colormap import unpack_color_map

    layout = api.json("GET", f"/api/scenes/{scene_id}/layout", token=token)
    numbers = np.array(layout["numbers"], np.int64)
    maps = [unpack_color_map(api.call("GET", f"/api/scenes/{scene_id}/frames/{f['id']}/map",
                                      token=token).get_data(), len(numbers))
            for f in show["frames"]]
    return Preview(numbers, np.c_[layout["x"], layout["y"]].reshape(-1, 2), maps)


def maps_agree_with_tracks(preview: Preview, phones: list[Phone]) -> tuple[int, int]:
    """(colours that agree, colours compared) between the frame maps and the phones' tracks."""
    row = {int(n): i for i, n in enumerate(preview.numbers)}
    agree = total = 0
    for phone in phones:
        if phone.track is None or phone.number not in row:
            continue
        for frame, colours in enumerate(preview.maps):
            total += 1
            agree += phone.track["colors"][frame] == "#" + colours[row[phone.number]].tobytes().hex()
    return agree, total

