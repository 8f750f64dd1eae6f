"""GPS fixes into scene coordinates.

An open-air scene carries a `GeoReference`: the WGS84 latitude/longitude of its origin, the
compass bearing of its x axis and the metres in one scene unit. A fix is projected through the
local tangent plane at the origin (geodetic -> ECEF -> east/north/up), then rotated and scaled.
Over a scene of a few kilometres this is exact to well under a centimetre (the test compares with
Karney's geodesics); heights are ignored because phone altitudes are poor and the scene is a plane.

Axis convention, the same as image coordinates seen from above: x points along ``bearing_deg``
(clockwise from true north) and y points 90 degrees clockwise from x. With bearing 90 the scene is
a map with x to the east and y to the south, so a frame drawn on the scene is not mirrored.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

WGS84_A = 6378137.0
WGS84_F = 1 / 298.257223563
WGS84_E2 = WGS84_F * (2 - WGS84_F)


class PositionRejected(ValueError):
    """A GPS fix that must not be used; the message says why."""


@dataclass(frozen=True)
class GeoReference:
    """Where a scene lies on the Earth.

    Attributes
    ----------
    origin_lat, origin_lon : float
        WGS84 degrees of the scene point (0, 0).
    bearing_deg : float
        Direction of the scene x axis, degrees clockwise from true north.
    metres_per_unit : float
        Metres in one scene unit (> 0).
    """

    origin_lat: float
    origin_lon: float
    bearing_deg: float
    metres_per_unit: float = 1.0

    def __post_init__(self) -> None:
        _check_lat_lon(self.origin_lat, self.origin_lon, what="origin")
        if not math.isfinite(self.bearing_deg):
            raise ValueError(f"bearing_deg must be a finite number, got {self.bearing_deg}")
        if not (math.isfinite(self.metres_per_unit) and self.metres_per_unit > 0):
            raise ValueError(f"metres_per_unit must be positive, got {self.metres_per_unit}")
        if abs(self.origin_lat) > 89.9:
            raise ValueError("a scene origin within 0.1 degree of a pole is not supported")


@dataclass(frozen=True)
class GeoFix:
    """A validated GPS fix in scene coordinates (scene units; sigma is the 1-sigma radius)."""

    x_scene: float
    y_scene: float
    sigma_scene: float


def _check_lat_lon(lat: Any, lon: Any, *, what: str = "position") -> None:
    lat_a, lon_a = np.asarray(lat, dtype=np.float64), np.asarray(lon, dtype=np.float64)
    if not (np.all(np.isfinite(lat_a)) and np.all(np.isfinite(lon_a))):
        raise PositionRejected(f"{what} latitude/longitude must be finite numbers")
    if np.any(np.abs(lat_a) > 90):
        raise PositionRejected(f"{what} latitude must be within [-90, 90] degrees, got {lat}")
    if np.any(np.abs(lon_a) > 180):
        raise PositionRejected(f"{what} longitude must be within [-180, 180] degrees, got {lon}")


def geodetic_to_ecef(lat_deg: Any, lon_deg: Any, h_m: Any = 0.0) -> np.ndarray:
    """WGS84 geodetic coordinates to Earth-centred Earth-fixed metres, shape (..., 3)."""
    lat, lon = np.radians(lat_deg), np.radians(lon_deg)
    n = WGS84_A / np.sqrt(1 - WGS84_E2 * np.sin(lat) ** 2)
    return np.stack(
        [
            (n + h_m) * np.cos(lat) * np.cos(lon),
            (n + h_m) * np.cos(lat) * np.sin(lon),
            (n * (1 - WGS84_E2) + h_m) * np.sin(lat),
        ],
        axis=-1,
    )


def ecef_to_geodetic(xyz: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """ECEF metres (..., 3) to WGS84 (lat_deg, lon_deg, h_m); iterative, exact to < 1 mm."""
    x, y, z = xyz[..., 0], xyz[..., 1], xyz[..., 2]
    lon = np.arctan2(y, x)
    p = np.hypot(x, y)
    lat = np.arctan2(z, p * (1 - WGS84_E2))
    for _ in range(6):  # converges to 1e-12 rad in 3-4 steps away from the poles
        n = WGS84_A / np.sqrt(1 - WGS84_E2 * np.sin(lat) ** 2)
        h = p / np.cos(lat) - n
        lat = np.arctan2(z, p * (1 - WGS84_E2 * n / (n + h)))
    n = WGS84_A / np.sqrt(1 - WGS84_E2 * np.sin(lat) ** 2)
    h = p / np.cos(lat) - n
    return np.degrees(lat), np.degrees(lon), h


def _enu_basis(ref: GeoReference) -> np.ndarray:
    """Rows: unit east, north, up vectors at the origin in ECEF."""
    lat, lon = math.radians(ref.origin_lat), math.radians(ref.origin_lon)
    return np.array(
        [
            [-math.sin(lon), math.cos(lon), 0.0],
            [-math.sin(lat) * math.cos(lon), -math.sin(lat) * math.sin(lon), math.cos(lat)],
            [math.cos(lat) * math.cos(lon), math.cos(lat) * math.sin(lon), math.sin(lat)],
        ]
    )


def _scene_axes(ref: GeoReference) -> np.ndarray:
    """Rows: scene x and y unit vectors in (east, north)."""
    b = math.radians(ref.bearing_deg)
    return np.array([[math.sin(b), math.cos(b)], [math.cos(b), -math.sin(b)]])


def project(ref: GeoReference, lat: Any, lon: Any) -> tuple[np.ndarray, np.ndarray]:
    """WGS84 latitude/longitude (degrees, scalars or arrays) to scene (x, y) in scene units.

    Raises `PositionRejected` for non-finite or out-of-range coordinates.
    """
    _check_lat_lon(lat, lon)
    basis = _enu_basis(ref)
    d = geodetic_to_ecef(lat, lon) - geodetic_to_ecef(ref.origin_lat, ref.origin_lon)
    en = d @ basis[:2].T
    xy = en @ _scene_axes(ref).T / ref.metres_per_unit
    return xy[..., 0], xy[..., 1]


def unproject(ref: GeoReference, x_scene: Any, y_scene: Any) -> tuple[np.ndarray, np.ndarray]:
    """Scene (x, y) to WGS84 (lat, lon) degrees: the exact inverse of `project` on the ellipsoid."""
    xy = np.stack(np.broadcast_arrays(np.asarray(x_scene, float), np.asarray(y_scene, float)), -1)
    if not np.all(np.isfinite(xy)):
        raise ValueError("scene coordinates must be finite")
    en = xy * ref.metres_per_unit @ _scene_axes(ref)
    basis = _enu_basis(ref)
    origin = geodetic_to_ecef(ref.origin_lat, ref.origin_lon)
    # The point of the ellipsoid (h = 0) above/below the tangent-plane point: move along "up"
    # until the height is zero; "up" is within a milliradian of the normal over kilometres.
    up = -np.sum(en**2, axis=-1) / (2 * WGS84_A)
    for _ in range(5):
        lat, lon, h = ecef_to_geodetic(origin + en @ basis[:2] + up[..., None] * basis[2])
        up = up - h
    return lat, lon


def check_fix(accuracy_m: float, threshold_m: float) -> None:
    """Refuse a fix whose reported accuracy (metres, 1-sigma radius) is worse than the threshold.

    Raises
    ------
    PositionRejected
        With the reason, e.g. "GPS accuracy 35 m is worse than this scene's limit of 10 m".
    """
    if not (math.isfinite(threshold_m) and threshold_m > 0):
        raise ValueError(f"threshold_m must be a positive number, got {threshold_m}")
    if accuracy_m is None or not math.isfinite(accuracy_m) or accuracy_m <= 0:
        raise PositionRejected(
            f"GPS accuracy must be a positive number of metres, got {accuracy_m!r}"
        )
    if accuracy_m > threshold_m:
        raise PositionRejected(
            f"GPS accuracy {accuracy_m:g} m is worse than this scene's limit of {threshold_m:g} m;"
            " wait for a better fix (outdoors, location services in high-accuracy mode)"
        )


def locate_fix(
    ref: GeoReference,
    lat: float,
    lon: float,
    accuracy_m: float,
    *,
    threshold_m: float,
    scene_size: tuple[float, float] | None = None,
    margin: float = 0.0,
) -> GeoFix:
    """Validate one browser Geolocation fix and place it on the scene.

    Parameters
    ----------
    ref : GeoReference
    lat, lon : float
        WGS84 degrees.
    accuracy_m : float
        The browser's reported accuracy (metres, about a 1-sigma radius).
    threshold_m : float
        The scene's limit; worse fixes are refused.
    scene_size : (width, height), optional
        Scene extent in scene units; a fix outside ``[-margin, width+margin] x [-margin,
        height+margin]`` is refused.
    margin : float
        Tolerance around the scene, scene units.

    Raises
    ------
    PositionRejected
        Impossible coordinates, an accuracy worse than the threshold, or a position off the scene.
    """
    check_fix(accuracy_m, threshold_m)
    x, y = (float(v) for v in project(ref, lat, lon))
    if scene_size is not None:
        w, h = scene_size
        if not (-margin <= x <= w + margin and -margin <= y <= h + margin):
            raise PositionRejected(
                f"the fix lies at ({x:.1f}, {y:.1f}) scene units, outside the scene "
                f"({w:g} x {h:g}); is the phone at this venue?"
            )
    return GeoFix(x, y, accuracy_m / ref.metres_per_unit)
