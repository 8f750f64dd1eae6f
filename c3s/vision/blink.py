"""The blinking-light code a far-away pixel phone plays, and the video decoder that reads it.

The code
--------
A pattern is 16 slots of 75 ms (period 1.2 s); during server time ``t_ms`` a phone shows slot
``floor(t_ms / 75) mod 16`` full screen. Every slot is one of 8 colours whose RGB channels are each
fully on (255) or off (0)::

    slot 0       white  (sync marker, and each phone's per-channel "on" level)
    slot 1       black  (sync marker, and each phone's per-channel "off" level)
    slots 2..15  data: 7 symbols of two slots each; every data slot is one of the six colours
                 with one or two channels on (R, G, B, Y, C, M), never white, never black

Why this layout:

- 75 ms slots: at 30 fps (33 ms frames) every slot contains at least one frame whose whole exposure
  lies inside it, even with full-frame exposure; at 24 fps the best frame of a slot is still at
  least 90 % inside it; 60 fps is easy.
- All phones run on the server clock, so slot boundaries and the cycle phase are the same for the
  whole crowd: the decoder recovers them once from thousands of blobs (robust), not per blob.
- White and black appear only in slots 0 and 1, so the (white, black) pair is a sync marker that no
  cyclic shift of any pattern can reproduce: a shifted pattern has a data colour (at least one
  channel wrong) where the marker should be. A data slot that reads black is an *erasure* (the
  phone was hidden: occlusion looks dark), not an error; a data slot that reads white is an error.
- Data: a pair of data slots carries one symbol of GF(31) (6 x 6 = 36 pairs, 31 used, the other
  5 pairs are invalid). The 7 symbols are a Reed-Solomon [7, 4] codeword over GF(31) (minimum
  distance 4 symbols) plus a fixed offset. The 4 message symbols are the base-31 digits of the
  number, so numbers 0 .. 131,071 (2**17) are supported; the range itself is a further check.
  The decoder fills at most 2 erased symbols and never corrects clear errors: with no erasures,
  three check symbols must agree (a random colour sequence passes with probability about 1 in
  10**5 before the marker and colour checks); any single clearly wrong symbol is always detected
  even when two symbols were erased. Soft decoding may overrule at most 2 symbols, only where
  their readings were nearly ambiguous, and only when every other codeword is clearly less likely.

The decoder
-----------
:func:`decode_frames` streams frames (memory holds per-blob time series and, until the first
detection, the frames of the first ~140 ms): blobs are detected on the per-pixel maximum of those
opening frames and re-detected now and then, followed under global drift (median shift of all
blobs), measured in a small window (per-channel sums and a centroid). At the end it recovers slot
boundaries (least within-slot variance over the crowd), the cycle phase (the white-then-black
marker over the crowd), hides frames where a blob went dark outside the black slot (occlusion),
reads each blob's 16 slots (a slot seen in two cycles: the better-covered, undimmed repeats),
normalises them by the blob's own per-channel off/on levels (two-means), and classifies each data
slot against colour templates learnt from the crowd and then refined per blob (a linear colour
response fitted on the blob's own slots: tiny blobs in 4:2:0 video lose chroma and gain clipped
colour bleed). Unclear slots become erasures; the Reed-Solomon check accepts a number only if a
check symbol confirms it, and a decode resting on one check symbol must also be the soft
decoder's choice. Blobs refused for erasures or a failed check get a soft-decision pass
(:func:`soft_decode`, per-channel noise of the blob's own fit), then one with a colour model
learnt from the crowd's decoded blobs of similar brightness. A blob whose repeated slots changed
between cycles (no phone does that) gets no decode that rests on one check symbol. Positions are
intensity-weighted centroids in the coordinates of the first frame (drift removed).

Assumptions: phones follow the server clock within about +-15 ms; the camera drift is mainly a
translation (a few pixels per second); phones are at least ~2 window sizes apart in the image.
"""

from __future__ import annotations

import itertools
import os
import re
import warnings
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np

SLOT_MS = 75.0
N_SLOTS = 16
N_NUMBERS = 2**17
"""Numbers 0 .. N_NUMBERS - 1 have a pattern."""

_P = 31  # GF(31): one symbol per pair of data slots
_N_SYMBOLS = 7
_K_SYMBOLS = 4
_ALPHA = np.arange(1, _N_SYMBOLS + 1, dtype=np.int64)
_VANDER = (_ALPHA[:, None] ** np.arange(_K_SYMBOLS)[None, :]) % _P  # (7, 4)
_OFFSET = np.array([3, 17, 8, 25, 12, 29, 5], dtype=np.int64)
_DATA_BITS = np.array(
    [[1, 0, 0], [0, 1, 0], [0, 0, 1], [1, 1, 0], [0, 1, 1], [1, 0, 1]], dtype=np.uint8
)  # R, G, B, Y, C, M (RGB order)
_BITS_TO_DATA = {tuple(int(b) for b in bits): i for i, bits in enumerate(_DATA_BITS)}
MAX_ERASED_SYMBOLS = 2
_LATE_BIAS = 0.2  # later frames of a slot weigh more: lossy video lags colour changes
_GAP = 2.0  # how much nearer (in residual-sigma units) the best colour must be than the next


@dataclass(frozen=True)
class BlinkPattern:
    """What a phone plays: ``colors[k]`` (RGB uint8) during slot ``k`` of every cycle.

    Attributes
    ----------
    number : int
        The pixel number this pattern encodes.
    slot_ms : float
        Slot duration in milliseconds (server clock).
    colors : np.ndarray, shape (n_slots, 3), uint8, RGB
        Each channel is 0 or 255.
    """

    number: int
    slot_ms: float
    colors: np.ndarray

    @property
    def period_ms(self) -> float:
        return self.slot_ms * len(self.colors)

    def color_at(self, t_ms: float) -> np.ndarray:
        """RGB colour (uint8, shape (3,)) shown at server time ``t_ms`` (Unix milliseconds)."""
        return self.colors[int(np.floor(t_ms / self.slot_ms)) % len(self.colors)]


def _check_number(number: int) -> int:
    if isinstance(number, bool) or not isinstance(number, int | np.integer):
        raise ValueError(f"pixel number must be an integer, got {number!r}")
    if not 0 <= int(number) < N_NUMBERS:
        raise ValueError(f"pixel number must be in 0..{N_NUMBERS - 1}, got {number}")
    return int(number)


def _symbols(number: int) -> np.ndarray:
    digits = np.array([(number // _P**i) % _P for i in range(_K_SYMBOLS)], dtype=np.int64)
    return (_VANDER @ digits + _OFFSET) % _P


def pattern(number: int) -> BlinkPattern:
    """The blink pattern of pixel ``number`` (0 .. 131,071).

    Raises
    ------
    ValueError
        If ``number`` is not an integer in range.
    """
    number = _check_number(number)
    symbols = _symbols(number)
    data = np.stack([symbols // 6, symbols % 6], axis=1).reshape(-1)  # 14 colour indices
    bits = np.concatenate([[[1, 1, 1], [0, 0, 0]], _DATA_BITS[data]])
    return BlinkPattern(number=number, slot_ms=SLOT_MS, colors=(bits * 255).astype(np.uint8))


def pattern_bits(numbers: np.ndarray) -> np.ndarray:
    """Channel bits of many patterns at once: ``(len(numbers), 16, 3)`` uint8 of 0/1 (RGB)."""
    numbers = np.asarray(numbers, dtype=np.int64)
    if numbers.size and (numbers.min() < 0 or numbers.max() >= N_NUMBERS):
        raise ValueError(f"pixel numbers must be in 0..{N_NUMBERS - 1}")
    digits = np.stack([(numbers // _P**i) % _P for i in range(_K_SYMBOLS)], axis=1)
    symbols = (digits @ _VANDER.T + _OFFSET) % _P  # (n, 7)
    data = np.stack([symbols // 6, symbols % 6], axis=2).reshape(len(numbers), 2 * _N_SYMBOLS)
    head = np.broadcast_to(np.array([[1, 1, 1], [0, 0, 0]], np.uint8), (len(numbers), 2, 3))
    return np.concatenate([head, _DATA_BITS[data]], axis=1)


# --------------------------------------------------------------------------- GF(31) algebra


def _inv_mod(matrix: np.ndarray) -> np.ndarray:
    """Inverse of a square matrix over GF(31) (Gauss-Jordan)."""
    n = len(matrix)
    aug = np.concatenate([matrix % _P, np.eye(n, dtype=np.int64)], axis=1)
    for col in range(n):
        pivot = col + int(np.flatnonzero(aug[col:, col])[0])
        aug[[col, pivot]] = aug[[pivot, col]]
        aug[col] = aug[col] * pow(int(aug[col, col]), _P - 2, _P) % _P
        for row in range(n):
            if row != col and aug[row, col]:
                aug[row] = (aug[row] - aug[row, col] * aug[col]) % _P
    return aug[:, n:]


def decode_symbols(symbols: np.ndarray, known: np.ndarray) -> np.ndarray:
    """Numbers from Reed-Solomon words; -1 where the word is inconsistent or out of range.

    Parameters
    ----------
    symbols : np.ndarray, shape (n, 7), int
        Received GF(31) symbols (values at unknown positions are ignored).
    known : np.ndarray, shape (n, 7), bool
        Which symbols were read; rows with fewer than 5 known symbols give -1 (at least one
        check symbol must confirm the word).
    """
    symbols = (np.asarray(symbols, dtype=np.int64) - _OFFSET) % _P
    known = np.asarray(known, dtype=bool)
    out = np.full(len(symbols), -1, dtype=np.int64)
    masks = known @ (1 << np.arange(_N_SYMBOLS))
    for mask in np.unique(masks):
        positions = np.flatnonzero((int(mask) >> np.arange(_N_SYMBOLS)) & 1)
        if len(positions) < _K_SYMBOLS + 1:
            continue
        rows = np.flatnonzero(masks == mask)
        basis, checks = positions[:_K_SYMBOLS], positions[_K_SYMBOLS:]
        digits = symbols[np.ix_(rows, basis)] @ _inv_mod(_VANDER[basis]).T % _P  # (r, 4)
        predicted = digits @ _VANDER[checks].T % _P
        ok = np.all(predicted == symbols[np.ix_(rows, checks)], axis=1)
        numbers = digits @ (_P ** np.arange(_K_SYMBOLS))
        ok &= numbers < N_NUMBERS
        out[rows[ok]] = numbers[ok]
    return out


# --------------------------------------------------------------------------- results


@dataclass(frozen=True)
class BlinkDetection:
    """One decoded phone.

    ``x_img``/``y_img`` are image pixels (x right, y down, pixel centres at integers) in the
    coordinates of the clip's first frame; ``code`` is the pixel number as a decimal string.
    """

    code: str
    number: int
    x_img: float
    y_img: float
    confidence: float
    erased_symbols: int


@dataclass
class BlinkResult:
    """Decoded phones plus what the decoder saw.

    ``decode_stats`` holds ``blobs``, ``decoded`` and ``rejected`` (a dict reason -> count);
    ``slot_phase_ms`` is the time (on the clip's clock) of a slot-0 start; ``frames`` the number of
    frames read.
    """

    detections: list[BlinkDetection]
    decode_stats: dict
    slot_phase_ms: float | None = None
    frames: int = 0
    extra: dict = field(default_factory=dict)


# --------------------------------------------------------------------------- streaming tracker


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


# --------------------------------------------------------------------------- timing recovery


def _frame_times(timestamps_ms, fps, n_frames: int) -> np.ndarray:
    if timestamps_ms is not None:
        t = np.asarray(list(timestamps_ms), dtype=np.float64)
        if len(t) != n_frames:
            raise ValueError(f"got {len(t)} timestamps for {n_frames} frames; give one per frame")
        if n_frames > 1 and np.any(np.diff(t) <= 0):
            raise ValueError("frame timestamps must be strictly increasing (milliseconds)")
        return t
    return np.arange(n_frames, dtype=np.float64) * 1000.0 / float(fps)


def _normalise(values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per blob and channel min-max scaling over axis 1; returns (z, contrast)."""
    lo = np.nanmin(values, axis=1, keepdims=True)
    hi = np.nanmax(values, axis=1, keepdims=True)
    contrast = hi - lo
    return (values - lo) / np.maximum(contrast, 1e-6), contrast[:, 0, :]


def recover_slot_phase(z: np.ndarray, t_ms: np.ndarray, *, slot_ms: float = SLOT_MS) -> float:
    """Slot-boundary phase (ms, in [0, slot_ms)) minimising the within-slot variance.

    Parameters
    ----------
    z : np.ndarray, shape (n_blobs, n_frames, 3), float
        Normalised blob values (NaN allowed).
    t_ms : np.ndarray, shape (n_frames,)
        Frame times in milliseconds.
    """
    z = np.nan_to_num(z, nan=0.0)
    cs1 = np.concatenate([np.zeros_like(z[:, :1]), np.cumsum(z, axis=1)], axis=1)
    cs2 = np.concatenate([np.zeros_like(z[:, :1]), np.cumsum(z * z, axis=1)], axis=1)
    coarse = _best_phase(cs1, cs2, t_ms, np.arange(0.0, slot_ms, 2.0), slot_ms)
    fine = np.mod(coarse + np.arange(-2.0, 2.01, 0.5), slot_ms)
    return _best_phase(cs1, cs2, t_ms, fine, slot_ms)


def _best_phase(cs1, cs2, t_ms, phases, slot_ms) -> float:
    """The phase with the least within-slot sum of squares, from cumulative sums along frames."""
    best, best_cost = float(phases[0]), np.inf
    for phase in phases:
        labels = np.floor((t_ms - phase) / slot_ms).astype(np.int64)
        edges = np.r_[0, np.flatnonzero(labels[1:] != labels[:-1]) + 1, len(labels)]
        s1 = cs1[:, edges[1:]] - cs1[:, edges[:-1]]
        s2 = cs2[:, edges[1:]] - cs2[:, edges[:-1]]
        count = np.diff(edges)[None, :, None]
        cost = float((s2 - s1 * s1 / count).sum())
        if cost < best_cost - 1e-9:
            best, best_cost = float(phase), cost
    return best


def _slot_readings(values, z_frames, t_ms, phase, frame_ms, *, coverage: bool = False):
    """Average frames inside each slot instance, weighting frames far from slot edges.

    Returns readings (n, J, 3), normalised readings (n, J, 3), instance labels (J,) and, with
    ``coverage``, each reading's total frame weight (n, J) (0 where unseen).
    """
    rel = t_ms - phase
    labels = np.floor(rel / SLOT_MS).astype(np.int64)
    edge = np.minimum(rel - labels * SLOT_MS, (labels + 1) * SLOT_MS - rel)
    w = np.clip(edge / (0.5 * frame_ms), 0.02, 1.0) ** 2
    w = w * (_LATE_BIAS + (rel - labels * SLOT_MS) / SLOT_MS)
    uniq = np.unique(labels)
    readings = np.empty((values.shape[0], len(uniq), 3), np.float32)
    zread = np.empty_like(readings)
    weight = np.empty(readings.shape[:2], np.float32)
    for j, lab in enumerate(uniq):
        sel = labels == lab
        ww = w[sel][None, :, None] * np.isfinite(values[:, sel, :1])
        weight[:, j] = ww.sum(axis=1)[:, 0]
        denom = np.maximum(weight[:, j, None], 1e-9)
        readings[:, j] = np.nansum(values[:, sel] * ww, axis=1) / denom
        zread[:, j] = np.nansum(z_frames[:, sel] * ww, axis=1) / denom
        missing = weight[:, j] == 0
        readings[missing, j] = np.nan
        zread[missing, j] = np.nan
    if coverage:
        return readings, zread, uniq, weight
    return readings, zread, uniq


def _hide_dark_frames(values, z_frames, t_ms, phase, k0, frame_ms):
    """NaN out frames where a blob is dark outside the black slot: it was hidden (occluded)
    then, since data slots always have a channel on; a dimmed frame would blur the slot reading."""
    rel = t_ms - phase - ((1 - k0) % N_SLOTS) * SLOT_MS  # black slot starts at rel = 0 (mod period)
    rel = np.mod(rel, N_SLOTS * SLOT_MS)
    period = N_SLOTS * SLOT_MS
    near_black = (rel > period - frame_ms) | (rel < SLOT_MS + frame_ms)
    dark = np.nanmax(z_frames, axis=2) < 0.45  # (n, frames)
    dark &= ~near_black[None, :]
    return np.where(dark[:, :, None], np.nan, values)


def recover_cycle_phase(zread: np.ndarray, labels: np.ndarray) -> int:
    """Slot index of instance label 0: the shift where the crowd is white then black."""
    all_on = np.nanmedian(np.nanmin(zread, axis=2), axis=0)  # (J,)
    any_on = np.nanmedian(np.nanmax(zread, axis=2), axis=0)
    best, best_score = 0, -np.inf
    for k0 in range(N_SLOTS):
        idx = (labels + k0) % N_SLOTS
        white, black = all_on[idx == 0], any_on[idx == 1]
        if len(white) == 0 and len(black) == 0:
            continue
        score = np.nanmean(np.r_[white, 1.0 - black])
        if score > best_score:
            best, best_score = k0, score
    return best


def _per_slot(readings: np.ndarray, slot_index: np.ndarray, weight: np.ndarray):
    """Combine instances of the same slot (n, 16, 3): ignore a repeat seen only through a frame
    or two at a slot edge (e.g. the clip's first frame) when a better-covered one exists, and
    ignore darkened (occluded) repeats, except in the black slot, which is meant to be dark.

    Also returns how much the kept repeats of each slot differ (n, 16, 3) (0 if seen once): a
    phone repeats its pattern exactly, a screen making up colours does not.
    """
    n = readings.shape[0]
    out = np.full((n, N_SLOTS, 3), np.nan, np.float32)
    spread = np.zeros((n, N_SLOTS, 3), np.float32)
    lo = np.nanmin(readings, axis=(1, 2))[:, None]
    for k in range(N_SLOTS):
        inst = readings[:, slot_index == k]  # (n, m, 3)
        if inst.shape[1] == 0:
            continue
        cover = weight[:, slot_index == k]
        keep = np.isfinite(inst[:, :, 0]) & (cover >= 0.5 * cover.max(axis=1, keepdims=True))
        if k != 1:
            bright = np.where(keep, np.nanmax(inst, axis=2) - lo, np.nan)  # (n, m)
            top = np.nanmax(bright, axis=1, initial=-np.inf, where=np.isfinite(bright))
            keep &= bright >= 0.6 * top[:, None]
        cnt = keep.sum(axis=1)
        tot = np.where(keep[:, :, None], inst, 0.0).sum(axis=1)
        out[cnt > 0, k] = tot[cnt > 0] / cnt[cnt > 0, None]
        kept = np.where(keep[:, :, None], inst, np.nan)
        both = cnt > 1
        spread[both, k] = (np.nanmax(kept, axis=1) - np.nanmin(kept, axis=1))[both]
    return out, spread


# --------------------------------------------------------------------------- per-blob decoding


def _channel_levels(slots: np.ndarray, iterations: int = 5):
    """Each blob's per-channel off and on levels: two-means of its 16 slot readings (n, 16, 3).

    Lossy video (4:2:0 chroma, clipping) shrinks colour contrast but not white/black, so
    levels from the white and black slots alone would put thresholds in the wrong place; the
    means of the two clusters of every slot reading follow what the colours actually look like.
    """
    lo = np.nanmin(slots, axis=1)
    hi = np.nanmax(slots, axis=1)
    for _ in range(iterations):
        thr = 0.5 * (lo + hi)[:, None]
        upper = slots > thr
        lower = slots <= thr
        hi = np.where(upper.any(axis=1), np.nanmean(np.where(upper, slots, np.nan), axis=1), hi)
        lo = np.where(lower.any(axis=1), np.nanmean(np.where(lower, slots, np.nan), axis=1), lo)
    return lo, hi


_IDEAL = np.concatenate([_DATA_BITS, [[1, 1, 1], [0, 0, 0]]]).astype(np.float32)  # 6 data, W, K
_WHITE, _DARK = 6, 7


def _data_templates(z_data: np.ndarray, usable: np.ndarray, iterations: int = 3):
    """How the six data colours (plus white and dark) look in normalised readings, learnt from the
    whole crowd: lossy video biases "off" channels depending on which others are on (e.g. blue
    reads about 0.25 under yellow). Returns centres (8, 3) and per-channel spreads (8, 3).

    Parameters
    ----------
    z_data : np.ndarray, shape (n, 14, 3)
        Normalised data-slot readings (RGB), NaN where unseen.
    usable : np.ndarray, shape (n,), bool
        Blobs with enough contrast to learn from.
    """
    centres = _IDEAL.copy()
    spread = np.full_like(centres, 0.15)
    x = z_data[usable].reshape(-1, 3)
    x = x[np.isfinite(x).all(axis=1)]
    if len(x) < 300:  # too few blobs to learn from: keep the ideal colours
        return centres, spread
    for _ in range(iterations):
        label = np.argmin(((x[:, None, :] - centres[None, :6]) ** 2).sum(axis=2), axis=1)
        for k in range(6):
            members = x[label == k]
            if len(members) >= 30:
                centres[k] = np.median(members, axis=0)
                mad = np.median(np.abs(members - centres[k]), axis=0)
                spread[k] = np.maximum(1.4826 * mad, 0.04)
    spread[6:] = spread[:6].mean(axis=0)
    return centres, spread


def _classify_data(z_data: np.ndarray, centres: np.ndarray, spread: np.ndarray):
    """Nearest colour of every data slot, in units of each colour's spread.

    Returns colour index (n, 14) in 0..5, erased (n, 14) (hidden, unseen or ambiguous), white
    (n, 14) (clearly white: an error, data is never white) and a margin (n,) for confidence.
    """
    d = (z_data[:, :, None, :] - centres[None, None]) / spread[None, None]
    score = np.sqrt(np.nansum(d * d, axis=3))  # (n, 14, 8)
    order = np.argsort(score, axis=2)
    best = order[:, :, 0]
    first = np.take_along_axis(score, order[:, :, :1], axis=2)[:, :, 0]
    second = np.take_along_axis(score, order[:, :, 1:2], axis=2)[:, :, 0]
    gap = second - first
    seen = np.isfinite(z_data).all(axis=2)
    clear = seen & (gap >= 1.5)
    white = clear & (best == _WHITE)
    erased = ~clear | (best >= 6)
    colour = np.where(best < 6, best, 0)
    margin = np.where(seen & ~erased, np.minimum(gap / 6.0, 1.0), 1.0).min(axis=1)
    return colour, erased, white, margin


def _fit_blob_colours(z, colour, erased, marker_seen, ridge: float = 0.3):
    """Each blob's own colour response: readings ~ bits @ A + b per blob, fitted by least squares
    on its marker slots and confidently classified data slots (ridge towards A = I, b = 0).

    Tiny coloured blobs in 4:2:0 video lose chroma and gain clipped bleed in their "off"
    channels, differently per blob (size, brightness, position on the chroma grid); a per-blob
    linear model absorbs that. Returns predicted readings of the 8 colours (n, 8, 3) (6 data
    colours, white, black) and a residual scale (n,).
    """
    n = len(z)
    bits = np.concatenate(
        [
            np.broadcast_to(_IDEAL[[_WHITE, _DARK]], (n, 2, 3)),
            _DATA_BITS[colour].astype(np.float32),
        ],
        axis=1,
    )
    used = np.concatenate([marker_seen, ~erased], axis=1) & np.isfinite(z).all(axis=2)
    design = np.concatenate([bits, np.ones((n, 16, 1), np.float32)], axis=2) * used[:, :, None]
    target = np.nan_to_num(z) * used[:, :, None]
    prior = np.concatenate([np.eye(3), np.zeros((1, 3))]).astype(np.float32)
    gram = design.transpose(0, 2, 1) @ design + ridge * np.eye(4, dtype=np.float32)
    rhs = design.transpose(0, 2, 1) @ target + ridge * prior
    coef = np.linalg.solve(gram, rhs)  # (n, 4, 3)
    resid = (design @ coef - target) * used[:, :, None]
    dof = np.maximum(used.sum(axis=1) * 3 - 8, 3)
    sigma = np.maximum(np.sqrt((resid**2).sum(axis=(1, 2)) / dof), 0.04)
    ideal = np.concatenate([_IDEAL, np.ones((8, 1), np.float32)], axis=1)
    return ideal[None] @ coef, sigma


def _classify_blob(z_data: np.ndarray, centres: np.ndarray, sigma: np.ndarray):
    """Nearest of each blob's own 8 colour predictions; white, dark and ambiguous slots are
    erasures. Returns colour (n, 14) in 0..5, erased (n, 14), margin (n,)."""
    d = (z_data[:, :, None, :] - centres[:, None]) / sigma[:, None, None, None]
    score = np.sqrt((d * d).sum(axis=3))  # (n, 14, 8), NaN where unseen
    score = np.nan_to_num(score, nan=np.inf)
    part = np.partition(score, 1, axis=2)
    best = np.argmin(score, axis=2)
    gap = part[:, :, 1] - part[:, :, 0]
    seen = np.isfinite(z_data).all(axis=2)
    erased = ~seen | (gap < _GAP) | (best >= 6)
    colour = np.where(best < 6, best, 0)
    margin = np.where(erased, np.inf, gap).min(axis=1)
    margin = np.where(np.isfinite(margin), np.clip((margin - _GAP) / (3 * _GAP), 0, 1), 0.0)
    return colour, erased, margin


def _classify(slots: np.ndarray, min_contrast: float, repeat_spread: np.ndarray | None = None):
    """Per-blob decision from 16 slot readings (n, 16, 3).

    ``repeat_spread`` (n, 16, 3) is how much repeated readings of a slot differ (see
    :func:`_per_slot`); a blob whose data slots clearly changed between cycles is no phone
    playing a fixed pattern, and gets no decode that rests on a single check symbol.

    Returns numbers (n,) (-1 = rejected), reasons (n,) str, erasures (n,), margins (n,).
    """
    n = len(slots)
    reasons = np.full(n, "", dtype=object)
    lo, hi = _channel_levels(slots)  # (n, 3) each
    contrast = hi - lo
    z = (slots - lo[:, None]) / np.maximum(contrast, 1e-6)[:, None]
    unsteady = np.zeros(n, bool)
    if repeat_spread is not None:
        change = np.nan_to_num(repeat_spread[:, 2:] / np.maximum(contrast, 1e-6)[:, None])
        unsteady = change.max(axis=(1, 2)) > _REPEAT_TOLERANCE
    low = ~np.all(contrast >= min_contrast, axis=1) | ~np.isfinite(contrast).all(axis=1)
    reasons[low] = "low_contrast"
    on = z > 0.5
    amb = np.abs(z - 0.5) < 0.17
    seen = np.isfinite(z).all(axis=2)  # (n, 16)
    hidden_white = np.nan_to_num(z[:, 0], nan=0.0).max(axis=1) < 0.3  # occluded, not wrong
    white_ok = ~seen[:, 0] | hidden_white | (on[:, 0].all(axis=1) & ~amb[:, 0].any(axis=1))
    black_ok = ~seen[:, 1] | (~on[:, 1].any(axis=1) & ~amb[:, 1].any(axis=1))
    reasons[(reasons == "") & ~(white_ok & black_ok)] = "no_sync_marker"
    templates, spread = _data_templates(z[:, 2:], ~low)
    colour, erased, _, margin = _classify_data(z[:, 2:], templates, spread)
    marker_seen = seen[:, :2] & np.stack([~hidden_white, np.ones(n, bool)], axis=1)
    for _ in range(2):
        centres, sigma = _fit_blob_colours(z, colour, erased, marker_seen)
        colour, erased, margin = _classify_blob(z[:, 2:], centres, sigma)
    sig_ch = _channel_sigma(z, colour, erased, marker_seen, centres, sigma)
    colour = colour.reshape(n, 7, 2)
    sym_erased = erased.reshape(n, 7, 2).any(axis=2)
    symbol = colour[:, :, 0] * 6 + colour[:, :, 1]
    reasons[(reasons == "") & (symbol >= _P).any(axis=1) & ~sym_erased.any(axis=1)] = (
        "invalid_colour"
    )
    sym_erased |= symbol >= _P
    n_erased = sym_erased.sum(axis=1)
    reasons[(reasons == "") & (n_erased > MAX_ERASED_SYMBOLS)] = "too_many_erasures"
    numbers = decode_symbols(symbol, ~sym_erased)
    reasons[(reasons == "") & (numbers < 0)] = "check_failed"
    numbers[reasons != ""] = -1
    # Two erasures leave a single check symbol (a made-up code passes it 1 time in 31): the
    # soft decoder must then come to the same number (the erased slots' readings fit it, and
    # no other codeword comes close).
    single = np.flatnonzero((numbers >= 0) & (n_erased == MAX_ERASED_SYMBOLS))
    if len(single):
        penalty = _slot_penalty(z[single, 2:], centres[single], sig_ch[single])
        unfit = soft_decode(penalty)[0] != numbers[single]
        numbers[single[unfit]], reasons[single[unfit]] = -1, "check_failed"
    single = (numbers >= 0) & (n_erased == MAX_ERASED_SYMBOLS) & unsteady
    numbers[single], reasons[single] = -1, "unsteady_repeat"
    reasons[np.isin(reasons, _SOFT_RETRY) & unsteady] = "unsteady_repeat"
    retry = np.flatnonzero(np.isin(reasons, _SOFT_RETRY))
    if len(retry):
        penalty = _slot_penalty(z[retry, 2:], centres[retry], sig_ch[retry])
        _accept_soft(retry, soft_decode(penalty), numbers, reasons, n_erased, margin)
    retry = np.flatnonzero(np.isin(reasons, _SOFT_RETRY))
    if len(retry):
        informative = _slot_penalty(z[retry, 2:], centres[retry], sig_ch[retry]).max(axis=2) > 0
        penalty = _crowd_penalty(z[:, 2:], contrast, numbers, retry)
        if penalty is not None:
            penalty = np.where(informative[:, :, None], penalty, 0.0)
            _accept_soft(retry, soft_decode(penalty), numbers, reasons, n_erased, margin)
    return numbers, reasons, n_erased, margin


def _accept_soft(rows, decoded, numbers, reasons, n_erased, margin) -> None:
    soft, soft_margin, overruled = decoded
    won = soft >= 0
    rows = rows[won]
    numbers[rows], reasons[rows] = soft[won], ""
    n_erased[rows] = overruled[won]
    margin[rows] = np.clip((soft_margin[won] - _SOFT_MIN_MARGIN) / (4 * _SOFT_MIN_MARGIN), 0, 1)


_CROWD_MIN_BLOBS = 300
_CROWD_BLOBS_PER_BIN = 800
_CROWD_MAX_BINS = 6


def _crowd_penalty(z_data, contrast, numbers, rows):
    """Slot penalties (len(rows), 14, 6) from how each data colour looks in the crowd's decoded
    blobs of similar brightness: a Gaussian (mean, 3 x 3 covariance) per colour and brightness
    bin, learnt from thousands of labelled slots, where a single blob's own fit has only 16.
    None when fewer than ``_CROWD_MIN_BLOBS`` blobs were decoded."""
    train = np.flatnonzero(numbers >= 0)
    if len(train) < _CROWD_MIN_BLOBS:
        return None
    level = np.log(np.maximum(np.nanmin(contrast, axis=1), 1.0))
    n_bins = int(np.clip(len(train) // _CROWD_BLOBS_PER_BIN, 1, _CROWD_MAX_BINS))
    edges = np.quantile(level[train], np.linspace(0, 1, n_bins + 1)[1:-1])
    code = pattern_bits(numbers[train])[:, 2:].astype(np.int64) @ np.array([4, 2, 1])
    lut = np.zeros(8, np.int64)
    for bits, index in _BITS_TO_DATA.items():
        lut[bits[0] * 4 + bits[1] * 2 + bits[2]] = index
    label = lut[code]  # (t, 14)
    train_bin, row_bin = np.digitize(level[train], edges), np.digitize(level[rows], edges)
    penalty = np.zeros((len(rows), z_data.shape[1], 6))
    for b in range(n_bins):
        x_bin, lab_bin = z_data[train[train_bin == b]], label[train_bin == b]
        target = row_bin == b
        samples = [x_bin[lab_bin == c] for c in range(6)]
        samples = [x[np.isfinite(x).all(axis=1)] for x in samples]
        if min(len(x) for x in samples) < 30:
            continue  # no model for this bin: its slots stay uninformative (refused)
        for c, x in enumerate(samples):
            mean = np.median(x, axis=0)
            cov = np.cov((x - mean).T) + 1e-3 * np.eye(3)
            d = z_data[rows[target]] - mean
            penalty[target, :, c] = np.einsum("nsi,ij,nsj->ns", d, np.linalg.inv(cov), d)
            penalty[target, :, c] += np.log(np.linalg.det(cov))
    penalty = np.nan_to_num(penalty - np.nanmin(penalty, axis=2, keepdims=True), nan=0.0)
    return np.minimum(penalty, _SOFT_CAP)


_SOFT_RETRY = ["too_many_erasures", "check_failed", "invalid_colour"]
_REPEAT_TOLERANCE = 0.8  # repeats of a data slot differing more (share of contrast): unsteady
_SOFT_CAP = 20.0  # largest penalty (squared sigma units) one slot reading can give a colour
_SOFT_MIN_MARGIN = 20.0  # every other codeword must be this much less likely
_SOFT_MIN_MARGIN_ONE_CHECK = 24.0  # the same when two symbols are overruled (one check left)
_SOFT_MAX_OVERRIDE = 12.0  # overruled symbols may together cost at most this (a clear slot: 20)
_SUBSETS = np.array(list(itertools.combinations(range(_N_SYMBOLS), _K_SYMBOLS)))  # (35, 4)
_SUBSET_INV = np.stack([_inv_mod(_VANDER[s]) for s in _SUBSETS])  # (35, 4, 4)


def _channel_sigma(z, colour, erased, marker_seen, centres, sigma):
    """Per-blob, per-channel residual scale (n, 3) of the fitted colour model, shrunk towards the
    blob's overall scale: in dim blobs the blue channel is much noisier than red and green."""
    n = len(z)
    label = np.concatenate([np.tile([_WHITE, _DARK], (n, 1)), colour], axis=1)  # (n, 16)
    predicted = np.take_along_axis(centres, label[:, :, None].repeat(3, axis=2), axis=1)
    used = np.concatenate([marker_seen, ~erased], axis=1) & np.isfinite(z).all(axis=2)
    resid2 = np.where(used[:, :, None], (np.nan_to_num(z) - predicted) ** 2, 0.0).sum(axis=1)
    own = resid2 / np.maximum(used.sum(axis=1) - 2.7, 2.0)[:, None]
    return np.maximum(np.sqrt(0.5 * own + 0.5 * sigma[:, None] ** 2), 0.04)


def _slot_penalty(z_data, centres, sig_ch):
    """Capped squared distance (n, 14, 6) of each data-slot reading to the blob's six predicted
    data colours; 0 for every colour (no information) where the slot is unseen or reads as white
    or dark (an occlusion or a marker, never data)."""

    def dist2(targets):
        d = (z_data[:, :, None, :] - targets[:, None]) / sig_ch[:, None, None, :]
        return (d * d).sum(axis=3)

    data = dist2(centres[:, :6])
    marker = dist2(centres[:, 6:])
    informative = np.isfinite(z_data).all(axis=2) & (marker.min(axis=2) >= data.min(axis=2))
    return np.where(informative[:, :, None], np.minimum(data, _SOFT_CAP), 0.0)


def _symbol_costs(penalty: np.ndarray) -> np.ndarray:
    """Cost (n, 7, 31) of every symbol value from slot penalties (n, 14, 6)."""
    n = len(penalty)
    pen = penalty.reshape(n, _N_SYMBOLS, 2, 6)
    sym = pen[:, :, 0, :, None] + pen[:, :, 1, None, :]
    return sym.reshape(n, _N_SYMBOLS, 36)[:, :, :_P]


def soft_decode(penalty: np.ndarray):
    """Most likely number from soft slot penalties, or -1; never more than two symbols overruled.

    Parameters
    ----------
    penalty : np.ndarray, shape (n, 14, 6)
        Cost of each data colour in each data slot (lower is likelier), e.g. capped squared
        distances from :func:`_slot_penalty`.

    A candidate is the codeword through 4 of the 7 most likely symbols (all 35 choices; any
    codeword that can pass below agrees with at least 4 of them). The cheapest in-range
    candidate is accepted only if (a) it overrules at most 2 of the most likely symbols, whose
    advantages add up to at most ``_SOFT_MAX_OVERRIDE`` (less than one clearly read slot, so at
    least 5 symbols, one check, agree with clear readings, as in hard decoding with two
    erasures, and a clearly misread symbol is never repaired), and (b) every
    other codeword is at least ``_SOFT_MIN_MARGIN`` more costly (``_SOFT_MIN_MARGIN_ONE_CHECK``
    when two symbols are overruled): another codeword differs in at least 4 symbols, so the 4
    smallest per-symbol advantages of the winner over its best alternative symbol bound the
    advantage over all of them.

    Returns numbers (n,) (-1 = refused), margins (n,) and overruled symbols (n,).
    """
    n = len(penalty)
    sym = _symbol_costs(penalty)
    hard = np.argmin(sym, axis=2)  # (n, 7)
    received = (hard - _OFFSET) % _P
    digits = np.einsum("nsk,sjk->nsj", received[:, _SUBSETS], _SUBSET_INV) % _P  # (n, 35, 4)
    words = (digits @ _VANDER.T + _OFFSET) % _P  # (n, 35, 7)
    numbers = digits @ (_P ** np.arange(_K_SYMBOLS))
    cost = np.take_along_axis(
        np.broadcast_to(sym[:, None], (n, len(_SUBSETS), _N_SYMBOLS, _P)), words[..., None], axis=3
    )[..., 0]  # (n, 35, 7)
    total = np.where(numbers < N_NUMBERS, cost.sum(axis=2), np.inf)
    best = np.argmin(total, axis=1)
    rows = np.arange(n)
    word, word_cost, number = words[rows, best], cost[rows, best], numbers[rows, best]
    others = sym.copy()
    np.put_along_axis(others, word[..., None], np.inf, axis=2)
    advantage = others.min(axis=2) - word_cost  # (n, 7)
    bound = np.sort(advantage, axis=1)[:, :4].sum(axis=1)
    overruled = word != hard
    excess = np.where(overruled, word_cost - sym.min(axis=2), 0.0).sum(axis=1)
    ok = np.isfinite(total[rows, best]) & (bound >= _SOFT_MIN_MARGIN)
    n_overruled = overruled.sum(axis=1)
    ok &= (n_overruled <= MAX_ERASED_SYMBOLS) & (excess <= _SOFT_MAX_OVERRIDE)
    ok &= (n_overruled < MAX_ERASED_SYMBOLS) | (bound >= _SOFT_MIN_MARGIN_ONE_CHECK)
    return np.where(ok, number, -1), bound, n_overruled


def _positions(tracks: _Tracks, n: int) -> np.ndarray:
    pos = _stack(tracks.pos, n, 2).astype(np.float64)
    wgt = _stack(tracks.weight, n, 1)[:, :, 0].astype(np.float64)
    wgt = np.nan_to_num(wgt, nan=0.0)
    wsum = wgt.sum(axis=1)
    est = np.nansum(pos * wgt[:, :, None], axis=1) / np.maximum(wsum, 1e-9)[:, None]
    return np.where(wsum[:, None] > 0, est, tracks.base)


def _finish(tracks: _Tracks, t_ms: np.ndarray, *, min_contrast: float, channel_order: str):
    # Blobs with no reading in some slot give all-NaN slices by design; they are handled below.
    with warnings.catch_warnings(action="ignore", category=RuntimeWarning):
        return _finish_quiet(tracks, t_ms, min_contrast=min_contrast, channel_order=channel_order)


def _finish_quiet(tracks: _Tracks, t_ms, *, min_contrast: float, channel_order: str):
    n = len(tracks.base)
    stats = {"blobs": n, "decoded": 0, "rejected": {}}
    if n == 0 or len(t_ms) < 3:
        if n:
            stats["rejected"] = {"too_few_frames": n}
        return BlinkResult([], stats, None, len(t_ms))
    values = _stack(tracks.sums, n, 3)
    if channel_order == "bgr":
        values = values[:, :, ::-1]  # decode in RGB, the order of the pattern colours
    z_frames, contrast = _normalise(values)
    frame_ms = float(np.median(np.diff(t_ms)))
    good = np.flatnonzero(np.all(contrast >= min_contrast, axis=1))
    sample = good[:: max(1, len(good) // 1500)] if len(good) else np.arange(min(n, 1500))
    phase = recover_slot_phase(z_frames[sample], t_ms)
    readings, zread, labels = _slot_readings(values, z_frames, t_ms, phase, frame_ms)
    k0 = recover_cycle_phase(zread[sample], labels)
    values = _hide_dark_frames(values, z_frames, t_ms, phase, k0, frame_ms)
    readings, _, labels, weight = _slot_readings(
        values, z_frames, t_ms, phase, frame_ms, coverage=True
    )
    slots, repeat_spread = _per_slot(readings, (labels + k0) % N_SLOTS, weight)
    numbers, reasons, n_erased, margin = _classify(slots, min_contrast, repeat_spread)
    position = _positions(tracks, n)
    detections = _dedupe(numbers, reasons, n_erased, margin, position)
    stats["decoded"] = len(detections)
    stats["rejected"] = dict(Counter(str(r) for r in reasons if r))
    slot0_ms = phase + ((-k0) % N_SLOTS) * SLOT_MS  # label l starts at phase + l * SLOT_MS
    return BlinkResult(detections, stats, float(slot0_ms), len(t_ms))


def _dedupe(numbers, reasons, n_erased, margin, position) -> list[BlinkDetection]:
    """One detection per number: the best; the others are counted as ``duplicate``."""
    confidence = np.clip(margin, 0, 1) * (1.0 - 0.2 * n_erased)
    order = np.argsort(-confidence)
    taken: set[int] = set()
    out = []
    for i in order:
        num = int(numbers[i])
        if num < 0:
            continue
        if num in taken:
            reasons[i] = "duplicate"
            continue
        taken.add(num)
        out.append(
            BlinkDetection(
                code=str(num),
                number=num,
                x_img=float(position[i, 0]),
                y_img=float(position[i, 1]),
                confidence=float(round(confidence[i], 4)),
                erased_symbols=int(n_erased[i]),
            )
        )
    out.sort(key=lambda d: d.number)
    return out


# --------------------------------------------------------------------------- public decoder


def _check_frame(frame, shape) -> np.ndarray:
    frame = np.asarray(frame)
    if frame.ndim != 3 or frame.shape[2] != 3 or frame.dtype != np.uint8:
        raise ValueError(
            f"frames must be (height, width, 3) uint8 colour images, got shape {frame.shape} "
            f"dtype {frame.dtype}"
        )
    if shape is not None and frame.shape != shape:
        raise ValueError(f"all frames must have the same size: {frame.shape} after {shape}")
    return frame


def _next_time(times: Iterator | None, index: int, fps: float | None) -> float:
    if times is None:
        return index * 1000.0 / float(fps)
    t = next(times, None)
    if t is None:
        raise ValueError(
            f"fewer timestamps than frames (ran out at frame {index}); give one per frame"
        )
    return float(t)


def decode_frames(
    frames: Iterable[np.ndarray],
    timestamps_ms: Iterable[float] | None = None,
    fps: float | None = None,
    *,
    channel_order: str = "bgr",
    window_radius: int = 3,
    detect_threshold: float | None = None,
    min_contrast: float = 60.0,
    max_blob_area: int = 400,
    redetect_ms: float = 250.0,
    max_duration_ms: float = 4 * N_SLOTS * SLOT_MS,
) -> BlinkResult:
    """Find phones playing blink patterns in a stream of frames and decode their numbers.

    Parameters
    ----------
    frames : iterable of np.ndarray, each (height, width, 3) uint8
        Consumed once, lazily; only the opening frames (about 140 ms, at most 8) are held until
        the first detection, so memory is bounded by the number of blobs times frames (a few
        floats each) plus those few frames, not by image size times frames.
    timestamps_ms : iterable of float, optional
        Capture time of each frame in milliseconds (any origin, strictly increasing). Takes
        precedence over ``fps``.
    fps : float, optional
        Frame rate, used when timestamps are not given (frame ``f`` at ``1000 f / fps`` ms).
    channel_order : {"bgr", "rgb"}
        Channel order of the frames (OpenCV decodes video as BGR).
    window_radius : int
        Half-size in pixels of the square window measured around each blob (3 -> 7 x 7).
    detect_threshold : float, optional
        Brightness (0..255, max over channels) above which a pixel belongs to a blob; default
        adapts to the frame (median + 8 robust sigma, at least +18).
    min_contrast : float
        Smallest per-channel on/off difference of a blob's window sum to attempt decoding.
    max_blob_area : int
        Connected regions larger than this (pixels) are not phones (lamps, big screens).
    redetect_ms : float
        Look for new blobs (e.g. phones hidden at the start) this often.
    max_duration_ms : float
        Read only this much of the clip (default four pattern periods, 4.8 s); later frames are
        not consumed. Memory is about 24 bytes per blob per frame read, so this bounds it for
        clips of any length (10,000 blobs at 60 fps: under 100 MB of time series).

    Returns
    -------
    BlinkResult
        ``detections`` (positions in first-frame image pixels), ``decode_stats``.
    """
    if channel_order not in ("bgr", "rgb"):
        raise ValueError("channel_order must be 'bgr' or 'rgb'")
    if timestamps_ms is None and (fps is None or not np.isfinite(fps) or fps <= 0):
        raise ValueError("give the frame rate (fps > 0) or one timestamp per frame")
    if window_radius < 1:
        raise ValueError("window_radius must be at least 1 pixel")
    tracks = _Tracks(base=np.zeros((0, 2)), first_frame=np.zeros(0, np.int64))
    times = None if timestamps_ms is None else iter(timestamps_ms)
    t_list: list[float] = []
    shape = None
    opening = _Opening(detect_threshold, max_blob_area, window_radius)
    last_detect = np.inf
    for index, frame in enumerate(frames):
        frame = _check_frame(frame, shape)
        shape = frame.shape
        t = _next_time(times, index, fps)
        if t_list and t - t_list[0] > max_duration_ms:
            break
        t_list.append(t)
        if opening.frames is not None:
            if opening.add(tracks, frame, t - t_list[0]):
                last_detect = t
            continue
        if t - last_detect >= redetect_ms:
            centroids, area = _detect_blobs(
                frame, threshold=detect_threshold, max_area=max_blob_area
            )
            _add_new_blobs(tracks, centroids, area, index)
            last_detect = t
        _step(tracks, frame, window_radius)
    if shape is None:
        raise ValueError("no frames to decode")
    opening.flush(tracks)
    t_ms = _frame_times(t_list if times is not None else None, fps, len(t_list))
    return _finish(tracks, t_ms, min_contrast=min_contrast, channel_order=channel_order)


# --------------------------------------------------------------------------- files


_IMAGE_EXT = {".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp"}
_MS_RE = re.compile(r"(\d+(?:\.\d+)?)ms", re.IGNORECASE)


def _natural_key(name: str):
    return [int(p) if p.isdigit() else p for p in re.split(r"(\d+)", name)]


def _folder_timestamps(folder: Path, names: list[str]) -> list[float] | None:
    """Timestamps from ``timestamps.txt`` (one ms value per frame, in file order, or
    ``name ms`` per line) or from file names containing ``<number>ms``."""
    listing = folder / "timestamps.txt"
    if listing.exists():
        rows = [r.split() for r in listing.read_text().splitlines() if r.strip()]
        try:
            if all(len(r) == 2 for r in rows):
                table = {r[0]: float(r[1]) for r in rows}
                return [table[name] for name in names]
            return [float(r[0]) for r in rows]
        except (KeyError, ValueError) as exc:
            raise ValueError(
                f"{listing}: expected one millisecond value per frame or 'name ms' per line ({exc})"
            ) from exc
    found = [_MS_RE.findall(name) for name in names]
    if all(found):
        return [float(f[-1]) for f in found]
    return None


def _read_folder(folder: Path, fps: float | None):
    names = sorted(
        (p.name for p in folder.iterdir() if p.suffix.lower() in _IMAGE_EXT), key=_natural_key
    )
    if not names:
        raise ValueError(f"{folder} holds no image files ({', '.join(sorted(_IMAGE_EXT))})")
    stamps = None if fps is not None else _folder_timestamps(folder, names)
    if fps is None and stamps is None:
        raise ValueError(
            f"{folder} is a folder of frames without timestamps: pass --fps, or add "
            "timestamps.txt (one millisecond value per frame), or name frames like "
            "'frame_0133ms.png'"
        )
    if stamps is not None and len(stamps) != len(names):
        raise ValueError(f"timestamps.txt has {len(stamps)} values for {len(names)} frames")

    def frames() -> Iterator[np.ndarray]:
        for name in names:
            image = cv2.imread(str(folder / name), cv2.IMREAD_COLOR)
            if image is None:
                raise ValueError(f"cannot read image {folder / name}")
            yield image

    return frames(), stamps


def _read_video(path: Path, fps: float | None):
    capture = cv2.VideoCapture(str(path))
    if not capture.isOpened():
        capture.release()
        raise ValueError(f"cannot open {path} as a video (is it a video file OpenCV can read?)")
    container_fps = capture.get(cv2.CAP_PROP_FPS)
    if fps is None and not (container_fps and container_fps > 0):
        capture.release()
        raise ValueError(f"{path} does not state its frame rate; pass --fps")
    rate = float(fps if fps is not None else container_fps)

    def frames() -> Iterator[np.ndarray]:
        try:
            while True:
                ok, image = capture.read()
                if not ok:
                    return
                yield image
        finally:
            capture.release()

    return frames(), rate


def locate_clip(path: str | os.PathLike, *, fps: float | None = None) -> list[BlinkDetection]:
    """Decode the blinking phones of a video file or a folder of frames.

    Parameters
    ----------
    path : path-like
        A video any OpenCV backend reads (frame rate from the container unless ``fps`` is given),
        or a folder of images in natural name order. For a folder, timing comes from ``fps``, else
        from ``timestamps.txt`` (one millisecond value per frame in name order, or ``name ms`` per
        line), else from file names containing ``<number>ms`` (``frame_0133ms.png``).
    fps : float, optional
        Frame rate override.

    Returns
    -------
    list of BlinkDetection
        ``code`` (decimal pixel number), ``x_img``, ``y_img`` (first-frame image pixels),
        ``confidence`` (0..1).

    Raises
    ------
    ValueError
        Missing path, unreadable input, or a folder with no timing information.
    """
    return decode_clip(path, fps=fps).detections


def decode_clip(path: str | os.PathLike, *, fps: float | None = None) -> BlinkResult:
    """Like :func:`locate_clip` but returns the whole :class:`BlinkResult` (with decode_stats)."""
    if fps is not None and (not np.isfinite(fps) or fps <= 0):
        raise ValueError(f"fps must be a positive number, got {fps}")
    source = Path(path)
    if not source.exists():
        raise ValueError(f"{source} does not exist")
    if source.is_dir():
        frames, stamps = _read_folder(source, fps)
        return decode_frames(frames, stamps, fps)
    frames, rate = _read_video(source, fps)
    return decode_frames(frames, None, rate)
