"""Streaming blob tracker: blobs found on the opening frames, followed under drift, measured per frame."""

from __future__ import annotations

from dataclasses import dataclass, field

import cv2
import numpy as np


@dataclass
class _Tracks:
    """Per-blob time series collected while streaming (no frames are kept)."""

    base: np.ndarray  # (n, 2) float64 x, y in first-frame coordinates
    first_frame: np.ndarray  # (n,) int
    sums: list = field(default_factory=list)  # per frame (n_f, 3) float32 window sums, BGR
    pos: list = field(default_factory=list)  # per frame (n_f, 2) float32 centroid - drift
    weight: list = field(default_factory=list)  # per frame (n_f,) float32 centroid weight
    drift: np.ndarray = field(default_factory=lambda: np.zeros(2))
    blob_area: np.ndarray = field(default_factory=lambda: np.zeros(0))


def _detect_blobs(frame: np.ndarray, *, threshold: float | None, max_area: int):
    """Bright connected regions of one BGR frame: centroids (k, 2) x, y and areas (k,)."""
    b, g, r = cv2.split(frame)
    gray = cv2.max(cv2.max(b, g), r)
    if threshold is None:
        sample = gray[::7, ::7].astype(np.float32)
        median = float(np.median(sample))
        mad = float(np.median(np.abs(sample - median))) + 1.0
        threshold = median + max(18.0, 8.0 * 1.4826 * mad)
    _, mask = cv2.threshold(gray, float(threshold), 1, cv2.THRESH_BINARY)
    n, _, stats, centroids = cv2.connectedComponentsWithStats(mask, connectivity=8)
    area = stats[1:, cv2.CC_STAT_AREA]
    keep = area <= max_area
    return centroids[1:][keep], area[keep]


def _add_new_blobs(tracks: _Tracks, centroids: np.ndarray, area: np.ndarray, frame_index: int):
    if len(centroids) == 0:
        return
    base_new = centroids - tracks.drift
    if len(tracks.base):
        from scipy.spatial import cKDTree

        dist, _ = cKDTree(tracks.base).query(base_new, k=1)
        fresh = dist > 3.0
        base_new, area = base_new[fresh], area[fresh]
    tracks.base = np.concatenate([tracks.base, base_new])
    tracks.first_frame = np.concatenate(
        [tracks.first_frame, np.full(len(base_new), frame_index, dtype=np.int64)]
    )
    tracks.blob_area = np.concatenate([tracks.blob_area, area.astype(np.float64)])


def _window_layout(radius: int):
    """Offsets (dy, dx) of a window's pixels, flattened, and which of them are on its border."""
    d = np.arange(-radius, radius + 1)
    dy, dx = np.meshgrid(d, d, indexing="ij")
    border = (np.abs(dy) == radius) | (np.abs(dx) == radius)
    return dy.ravel(), dx.ravel(), border.ravel()


def _measure(frame: np.ndarray, tracks: _Tracks, radius: int):
    """Window sums (n, 3) and centroid positions (n, 2) x, y of each blob, weights (n,)."""
    h, w = frame.shape[:2]
    centre = tracks.base + tracks.drift
    cx = np.clip(np.rint(centre[:, 0]).astype(np.int64), radius, w - 1 - radius)
    cy = np.clip(np.rint(centre[:, 1]).astype(np.int64), radius, h - 1 - radius)
    dy, dx, border = _window_layout(radius)
    flat = (cy * w + cx)[:, None] + (dy * w + dx)[None, :]  # (n, s*s)
    flat3 = 3 * flat[:, None, :] + np.arange(3)[None, :, None]  # (n, 3, s*s), contiguous windows
    patch = frame.reshape(-1)[flat3].astype(np.float32)
    sums = patch.sum(axis=2)
    lum = patch[:, 0] + patch[:, 1] + patch[:, 2]
    background = lum[:, border].mean(axis=1)
    wgt = np.maximum(lum - background[:, None] - 6.0, 0.0)
    total = wgt.sum(axis=1)
    safe = np.maximum(total, 1e-6)
    off = np.stack([wgt @ dx.astype(np.float32), wgt @ dy.astype(np.float32)], axis=1)
    measured = np.stack([cx, cy], axis=1) + off / safe[:, None]
    return sums, measured, total


def _update_drift(tracks: _Tracks, measured: np.ndarray, total: np.ndarray) -> None:
    predicted = tracks.base + tracks.drift
    strong = total > np.percentile(total, 50) if len(total) > 8 else total > 0
    strong &= total > 30.0
    if strong.sum() >= 3:
        shift = np.median(measured[strong] - predicted[strong], axis=0)
        tracks.drift = tracks.drift + np.clip(shift, -1.5, 1.5)


def _step(tracks: _Tracks, frame: np.ndarray, radius: int) -> None:
    if len(tracks.base) == 0:
        tracks.sums.append(np.zeros((0, 3), np.float32))
        tracks.pos.append(np.zeros((0, 2), np.float32))
        tracks.weight.append(np.zeros(0, np.float32))
        return
    sums, measured, total = _measure(frame, tracks, radius)
    _update_drift(tracks, measured, total)
    tracks.sums.append(sums.astype(np.float32))
    tracks.pos.append((measured - tracks.drift).astype(np.float32))
    tracks.weight.append(total.astype(np.float32))


_OPENING_MS = 140.0  # first detection on the brightest of the frames of about two slots
_OPENING_FRAMES = 8  # at most this many frames are held (4K: 25 MB each)


class _Opening:
    """The first frames are held until the first detection, which runs on their per-pixel
    maximum: a phone showing a dim colour (a dim phone's blue) in the very first frame is still
    found, and then measured from the start of the clip, not from the next re-detection."""

    def __init__(self, threshold, max_area: int, radius: int):
        self.frames: list | None = []
        self.peak = None
        self.threshold, self.max_area, self.radius = threshold, max_area, radius

    def add(self, tracks: _Tracks, frame: np.ndarray, elapsed_ms: float) -> bool:
        """Hold ``frame``; True once the opening was detected and measured."""
        self.frames.append(frame)
        self.peak = frame.copy() if self.peak is None else cv2.max(self.peak, frame)
        if elapsed_ms < _OPENING_MS and len(self.frames) < _OPENING_FRAMES:
            return False
        self.flush(tracks)
        return True

    def flush(self, tracks: _Tracks) -> None:
        if not self.frames:
            self.frames = None
            return
        centroids, area = _detect_blobs(self.peak, threshold=self.threshold, max_area=self.max_area)
        _add_new_blobs(tracks, centroids, area, 0)
        # The peak image is the opening's blurred view under drift: follow the blobs backwards
        # through the held frames to their first-frame positions, then measure forwards from
        # there (positions are in first-frame coordinates, the first frame's drift is zero).
        first = len(tracks.pos)
        for held in self.frames[::-1]:
            _step(tracks, held, self.radius)
        del tracks.sums[first:], tracks.pos[first:], tracks.weight[first:]
        tracks.base = tracks.base + tracks.drift
        tracks.drift = np.zeros(2)
        for held in self.frames:
            _step(tracks, held, self.radius)
        self.frames, self.peak = None, None


def _stack(per_frame: list, n: int, width: int) -> np.ndarray:
    """Per-frame arrays of growing length -> (n, frames, width) float32, NaN before a blob existed."""
    out = np.full((n, len(per_frame), width), np.nan, dtype=np.float32)
    for f, arr in enumerate(per_frame):
        out[: len(arr), f] = arr.reshape(len(arr), width)
    return out
