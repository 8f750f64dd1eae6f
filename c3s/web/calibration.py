"""What a joined phone is told to do to be located: the method's instructions and the URLs of
the routes it calls (URLs belong to the web layer, not to the domain)."""

from __future__ import annotations

from typing import Any

from c3s.locate.sound import recording_instructions
from c3s.models import Pixel, Scene
from c3s.vision.qrcode import pixel_payload


def calibration(scene: Scene, pixel: Pixel) -> dict[str, Any]:
    """What the phone must display (or do) to be located by the scene's method, with the URLs
    of the routes it uses for that."""
    plain = calibration_of(scene.id, pixel.number, scene.method.code, max_gps_accuracy_m=scene.max_gps_accuracy_m,
                           georeferenced=scene.geo_lat is not None)
    if plain is not None:
        return plain
    # POST a mono WAV and the synced-clock time of its first sample (start_ms) to recording_url.
    return {**recording_instructions(scene), "recording_url": f"/api/scenes/{scene.id}/pixels/{pixel.number}/sound"}


def calibration_of(scene_id: int, number: int, method: str, *, max_gps_accuracy_m: float,
                   georeferenced: bool) -> dict[str, Any] | None:
    """:func:`calibration` from the scene row's columns alone; None for the sound method, whose
    instructions depend on the scene's speakers."""
    base = f"/api/scenes/{scene_id}/pixels/{number}"
    if method == "qr":
        return {"method": "qr", "payload": pixel_payload(scene_id, number),
                "png_url": f"{base}/code.png", "svg_url": f"{base}/code.svg"}
    if method == "blink":
        return {"method": "blink", "pattern_url": f"{base}/pattern"}
    if method == "seat":
        # POST {"section", "row", "seat"} to seat_url; a typo is answered with suggestions.
        return {"method": "seat", "seat_url": f"{base}/seat",
                "seatmap_url": f"/api/scenes/{scene_id}/seatmap", "fields": ["section", "row", "seat"]}
    if method == "gps":
        # POST {"lat", "lon", "accuracy_m"} from navigator.geolocation (enableHighAccuracy).
        return {"method": "gps", "fix_url": f"{base}/gps", "max_accuracy_m": max_gps_accuracy_m,
                "georeferenced": georeferenced, "high_accuracy": True}
    return None
