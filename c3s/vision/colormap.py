"""Colour maps: one colour per located pixel for a frame, and the track table over all frames.

Each pixel shows the **area average** of the frame over its *footprint*, its share of the scene,
averaged in linear light (sRGB decode, average, sRGB encode), so a sparse crowd still draws a clean,
unaliased picture instead of a point sample of whatever detail happens to sit under each phone.

Footprints are axis-aligned squares centred on the pixel. Their half side comes from local density:
half the mean distance to the ``neighbours`` nearest other pixels, so in a full seat grid squares
tile the stand, and a pixel in a sparse area gets a larger square that covers its emptier
surroundings. A footprint is cut to the scene; one narrower than a frame pixel is widened to one
frame pixel and, at the scene's edge, shifted back inside the scene rather than reaching past it.

The mean is over the part of the footprint **inside the frame**: area outside the frame (contain's
black bars) is left out, it does not count as black, so a uniform frame gives its exact colour to
every pixel that sees any of it, with every fit. A footprint wholly outside the frame (a pixel
in contain's black bars) is black, ``(0, 0, 0)``.

Work is split in two stages. :meth:`ColorMapper.build` does everything that depends only on
geometry: footprints, the fit of the frame to the scene, a pyramid level per pixel (the coarsest at
which its footprint still spans ``cells_per_footprint`` cells, default 2) and a sparse averaging
matrix whose row holds the pixel's cells at that level, weighted by the fraction of each cell inside
the footprint. :meth:`ColorMapper.colors` then does, per frame:

1. sRGB to 16-bit linear light with ``cv2.LUT`` and exact 2x2 means (``cv2.resize`` INTER_AREA at
   half size) down to the pyramid's finest level, strip by strip so the 16-bit full-resolution
   intermediate stays in cache; then the few coarser levels from that;
2. one sparse matrix product over the pyramid, then sRGB encoding of the N means by table.

For a 4K frame and 100,000 pixels the footprints are ~8 frame pixels wide, the finest level is 4x4
and each pixel reads ~10 cells. The one approximation is inside a footprint's boundary cells, where
detail finer than a cell is treated as spread evenly over the cell; :func:`reference_colors` is the
exact full-resolution answer to measure it against (``c3s bench colormap`` reports both).

Coordinates: scene units for positions and scene sizes (x right, y down, origin top-left of the
scene); image pixels for frames, whose arrays are ``(H, W, 3)`` ``uint8`` in **RGB** order.
"""

from __future__ import annotations

import struct
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Literal

import cv2
import numpy as np
import scipy.sparse
from scipy.spatial import cKDTree

FitMode = Literal["contain", "cover", "stretch"]
FIT_MODES: tuple[str, ...] = ("contain", "cover", "stretch")

LINEAR_MAX = 65535
"""Linear light is held as integers 0..65535 (16 bits), enough that sRGB 1 (linear 3e-4) is 20."""

_STRIP_ROWS = 64
_BAND_CELLS = 8


def srgb_to_linear(values: np.ndarray) -> np.ndarray:
    """Decode sRGB values in [0, 1] to linear light in [0, 1] (IEC 61966-2-1), as float64."""
    v = np.asarray(values, dtype=np.float64)
    return np.where(v <= 0.04045, v / 12.92, ((v + 0.055) / 1.055) ** 2.4)


def linear_to_srgb(values: np.ndarray) -> np.ndarray:
    """Encode linear light in [0, 1] to sRGB values in [0, 1], as float64."""
    v = np.clip(np.asarray(values, dtype=np.float64), 0.0, 1.0)
    return np.where(v <= 0.0031308, v * 12.92, 1.055 * v ** (1 / 2.4) - 0.055)


# uint8 sRGB -> uint16 linear, and uint16 linear -> uint8 sRGB; the pair round-trips all 256 levels.
DECODE_LUT = np.rint(srgb_to_linear(np.arange(256) / 255) * LINEAR_MAX).astype(np.uint16)
ENCODE_LUT = np.rint(linear_to_srgb(np.arange(LINEAR_MAX + 1) / LINEAR_MAX) * 255).astype(np.uint8)


@dataclass(frozen=True)
class Fit:
    """How a frame sits on the scene: ``x_img = (x_scene - offset_x) * px_per_unit_x``, same in y."""

    px_per_unit_x: float
    px_per_unit_y: float
    offset_x: float
    offset_y: float


def fit_frame(scene_size: tuple[float, float], frame_size: tuple[int, int], fit: str) -> Fit:
    """Place a frame on the scene.

    Parameters
    ----------
    scene_size : (width, height) in scene units.
    frame_size : (width, height) in image pixels.
    fit : "contain" (whole frame visible, black bars), "cover" (scene filled, frame cropped,
        centred) or "stretch" (frame stretched to the scene, aspect not kept).
    """
    scene_w, scene_h = scene_size
    frame_w, frame_h = frame_size
    if fit == "stretch":
        return Fit(frame_w / scene_w, frame_h / scene_h, 0.0, 0.0)
    if fit not in FIT_MODES:
        raise ValueError(f"fit must be one of {', '.join(FIT_MODES)}, not {fit!r}")
    ratios = (frame_w / scene_w, frame_h / scene_h)
    # contain shows the whole frame, so the larger px-per-unit ratio wins; cover the smaller.
    px_per_unit = max(ratios) if fit == "contain" else min(ratios)
    offset_x = (scene_w - frame_w / px_per_unit) / 2
    offset_y = (scene_h - frame_h / px_per_unit) / 2
    return Fit(px_per_unit, px_per_unit, offset_x, offset_y)


def footprint_radii(
    positions: np.ndarray, *, neighbours: int = 4, max_scale: float = 4.0
) -> np.ndarray:
    """Half side of each pixel's square footprint from local density, in scene units.

    Half the mean distance to the ``neighbours`` nearest other pixels, capped at ``max_scale``
    times the median so one stray pixel far from the crowd does not average half the frame.
    A single pixel gets ``inf`` (the whole scene).

    Parameters
    ----------
    positions : (N, 2) float, scene units.

    Returns
    -------
    (N,) float64, scene units, >= 0.
    """
    positions = np.asarray(positions, dtype=np.float64)
    n = len(positions)
    if n == 1:
        return np.array([np.inf])
    k = min(neighbours, n - 1)
    distances, _ = cKDTree(positions).query(positions, k=k + 1)
    radii = 0.5 * distances[:, 1:].reshape(n, k).mean(axis=1)
    return np.minimum(radii, max_scale * np.median(radii))


def _validate_geometry(positions, scene_size, frame_shape) -> tuple[np.ndarray, tuple, tuple]:
    positions = np.asarray(positions, dtype=np.float64)
    if positions.ndim != 2 or positions.shape[1] != 2 or len(positions) == 0:
        raise ValueError(f"positions must be an (N, 2) array with N >= 1, got {positions.shape}")
    if not np.isfinite(positions).all():
        raise ValueError("positions contain NaN or infinity; pass only located pixels")
    scene_w, scene_h = (float(v) for v in scene_size)
    if not (scene_w > 0 and scene_h > 0 and np.isfinite(scene_w) and np.isfinite(scene_h)):
        raise ValueError(f"scene_size must be two positive numbers, got {scene_size!r}")
    if len(frame_shape) < 2 or frame_shape[0] < 1 or frame_shape[1] < 1:
        raise ValueError(f"frame_shape must be (H, W[, 3]) with H, W >= 1, got {frame_shape!r}")
    return positions, (scene_w, scene_h), (int(frame_shape[0]), int(frame_shape[1]))


def _power_of_two_at_most(values: np.ndarray) -> np.ndarray:
    """Largest power of two <= each value, as int64; 1 for values below 2."""
    with np.errstate(divide="ignore"):
        exponent = np.floor(np.log2(np.maximum(values, 1.0)))
    return (2 ** exponent).astype(np.int64)


@dataclass(frozen=True)
class Pyramid:
    """Layout of the linear-light pyramid that one flat ``(M, 3)`` buffer holds, finest first.

    Level ``k`` has cell size ``base * 2**k`` frame pixels and shape ``shapes[k]`` (rows, cols);
    its cells are rows ``offsets[k] : offsets[k] + rows * cols`` of the buffer, in raster order.
    """

    base: int
    shapes: tuple[tuple[int, int], ...]
    offsets: tuple[int, ...]

    @classmethod
    def plan(cls, frame_hw: tuple[int, int], base: int, coarsest: int) -> Pyramid:
        rows, cols = -(-frame_hw[0] // base), -(-frame_hw[1] // base)
        shapes, offsets, offset, size = [], [], 0, base
        while True:
            shapes.append((rows, cols))
            offsets.append(offset)
            offset += rows * cols
            if size >= coarsest:
                return cls(base, tuple(shapes), tuple(offsets))
            rows, cols, size = -(-rows // 2), -(-cols // 2), size * 2

    @property
    def n_cells(self) -> int:
        rows, cols = self.shapes[-1]
        return self.offsets[-1] + rows * cols

    def fill(self, frame: np.ndarray) -> np.ndarray:
        """(M, 3) uint16 buffer with every level of ``frame``'s linear-light pyramid."""
        buffer = np.empty((self.n_cells, 3), np.uint16)
        previous = None
        for (rows, cols), offset in zip(self.shapes, self.offsets, strict=True):
            level_view = buffer[offset : offset + rows * cols].reshape(rows, cols, 3)
            if previous is None:
                linear_downsample(frame, self.base, out=level_view)
            else:
                # Odd sides: pad with zeros (see linear_downsample) to keep exact 2x2 block sums.
                pad_h, pad_w = 2 * rows - previous.shape[0], 2 * cols - previous.shape[1]
                if pad_h or pad_w:
                    previous = cv2.copyMakeBorder(previous, 0, pad_h, 0, pad_w,
                                                  cv2.BORDER_CONSTANT, value=0)
                level_view[...] = cv2.resize(previous, (cols, rows), interpolation=cv2.INTER_AREA)
            previous = level_view
        return buffer


@dataclass(frozen=True, eq=False)
class ColorMapper:
    """Geometry precomputed for mapping frames of one shape onto one set of pixel positions.

    Build with :meth:`build`; then :meth:`colors` per frame. Immutable, safe to share.

    Attributes
    ----------
    frame_shape : (H, W) of the frames this mapper accepts, image pixels.
    boxes_px : (N, 4) float64, each footprint ``x0, y0, x1, y1`` in full-resolution frame pixels,
        inside the scene but not cut to the frame (contain's black bars lie outside the frame);
        only the part inside the frame is averaged.
    cell_px : (N,) int64, the pyramid cell size (frame pixels, a power of two) each pixel's
        average is taken at.
    pyramid : the linear-light pyramid layout.
    matrix : (N, M) float32 sparse CSR; row j times the pyramid buffer is the mean linear value
        of pixel ``order[j]``.
    order : (N,) int64, pixel indices sorted by pyramid level and raster order of footprints, so
        the matrix reads the buffer in one sweep.
    inverse_order : (N,) int64, row of the matrix that holds each pixel.
    """

    frame_shape: tuple[int, int]
    boxes_px: np.ndarray
    cell_px: np.ndarray
    pyramid: Pyramid
    matrix: scipy.sparse.csr_matrix
    order: np.ndarray
    inverse_order: np.ndarray

    @property
    def n_pixels(self) -> int:
        return self.boxes_px.shape[0]

    @classmethod
    def build(
        cls,
        positions: np.ndarray,
        scene_size: tuple[float, float],
        frame_shape: tuple[int, ...],
        *,
        fit: FitMode = "contain",
        radii: np.ndarray | None = None,
        level: int | None = None,
        cells_per_footprint: float = 2.0,
    ) -> ColorMapper:
        """Precompute footprints and the sparse averaging matrix.

        Parameters
        ----------
        positions : (N, 2) float, pixel centres ``x, y`` in scene units. A position outside the
            scene is moved to the nearest scene edge.
        scene_size : (width, height) of the scene in scene units.
        frame_shape : shape of the frames to map, ``(H, W)`` or ``(H, W, 3)``, image pixels.
        fit : "contain", "cover" or "stretch"; see :func:`fit_frame`.
        radii : optional (N,) half sides of the footprints in scene units; default from local
            density (:func:`footprint_radii`).
        level : finest pyramid cell size in frame pixels (a power of two). Default: the size at
            which the median footprint spans ``cells_per_footprint`` to twice that many cells.
            ``level=1`` with ``cells_per_footprint=inf`` is the exact full-resolution average.
        cells_per_footprint : each pixel is averaged at the coarsest pyramid level where its
            footprint still spans at least this many cells (never finer than ``level``). Larger
            is more exact and slower.
        """
        positions, scene_size, (frame_h, frame_w) = _validate_geometry(
            positions, scene_size, frame_shape
        )
        if not cells_per_footprint >= 1:
            raise ValueError(f"cells_per_footprint must be >= 1, got {cells_per_footprint}")
        if radii is None:
            radii = footprint_radii(positions)
        radii = np.broadcast_to(np.asarray(radii, dtype=np.float64), (len(positions),))
        if not (radii >= 0).all():
            raise ValueError("radii must be non-negative numbers in scene units")
        boxes_px = _footprint_boxes(positions, radii, scene_size, fit_frame(
            scene_size, (frame_w, frame_h), fit))
        # Levels follow the part of each footprint inside the frame: that part is what is averaged.
        inside = _clip_to_frame(boxes_px, (frame_h, frame_w))
        side_px = np.minimum(inside[:, 2] - inside[:, 0], inside[:, 3] - inside[:, 1])
        if level is None:
            seen = side_px[side_px > 0]
            median = np.median(seen) if len(seen) else 1.0
            level = int(_power_of_two_at_most(median / cells_per_footprint))
        if level < 1 or level & (level - 1):
            raise ValueError(f"level must be a power of two >= 1, got {level}")
        coarsest = int(2 ** np.ceil(np.log2(max(frame_h, frame_w))))
        cell_px = np.clip(level * _power_of_two_at_most(side_px / (cells_per_footprint * level)),
                          level, max(coarsest, level))
        pyramid = Pyramid.plan((frame_h, frame_w), level, int(cell_px.max()))
        centre_y_cells = (boxes_px[:, 1] + boxes_px[:, 3]) / (2 * cell_px)
        order = np.lexsort((boxes_px[:, 0], np.floor(centre_y_cells / _BAND_CELLS), cell_px))
        matrix = _averaging_matrix(boxes_px[order], cell_px[order], (frame_h, frame_w), pyramid)
        inverse_order = np.empty_like(order)
        inverse_order[order] = np.arange(len(order))
        return cls((frame_h, frame_w), boxes_px, cell_px, pyramid, matrix, order, inverse_order)

    def colors(self, frame: np.ndarray) -> np.ndarray:
        """Each pixel's colour for one frame.

        Parameters
        ----------
        frame : (H, W, 3) uint8 RGB, with (H, W) equal to this mapper's ``frame_shape``.

        Returns
        -------
        (N, 3) uint8 RGB, the linear-light area average over the part of each footprint inside
        the frame, sRGB encoded; black for a footprint wholly outside the frame.
        """
        _check_frame(frame, self.frame_shape)
        linear = self.matrix @ self.pyramid.fill(frame)
        np.clip(linear, 0, LINEAR_MAX, out=linear)
        return np.take(ENCODE_LUT[np.rint(linear).astype(np.uint16)], self.inverse_order, axis=0)


def _check_frame(frame: np.ndarray, frame_shape: tuple[int, int]) -> None:
    if not isinstance(frame, np.ndarray) or frame.dtype != np.uint8:
        raise ValueError("frame must be a uint8 numpy array (H, W, 3), RGB")
    if frame.ndim != 3 or frame.shape[2] != 3:
        raise ValueError(f"frame must have shape (H, W, 3), got {frame.shape}")
    if frame.shape[:2] != frame_shape:
        raise ValueError(
            f"frame is {frame.shape[1]}x{frame.shape[0]} but this mapper was built for "
            f"{frame_shape[1]}x{frame_shape[0]}; build a mapper for this frame size"
        )


def _footprint_boxes(positions, radii, scene_size, placed: Fit) -> np.ndarray:
    scene_w, scene_h = scene_size
    x = np.clip(positions[:, 0], 0.0, scene_w)
    y = np.clip(positions[:, 1], 0.0, scene_h)
    # A footprint is the pixel's share of the scene, so it never reaches past the scene's edge.
    x0, x1 = np.maximum(x - radii, 0.0), np.minimum(x + radii, scene_w)
    y0, y1 = np.maximum(y - radii, 0.0), np.minimum(y + radii, scene_h)
    # At least one frame pixel wide: narrower than that, an area average is a point sample anyway.
    x0, x1 = _widen_within(x0, x1, 1.0 / placed.px_per_unit_x, scene_w)
    y0, y1 = _widen_within(y0, y1, 1.0 / placed.px_per_unit_y, scene_h)
    boxes = np.stack([x0, y0, x1, y1], axis=1)
    boxes[:, 0::2] = (boxes[:, 0::2] - placed.offset_x) * placed.px_per_unit_x
    boxes[:, 1::2] = (boxes[:, 1::2] - placed.offset_y) * placed.px_per_unit_y
    return boxes


def _widen_within(lo: np.ndarray, hi: np.ndarray, min_side: float, extent: float):
    """Widen each [lo, hi] about its centre to at least ``min_side`` (at most ``extent``), then
    shift it back inside [0, extent] instead of letting it reach past the edge."""
    side = np.minimum(np.maximum(hi - lo, min_side), extent)
    grow = (side - (hi - lo)) / 2
    lo, hi = lo - grow, hi + grow
    shift = np.maximum(-lo, 0.0) - np.maximum(hi - extent, 0.0)
    return np.clip(lo + shift, 0.0, extent), np.clip(hi + shift, 0.0, extent)


def _clip_to_frame(boxes_px: np.ndarray, frame_hw: tuple[int, int]) -> np.ndarray:
    """(N, 4) footprints ``x0, y0, x1, y1`` cut to the frame; empty ones have ``x1 <= x0`` or
    ``y1 <= y0`` after the cut (a footprint wholly outside is pinned to an edge, zero wide)."""
    frame_h, frame_w = frame_hw
    inside = np.empty_like(boxes_px)
    inside[:, 0::2] = np.clip(boxes_px[:, 0::2], 0.0, frame_w)
    inside[:, 1::2] = np.clip(boxes_px[:, 1::2], 0.0, frame_h)
    return inside


def _axis_weights(lo: np.ndarray, hi: np.ndarray, extent: np.ndarray):
    """Cells overlapped by [lo, hi) (in cells, clipped to [0, extent)) and their weights.

    Returns (N, K) int64 cell indices and (N, K) float64 weights: the overlap length divided by
    the part of the cell inside the frame (a cell on the frame's edge holds the sum of its real
    pixels over the whole cell area). Weights are 0 past the footprint's end or the frame's edge.
    """
    lo_in, hi_in = np.clip(lo, 0.0, extent), np.clip(hi, 0.0, extent)
    first = np.floor(lo_in).astype(np.int64)
    span = int(np.max(np.ceil(hi_in) - first, initial=1))
    cells = first[:, None] + np.arange(max(span, 1))
    overlap = np.minimum(cells + 1, hi_in[:, None]) - np.maximum(cells, lo_in[:, None])
    inside_frame = np.clip(extent - cells, 0.0, 1.0)
    weight = np.divide(np.clip(overlap, 0.0, 1.0), inside_frame, out=np.zeros(cells.shape),
                       where=inside_frame > 0)
    return cells, weight


def _averaging_matrix(boxes_px, cell_px, frame_hw, pyramid: Pyramid):
    """(N, M) CSR: each row averages its footprint's cells at its level, fractional at the edges.

    Rows are built one pyramid level at a time. The mean is over the part of the footprint
    inside the frame (area outside it has no cells and is left out of the mean, it does not count
    as black); a footprint wholly outside the frame gets an empty row, so its colour is black.
    """
    frame_h, frame_w = frame_hw
    rows, cols, weights = [], [], []
    for k, size in enumerate(pyramid.base * 2 ** np.arange(len(pyramid.shapes))):
        which = np.flatnonzero(cell_px == size)
        if len(which) == 0:
            continue
        x0, y0, x1, y1 = (boxes_px[which, i] / size for i in range(4))
        cx, wx = _axis_weights(x0, x1, frame_w / size)
        cy, wy = _axis_weights(y0, y1, frame_h / size)
        inside = _clip_to_frame(boxes_px[which], frame_hw) / size
        area = (inside[:, 2] - inside[:, 0]) * (inside[:, 3] - inside[:, 1])  # in cells
        weight = np.divide(wy[:, :, None] * wx[:, None, :], area[:, None, None],
                           out=np.zeros((len(which), wy.shape[1], wx.shape[1])),
                           where=area[:, None, None] > 0)
        column = pyramid.offsets[k] + cy[:, :, None] * pyramid.shapes[k][1] + cx[:, None, :]
        keep = weight > 0
        rows.append(np.broadcast_to(which[:, None, None], weight.shape)[keep])
        cols.append(column[keep])
        weights.append(weight[keep])
    matrix = scipy.sparse.csr_matrix(
        (np.concatenate(weights).astype(np.float32), (np.concatenate(rows), np.concatenate(cols))),
        shape=(len(boxes_px), pyramid.n_cells),
    )
    return matrix


def linear_downsample(frame: np.ndarray, level: int, *, out: np.ndarray | None = None) -> np.ndarray:
    """sRGB frame to 16-bit linear light, box-averaged over ``level`` x ``level`` blocks.

    Parameters
    ----------
    frame : (H, W, 3) uint8 RGB.
    level : power of two.
    out : optional destination, same shape and dtype as the result.

    Returns
    -------
    (ceil(H / level), ceil(W / level), 3) uint16, linear light scaled to 0..65535. Frames whose
    sides are not multiples of ``level`` are padded with zeros, so a cell on the frame's edge holds
    (sum of its real pixels) / level**2; the averaging matrix divides by the cell's real fraction.
    """
    pad_h, pad_w = -frame.shape[0] % level, -frame.shape[1] % level
    if pad_h or pad_w:
        frame = cv2.copyMakeBorder(frame, 0, pad_h, 0, pad_w, cv2.BORDER_CONSTANT, value=0)
    height, width = frame.shape[:2]
    if out is None:
        out = np.empty((height // level, width // level, 3), np.uint16)
    if level == 1:
        out[...] = cv2.LUT(frame, DECODE_LUT)
        return out
    rows = max(_STRIP_ROWS // level, 1) * level
    # Strip by strip: the 16-bit intermediate of one strip stays in cache instead of going to RAM.
    for top in range(0, height, rows):
        strip = cv2.LUT(frame[top : top + rows], DECODE_LUT)
        factor = 1
        while factor < level:
            factor *= 2
            # INTER_AREA at exactly half size is an exact 2x2 mean (rounded), OpenCV's fast path.
            strip = cv2.resize(strip, (width // factor, strip.shape[0] // 2),
                               interpolation=cv2.INTER_AREA)
        out[top // level : top // level + strip.shape[0]] = strip
    return out


def reference_colors(
    mapper: ColorMapper, frame: np.ndarray, indices: np.ndarray | None = None
) -> np.ndarray:
    """Exact area average, one pixel at a time in plain Python: the baseline and the yardstick.

    Uses the same footprints as ``mapper`` but no downsampling and float64 linear light, with each
    frame pixel weighted by the fraction of it inside the footprint, divided by the footprint's area
    inside the frame (black for a footprint wholly outside it).

    Parameters
    ----------
    mapper : the mapper whose footprints to use.
    frame : (H, W, 3) uint8 RGB.
    indices : optional pixel indices to compute (default all).

    Returns
    -------
    (len(indices), 3) uint8 RGB.
    """
    _check_frame(frame, mapper.frame_shape)
    frame_h, frame_w = mapper.frame_shape
    if indices is None:
        indices = np.arange(mapper.n_pixels)
    out = np.zeros((len(indices), 3), np.uint8)
    for row, i in enumerate(indices):
        x0, y0, x1, y1 = mapper.boxes_px[i]
        c0, c1 = max(int(np.floor(x0)), 0), min(int(np.ceil(x1)), frame_w)
        r0, r1 = max(int(np.floor(y0)), 0), min(int(np.ceil(y1)), frame_h)
        if c1 <= c0 or r1 <= r0:
            continue  # entirely in contain's black bars
        cols = np.arange(c0, c1)
        wx = np.clip(np.minimum(cols + 1, x1) - np.maximum(cols, x0), 0, 1)
        rows = np.arange(r0, r1)
        wy = np.clip(np.minimum(rows + 1, y1) - np.maximum(rows, y0), 0, 1)
        linear = srgb_to_linear(frame[r0:r1, c0:c1] / 255.0)
        total = np.einsum("r,c,rck->k", wy, wx, linear)
        mean = total / ((min(x1, frame_w) - max(x0, 0)) * (min(y1, frame_h) - max(y0, 0)))
        out[row] = np.rint(linear_to_srgb(mean) * 255).astype(np.uint8)
    return out


def build_track_table(mapper: ColorMapper, frames: Iterable[np.ndarray]) -> np.ndarray:
    """Every pixel's colour for every frame.

    Parameters
    ----------
    mapper : built for the frames' shape.
    frames : iterable of (H, W, 3) uint8 RGB frames, in show order.

    Returns
    -------
    (n_frames, N, 3) uint8 RGB; ``table[:, i]`` is pixel i's track.
    """
    rows = [mapper.colors(frame) for frame in frames]
    if not rows:
        raise ValueError("a show needs at least one frame to build a track table")
    return np.stack(rows)


def track_for_pixel(table: np.ndarray, index: int) -> np.ndarray:
    """(n_frames, 3) uint8 RGB colours of pixel ``index`` (its position in the mapper's order)."""
    if table.ndim != 3 or table.shape[2] != 3:
        raise ValueError(f"table must have shape (n_frames, N, 3), got {table.shape}")
    if not 0 <= index < table.shape[1]:
        raise ValueError(f"pixel index {index} is outside 0..{table.shape[1] - 1}")
    return np.ascontiguousarray(table[:, index])


_MAGIC = b"C3CM"
_VERSION = 1
_HEADER = struct.Struct("<4sBxxxI")  # magic, version, padding, pixel count (little-endian)


def pack_color_map(colors: np.ndarray) -> bytes:
    """Compact bytes for one colour map: a 12-byte header, then 3 bytes (R, G, B) per pixel.

    Header: ``b"C3CM"``, format version (1 byte), 3 zero bytes, pixel count (uint32 LE).
    """
    colors = np.asarray(colors)
    if colors.dtype != np.uint8 or colors.ndim != 2 or colors.shape[1] != 3:
        raise ValueError(f"colors must be an (N, 3) uint8 RGB array, got {colors.dtype} {colors.shape}")
    return _HEADER.pack(_MAGIC, _VERSION, len(colors)) + np.ascontiguousarray(colors).tobytes()


def unpack_color_map(data: bytes, n: int) -> np.ndarray:
    """Inverse of :func:`pack_color_map`; ``n`` is the pixel count the caller expects.

    Returns (n, 3) uint8 RGB. Raises ValueError for a foreign, newer, truncated or mismatched map.
    """
    if len(data) < _HEADER.size:
        raise ValueError(f"colour map is {len(data)} bytes, shorter than its {_HEADER.size}-byte header")
    magic, version, count = _HEADER.unpack_from(data)
    if magic != _MAGIC:
        raise ValueError("not a C3S colour map (bad magic bytes)")
    if version != _VERSION:
        raise ValueError(f"colour map format version {version} is not supported (expected {_VERSION})")
    if count != n:
        raise ValueError(f"colour map holds {count} pixels but {n} were expected; rebuild the map")
    if len(data) != _HEADER.size + 3 * n:
        raise ValueError(f"colour map for {n} pixels must be {_HEADER.size + 3 * n} bytes, got {len(data)}")
    return np.frombuffer(data, np.uint8, offset=_HEADER.size).reshape(n, 3).copy()
