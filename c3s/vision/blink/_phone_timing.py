"""Slot timing per phone: each blob's slot boundaries and cycle phase from its own transitions.

Phones differ from the server clock by their clock error and display latency (together easily
+-100 ms) and a rolling shutter films each row at its own moment, so a crowd has no common slot
grid. Each blob's grid is found on its own frames: the slot phase (mod 75 ms) that makes its
readings most constant within slots, then the cycle phase (which slot is slot 0) from its own
white-then-black marker. Times here are on the clip's clock, relative to its first frame.
"""

from __future__ import annotations

import numpy as np

from c3s.vision.blink._code import N_SLOTS, SLOT_MS
from c3s.vision.blink._timing import _LATE_BIAS

PERIOD_MS = N_SLOTS * SLOT_MS
_PHASE_STEP_MS = 1.5
_CLEAR_MARKER = 0.3  # the best cycle shift must beat the next by this (normalised levels)
_MIN_CROWD = 20  # clear markers needed before unclear blobs borrow the crowd's cycle


def phone_slot_phase(z: np.ndarray, t_ms: np.ndarray, *, slot_ms: float = SLOT_MS) -> np.ndarray:
    """Each blob's slot-boundary phase (ms, in [0, slot_ms)): the least within-slot variance.

    Parameters
    ----------
    z : np.ndarray, shape (n_blobs, n_frames, 3), float
        Normalised blob values (NaN allowed, counted as 0).
    t_ms : np.ndarray, shape (n_frames,)
        Frame times in milliseconds, increasing.

    Returns
    -------
    np.ndarray, shape (n_blobs,), float64
        The phase of each blob. The cost is flat between frame times, so it is smoothed over
        about a third of a frame interval before its minimum is taken: the estimate lands in the
        middle of the best interval, not at its edge.
    """
    z = np.nan_to_num(np.asarray(z, dtype=np.float64), nan=0.0)
    t_ms = np.asarray(t_ms, dtype=np.float64)
    cs1 = np.concatenate([np.zeros_like(z[:, :1]), np.cumsum(z, axis=1)], axis=1)
    cs2 = np.concatenate([np.zeros_like(z[:, :1]), np.cumsum(z * z, axis=1)], axis=1)
    phases = np.arange(0.0, slot_ms, _PHASE_STEP_MS)
    cost = np.empty((len(z), len(phases)))
    for i, phase in enumerate(phases):
        labels = np.floor((t_ms - phase) / slot_ms).astype(np.int64)
        edges = np.r_[0, np.flatnonzero(labels[1:] != labels[:-1]) + 1, len(labels)]
        s1 = cs1[:, edges[1:]] - cs1[:, edges[:-1]]
        s2 = cs2[:, edges[1:]] - cs2[:, edges[:-1]]
        count = np.diff(edges)[None, :, None]
        cost[:, i] = (s2 - s1 * s1 / count).sum(axis=(1, 2))
    frame_ms = float(np.median(np.diff(t_ms))) if len(t_ms) > 1 else slot_ms
    half = max(1, int(round(frame_ms / 6.0 / _PHASE_STEP_MS)))
    smooth = sum(np.roll(cost, s, axis=1) for s in range(-half, half + 1))
    return phases[np.argmin(smooth, axis=1)]


def phone_readings(values: np.ndarray, z_frames: np.ndarray, t_ms: np.ndarray,
                   start_ms: np.ndarray, frame_ms: float
                   ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Weighted mean of each blob's frames in each of its own slot instances.

    Parameters
    ----------
    values, z_frames : np.ndarray, shape (n, F, 3)
        Raw and normalised blob values (NaN = unseen).
    t_ms : np.ndarray, shape (F,)
        Frame times (ms) from the clip's first frame (all >= 0).
    start_ms : np.ndarray, shape (n,)
        A slot start of each blob, in [0, 1200) ms.
    frame_ms : float
        Frame interval.

    Returns
    -------
    readings, zread : np.ndarray, shape (n, J, 3)
        Instance ``j`` covers ``[start + (j - 16) * 75, start + (j - 15) * 75)``; NaN where
        unseen. When ``start_ms`` is each blob's slot-0 start, instance ``j`` is slot ``j mod 16``.
    weight : np.ndarray, shape (n, J)
        Total frame weight of each reading (0 where unseen). Frames far from slot edges weigh
        most; later frames of a slot a little more (lossy video lags colour changes).
    """
    rel = t_ms[None, :] - start_ms[:, None]
    labels = np.floor(rel / SLOT_MS).astype(np.int64) + N_SLOTS
    pos = rel - (labels - N_SLOTS) * SLOT_MS
    w = np.clip(np.minimum(pos, SLOT_MS - pos) / (0.5 * frame_ms), 0.02, 1.0) ** 2
    w = w * (_LATE_BIAS + pos / SLOT_MS) * np.isfinite(values[:, :, 0])
    n, n_inst = len(values), int(labels.max()) + 1
    flat = (np.arange(n)[:, None] * n_inst + labels).ravel()
    weight = np.bincount(flat, w.ravel(), minlength=n * n_inst).reshape(n, n_inst)
    denom = np.maximum(weight, 1e-9)
    readings = np.empty((n, n_inst, 3), np.float32)
    zread = np.empty_like(readings)
    for source, out in ((values, readings), (z_frames, zread)):
        for c in range(3):
            total = np.bincount(flat, (w * np.nan_to_num(source[:, :, c])).ravel(), n * n_inst)
            out[:, :, c] = total.reshape(n, n_inst) / denom
    readings[weight == 0] = np.nan
    zread[weight == 0] = np.nan
    return readings, zread, weight.astype(np.float32)


def phone_cycle_start(zread: np.ndarray, phase_ms: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Each blob's slot-0 start (ms, in [0, 1200)) from its own white-then-black marker, and
    whether that marker was clear (n,) bool.

    Parameters
    ----------
    zread : np.ndarray, shape (n, J, 3)
        Normalised readings of :func:`phone_readings` taken with ``start_ms = phase_ms``.
    phase_ms : np.ndarray, shape (n,)
        Each blob's slot phase (ms, in [0, 75)).

    White (every channel on) is only ever slot 0 and black only slot 1, so the shift that puts
    the blob's brightest all-channel reading before its darkest is its cycle phase; a wrong
    shift cannot decode (no cyclic shift of a pattern is a pattern). A blob whose marker was
    hidden (occluded) shows no clear best shift: it takes the cycle nearest the crowd's
    (phones' offsets spread over tens of ms, less than a cycle), which at worst fails to decode.
    """
    all_on = np.nanmin(zread, axis=2)  # (n, J)
    any_on = np.nanmax(zread, axis=2)
    inst = np.arange(zread.shape[1])
    score = np.empty((len(zread), N_SLOTS))
    for k in range(N_SLOTS):
        slot = (inst + k) % N_SLOTS
        white = np.nanmean(np.where(slot == 0, all_on, np.nan), axis=1)
        black = np.nanmean(np.where(slot == 1, 1.0 - any_on, np.nan), axis=1)
        score[:, k] = np.nan_to_num(white, nan=0.0) + np.nan_to_num(black, nan=0.0)
    shift = np.argmax(score, axis=1)
    top2 = np.sort(score, axis=1)[:, -2:]
    start = np.mod(phase_ms + SLOT_MS * ((N_SLOTS - shift) % N_SLOTS), PERIOD_MS)
    clear = top2[:, 1] - top2[:, 0] >= _CLEAR_MARKER
    if clear.sum() >= _MIN_CROWD and (~clear).any():
        angle = 2 * np.pi * start[clear] / PERIOD_MS
        centre = np.angle(np.mean(np.exp(1j * angle))) * PERIOD_MS / (2 * np.pi)
        near = np.mod(phase_ms[~clear] - centre + 0.5 * SLOT_MS, SLOT_MS) - 0.5 * SLOT_MS
        start[~clear] = np.mod(centre + near, PERIOD_MS)
    return start, clear


def hide_dark_frames_per_phone(values: np.ndarray, z_frames: np.ndarray, t_ms: np.ndarray,
                               start_ms: np.ndarray, frame_ms: float) -> np.ndarray:
    """NaN out frames where a blob is dark outside its own black slot (it was hidden).

    ``start_ms`` (n,) is each blob's slot-0 start; shapes as :func:`phone_readings`.
    """
    rel = np.mod(t_ms[None, :] - start_ms[:, None] - SLOT_MS, PERIOD_MS)  # black slot at 0
    near_black = (rel > PERIOD_MS - frame_ms) | (rel < SLOT_MS + frame_ms)
    dark = (np.nanmax(z_frames, axis=2) < 0.45) & ~near_black
    return np.where(dark[:, :, None], np.nan, values)
