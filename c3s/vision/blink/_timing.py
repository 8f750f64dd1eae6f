"""Slot timing: slot boundaries, the cycle phase and each blob's reading of every slot."""

from __future__ import annotations

import numpy as np

from c3s.vision.blink._code import N_SLOTS, SLOT_MS

_LATE_BIAS = 0.2  # later frames of a slot weigh more: lossy video lags colour changes


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
