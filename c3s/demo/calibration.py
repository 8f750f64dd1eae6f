"""Calibration: an observer photographs every section of the stand (QR codes on the phones,
reference posters among them) and films the whole stand once while the phones blink; each upload
becomes a locate job, run by the same code as in production.

The true position of every phone comes from the renderer (seat plus the jitter of a hand), so
what the pipeline finds can be measured against it.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np

from c3s.demo import DemoError
from c3s.demo.api import Api
from c3s.demo.stand import SEAT_PITCH, Section, StandPlan
from c3s.vision.crowd import CrowdPhoto, render_crowd
from c3s.vision.qrcode import parse_payload

PHOTO_WIDTH = 3000
MODULE_PX = (3.0, 4.0)  # phones 3 to 5 m from the observer's camera
CLIP_FPS = 30.0
CLIP_MS = 1600.0  # more than one blink period (16 slots of 75 ms)
CLIP_MIN_PITCH_PX = 36.0  # seat pitch in the clip, at the near edge of the stand
CLIP_MARGIN_PX = 60
JPEG_QUALITY = 90


@dataclass
class Truth:
    """Where every phone really is (scene units), and which ones a camera could see."""

    xy: dict[int, tuple[float, float]] = field(default_factory=dict)
    visible_in_photos: set[int] = field(default_factory=set)
    visible_in_clip: set[int] = field(default_factory=set)


def photo_size(section: Section) -> tuple[int, int]:
    """A landscape photo framing the section (height follows its rows, within 4:3)."""
    w, h = section.extent
    height = PHOTO_WIDTH * (h + SEAT_PITCH[1]) / (w + SEAT_PITCH[0])
    return PHOTO_WIDTH, int(min(max(height, 1000), PHOTO_WIDTH * 3 / 4))


def photograph(section: Section, scene_id: int, seed: int) -> CrowdPhoto:
    width, height = photo_size(section)
    return render_crowd(seed=seed * 1000 + section.index, width=width, height=height, cols=section.cols,
                        rows=section.rows, module_px=MODULE_PX, scene_id=scene_id,
                        n_anchors=len(section.anchor_keys), n_foreign=section.n_foreign,
                        origin=section.origin, numbers=section.numbers,
                        anchor_keys=section.anchor_keys)


def record_truth(truth: Truth, photo: CrowdPhoto, scene_id: int) -> None:
    for phone in photo.phones:
        payload = parse_payload(phone.payload)
        if phone.kind == "pixel" and payload is not None and payload.scene_id == scene_id:
            truth.xy[payload.number] = (phone.x_scene, phone.y_scene)
            if phone.visible:
                truth.visible_in_photos.add(payload.number)


def surveyed_anchors(photos: list[CrowdPhoto]) -> list[dict]:
    """The reference posters as the operator enters them: key and surveyed scene position."""
    anchors = []
    for photo in photos:
        for payload, (x, y) in photo.anchors.items():
            anchors.append({"key": parse_payload(payload).anchor_key, "x": round(x, 4), "y": round(y, 4)})
    return anchors


def jpeg(image: np.ndarray) -> bytes:
    ok, data = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, JPEG_QUALITY])
    if not ok:
        raise DemoError("JPEG encoding failed")
    return data.tobytes()


def upload_job(api: Api, token: str, scene_id: int, data: bytes, filename: str, content_type: str,
               method: str, timeout_s: float = 300.0, fields: dict | None = None) -> dict:
    """Upload one photo or clip as an observer and wait for its job to finish."""
    job = api.upload(f"/api/scenes/{scene_id}/jobs", data, filename, content_type, token=token,
                     fields={"method": method, **(fields or {})}, expect=(202,))
    deadline = time.monotonic() + timeout_s
    while job["status"] not in ("done", "failed"):
        if time.monotonic() > deadline:
            raise DemoError(f"locate job {job['id']} is still {job['status']} after {timeout_s:.0f} s")
        time.sleep(0.2)
        job = api.json("GET", f"/api/scenes/{scene_id}/jobs/{job['id']}", token=token)
    return api.json("GET", f"/api/scenes/{scene_id}/jobs/{job['id']}", token=token)


@dataclass(frozen=True)
class Camera:
    """How the filming camera sees the stand: a homography from scene units to image pixels."""

    scene_to_image: np.ndarray
    width: int
    height: int

    def project(self, xy: np.ndarray) -> np.ndarray:
        return cv2.perspectiveTransform(np.asarray(xy, np.float64).reshape(-1, 1, 2),
                                        self.scene_to_image).reshape(-1, 2)


def stand_camera(plan: StandPlan) -> Camera:
    """A camera filming the whole stand from in front and a little below (the far rows 8 %
    narrower), sharp enough that neighbouring phones stay apart."""
    scale = CLIP_MIN_PITCH_PX / SEAT_PITCH[0]
    width = int(min(3840, max(1280, plan.width * scale + 2 * CLIP_MARGIN_PX))) // 2 * 2
    height = int(min(2160, max(720, plan.height * scale + 2 * CLIP_MARGIN_PX))) // 2 * 2
    scale = min((width - 2 * CLIP_MARGIN_PX) / plan.width, (height - 2 * CLIP_MARGIN_PX) / plan.height)
    x0, y0 = (width - plan.width * scale) / 2, (height - plan.height * scale) / 2
    x1, y1 = x0 + plan.width * scale, y0 + plan.height * scale
    inset = 0.04 * plan.width * scale
    src = np.float32([[0, 0], [plan.width, 0], [plan.width, plan.height], [0, plan.height]])
    dst = np.float32([[x0 + inset, y0], [x1 - inset, y0], [x1, y1], [x0, y1]])
    return Camera(cv2.getPerspectiveTransform(src, dst), width, height)


def film(truth: Truth, camera: Camera, path: Path, seed: int, progress: Callable[[int], object],
         timing: dict | None = None, playing=None):
    """Render the blink clip of every phone to ``path`` (MP4); returns the clip's truth.
    ``timing`` (keywords of ``make_clip``) is how the phones follow the server clock;
    ``playing(clip)``, if given, turns the rendered take into the clip of what the phones
    really play (e.g. their corrected timing)."""
    from c3s.vision.blink_synth import make_clip

    numbers = np.array(sorted(truth.xy), np.int64)
    xy = camera.project(np.array([truth.xy[n] for n in numbers]))
    clip = make_clip(len(numbers), width=camera.width, height=camera.height, fps=CLIP_FPS,
                     duration_ms=CLIP_MS, seed=seed, numbers=numbers, xy=xy, **(timing or {}))
    if playing is not None:
        clip = playing(clip)
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), clip.fps, (clip.width, clip.height))
    if not writer.isOpened():
        raise DemoError("OpenCV cannot write MP4 video here (no mp4v encoder)")
    try:
        for frame in clip.frames():
            writer.write(frame)
            progress(1)
    finally:
        writer.release()
    truth.visible_in_clip = {int(n) for n, hidden in zip(numbers, clip.occluded, strict=True) if not hidden}
    return clip
