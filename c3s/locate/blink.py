"""Blink location: decode the blinking phones of an observer's clip; phones already located
(by seat, QR, ...) are the anchors that fit the clip to the scene."""

from __future__ import annotations

import tempfile
from dataclasses import replace
from pathlib import Path

import numpy as np

from c3s.locate.fusion import Sighting
from c3s.locate.mapping import ImageMatch, LocateFailed, PixelRef, map_sightings
from c3s.models import Scene
from c3s.sync import summarise

# A clip is refused from its header past these, before a frame is decoded: 4K at most (a
# 12000 x 12000 MJPEG clip took 5.5 GB and 84 s), and two minutes (a check needs seconds).
MAX_CLIP_PIXELS = 3840 * 2160
MAX_CLIP_S = 120.0
# Displays lag 40-70 ms and clocks tens of ms: a crowd whose median is further off was timed
# against a wrong clip start, and its offsets would move every correction by that error.
MAX_CROWD_MEDIAN_MS = 250.0
_SUFFIXES = {"video/mp4": ".mp4", "video/webm": ".webm", "video/quicktime": ".mov", "video/x-msvideo": ".avi",
             "video/x-matroska": ".mkv"}


def _check_header(path: Path, fps: float | None) -> None:
    """Refuse a clip too large or too long from what its container says (LocateFailed)."""
    from c3s.vision.blink import clip_header

    try:
        width, height, frames, rate = clip_header(path)
    except ValueError as error:
        raise LocateFailed(f"the clip cannot be decoded: {error}") from None
    if width * height > MAX_CLIP_PIXELS:
        raise LocateFailed(f"the clip is {width} x {height} pixels; at most {MAX_CLIP_PIXELS:,} pixels "
                           "(4K) a frame are decoded: film in 4K or less")
    rate = float(fps or rate)
    if frames and rate > 0 and frames / rate > MAX_CLIP_S:
        raise LocateFailed(f"the clip lasts {frames / rate:.0f} s; at most {MAX_CLIP_S:.0f} s are decoded: "
                           "film a shorter clip")


def blink_sightings(scene: Scene, data: bytes, content_type: str, options: dict,
                    anchors: dict[str, tuple[float, float]], pixels: dict[int, PixelRef]
                    ) -> tuple[list[Sighting], dict]:
    from c3s.vision.blink import decode_clip

    suffix = _SUFFIXES.get(content_type, ".mp4")
    with tempfile.TemporaryDirectory(prefix="c3s-blink-") as folder:
        path = Path(folder) / f"clip{suffix}"
        path.write_bytes(data)
        _check_header(path, options.get("fps"))
        try:
            result = decode_clip(path, **{key: options.get(key)
                                          for key in ("fps", "start_ms", "readout_ms", "exposure_ms")})
        except ValueError as error:
            raise LocateFailed(f"the clip cannot be decoded: {error}") from None
    match = ImageMatch()
    match.counts.update({f"blobs_{k}": v for k, v in result.decode_stats.items() if isinstance(v, int)})
    match.counts["numbers_decoded"] = len(result.detections)
    for detection in result.detections:
        match.add_pixel(pixels.get(detection.number), detection)
    sightings, stats = map_sightings(match, (scene.width, scene.height))
    # Every decoded phone's light-output offset: the clip is a sync check as well.
    offsets = {pixel.id: detection.offset_ms for pixel, detection in match.pixel_detections}
    sightings = [replace(s, offset_ms=offsets[s.pixel_id]) for s in sightings]
    timed = [s for s in sightings if s.offset_ms is not None]
    median = float(np.median([s.offset_ms for s in timed])) if timed else 0.0
    if abs(median) > MAX_CROWD_MEDIAN_MS:  # no display and network are that slow: a wrong start_ms
        stats["sync_refused"] = (f"the crowd's median light-output offset came out at {median:.0f} ms: the "
                                 "clip's start_ms is likely wrong, so no phone's correction was changed")
        sightings, timed = [replace(s, offset_ms=None) for s in sightings], []
    stats["sync"] = summarise([s.offset_ms for s in timed], [s.x for s in timed], [s.y for s in timed],
                              (scene.width, scene.height))
    return sightings, stats
