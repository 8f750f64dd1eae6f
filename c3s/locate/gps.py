"""GPS: a phone's browser fix becomes a sighting of that pixel on a geo-referenced scene.

Each fix is a `gps` job of its own, written through `commit_sightings`. A newer fix replaces the
pixel's earlier one instead of being averaged with it: consecutive fixes of one phone share most
of their error (multipath, satellite geometry), so averaging them would claim an accuracy the
phone does not have.
"""

from __future__ import annotations

from dataclasses import dataclass

from c3s.errors import Conflict, Invalid
from c3s.locate.fusion import (
    Sighting,
    commit_sightings,
    direct_job,
    require_locatable,
    withdraw_observations,
)
from c3s.models import LocateJob, Pixel, Scene, User
from c3s.positioning.geo import GeoReference, PositionRejected, locate_fix

# A fix this close outside the scene is the scene's edge seen through GPS noise, not another place.
EDGE_MARGIN_SIGMAS = 2.0
GPS_MIN_CONFIDENCE, GPS_MAX_CONFIDENCE = 0.3, 0.7


@dataclass(frozen=True)
class GpsOutcome:
    job: LocateJob
    x: float
    y: float
    sigma: float


def geo_reference(scene: Scene) -> GeoReference:
    """The scene's geo-reference; `Conflict` when the operator has not set one."""
    if scene.geo_lat is None:
        raise Conflict(f"scene {scene.id} has no geo-reference, so GPS fixes cannot be placed on it; "
                       "the operator must set geo_lat, geo_lon, geo_bearing_deg and geo_metres_per_unit",
                       detail={"missing": ["geo_lat", "geo_lon", "geo_bearing_deg", "geo_metres_per_unit"]})
    return GeoReference(scene.geo_lat, scene.geo_lon, scene.geo_bearing_deg, scene.geo_metres_per_unit)


def locate_by_gps(session, user: User, scene: Scene, pixel: Pixel, *, lat: float, lon: float,
                  accuracy_m: float) -> GpsOutcome:
    """Place the pixel at its GPS fix (the caller commits).

    Raises `Conflict` without a geo-reference, `Invalid` for impossible coordinates, a fix worse
    than ``scene.max_gps_accuracy_m`` or a fix off the scene, each with the reason."""
    require_locatable(user, pixel, to="report its GPS position")
    ref = geo_reference(scene)
    margin = EDGE_MARGIN_SIGMAS * accuracy_m / ref.metres_per_unit if accuracy_m and accuracy_m > 0 else 0.0
    try:
        fix = locate_fix(ref, lat, lon, accuracy_m, threshold_m=scene.max_gps_accuracy_m,
                         scene_size=(scene.width, scene.height), margin=margin)
    except PositionRejected as error:
        raise Invalid(str(error), detail={"lat": lat, "lon": lon, "accuracy_m": accuracy_m,
                                          "max_accuracy_m": scene.max_gps_accuracy_m}) from None
    # The edge margin admits a fix just outside; the pixel itself lies on the scene.
    x = min(max(fix.x_scene, 0.0), scene.width)
    y = min(max(fix.y_scene, 0.0), scene.height)
    withdraw_observations(session, scene, pixel.id, "gps", refuse=False)
    job = direct_job(session, scene, user, "gps", {
        "pixel_id": pixel.id, "lat": lat, "lon": lon, "accuracy_m": accuracy_m,
        "x_scene": fix.x_scene, "y_scene": fix.y_scene})
    # Kept below mapping.ANCHOR_MIN_CONFIDENCE (0.8): a metre-scale GPS position must never
    # anchor the fit of a camera photo.
    confidence = GPS_MIN_CONFIDENCE + (GPS_MAX_CONFIDENCE - GPS_MIN_CONFIDENCE) * max(
        0.0, 1.0 - accuracy_m / scene.max_gps_accuracy_m)
    commit_sightings(session, job, scene, [Sighting(pixel_id=pixel.id, x=x, y=y, sigma=fix.sigma_scene,
                                                    confidence=confidence)])
    return GpsOutcome(job, x, y, fix.sigma_scene)
