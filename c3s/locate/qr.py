"""QR location: decode every code in an observer's photo and sort the codes into this scene's
anchors and pixels; `mapping` turns them into sightings."""

from __future__ import annotations

import numpy as np

from c3s.locate.fusion import Sighting
from c3s.locate.mapping import ImageMatch, PixelRef, map_sightings
from c3s.vision.qr import QRDetection


def match_detections(scene_id: int, detections: list[QRDetection], anchors: dict[str, tuple[float, float]],
                     pixels: dict[int, PixelRef]) -> ImageMatch:
    from c3s.vision.qrcode import parse_payload

    match = ImageMatch()
    match.counts["codes_decoded"] = len(detections)
    for detection in detections:
        payload = parse_payload(detection.payload)
        if payload is None:
            match.counts["rejected_foreign_code"] += 1
        elif payload.scene_id != scene_id:
            match.counts["rejected_other_scene"] += 1
        elif payload.kind == "pixel":
            match.add_pixel(pixels.get(payload.number), detection)
        elif payload.anchor_key in anchors:
            match.add_anchor(detection, anchors[payload.anchor_key])
            match.counts["reference_anchors"] += 1
        else:
            match.counts["rejected_unknown_anchor"] += 1
    return match


def qr_sightings(scene_id: int, scene_size: tuple[float, float], image: np.ndarray,
                 anchors: dict[str, tuple[float, float]], pixels: dict[int, PixelRef]
                 ) -> tuple[list[Sighting], dict]:
    """Sightings of this scene's pixels in one photo (BGR or grayscale), with the job's counts."""
    from c3s.vision.qr import decode_qr_codes

    return map_sightings(match_detections(scene_id, decode_qr_codes(image), anchors, pixels), scene_size)
