"""The demo's results: figures measured against the truth, the closing table, and the pictures.

Pictures are PNG, drawn with OpenCV (BGR on disk); the crowd's renderings come from
:mod:`c3s.vision.render` (RGB).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np
from flask import Flask
from sqlalchemy import select

from c3s.demo.api import Api
from c3s.demo.calibration import Truth
from c3s.demo.show import Phone
from c3s.vision.crowd import CrowdPhoto
from c3s.vision.render import render_crowd_view, side_by_side

METHOD_COLOURS = {"qr": (80, 200, 80), "blink": (40, 170, 240)}  # BGR: green, orange
MISSED = (60, 60, 230)
PICTURE_WIDTH = 1600
ERROR_ZOOM = 50


@dataclass
class MethodFigures:
    """How one method (or the fusion of all) placed the phones, errors in scene units."""

    name: str
    in_view: int
    located: int
    errors: np.ndarray = field(default_factory=lambda: np.zeros(0))

    @property
    def median(self) -> float:
        return float(np.median(self.errors)) if len(self.errors) else float("nan")

    @property
    def p95(self) -> float:
        return float(np.percentile(self.errors, 95)) if len(self.errors) else float("nan")


def observed_positions(app: Flask, scene_id: int) -> dict[str, dict[int, tuple[float, float]]]:
    """Per method, where its jobs saw each pixel (read from the demo's own database: the API
    shows only the fused position)."""
    from c3s.models import Observation, Pixel

    seen: dict[str, dict[int, tuple[float, float]]] = {}
    with app.extensions["c3s"].database.session() as session:
        rows = session.execute(select(Observation.method, Pixel.number, Observation.x, Observation.y)
                               .join(Pixel, Pixel.id == Observation.pixel_id)
                               .where(Pixel.scene_id == scene_id))
        for method, number, x, y in rows:
            seen.setdefault(method, {})[number] = (x, y)
    return seen


def located_pixels(api: Api, token: str, scene_id: int) -> dict[int, dict]:
    """Every located pixel of the scene, through the API (pages of 1000)."""
    pixels, page = {}, 1
    while True:
        body = api.json("GET", f"/api/scenes/{scene_id}/pixels", token=token,
                        query_string={"status": "located", "per_page": 1000, "page": page})
        pixels.update({p["number"]: p for p in body["pixels"]})
        if page * body["per_page"] >= body["total"]:
            return pixels
        page += 1


def errors_against(truth: Truth, found: dict[int, tuple[float, float]]) -> np.ndarray:
    known = [n for n in found if n in truth.xy]
    return np.array([np.hypot(found[n][0] - truth.xy[n][0], found[n][1] - truth.xy[n][1]) for n in known])


def location_figures(truth: Truth, observed: dict[str, dict], located: dict[int, dict]) -> list[MethodFigures]:
    in_view = {"qr": len(truth.visible_in_photos), "blink": len(truth.visible_in_clip)}
    figures = [MethodFigures(m, in_view[m], len(observed.get(m, {})), errors_against(truth, observed.get(m, {})))
               for m in ("qr", "blink")]
    fused = {n: (p["x"], p["y"]) for n, p in located.items()}
    figures.append(MethodFigures("fused", len(truth.xy), len(fused), errors_against(truth, fused)))
    return figures


@dataclass
class ShowFigures:
    phones: int
    tracks: int
    refused: dict[str, int]
    right_frame_share: float
    sync_error_p95_ms: float
    colour_error_median: float
    colour_error_p95: float
    live_agree: int
    live_asked: int
    maps_agree: int
    maps_compared: int


def frame_colour_at(frame: np.ndarray, xy: np.ndarray, scene_size: tuple[float, float]) -> np.ndarray:
    """The frame's colour under each scene position (the scene fits the frame exactly)."""
    h, w = frame.shape[:2]
    cols = np.clip((xy[:, 0] / scene_size[0] * w).astype(int), 0, w - 1)
    rows = np.clip((xy[:, 1] / scene_size[1] * h).astype(int), 0, h - 1)
    return frame[rows, cols]


def shown_colours(phones: list[Phone], frame_index: int, at_ms: float) -> tuple[np.ndarray, np.ndarray]:
    """What every phone shows at server time ``at_ms`` (RGB) and whether it shows frame ``frame_index``."""
    colours = np.zeros((len(phones), 3), np.uint8)
    right = np.zeros(len(phones), bool)
    for i, phone in enumerate(phones):
        shown = phone.frame_at(at_ms)
        if shown >= 0:
            colours[i] = list(bytes.fromhex(phone.track["colors"][shown][1:]))
        right[i] = shown == frame_index
    return colours, right


def show_pictures(out: Path, frames: list[np.ndarray], phones: list[Phone], middles_ms: list[float],
                  truth: Truth, scene_size: tuple[float, float]) -> tuple[list[Path], float, np.ndarray]:
    """Each frame beside the crowd's rendering of it (every phone at its true place, showing what
    its track says at the frame's middle); returns the paths, the share of phones showing the
    right frame, and the colour errors (0-255 per channel) of the phones that play against the
    frame under their true places."""
    xy = np.array([truth.xy.get(p.number, (np.nan, np.nan)) for p in phones], np.float64)
    placed = np.isfinite(xy).all(axis=1)
    playing = np.array([p.track is not None for p in phones]) & placed
    paths, right_total, errors = [], 0, []
    for i, (frame, at_ms) in enumerate(zip(frames, middles_ms, strict=True)):
        colours, right = shown_colours(phones, i, at_ms)
        right_total += int(right[playing].sum())
        errors.append(np.abs(colours[playing].astype(int)
                             - frame_colour_at(frame, xy[playing], scene_size).astype(int)).ravel())
        view = render_crowd_view(xy[placed], colours[placed], scene_size, width_px=frame.shape[1] * 2)
        big = cv2.resize(frame, (frame.shape[1] * 2, frame.shape[0] * 2), interpolation=cv2.INTER_NEAREST)
        picture = _captioned(side_by_side(big, view), big.shape[1], f"frame {i + 1}: the picture",
                             f"the crowd: {int(playing.sum())} phones at their true places")
        path = out / f"frame-{i + 1:02d}.png"
        cv2.imwrite(str(path), cv2.cvtColor(picture, cv2.COLOR_RGB2BGR))
        paths.append(path)
    share = right_total / max(1, int(playing.sum()) * len(frames))
    return paths, share, np.concatenate(errors) if errors else np.zeros(0)


def preview_picture(path: Path, frame: np.ndarray, preview, scene_size: tuple[float, float]) -> Path:
    """The first frame beside the operator's preview of it: each located pixel at its located
    place in the colour the frame map gives it."""
    view = render_crowd_view(preview.positions, preview.maps[0], scene_size, width_px=frame.shape[1] * 2)
    big = cv2.resize(frame, (frame.shape[1] * 2, frame.shape[0] * 2), interpolation=cv2.INTER_NEAREST)
    picture = _captioned(side_by_side(big, view), big.shape[1], "frame 1: the picture",
                         "the operator's preview: located places, frame-map colours")
    cv2.imwrite(str(path), cv2.cvtColor(picture, cv2.COLOR_RGB2BGR))
    return path


def _captioned(picture: np.ndarray, left_width: int, left: str, right: str) -> np.ndarray:
    """The side-by-side picture under a caption band naming each half."""
    band = np.zeros((34, picture.shape[1], 3), np.uint8)
    for x, text in ((10, left), (left_width + 18, right)):
        cv2.putText(band, text, (x, 23), cv2.FONT_HERSHEY_SIMPLEX, 0.6, (255, 255, 255), 1, cv2.LINE_AA)
    return np.concatenate([band, picture], axis=0)


def _fit_width(image: np.ndarray, width: int = PICTURE_WIDTH) -> tuple[np.ndarray, float]:
    scale = min(1.0, width / image.shape[1])
    if scale == 1.0:
        return image.copy(), 1.0
    size = (int(image.shape[1] * scale), int(image.shape[0] * scale))
    return cv2.resize(image, size, interpolation=cv2.INTER_AREA), scale


def _caption(image: np.ndarray, text: str) -> None:
    cv2.rectangle(image, (0, 0), (image.shape[1], 34), (0, 0, 0), -1)
    cv2.putText(image, text, (10, 24), cv2.FONT_HERSHEY_SIMPLEX, 0.65, (255, 255, 255), 1, cv2.LINE_AA)


def observer_picture(path: Path, photo: CrowdPhoto, job: dict, scene_id: int) -> Path:
    """The observer's photo with what the job found: green rings on located codes, blue squares
    on reference posters, red crosses on phones that were missed."""
    from c3s.vision.qrcode import parse_payload

    image, scale = _fit_width(photo.image)
    found = {d["number"] for d in job["stats"].get("detections", [])}
    r = max(6, int(18 * scale * 4))
    for d in job["stats"].get("detections", []):
        cv2.circle(image, (int(d["x_img"] * scale), int(d["y_img"] * scale)), r, METHOD_COLOURS["qr"], 2,
                   cv2.LINE_AA)
    missed = covered = 0
    for phone in photo.phones:
        centre = (int(phone.x_img * scale), int(phone.y_img * scale))
        payload = parse_payload(phone.payload)
        if phone.kind == "anchor":
            cv2.rectangle(image, (centre[0] - r, centre[1] - r), (centre[0] + r, centre[1] + r),
                          (230, 120, 40), 2)
        elif phone.kind == "pixel" and payload.number not in found:
            cv2.drawMarker(image, centre, MISSED, cv2.MARKER_TILTED_CROSS, 2 * r, 2)
            missed += 1
            covered += not phone.visible
    _caption(image, f"observer photo, scene {scene_id}: {len(found)} phones located (green), "
                    f"{len(photo.anchors)} posters (blue), {missed} missed (red), {covered} of them "
                    "partly covered")
    cv2.imwrite(str(path), image)
    return path


def blink_picture(path: Path, first_frame: np.ndarray, job: dict) -> Path:
    """The first frame of the blink clip, brightened, with the phones the job decoded."""
    image, scale = _fit_width(cv2.convertScaleAbs(first_frame, alpha=2.5, beta=10))
    detections = job["stats"].get("detections", [])
    for d in detections:
        cv2.circle(image, (int(d["x_img"] * scale), int(d["y_img"] * scale)), 5, METHOD_COLOURS["blink"], 1,
                   cv2.LINE_AA)
    _caption(image, f"blink clip, first frame: {job['stats'].get('numbers_decoded', 0)} numbers decoded, "
                    f"{len(detections)} drawn (orange)")
    cv2.imwrite(str(path), image)
    return path


def positions_picture(path: Path, truth: Truth, located: dict[int, dict],
                      scene_size: tuple[float, float]) -> Path:
    """Left: the whole stand, each phone at its located place coloured by the method that placed
    it, red crosses where a phone was never located. Right: a 4 m x 3 m corner magnified, each
    true position a grey dot with its error drawn ``ERROR_ZOOM`` times longer."""
    left_w = PICTURE_WIDTH // 2
    scale = left_w / scene_size[0]
    left = np.full((int(scene_size[1] * scale) + 40, left_w, 3), 20, np.uint8)
    for number, (tx, ty) in truth.xy.items():
        pixel = located.get(number)
        if pixel is None:
            cv2.drawMarker(left, (int(tx * scale), int(ty * scale) + 40), MISSED, cv2.MARKER_TILTED_CROSS, 8, 2)
        else:
            colour = METHOD_COLOURS.get(pixel["located_by"], (200, 200, 200))
            cv2.circle(left, (int(pixel["x"] * scale), int(pixel["y"] * scale) + 40), 3, colour, -1)
    _caption(left, "located phones: green by QR, orange by blink; red: not located")
    zoom = _zoom_panel(truth, located, (left_w, left.shape[0]))
    cv2.imwrite(str(path), np.concatenate([left, np.full((left.shape[0], 6, 3), 60, np.uint8), zoom], axis=1))
    return path


def _zoom_panel(truth: Truth, located: dict[int, dict], size: tuple[int, int]) -> np.ndarray:
    width, height = size
    corner = np.min(np.array(list(truth.xy.values())), axis=0) - 0.3
    extent = np.array([4.0, 3.0])
    scale = min(width / extent[0], (height - 40) / extent[1])
    panel = np.full((height, width, 3), 20, np.uint8)

    def at(xy) -> tuple[int, int]:
        return int((xy[0] - corner[0]) * scale), int((xy[1] - corner[1]) * scale) + 40

    for number, true_xy in truth.xy.items():
        if not ((corner <= true_xy).all() and (np.asarray(true_xy) <= corner + extent).all()):
            continue
        cv2.circle(panel, at(true_xy), 6, (150, 150, 150), -1, cv2.LINE_AA)
        pixel = located.get(number)
        if pixel is None:
            cv2.drawMarker(panel, at(true_xy), MISSED, cv2.MARKER_TILTED_CROSS, 16, 2)
            continue
        colour = METHOD_COLOURS.get(pixel["located_by"], (200, 200, 200))
        error = np.array([pixel["x"], pixel["y"]]) - np.asarray(true_xy)
        tip = at(np.asarray(true_xy) + ERROR_ZOOM * error)
        cv2.line(panel, at(true_xy), tip, colour, 2, cv2.LINE_AA)
        cv2.circle(panel, tip, 3, colour, -1, cv2.LINE_AA)
    bar = int(0.01 * ERROR_ZOOM * scale)  # 1 cm of error, magnified
    cv2.line(panel, (10, height - 14), (10 + bar, height - 14), (230, 230, 230), 2)
    cv2.putText(panel, "1 cm of error", (16 + bar, height - 9), cv2.FONT_HERSHEY_SIMPLEX, 0.5,
                (230, 230, 230), 1, cv2.LINE_AA)
    _caption(panel, f"a 4 m x 3 m corner: true places (grey), errors drawn x{ERROR_ZOOM}")
    return panel


def job_lines(qr_jobs: list[dict], blink_job: dict) -> list[str]:
    """How the locate jobs ended, with the reason of each failure."""
    done = sum(j["status"] == "done" for j in qr_jobs)
    lines = [f"jobs: {done} of {len(qr_jobs)} QR photos done, blink clip {blink_job['status']}"]
    for job in [*qr_jobs, blink_job]:
        if job["status"] != "done":
            lines.append(f"  job {job['id']} ({job['method']}, {job['filename']}) {job['status']}: {job['reason']}")
    return lines


def _metres(value: float) -> str:
    return "-" if np.isnan(value) else f"{value:.3f} m"


def table(figures: list[MethodFigures], show: ShowFigures | None, seconds: dict[str, float],
          counts: dict[str, int], jobs: list[str]) -> str:
    """The closing table, as plain text."""
    lines = [f"C3S demo: {counts['phones']} phones, {counts['photos']} photos, 1 blink clip, "
             f"{counts['frames']} frames (seed {counts['seed']})", "",
             f"{'location':<10} {'in view':>8} {'located':>8} {'error median':>13} {'error p95':>10}"]
    for f in figures:
        lines.append(f"{f.name:<10} {f.in_view:>8} {f.located:>8} {_metres(f.median):>13} {_metres(f.p95):>10}")
    lines.append("in view: qr, codes nothing covers in a photo (partly covered ones are sometimes"
                 " read too);\n         blink, phones never hidden during the clip; fused, every phone."
                 " Errors against the true positions.")
    lines += jobs
    if show is not None:
        refused = ", ".join(f"{k} {v}" for k, v in sorted(show.refused.items())) or "none"
        lines += ["", "show",
                  f"  tracks fetched              {show.tracks} of {show.phones} (refused: {refused})",
                  f"  phones on the right frame   {100 * show.right_frame_share:.1f} % (frame middles)",
                  f"  clock sync error p95        {show.sync_error_p95_ms:.2f} ms",
                  f"  colour error median, p95    {show.colour_error_median:.0f}, "
                  f"{show.colour_error_p95:.0f} of 255 per channel (phone vs frame at its true place)",
                  f"  live /color agrees          {show.live_agree} of {show.live_asked}",
                  f"  frame maps agree w/ tracks  {show.maps_agree} of {show.maps_compared} colours"]
    lines += ["", f"{'stage':<28} {'seconds':>8}"]
    lines += [f"{name:<28} {value:>8.1f}" for name, value in seconds.items()]
    lines.append(f"{'total':<28} {sum(seconds.values()):>8.1f}")
    return "\n".join(lines)
