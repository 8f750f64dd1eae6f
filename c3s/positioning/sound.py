"""Locating a phone by the chirps the venue's speakers play (time differences of arrival).

Each speaker owns a time slot in a repeating schedule on the server clock and plays its own chirp
in it: a 2-8 kHz sweep whose law (linear, quadratic, logarithmic, hyperbolic) and direction
(up/down) differ between neighbouring slots. 2-8 kHz carries far over a 100 m venue (air absorbs
near-ultrasound by tens of dB at that range), every phone microphone and PA reproduces it, and the
6 kHz bandwidth gives a correlation peak about 0.2 ms wide (6 cm). Time slots keep a loud near
speaker from masking a far one; the distinct sweeps keep a wrong slot from matching.

A phone records a few seconds and reports the synced-clock time of its first sample. The unknown
difference between phone and server clocks (and any playback latency of the sound system, which is
common to all speakers) is solved out together with the position, and so is the microphone's
sample-rate error when a speaker is heard twice (the schedule repeats).

Units: scene positions in scene units (``metres_per_unit`` converts), times in milliseconds on the
server clock unless a name says seconds (``_s``), audio samples as float32 in [-1, 1].
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy.ndimage import maximum_filter1d
from scipy.optimize import least_squares
from scipy.signal import correlate, hilbert

# The schedule, its audio and the simulator live in `chirps`; they are re-exported here so that
# ``from c3s.positioning.sound import ...`` keeps giving the whole sound-location API.
from c3s.positioning.chirps import (
    MIN_SPEAKERS,
    SWEEP_LAWS,
    ChirpSchedule,
    Recording,
    SoundError,
    chirp_template,
    chirp_waveform,
    parse_wav,
    recording_wav,
    render_schedule_wav,
    simulate_recording,
    speaker_array,
    speaker_track,
    speed_of_sound,
)

DETECT_RATIO = 8.0  # correlation envelope peak over its median level to count as heard
CLIP_LEVEL = 0.999
SILENT_PEAK = 1e-4

__all__ = [
    "CLIP_LEVEL",
    "DETECT_RATIO",
    "MIN_SPEAKERS",
    "SILENT_PEAK",
    "SWEEP_LAWS",
    "ChirpSchedule",
    "Recording",
    "SoundError",
    "SoundFix",
    "check_recording",
    "chirp_waveform",
    "locate_from_recording",
    "parse_wav",
    "recording_wav",
    "render_schedule_wav",
    "simulate_recording",
    "speaker_track",
    "speed_of_sound",
]


# ------------------------------------------------------------------------------------ solver


@dataclass(frozen=True)
class SoundFix:
    """A position found from chirps.

    Attributes
    ----------
    x, y : float
        Scene units.
    uncertainty_m : float
        1-sigma radius from the residuals and the geometry, metres.
    chirps_heard : int
        Chirps used in the solution (a speaker heard twice counts twice).
    speakers_heard : int
    residual_ms : float
        RMS of the arrival-time residuals.
    clock_offset_ms : float
        Estimated phone clock minus server clock (plus playback latency).
    sample_rate_error_ppm : float
        Estimated microphone rate error (0 when not solved).
    """

    x: float
    y: float
    uncertainty_m: float
    chirps_heard: int
    speakers_heard: int
    residual_ms: float
    clock_offset_ms: float
    sample_rate_error_ppm: float


@dataclass(frozen=True)
class _Arrivals:
    speaker: np.ndarray  # (A,) int
    emitted_s: np.ndarray  # (A,) server time of emission relative to the clip's start
    arrival_s: np.ndarray  # (A,) measured arrival, seconds of phone samples from sample 0


def check_recording(recording: Recording, schedule: ChirpSchedule) -> np.ndarray:
    """Validate a clip before any work; returns the samples as float64.

    Raises `SoundError` when the sample rate cannot carry the chirps, or the clip is silent,
    clipped, or not a 1-D array of finite samples.
    """
    rate = recording.sample_rate
    if not isinstance(rate, int | np.integer) or not 8000 <= rate <= 192000:
        raise SoundError(f"sample rate {rate!r} Hz is not supported; record at 44100 or 48000 Hz")
    if rate < 2.2 * schedule.f_hi_hz:
        raise SoundError(
            f"sample rate {rate} Hz cannot carry chirps up to {schedule.f_hi_hz:g} Hz "
            f"(needs at least {2.2 * schedule.f_hi_hz:g} Hz); record at 44100 or 48000 Hz"
        )
    x = np.asarray(recording.samples, dtype=np.float64)
    if x.ndim != 1 or x.size == 0 or not np.all(np.isfinite(x)):
        raise SoundError("the recording must be a non-empty 1-D array of finite samples")
    peak = float(np.abs(x).max())
    if peak < SILENT_PEAK:
        raise SoundError(
            f"the recording is silent (peak {20 * math.log10(max(peak, 1e-12)):.0f} dBFS); "
            "check the microphone permission and that nothing covers the microphone"
        )
    clipped = float(np.mean(np.abs(x) >= CLIP_LEVEL))
    if clipped > 1e-3:
        raise SoundError(
            f"the recording is clipped ({100 * clipped:.2f} % of samples at full scale); "
            "move away from the speaker or lower the volume"
        )
    return x


def locate_from_recording(
    recording: Recording,
    speakers: Any,
    schedule: ChirpSchedule,
    *,
    temperature_c: float,
    metres_per_unit: float = 1.0,
    max_clock_offset_ms: float = 250.0,
    subsample: bool = True,
    leading_edge: bool = True,
    robust: bool = True,
    solve_rate: bool = True,
) -> SoundFix:
    """Position of the phone that made `recording`.

    Matched filtering finds each chirp's arrival (the first strong peak of the correlation
    envelope in the chirp's window, so a louder late reflection is not taken for the direct
    sound, refined to a fraction of a sample by a parabola through the correlation peak). The
    common clock offset is first found coarsely by the offset that best explains all chirps at
    once. Then least squares with a soft-L1 loss solves x, y, the clock offset and the sample-rate
    error from the arrival times, drops gross outliers and solves again.

    Parameters
    ----------
    recording : Recording
    speakers : array_like, shape (K, 2)
        Speaker positions, scene units, in schedule order.
    schedule : ChirpSchedule
    temperature_c : float
        Air temperature on the scene, for the speed of sound.
    max_clock_offset_ms : float
        Largest expected |phone clock - server clock| plus playback latency.
    subsample, leading_edge, robust, solve_rate : bool
        Switch off the refinements (sub-sample interpolation, leading-edge peak choice, robust
        loss with outlier removal, sample-rate estimate); the benchmark uses this for its
        baseline.

    Raises
    ------
    SoundError
        Bad audio (see `check_recording`), a clip that misses the schedule, chirps from fewer
        than four speakers, or arrivals that agree on no position.
    """
    samples = check_recording(recording, schedule)
    spk = speaker_array(speakers, schedule) * metres_per_unit
    c = speed_of_sound(temperature_c)
    spread_s = (np.max(np.hypot(*(spk[:, None] - spk[None]).T)) + 10) / c
    arrivals = _find_arrivals(
        samples, recording, schedule, max_clock_offset_ms / 1000, spread_s,
        subsample=subsample, leading_edge=leading_edge,
    )
    heard = np.unique(arrivals.speaker)
    if len(heard) < MIN_SPEAKERS:
        raise SoundError(
            f"heard chirps from {len(heard)} speaker(s) (need at least {MIN_SPEAKERS}): "
            f"{', '.join(str(k) for k in heard) or 'none'}; record again away from noise, "
            "hold the phone up, or ask for the volume to be raised"
        )
    return _solve(arrivals, spk, c, metres_per_unit, robust=robust, solve_rate=solve_rate)


def _correlations(samples: np.ndarray, schedule: ChirpSchedule, rate: int) -> list[np.ndarray]:
    out = []
    for k in range(schedule.n_speakers):
        template = chirp_template(schedule, k, rate)
        if len(template) >= len(samples):
            raise SoundError("the recording is shorter than one chirp")
        out.append(correlate(samples, template, mode="valid", method="fft"))
    return out


def _find_arrivals(
    samples: np.ndarray,
    recording: Recording,
    schedule: ChirpSchedule,
    max_offset_s: float,
    spread_s: float,
    *,
    subsample: bool,
    leading_edge: bool,
) -> _Arrivals:
    rate = recording.sample_rate
    corr = _correlations(samples, schedule, rate)
    env = [np.abs(hilbert(cc)) for cc in corr]
    floor = [float(np.median(e)) + 1e-12 for e in env]
    ks, times = schedule.emissions()
    emitted = (times - recording.start_ms) / 1000
    # Emissions whose search window overlaps the clip.
    n_lags = len(corr[0])
    inside = (emitted + max_offset_s + spread_s > 0) & ((emitted - max_offset_s) * rate < n_lags)
    if not inside.any():
        raise SoundError(
            f"the recording ({len(samples) / rate:.1f} s from {recording.start_ms:.0f} ms) "
            f"does not cover a chirp of the schedule ({schedule.start_ms:.0f} ms to "
            f"{schedule.start_ms + schedule.repeats * schedule.period_ms:.0f} ms); "
            "check the phone's clock sync and record for the whole period"
        )
    ks, emitted = ks[inside], emitted[inside]
    offset = _coarse_offset(env, floor, ks, emitted, max_offset_s, spread_s, rate)
    found_k, found_e, found_t = [], [], []
    for k, e in zip(ks, emitted, strict=True):
        lo = max(int((e + offset - 0.005) * rate), 0)
        hi = min(int((e + offset + spread_s + 0.005) * rate), n_lags)
        lag = _pick_peak(env[k][lo:hi], corr[k][lo:hi], floor[k], subsample, leading_edge)
        if lag is not None:
            found_k.append(k)
            found_e.append(e)
            found_t.append((lo + lag) / rate)
    return _Arrivals(np.array(found_k, dtype=int), np.array(found_e), np.array(found_t))


def _coarse_offset(
    env: list[np.ndarray],
    floor: list[float],
    ks: np.ndarray,
    emitted: np.ndarray,
    max_offset_s: float,
    spread_s: float,
    rate: int,
) -> float:
    """The clock offset (s, 1 ms grid) under which the chirp windows hold the most energy."""
    grid = np.arange(-max_offset_s, max_offset_s + 1e-9, 0.001)
    width = int(spread_s * rate)
    score = np.zeros(grid.size)
    for k in np.unique(ks):
        # Max over [i, i + width) at index i: a centred filter shifted by half the width.
        windowed = maximum_filter1d(env[k], size=width, origin=-(width // 2), mode="nearest")
        for e in emitted[ks == k]:
            idx = np.clip(((e + grid) * rate).astype(int), 0, len(windowed) - 1)
            score += np.log(windowed[idx] / floor[k])
    return float(grid[np.argmax(score)])


def _pick_peak(
    env: np.ndarray, corr: np.ndarray, floor: float, subsample: bool, leading_edge: bool
) -> float | None:
    """Lag (samples, from the window start) of the direct-path peak, or None if not heard."""
    if env.size < 3:
        return None
    top = int(np.argmax(env))
    if env[top] < DETECT_RATIO * floor:
        return None
    i = top
    if leading_edge:
        # The first local maximum above half the strongest one: the direct sound comes first.
        i = int(np.argmax(env >= 0.5 * env[top]))
        while i + 1 < env.size and env[i + 1] >= env[i]:
            i += 1
    if not subsample:
        return float(i)
    # The carrier peak of the raw correlation near the envelope peak, then a parabola.
    lo, hi = max(i - 4, 1), min(i + 5, env.size - 1)
    j = lo + int(np.argmax(corr[lo:hi]))
    j = min(max(j, 1), corr.size - 2)
    a, b, d = corr[j - 1], corr[j], corr[j + 1]
    denom = a - 2 * b + d
    return j + (0.5 * (a - d) / denom if denom < 0 else 0.0)


def _model(theta: np.ndarray, arr: _Arrivals, spk: np.ndarray, c: float) -> np.ndarray:
    x, y, offset, rate_error = theta
    distance = np.hypot(spk[arr.speaker, 0] - x, spk[arr.speaker, 1] - y)
    return (arr.emitted_s + distance / c + offset) * (1 + rate_error)


def _fit(
    arr: _Arrivals, spk: np.ndarray, c: float, robust: bool, solve_rate: bool
) -> tuple[np.ndarray, Any]:
    # A weak prior (100 ppm ~ 1 cm of residual) keeps the rate error determined when no speaker
    # is heard twice; without solve_rate it pins the rate error to zero.
    prior_weight = 0.01 / 1e-4 if solve_rate else 1e6

    def residuals(theta: np.ndarray) -> np.ndarray:
        timing = (arr.arrival_s - _model(theta, arr, spk, c)) * c
        return np.append(timing, prior_weight * theta[3])

    centre = spk.mean(axis=0)
    half = (spk.max(axis=0) - spk.min(axis=0)) / 4
    starts = [centre] + [centre + half * s for s in ((1, 1), (1, -1), (-1, 1), (-1, -1))]
    best = None
    for start in starts:
        d0 = np.hypot(*(spk[arr.speaker] - start).T)
        offset0 = float(np.median(arr.arrival_s - arr.emitted_s - d0 / c))
        result = least_squares(
            residuals, np.array([*start, offset0, 0.0]), x_scale=[10, 10, 0.03, 1e-4],
            loss="soft_l1" if robust else "linear", f_scale=0.1,
        )
        if best is None or result.cost < best.cost:
            best = result
    return best.x, best


def _solve(
    arr: _Arrivals, spk: np.ndarray, c: float, metres_per_unit: float, *, robust: bool,
    solve_rate: bool,
) -> SoundFix:
    theta, result = _fit(arr, spk, c, robust, solve_rate)
    if robust:
        timing = (arr.arrival_s - _model(theta, arr, spk, c)) * c
        keep = np.abs(timing) <= max(0.3, 5 * 1.4826 * np.median(np.abs(timing)))
        if not keep.all() and len(np.unique(arr.speaker[keep])) >= MIN_SPEAKERS:
            arr = _Arrivals(arr.speaker[keep], arr.emitted_s[keep], arr.arrival_s[keep])
            theta, result = _fit(arr, spk, c, robust, solve_rate)
    timing = (arr.arrival_s - _model(theta, arr, spk, c)) * c
    n_free = 4 if solve_rate and len(arr.speaker) > len(np.unique(arr.speaker)) else 3
    dof = len(timing) - n_free
    # Below 5 cm the residuals say more about luck than about the chirps (body shadowing,
    # reflections close behind the direct sound), so that is the floor.
    sigma_m = max(float(np.sqrt(np.sum(timing**2) / dof)) if dof > 0 else 0.0, 0.05)
    jac = result.jac
    try:
        # The full inverse, so the x/y block accounts for the solved clock offset and rate.
        cov = np.linalg.inv(jac.T @ jac) * sigma_m**2
        variance = float(cov[0, 0] + cov[1, 1])
        uncertainty = math.sqrt(variance) if variance > 0 else math.inf
    except np.linalg.LinAlgError:
        uncertainty = math.inf
    span = np.max(np.hypot(*(spk - spk.mean(axis=0)).T))
    if not np.isfinite(uncertainty) or np.hypot(*(theta[:2] - spk.mean(axis=0))) > 2 * span:
        raise SoundError("the chirp arrivals agree on no position; record again")
    return SoundFix(
        x=float(theta[0] / metres_per_unit),
        y=float(theta[1] / metres_per_unit),
        uncertainty_m=uncertainty,
        chirps_heard=int(len(arr.speaker)),
        speakers_heard=int(len(np.unique(arr.speaker))),
        residual_ms=float(np.sqrt(np.mean(timing**2)) / c * 1000),
        clock_offset_ms=float(theta[2] * 1000),
        sample_rate_error_ppm=float(theta[3] * 1e6),
    )
