"""GPS projection into the scene, checked against Karney's exact geodesics (geographiclib)."""

from __future__ import annotations

import math

import numpy as np
import pytest
from geographiclib.geodesic import Geodesic

from c3s.positioning.geo import (
    GeoReference,
    PositionRejected,
    check_fix,
    locate_fix,
    project,
    unproject,
)

GEOD = Geodesic.WGS84
ORIGINS = [(55.7558, 37.6173), (-33.8688, 151.2093), (0.0, -179.99), (69.65, 18.96)]


@pytest.mark.parametrize("origin", ORIGINS)
@pytest.mark.parametrize("bearing_deg", [0.0, 37.5, 270.0])
def test_projection_matches_exact_geodesics_to_a_centimetre_over_a_kilometre(origin, bearing_deg):
    metres_per_unit = 0.8
    ref = GeoReference(*origin, bearing_deg=bearing_deg, metres_per_unit=metres_per_unit)
    rng = np.random.default_rng(1)
    for azimuth, distance in zip(rng.uniform(0, 360, 24), rng.uniform(1, 1000, 24), strict=True):
        target = GEOD.Direct(*origin, azimuth, distance)
        x, y = project(ref, target["lat2"], target["lon2"])
        dx_m, dy_m = float(x) * metres_per_unit, float(y) * metres_per_unit
        # Scene y is 90 degrees clockwise from x, so the compass bearing is x's plus atan2(y, x).
        bearing = bearing_deg + math.degrees(math.atan2(dy_m, dx_m))
        turn = math.radians((bearing - azimuth + 180) % 360 - 180)
        radial_error = abs(math.hypot(dx_m, dy_m) - distance)
        lateral_error = abs(turn) * distance
        assert math.hypot(radial_error, lateral_error) < 0.01


def test_axes_follow_the_bearing_and_the_scene_is_not_mirrored():
    ref = GeoReference(48.0, 11.0, bearing_deg=90.0, metres_per_unit=2.0)
    east = GEOD.Direct(48.0, 11.0, 90.0, 100.0)
    south = GEOD.Direct(48.0, 11.0, 180.0, 100.0)
    np.testing.assert_allclose(project(ref, east["lat2"], east["lon2"]), (50.0, 0.0), atol=1e-3)
    np.testing.assert_allclose(project(ref, south["lat2"], south["lon2"]), (0.0, 50.0), atol=1e-3)


def test_unproject_inverts_project_within_a_millimetre():
    ref = GeoReference(-33.8688, 151.2093, bearing_deg=123.0, metres_per_unit=1.5)
    rng = np.random.default_rng(2)
    x, y = rng.uniform(-700, 700, (2, 50))
    lat, lon = unproject(ref, x, y)
    x2, y2 = project(ref, lat, lon)
    assert np.max(np.hypot(x2 - x, y2 - y)) * ref.metres_per_unit < 1e-3
    # And the points really lie that far from the origin on the ellipsoid.
    d = GEOD.Inverse(ref.origin_lat, ref.origin_lon, float(lat[0]), float(lon[0]))["s12"]
    assert abs(d - math.hypot(x[0], y[0]) * 1.5) < 0.01


@pytest.mark.parametrize(
    "lat, lon, reason",
    [(91.0, 10.0, "latitude"), (45.0, 200.0, "longitude"), (float("nan"), 0.0, "finite")],
)
def test_impossible_coordinates_are_refused(lat, lon, reason):
    ref = GeoReference(45.0, 10.0, bearing_deg=0.0)
    with pytest.raises(PositionRejected, match=reason):
        project(ref, lat, lon)
    with pytest.raises(PositionRejected, match=reason):
        locate_fix(ref, lat, lon, 5.0, threshold_m=10.0)


def test_bad_geo_reference_is_refused():
    with pytest.raises(ValueError, match="metres_per_unit"):
        GeoReference(45.0, 10.0, bearing_deg=0.0, metres_per_unit=0.0)
    with pytest.raises(ValueError, match="latitude"):
        GeoReference(95.0, 10.0, bearing_deg=0.0)


def test_fix_worse_than_the_threshold_is_refused_with_the_reason():
    check_fix(4.0, 10.0)
    with pytest.raises(PositionRejected, match="accuracy 35 m is worse than this scene's limit of 10 m"):
        check_fix(35.0, 10.0)
    with pytest.raises(PositionRejected, match="positive number"):
        check_fix(float("nan"), 10.0)


def test_locate_fix_places_a_good_fix_and_refuses_one_off_the_scene():
    ref = GeoReference(52.52, 13.405, bearing_deg=90.0, metres_per_unit=0.5)
    inside = GEOD.Direct(52.52, 13.405, 135.0, 20.0)  # 14.1 m east and south
    fix = locate_fix(ref, inside["lat2"], inside["lon2"], 3.0, threshold_m=8.0,
                     scene_size=(100.0, 100.0))
    assert fix.x_scene == pytest.approx(28.28, abs=0.01)
    assert fix.y_scene == pytest.approx(28.28, abs=0.01)
    assert fix.sigma_scene == pytest.approx(6.0)
    far = GEOD.Direct(52.52, 13.405, 300.0, 5000.0)
    with pytest.raises(PositionRejected, match="outside the scene"):
        locate_fix(ref, far["lat2"], far["lon2"], 3.0, threshold_m=8.0, scene_size=(100.0, 100.0))
