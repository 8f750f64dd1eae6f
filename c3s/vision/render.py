"""Pictures of what the crowd shows: each located pixel drawn as a dot of its colour.

This is the operator's preview of a frame as the stand will render it, and the demo's pictures.
Images are ``(H, W, 3)`` ``uint8`` **RGB**; positions are in scene units (x right, y down).
"""

from __future__ import annotations

import cv2
import numpy as np
from scipy.spatial import cKDTree


def _default_dot_radius_px(positions: np.ndarray, px_per_unit: float) -> int:
    if len(positions) < 2:
        return 2
    distances, _ = cKDTree(positions).query(positions, k=2)
    # Dots a bit smaller than the typical spacing, so neighbours stay distinct like real phones.
    return max(0, int(round(0.4 * np.median(distances[:, 1]) * px_per_unit)))


def render_crowd_view(
    positions: np.ndarray,
    colors: np.ndarray,
    scene_size: tuple[float, float],
    *,
    width_px: int,
    dot_radius_px: int | None = None,
    background: tuple[int, int, int] = (0, 0, 0),
) -> np.ndarray:
    """Draw every pixel as a filled disc of its colour at its place on the scene.

    Parameters
    ----------
    positions : (N, 2) float, ``x, y`` in scene units.
    colors : (N, 3) uint8 RGB, one colour per position (e.g. ``ColorMapper.colors(frame)``).
    scene_size : (width, height) of the scene in scene units.
    width_px : width of the picture; its height keeps the scene's aspect ratio.
    dot_radius_px : radius of each dot in picture pixels (0 draws single pixels); default 40 %
        of the median nearest-neighbour spacing.
    background : RGB of the empty scene.

    Returns
    -------
    (round(width_px * height / width), width_px, 3) uint8 RGB. Overlapping dots: later wins.
    """
    positions = np.asarray(positions, dtype=np.float64)
    colors = np.asarray(colors)
    if positions.ndim != 2 or positions.shape[1] != 2 or not np.isfinite(positions).all():
        raise ValueError(f"positions must be a finite (N, 2) array, got shape {positions.shape}")
    if colors.dtype != np.uint8 or colors.shape != (len(positions), 3):
        raise ValueError(f"colors must be ({len(positions)}, 3) uint8 RGB, got {colors.dtype} {colors.shape}")
    scene_w, scene_h = (float(v) for v in scene_size)
    if not (scene_w > 0 and scene_h > 0) or width_px < 1:
        raise ValueError("scene_size must be positive and width_px at least 1")
    px_per_unit = width_px / scene_w
    height_px = max(1, int(round(scene_h * px_per_unit)))
    if dot_radius_px is None:
        dot_radius_px = _default_dot_radius_px(positions, px_per_unit)
    canvas = np.empty((height_px, width_px, 3), np.uint8)
    canvas[...] = background
    # One vectorised write per offset in the disc instead of one draw call per pixel.
    dy, dx = np.mgrid[-dot_radius_px : dot_radius_px + 1, -dot_radius_px : dot_radius_px + 1]
    inside = dx**2 + dy**2 <= dot_radius_px**2 + dot_radius_px
    cx = np.floor(positions[:, 0] * px_per_unit).astype(np.int64)
    cy = np.floor(positions[:, 1] * px_per_unit).astype(np.int64)
    for oy, ox in zip(dy[inside], dx[inside], strict=True):
        x, y = cx + ox, cy + oy
        on_canvas = (x >= 0) & (x < width_px) & (y >= 0) & (y < height_px)
        canvas[y[on_canvas], x[on_canvas]] = colors[on_canvas]
    return canvas


def side_by_side(frame: np.ndarray, crowd_view: np.ndarray, *, gap_px: int = 8) -> np.ndarray:
    """The frame and the crowd's rendering of it next to each other, at the frame's height.

    Parameters
    ----------
    frame : (H, W, 3) uint8 RGB.
    crowd_view : (h, w, 3) uint8 RGB, e.g. from :func:`render_crowd_view`; scaled to height H.
    gap_px : width of the dark grey gap between the two.

    Returns
    -------
    (H, W + gap_px + w * H / h, 3) uint8 RGB.
    """
    for name, image in (("frame", frame), ("crowd_view", crowd_view)):
        if image.dtype != np.uint8 or image.ndim != 3 or image.shape[2] != 3:
            raise ValueError(f"{name} must be an (H, W, 3) uint8 RGB image, got {image.dtype} {image.shape}")
    height = frame.shape[0]
    width = max(1, int(round(crowd_view.shape[1] * height / crowd_view.shape[0])))
    interpolation = cv2.INTER_AREA if height < crowd_view.shape[0] else cv2.INTER_NEAREST
    scaled = cv2.resize(crowd_view, (width, height), interpolation=interpolation)
    gap = np.full((height, gap_px, 3), 40, np.uint8)
    return np.concatenate([frame, gap, scaled], axis=1)
