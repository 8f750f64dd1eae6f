"""The public decoder: frames in, one detection per decoded phone out."""

from __future__ import annotations

import warnings
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field

import numpy as np

from c3s.vision.blink._code import N_SLOTS, SLOT_MS
from c3s.vision.blink._colours import _classify
from c3s.vision.blink._offset import measure_offsets
from c3s.vision.blink._phone_timing import (
    hide_dark_frames_per_phone,
    phone_cycle_start,
    phone_readings,
    phone_slot_phase,
)
from c3s.vision.blink._timing import (
    _frame_times,
    _hide_dark_frames,
    _normalise,
    _per_slot,
    _slot_readings,
    recover_cycle_phase,
    recover_slot_phase,
)
from c3s.vision.blink._tracker import (
    _add_new_blobs,
    _detect_blobs,
    _Opening,
    _stack,
    _step,
    _Tracks,
)


@dataclass(frozen=True)
class BlinkDetection:
    """One decoded phone.

    ``x_img``/``y_img`` are image pixels (x right, y down, pixel centres at integers) in the
    coordinates of the clip's first frame; ``code`` is the pixel number as a decimal string.

    ``offset_ms`` is the phone's light-output offset: when its light actually changed relative to
    the server clock, in milliseconds, positive = late (its display latency plus its clock error,
    the rolling-shutter delay of its image row removed; the mean of its black-to-white and
    white-to-black changes). It is known modulo the 1.2 s pattern period and reported in
    (-600, 600]. None when it cannot be measured: the clip's frames have no server-clock time
    (frame rate only, no ``start_ms``), the decoder ran with ``timing="crowd"``, or the phone's
    frames do not pin its changes down.
    """

    code: str
    number: int
    x_img: float
    y_img: float
    confidence: float
    erased_symbols: int
    offset_ms: float | None = None


@dataclass
class BlinkResult:
    """Decoded phones plus what the decoder saw.

    ``decode_stats`` holds ``blobs``, ``decoded`` and ``rejected`` (a dict reason -> count);
    ``slot_phase_ms`` is the time (on the clip's clock) of a slot-0 start (with per-phone timing,
    the crowd's median); ``frames`` the number of frames read; ``extra`` the camera timing used
    for offsets (``exposure_ms``, ``readout_ms``, whether each was estimated from the crowd).
    """

    detections: list[BlinkDetection]
    decode_stats: dict
    slot_phase_ms: float | None = None
    frames: int = 0
    extra: dict = field(default_factory=dict)


def _positions(tracks: _Tracks, n: int) -> np.ndarray:
    pos = _stack(tracks.pos, n, 2).astype(np.float64)
    wgt = _stack(tracks.weight, n, 1)[:, :, 0].astype(np.float64)
    wgt = np.nan_to_num(wgt, nan=0.0)
    wsum = wgt.sum(axis=1)
    est = np.nansum(pos * wgt[:, :, None], axis=1) / np.maximum(wsum, 1e-9)[:, None]
    return np.where(wsum[:, None] > 0, est, tracks.base)


def _finish(tracks: _Tracks, t_ms: np.ndarray, options: dict):
    # Blobs with no reading in some slot give all-NaN slices by design; they are handled below.
    with warnings.catch_warnings(action="ignore", category=RuntimeWarning):
        return _finish_quiet(tracks, t_ms, options)


def _finish_quiet(tracks: _Tracks, t_ms, options: dict):
    n = len(tracks.base)
    stats = {"blobs": n, "decoded": 0, "rejected": {}}
    if n == 0 or len(t_ms) < 3:
        if n:
            stats["rejected"] = {"too_few_frames": n}
        return BlinkResult([], stats, None, len(t_ms))
    values = _stack(tracks.sums, n, 3)
    if options["channel_order"] == "bgr":
        values = values[:, :, ::-1]  # decode in RGB, the order of the pattern colours
    t0, t_rel = float(t_ms[0]), t_ms - t_ms[0]
    z_frames, contrast = _normalise(values)
    frame_ms = float(np.median(np.diff(t_rel)))
    timing = _crowd_timing if options["timing"] == "crowd" else _phone_timing
    raw = values
    values, start, slots, repeat_spread, clear = timing(values, z_frames, contrast, t_rel,
                                                        frame_ms, options["min_contrast"])
    decoded = _classify(slots, options["min_contrast"], repeat_spread)
    numbers, reasons, n_erased, margin = decoded
    if options["timing"] != "crowd":
        trial = _Trial(raw, z_frames, t_rel, frame_ms, values, start, slots, repeat_spread)
        _retry_failed(trial, decoded, clear, options["min_contrast"])
        values, start, slots = trial.values, trial.start, trial.slots
    position = _positions(tracks, n)
    offset, extra = np.full(n, np.nan), {}
    if options["timing"] != "crowd" and options["server_clock"]:
        offset, extra = measure_offsets(
            values, t_rel, start, slots, numbers, np.clip(position[:, 1] / options["height"], 0, 1),
            exposure_ms=options["exposure_ms"], readout_ms=options["readout_ms"], frame_ms=frame_ms)
        offset = np.mod(offset + t0 + 0.5 * _PERIOD_MS, _PERIOD_MS) - 0.5 * _PERIOD_MS
    detections = _dedupe(numbers, reasons, n_erased, margin, position, offset)
    stats["decoded"] = len(detections)
    stats["rejected"] = dict(Counter(str(r) for r in reasons if r))
    slot0_ms = t0 + float(np.median(start))
    return BlinkResult(detections, stats, slot0_ms, len(t_ms), extra)


_PERIOD_MS = N_SLOTS * SLOT_MS


def _phone_timing(values, z_frames, contrast, t_ms, frame_ms, min_contrast):
    """Each blob on its own slot grid: returns the values with hidden frames removed, each
    blob's slot-0 start (n,) (ms from the first frame), slot readings, repeat spreads and
    whether its marker was clear (n,)."""
    phase = phone_slot_phase(z_frames, t_ms)
    _, zread, _ = phone_readings(values, z_frames, t_ms, phase, frame_ms)
    start, clear = phone_cycle_start(zread, phase)
    return (*_read_slots(values, z_frames, t_ms, start, frame_ms), clear)


def _read_slots(values, z_frames, t_ms, start, frame_ms):
    """Hidden frames removed, then each blob's 16 slots read on its grid (slot 0 at ``start``)."""
    values = hide_dark_frames_per_phone(values, z_frames, t_ms, start, frame_ms)
    readings, _, weight = phone_readings(values, z_frames, t_ms, start, frame_ms)
    slots, repeat_spread = _per_slot(readings, np.arange(readings.shape[1]) % N_SLOTS, weight)
    return values, start, slots, repeat_spread


@dataclass
class _Trial:
    """What a retry needs: the blobs' raw and normalised values, frame times, and the current
    hidden-frame values, slot-0 starts, slot readings and repeat spreads (updated in place)."""

    raw: np.ndarray
    z_frames: np.ndarray
    t_ms: np.ndarray
    frame_ms: float
    values: np.ndarray
    start: np.ndarray
    slots: np.ndarray
    spread: np.ndarray


_RETRY_SHIFTS_MS = (-SLOT_MS, SLOT_MS, -8.0, 8.0)
_RETRY_CONTEXT = 2000  # decoded blobs classified beside the retried ones


def _retry_failed(trial: _Trial, decoded, clear, min_contrast) -> None:
    """Read refused blobs once more on a shifted grid: a slot either way where the marker was
    hidden (the cycle was the crowd's guess), a few ms either way else (a dim blob's own slot
    phase is noisy). A retry counts only when it passes every check; ``decoded`` (numbers,
    reasons, erasures, margins) and ``trial`` are updated in place."""
    numbers, reasons, n_erased, margin = decoded
    for shift in _RETRY_SHIFTS_MS:
        rows = np.flatnonzero((numbers < 0) & (reasons != "low_contrast")
                              & ((abs(shift) < SLOT_MS) | ~clear))
        if len(rows) == 0:
            continue
        start = np.mod(trial.start[rows] + shift, _PERIOD_MS)
        values, _, slots, spread = _read_slots(trial.raw[rows], trial.z_frames[rows], trial.t_ms,
                                               start, trial.frame_ms)
        # classified among decoded blobs, whose colours teach the crowd's colour models
        good = np.flatnonzero(numbers >= 0)
        context = good[:: max(1, len(good) // _RETRY_CONTEXT)]
        nums, _, erased, marg = _classify(np.concatenate([slots, trial.slots[context]]),
                                          min_contrast,
                                          np.concatenate([spread, trial.spread[context]]))
        won = nums[: len(rows)] >= 0
        take = rows[won]
        numbers[take], reasons[take] = nums[: len(rows)][won], ""
        n_erased[take], margin[take] = erased[: len(rows)][won], marg[: len(rows)][won]
        trial.values[take], trial.start[take] = values[won], start[won]
        trial.slots[take], trial.spread[take] = slots[won], spread[won]


def _crowd_timing(values, z_frames, contrast, t_ms, frame_ms, min_contrast):
    """One slot grid for the whole crowd (phones assumed on the server clock within ~15 ms);
    the same returns as :func:`_phone_timing` (values, starts, slots, spreads, clear markers)."""
    good = np.flatnonzero(np.all(contrast >= min_contrast, axis=1))
    n = len(values)
    sample = good[:: max(1, len(good) // 1500)] if len(good) else np.arange(min(n, 1500))
    phase = recover_slot_phase(z_frames[sample], t_ms)
    readings, zread, labels = _slot_readings(values, z_frames, t_ms, phase, frame_ms)
    k0 = recover_cycle_phase(zread[sample], labels)
    values = _hide_dark_frames(values, z_frames, t_ms, phase, k0, frame_ms)
    readings, _, labels, weight = _slot_readings(
        values, z_frames, t_ms, phase, frame_ms, coverage=True
    )
    slots, repeat_spread = _per_slot(readings, (labels + k0) % N_SLOTS, weight)
    slot0 = phase + ((-k0) % N_SLOTS) * SLOT_MS  # label l starts at phase + l * SLOT_MS
    return values, np.full(n, slot0), slots, repeat_spread, np.ones(n, bool)


def _dedupe(numbers, reasons, n_erased, margin, position, offset) -> list[BlinkDetection]:
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
                offset_ms=round(float(offset[i]), 3) if np.isfinite(offset[i]) else None,
            )
        )
    out.sort(key=lambda d: d.number)
    return out




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
    start_ms: float | None = None,
    readout_ms: float | None = None,
    exposure_ms: float | None = None,
    timing: str = "phone",
) -> BlinkResult:
    """Find phones playing blink patterns in a stream of frames and decode their numbers.

    Parameters
    ----------
    frames : iterable of np.ndarray, each (height, width, 3) uint8
        Consumed once, lazily; only the opening frames (about 140 ms, at most 8) are held until
        the first detection, so memory is bounded by the number of blobs times frames (a few
        floats each) plus those few frames, not by image size times frames.
    timestamps_ms : iterable of float, optional
        Time of each frame in milliseconds, strictly increasing: when the frame's top row
        started its exposure, on the server clock (Unix ms) for ``offset_ms`` to be relative to
        the server clock. Any other clock decodes the same numbers, and offsets are then
        relative to that clock. Takes precedence over ``fps``.
    fps : float, optional
        Frame rate, used when timestamps are not given (frame ``f`` at ``start_ms + 1000 f /
        fps`` ms).
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
    start_ms : float, optional
        With ``fps``: the server-clock time (Unix ms) of the first frame's top-row exposure
        start. Without it a frame-rate-only clip has no server time and every ``offset_ms`` is
        None.
    readout_ms : float, optional
        Rolling-shutter readout (ms): the bottom row starts exposing this long after the top
        row (Android reports it as ``SENSOR_ROLLING_SHUTTER_SKEW``; 0 for a global shutter).
        Default: estimated from the crowd, as the drift of measured offsets down the frame
        (phones' own offsets do not depend on their image row); 0 with fewer than 50 decoded
        phones. The estimate is good to about ``3.5 * spread / sqrt(phones)`` (offsets spread by
        22 ms: +-1.7 ms with 2,000 phones, +-4.5 ms with 300), and an error ``e`` in it moves
        the offset of a phone at row ``y`` by ``e * y / height``: give it for small crowds.
    exposure_ms : float, optional
        Exposure time of each pixel (ms; Android: ``SENSOR_EXPOSURE_TIME``). Default: the one
        that best explains the decoded phones' frames.
    timing : {"phone", "crowd"}
        ``"phone"``: slot boundaries and cycle phase per blob, from its own transitions and
        marker, so phones may be off the server clock by any amount (clock error, display
        latency, rolling shutter), and ``offset_ms`` is measured. ``"crowd"``: one slot grid for
        the whole crowd (phones within about +-15 ms of each other), no offsets; kept as the
        reference the per-phone decoder is measured against.

    Returns
    -------
    BlinkResult
        ``detections`` (positions in first-frame image pixels), ``decode_stats``.
    """
    _check_options(timestamps_ms, fps, channel_order, window_radius)
    _check_timing_options(timestamps_ms, start_ms, readout_ms, exposure_ms, timing)
    tracks = _Tracks(base=np.zeros((0, 2)), first_frame=np.zeros(0, np.int64))
    times = None if timestamps_ms is None else iter(timestamps_ms)
    opening = _Opening(detect_threshold, max_blob_area, window_radius)
    t_list, shape = _read_frames(frames, times, fps, tracks, opening, max_duration_ms,
                                 redetect_ms, detect_threshold, max_blob_area, window_radius)
    opening.flush(tracks)
    t_ms = _frame_times(t_list if times is not None else None, fps, len(t_list))
    if start_ms is not None:
        t_ms = t_ms + float(start_ms)
    options = {"channel_order": channel_order, "min_contrast": min_contrast, "timing": timing,
               "server_clock": times is not None or start_ms is not None, "height": shape[0],
               "readout_ms": readout_ms, "exposure_ms": exposure_ms}
    return _finish(tracks, t_ms, options)


def _check_options(timestamps_ms, fps, channel_order: str, window_radius: int) -> None:
    if channel_order not in ("bgr", "rgb"):
        raise ValueError("channel_order must be 'bgr' or 'rgb'")
    if timestamps_ms is None and (fps is None or not np.isfinite(fps) or fps <= 0):
        raise ValueError("give the frame rate (fps > 0) or one timestamp per frame")
    if window_radius < 1:
        raise ValueError("window_radius must be at least 1 pixel")


def _read_frames(frames: Iterable[np.ndarray], times: Iterator | None, fps: float | None,
                 tracks: _Tracks, opening: _Opening, max_duration_ms: float, redetect_ms: float,
                 detect_threshold: float | None, max_blob_area: int,
                 window_radius: int) -> tuple[list[float], tuple]:
    """Consume the frames into `tracks` (blobs found in the opening frames, then every
    `redetect_ms`); returns the frames' times and their shape. Raises if there is no frame."""
    t_list: list[float] = []
    shape = None
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
    return t_list, shape


def _check_timing_options(timestamps_ms, start_ms, readout_ms, exposure_ms, timing) -> None:
    if timing not in ("phone", "crowd"):
        raise ValueError("timing must be 'phone' or 'crowd'")
    if start_ms is not None and (timestamps_ms is not None or not np.isfinite(start_ms)):
        raise ValueError("start_ms (a finite server time) goes with fps, not with timestamps")
    if readout_ms is not None and not (np.isfinite(readout_ms) and 0 <= readout_ms <= 1000):
        raise ValueError(f"readout_ms must be in 0..1000 ms, got {readout_ms}")
    if exposure_ms is not None and not (np.isfinite(exposure_ms) and 0 < exposure_ms <= 1000):
        raise ValueError(f"exposure_ms must be in (0, 1000] ms, got {exposure_ms}")
