"""From image points to scene sightings, for every camera method: detections are matched to
pixels, anchors (reference points and pixels already located with confidence) fit the photo to
the scene, and every matched detection becomes a sighting in scene units."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Protocol

import numpy as np

from c3s.locate.fusion import Sighting

# Located pixels this sure of their place serve as anchors, so photos of neighbouring sections
# chain into one scene.
ANCHOR_MIN_CONFIDENCE = 0.8
MIN_ANCHORS = 4
MAX_DETECTIONS_IN_STATS = 2000  # bounds the job row (about 50 bytes each)


class LocateFailed(ValueError):
    """The upload cannot locate anything; the message says why and what to do."""


class ImagePoint(Protocol):
    x_img: float
    y_img: float


@dataclass(frozen=True)
class PixelRef:
    id: int
    number: int
    status: str
    x: float | None = None
    y: float | None = None
    confidence: float | None = None


@dataclass
class ImageMatch:
    """Detections of one upload sorted into anchors, pixels and rejections (with counts)."""

    anchor_img: list[tuple[float, float]] = field(default_factory=list)
    anchor_scene: list[tuple[float, float]] = field(default_factory=list)
    pixel_detections: list[tuple[PixelRef, ImagePoint]] = field(default_factory=list)
    counts: Counter = field(default_factory=Counter)

    def add_anchor(self, detection: ImagePoint, scene_xy: tuple[float, float]) -> None:
        self.anchor_img.append((detection.x_img, detection.y_img))
        self.anchor_scene.append(scene_xy)

    def add_pixel(self, pixel: PixelRef | None, detection: ImagePoint) -> None:
        if pixel is None:
            self.counts["rejected_unknown_pixel"] += 1
            return
        if pixel.status not in ("joined", "located"):
            self.counts[f"rejected_{pixel.status}_pixel"] += 1
            return
        self.pixel_detections.append((pixel, detection))
        self.counts["pixels_matched"] += 1
        if pixel.x is not None and (pixel.confidence or 0) >= ANCHOR_MIN_CONFIDENCE:
            self.add_anchor(detection, (pixel.x, pixel.y))
            self.counts["pixel_anchors"] += 1


def map_sightings(match: ImageMatch, scene_size: tuple[float, float]) -> tuple[list[Sighting], dict]:
    """Fit the upload to the scene on its anchors and map every matched pixel detection.

    Raises `LocateFailed` when there are too few anchors or their geometry is degenerate."""
    from c3s.vision.homography import MappingError, fit_scene_mapping

    stats = dict(match.counts)
    found = len(match.anchor_img)
    stats["anchors_found"] = found
    if not match.pixel_detections:
        stats["note"] = "no pixels of this scene were recognised"
        return [], stats
    if found < MIN_ANCHORS:
        raise LocateFailed(
            f"the upload shows {found} anchor(s) of this scene; at least {MIN_ANCHORS} are needed to "
            "map it onto the scene — include reference codes or already located phones in the shot")
    try:
        mapping = fit_scene_mapping(np.array(match.anchor_img, float), np.array(match.anchor_scene, float))
    except MappingError as error:
        raise LocateFailed(f"the anchors cannot map the upload onto the scene: {error}") from None
    centres = np.array([(d.x_img, d.y_img) for _, d in match.pixel_detections], float)
    scene_points = mapping.apply(centres)
    # A position is never surer than the fit that produced it.
    sigma = max(float(mapping.rms_scene), 1e-3 * max(scene_size))
    inlier_share = mapping.inliers / max(found, 1)
    sightings = [
        Sighting(pixel_id=pixel.id, x=float(x), y=float(y), sigma=sigma,
                 confidence=float(inlier_share) * float(getattr(d, "confidence", 1.0)),
                 x_img=float(d.x_img), y_img=float(d.y_img))
        for (pixel, d), (x, y) in zip(match.pixel_detections, scene_points, strict=True)
    ]
    stats.update(anchors_used=int(mapping.inliers), rms_scene=float(mapping.rms_scene), model=mapping.kind)
    # Where each pixel was seen in the upload, so the observer page can draw it over the photo.
    stats["detections"] = [{"number": pixel.number, "x_img": round(float(d.x_img), 1),
                            "y_img": round(float(d.y_img), 1)}
                           for pixel, d in match.pixel_detections[:MAX_DETECTIONS_IN_STATS]]
    return sightings, stats
