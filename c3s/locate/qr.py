"""QR location: decode every code in an observer's photo, fit the photo to the scene on the
anchors it shows, and turn every pixel code into a sighting in scene units."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

import numpy as np

from c3s.locate.fusion import Sighting
from c3s.vision.qr import QRDetection

# Located pixels this sure of their place serve as anchors, so photos of neighbouring sections
# chain into one scene.
ANCHOR_MIN_CONFIDENCE = 0.8
MIN_ANCHORS = 4


class LocateFailed(ValueError):
    """The upload cannot locate anything; the message says why and what to do."""


@dataclass(frozen=True)
class PixelRef:
    id: int
    number: int
    status: str
    x: float | None = None
    y: float | None = None
    confidence: float | None = None


@dataclass
class QRMatch:
    """Detections of one photo sorted into anchors, pixels and the rest, with counts."""

    anchor_img: list[tuple[float, float]] = field(default_factory=list)
    anchor_scene: list[tuple[float, float]] = field(default_factory=list)
    pixel_detections: list[tuple[PixelRef, QRDetection]] = field(default_factory=list)
    counts: Counter = field(default_factory=Counter)


def match_detections(scene_id: int, detections: list[QRDetection], anchors: dict[str, tuple[float, float]],
                     pixels: dict[int, PixelRef]) -> QRMatch:
    from c3s.vision.qrcode import parse_payload

    match = QRMatch()
    match.counts["codes_decoded"] = len(detections)
    for detection in detections:
        payload = parse_payload(detection.payload)
        centre = (detection.x_img, detection.y_img)
        if payload is None:
            match.counts["rejected_foreign_code"] += 1
        elif payload.scene_id != scene_id:
            match.counts["rejected_other_scene"] += 1
        elif payload.kind == "anchor":
            if payload.anchor_key not in anchors:
                match.counts["rejected_unknown_anchor"] += 1
                continue
            match.anchor_img.append(centre)
            match.anchor_scene.append(anchors[payload.anchor_key])
            match.counts["reference_anchors"] += 1
        else:
            _match_pixel(match, pixels.get(payload.number), detection)
    return match


def _match_pixel(match: QRMatch, pixel: PixelRef | None, detection: QRDetection) -> None:
    if pixel is None:
        match.counts["rejected_unknown_pixel"] += 1
        return
    if pixel.status not in ("joined", "located"):
        match.counts[f"rejected_{pixel.status}_pixel"] += 1
        return
    match.pixel_detections.append((pixel, detection))
    match.counts["pixels_matched"] += 1
    if pixel.x is not None and (pixel.confidence or 0) >= ANCHOR_MIN_CONFIDENCE:
        match.anchor_img.append((detection.x_img, detection.y_img))
        match.anchor_scene.append((pixel.x, pixel.y))
        match.counts["pixel_anchors"] += 1


def qr_sightings(scene_id: int, scene_size: tuple[float, float], image: np.ndarray,
                 anchors: dict[str, tuple[float, float]], pixels: dict[int, PixelRef]
                 ) -> tuple[list[Sighting], dict]:
    """Sightings of this scene's pixels in one photo, with the job's counts.

    Raises `LocateFailed` when the photo cannot be mapped onto the scene."""
    from c3s.vision.homography import MappingError, fit_scene_mapping
    from c3s.vision.qr import decode_qr_codes

    match = match_detections(scene_id, decode_qr_codes(image), anchors, pixels)
    stats = dict(match.counts)
    found = len(match.anchor_img)
    stats["anchors_found"] = found
    if not match.pixel_detections:
        stats["note"] = "no pixel codes of this scene in the photo"
        return [], stats
    if found < MIN_ANCHORS:
        raise LocateFailed(
            f"the photo shows {found} anchor(s) of this scene; at least {MIN_ANCHORS} are needed to "
            "map it onto the scene — include reference codes or already located phones in the shot")
    try:
        mapping = fit_scene_mapping(np.array(match.anchor_img, float), np.array(match.anchor_scene, float))
    except MappingError as error:
        raise LocateFailed(f"the anchors in the photo cannot map it onto the scene: {error}") from None
    centres = np.array([(d.x_img, d.y_img) for _, d in match.pixel_detections], float)
    scene_points = mapping.apply(centres)
    # A position is never surer than the fit that produced it.
    sigma = max(float(mapping.rms_scene), 1e-3 * max(scene_size))
    inlier_share = mapping.inliers / max(found, 1)
    sightings = [
        Sighting(pixel_id=pixel.id, x=float(x), y=float(y), sigma=sigma, confidence=float(inlier_share),
                 x_img=float(d.x_img), y_img=float(d.y_img))
        for (pixel, d), (x, y) in zip(match.pixel_detections, scene_points, strict=True)
    ]
    stats.update(anchors_used=int(mapping.inliers), rms_scene=float(mapping.rms_scene), model=mapping.kind)
    return sightings, stats
