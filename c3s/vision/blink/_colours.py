"""Per-blob decoding: colour levels and templates, hard and soft classification of the data slots."""

from __future__ import annotations

import itertools

import numpy as np

from c3s.vision.blink._code import (
    _BITS_TO_DATA,
    _DATA_BITS,
    _K_SYMBOLS,
    _N_SYMBOLS,
    _OFFSET,
    _P,
    _VANDER,
    MAX_ERASED_SYMBOLS,
    N_NUMBERS,
    _inv_mod,
    decode_symbols,
    pattern_bits,
)

_GAP = 2.0  # how much nearer (in residual-sigma units) the best colour must be than the next


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
