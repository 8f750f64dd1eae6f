"""When each decoded phone's light changed: its light-output offset against the clip's clock.

Once a blob's number is known so is every colour it showed, and each of its frames is a
prediction: the share of the frame's exposure during which each channel was lit, through the
blob's own colour response (a 3 x 3 mix plus a floor, fitted on its slot readings). The offset is
the time shift of the pattern that best predicts the frames, with a separate lag for channels
turning on and turning off (displays rise and fall at different speeds); the reported offset is
the mean of the two, the row's rolling-shutter delay added back (the change happened that much
later than the top row's timestamp says).
"""

from __future__ import annotations

import numpy as np

from c3s.vision.blink._code import N_SLOTS, SLOT_MS, pattern_bits

PERIOD_MS = N_SLOTS * SLOT_MS
_SAMPLE_BLOBS = 120  # blobs used to estimate the exposure when it is not given
_MIN_READOUT_BLOBS = 50  # decoded blobs needed to estimate the rolling-shutter readout
_SHARPNESS = 4.0  # a measurable offset costs this many noise variances more 4 ms away


def _edge_table(bits: np.ndarray) -> np.ndarray:
    """Per blob and slot (m, 16, 9): the slot's channel bits, their change from the previous
    slot and their change into the next (+1 on, -1 off, 0 none), for one gather a frame."""
    return np.concatenate([bits, bits - np.roll(bits, 1, axis=1), np.roll(bits, -1, axis=1) - bits],
                          axis=2)


def _lit(table: np.ndarray, u: np.ndarray, exposure: float, half_gap: np.ndarray) -> np.ndarray:
    """Share of ``[u, u + exposure]`` each channel is lit, (m, F, 3).

    ``table`` from :func:`_edge_table`, ``u`` (m, F) frame times in pattern time (ms after a
    slot-0 start, >= 0), ``half_gap`` (m,): channels turn on that much later than the slot
    boundary and off that much earlier, so a change ``delta`` (+1/-1) happens at the boundary
    plus ``half_gap * delta``. The window starts in slot ``k``; it sees slot ``k - 1`` until the
    change at slot ``k``'s start (when that came late) and slot ``k + 1`` from the change at
    its end (exposures up to 55 ms: later slots are never reached).
    """
    k = np.floor(u / SLOT_MS)
    row = np.take_along_axis(table, (k.astype(np.int64) % N_SLOTS)[:, :, None], axis=1)
    cur, into, out = row[:, :, :3], row[:, :, 3:6], row[:, :, 6:]
    h = half_gap[:, None, None]
    since_start = (u - k * SLOT_MS)[:, :, None]  # ms after slot k's boundary
    before_end = SLOT_MS - since_start
    late_start = np.clip(h * into - since_start, 0.0, exposure)  # still the previous slot
    past_end = np.clip(exposure - before_end - h * out, 0.0, exposure)  # already the next
    return cur + (out * past_end - into * late_start) / exposure


def _colour_response(bits, slots):
    """Per blob ``slots ~ bits @ A + b`` by least squares on the seen slots: (m, 4, 3)."""
    seen = np.isfinite(slots).all(axis=2)
    design = np.concatenate([bits, np.ones((*bits.shape[:2], 1))], axis=2) * seen[:, :, None]
    target = np.nan_to_num(slots) * seen[:, :, None]
    gram = design.transpose(0, 2, 1) @ design + 1e-6 * np.eye(4)
    return np.linalg.solve(gram, design.transpose(0, 2, 1) @ target)


class _Fit:
    """Frame predictions of m decoded blobs for trial offsets; cost = squared residual sum."""

    def __init__(self, values, t_ms, table, response, exposure):
        self.values = values
        self.seen = np.isfinite(values)
        self.t_ms, self.table, self.response = t_ms, table, response
        self.exposure = min(max(float(exposure), 0.25), 55.0)

    def cost(self, start, half_gap):
        u = np.mod(self.t_ms[None, :] - start[:, None], PERIOD_MS).astype(np.float32)
        lit = _lit(self.table, u, np.float32(self.exposure), half_gap.astype(np.float32))
        predicted = lit @ self.response[:, :3] + self.response[:, 3:4]
        resid = np.where(self.seen, self.values - predicted, np.float32(0.0))
        return (resid * resid).sum(axis=(1, 2), dtype=np.float64)

    def search(self, start, half_gap, steps, *, gap: bool = False):
        """Best of ``start`` (or ``half_gap``) plus each of ``steps`` (ms), per blob, refined by a
        parabola through the best step and its neighbours; returns (values, costs)."""
        base = half_gap if gap else start
        costs = np.stack([
            self.cost(start, half_gap + s) if gap else self.cost(start + s, half_gap) for s in steps
        ], axis=1)
        best = np.clip(np.argmin(costs, axis=1), 1, len(steps) - 2)
        rows = np.arange(len(costs))
        c0, c1, c2 = (costs[rows, best + d] for d in (-1, 0, 1))
        curve = c0 - 2 * c1 + c2
        shift = np.where(curve > 0, 0.5 * (c0 - c2) / np.maximum(curve, 1e-12), 0.0)
        step = steps[1] - steps[0]
        return base + steps[best] + np.clip(shift, -1.0, 1.0) * step, costs.min(axis=1)


def _fit_blobs(fit: _Fit, start, *, rounds: int = 2):
    """Offsets (ms, clip clock) and half rise/fall gaps of the blobs of ``fit``, from coarse
    slot-0 starts; also each blob's cost and how sharply it rises 4 ms away (noise units)."""
    gap = np.zeros(len(start))
    # the coarse start (slot grid) is within about +-8 ms of the fitted one, half an exposure
    # early (its frames straddle a change from half an exposure before it)
    start, _ = fit.search(start + 0.5 * fit.exposure, gap, np.arange(-13.5, 13.6, 3.0))
    gap, _ = fit.search(start, gap, np.arange(-9.0, 9.1, 2.0), gap=True)
    for _ in range(rounds):
        start, _ = fit.search(start, gap, np.arange(-1.5, 1.6, 0.5))
        gap, cost = fit.search(start, gap, np.arange(-1.0, 1.1, 0.5), gap=True)
    noise = cost / np.maximum(fit.seen.sum(axis=(1, 2)) - 14, 1)
    rise = np.minimum(fit.cost(start - 4.0, gap), fit.cost(start + 4.0, gap)) - cost
    return start, gap, cost, rise / np.maximum(noise, 1e-9)


def _estimate_exposure(values, t_ms, table, response, start, frame_ms):
    """The exposure (ms) that best predicts the frames of a sample of blobs (a grid of eight,
    refined by a parabola)."""
    sample = np.arange(len(values))[:: max(1, len(values) // _SAMPLE_BLOBS)]
    trials = frame_ms * np.linspace(0.125, 1.0, 8)
    costs = np.array([
        np.sum(_fit_blobs(_Fit(values[sample], t_ms, table[sample], response[sample], exposure),
                          start[sample], rounds=1)[2])
        for exposure in trials
    ])
    best = int(np.clip(np.argmin(costs), 1, len(trials) - 2))
    c0, c1, c2 = costs[best - 1 : best + 2]
    curve = c0 - 2 * c1 + c2
    shift = float(np.clip(0.5 * (c0 - c2) / curve, -1, 1)) if curve > 0 else 0.0
    return float(trials[best] + shift * (trials[1] - trials[0]))


def _estimate_readout(offset: np.ndarray, row_frac: np.ndarray, frame_ms: float) -> float:
    """Rolling-shutter readout (ms) from the crowd: offsets measured against the top row's
    time drift earlier down the frame by the readout (phones' own offsets do not depend on
    their row). A line fitted with two rounds of outlier trimming; 0 with too few blobs."""
    if len(offset) < _MIN_READOUT_BLOBS or np.ptp(row_frac) < 0.3:
        return 0.0
    keep = np.ones(len(offset), bool)
    for _ in range(3):
        slope, icept = np.polyfit(row_frac[keep], offset[keep], 1)
        resid = offset - (slope * row_frac + icept)
        mad = 1.4826 * np.median(np.abs(resid[keep] - np.median(resid[keep]))) + 1e-6
        keep = np.abs(resid) < 3.0 * mad
    return float(np.clip(-slope, 0.0, frame_ms))


def measure_offsets(values: np.ndarray, t_ms: np.ndarray, start_ms: np.ndarray,
                    slots: np.ndarray, numbers: np.ndarray, row_frac: np.ndarray, *,
                    exposure_ms: float | None, readout_ms: float | None, frame_ms: float
                    ) -> tuple[np.ndarray, dict]:
    """Light-output offsets of the decoded blobs, on the clip's clock.

    Parameters
    ----------
    values : np.ndarray, shape (n, F, 3), float
        Blob window sums per frame (RGB), NaN where unseen or hidden.
    t_ms : np.ndarray, shape (F,)
        Frame times (ms) of the top row's exposure start, from the first frame.
    start_ms : np.ndarray, shape (n,)
        Each blob's coarse slot-0 start (ms, frame-time scale) from its slot timing.
    slots : np.ndarray, shape (n, 16, 3)
        Each blob's slot readings (RGB).
    numbers : np.ndarray, shape (n,), int
        Decoded numbers, -1 for blobs not decoded (no offset).
    row_frac : np.ndarray, shape (n,)
        Each blob's image row as a share of the frame height (0 top, 1 bottom).
    exposure_ms, readout_ms : float or None
        Exposure time and rolling-shutter readout (top to bottom row) of the camera; None
        estimates them from the crowd.
    frame_ms : float
        Frame interval (ms).

    Returns
    -------
    offset : np.ndarray, shape (n,), float64
        When slot 0 of each blob's light began, in ms after the first frame's top-row exposure
        start (mean of its rise and fall); NaN where not decoded or not measurable (its frames
        do not pin the change down).
    info : dict
        ``exposure_ms`` and ``readout_ms`` used, and whether each was ``estimated``.
    """
    offset = np.full(len(values), np.nan)
    decoded = np.flatnonzero(numbers >= 0)
    info = {"exposure_ms": exposure_ms, "readout_ms": readout_ms,
            "exposure_estimated": exposure_ms is None, "readout_estimated": readout_ms is None}
    if len(decoded) == 0:
        return offset, info
    vals = values[decoded].astype(np.float32)
    bits = pattern_bits(numbers[decoded]).astype(np.float64)
    response = _colour_response(bits, slots[decoded].astype(np.float64)).astype(np.float32)
    table = _edge_table(bits).astype(np.float32)
    coarse = start_ms[decoded].astype(np.float64)
    if exposure_ms is None:
        exposure_ms = _estimate_exposure(vals, t_ms, table, response, coarse, frame_ms)
    start, _, _, sharp = _fit_blobs(_Fit(vals, t_ms, table, response, exposure_ms), coarse)
    centre = float(np.median(start))
    start = centre + np.mod(start - centre + 0.5 * PERIOD_MS, PERIOD_MS) - 0.5 * PERIOD_MS
    if readout_ms is None:
        readout_ms = _estimate_readout(start[sharp > _SHARPNESS], row_frac[decoded][sharp > _SHARPNESS],
                                       frame_ms)
    start = start + readout_ms * row_frac[decoded]
    offset[decoded] = np.where(sharp > _SHARPNESS, start, np.nan)
    info.update(exposure_ms=round(float(exposure_ms), 3), readout_ms=round(float(readout_ms), 3))
    return offset, info
