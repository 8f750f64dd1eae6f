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

import io
import math
import wave
from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy.ndimage import maximum_filter1d
from scipy.optimize import least_squares
from scipy.signal import chirp, correlate, fftconvolve, hilbert

SWEEP_LAWS = ("linear", "quadratic", "logarithmic", "hyperbolic")
MIN_SPEAKERS = 4  # x, y and the clock offset need three differences, so four speakers
DETECT_RATIO = 8.0  # correlation envelope peak over its median level to count as heard
CLIP_LEVEL = 0.999
SILENT_PEAK = 1e-4


class SoundError(ValueError):
    """A recording that cannot give a position; the message says why and what to do."""


def speed_of_sound(temperature_c: float) -> float:
    """Speed of sound in dry air, m/s: ``331.3 * sqrt(1 + T / 273.15)``."""
    if not (math.isfinite(temperature_c) and -60 <= temperature_c <= 60):
        raise ValueError(f"temperature_c must be within [-60, 60] degrees C, got {temperature_c}")
    return 331.3 * math.sqrt(1 + temperature_c / 273.15)


@dataclass(frozen=True)
class ChirpSchedule:
    """When each speaker chirps, on the server clock.

    Speaker k starts its chirp at ``start_ms + r * period_ms + k * slot_ms`` for repeat
    r = 0 .. repeats-1, where ``period_ms = n_speakers * slot_ms``.

    Attributes
    ----------
    n_speakers : int
    start_ms : float
        Server-clock time (ms since the epoch) of the first sample of the WAV.
    slot_ms : float
        Long enough for the chirp plus the largest travel-time spread across the venue
        (600 ms covers 190 m).
    chirp_ms : float
    repeats : int
        Periods in the WAV; a phone hearing one speaker twice measures its sample-rate error.
    f_lo_hz, f_hi_hz : float
        The sweep band.
    """

    n_speakers: int
    start_ms: float = 0.0
    slot_ms: float = 600.0
    chirp_ms: float = 50.0
    repeats: int = 2
    f_lo_hz: float = 2000.0
    f_hi_hz: float = 8000.0

    def __post_init__(self) -> None:
        if self.n_speakers < 1:
            raise ValueError("a chirp schedule needs at least one speaker")
        if not (0 < self.chirp_ms < self.slot_ms):
            raise ValueError("chirp_ms must be positive and shorter than slot_ms")
        if self.repeats < 1:
            raise ValueError("repeats must be at least 1")
        if not (0 < self.f_lo_hz < self.f_hi_hz):
            raise ValueError("the sweep band needs 0 < f_lo_hz < f_hi_hz")

    @property
    def period_ms(self) -> float:
        return self.n_speakers * self.slot_ms

    def emissions(self) -> tuple[np.ndarray, np.ndarray]:
        """Speaker index (E,) int and server-clock start time in ms (E,) of every chirp."""
        r, k = np.divmod(np.arange(self.repeats * self.n_speakers), self.n_speakers)
        return k, self.start_ms + r * self.period_ms + k * self.slot_ms


def chirp_waveform(schedule: ChirpSchedule, speaker: int, t_s: np.ndarray) -> np.ndarray:
    """Speaker's chirp evaluated at times `t_s` (seconds from its start); zero outside it.

    Evaluated analytically, so the simulator renders exact fractional delays and clock-rate
    errors. A Tukey taper (10 % each side) keeps the sweep click-free.
    """
    duration = schedule.chirp_ms / 1000
    law = SWEEP_LAWS[(speaker // 2) % len(SWEEP_LAWS)]
    f0, f1 = schedule.f_lo_hz, schedule.f_hi_hz
    if speaker % 2:
        f0, f1 = f1, f0
    inside = (t_s >= 0) & (t_s < duration)
    t = np.where(inside, t_s, 0.0)
    taper = 0.1 * duration
    edge = np.minimum(t, duration - t)
    window = np.where(edge < taper, 0.5 * (1 - np.cos(np.pi * edge / taper)), 1.0)
    return np.where(inside, window * chirp(t, f0, duration, f1, method=law), 0.0)


def _template(schedule: ChirpSchedule, speaker: int, sample_rate: int) -> np.ndarray:
    n = int(round(schedule.chirp_ms * sample_rate / 1000))
    return chirp_waveform(schedule, speaker, np.arange(n) / sample_rate)


# --------------------------------------------------------------------------------- audio I/O


@dataclass(frozen=True)
class Recording:
    """A phone's microphone clip.

    Attributes
    ----------
    samples : ndarray, shape (N,), float32 in [-1, 1]
    sample_rate : int
        Nominal rate, Hz (the real one may differ by up to about 100 ppm).
    start_ms : float
        The phone's synced-clock time of sample 0, ms since the epoch.
    """

    samples: np.ndarray
    sample_rate: int
    start_ms: float


def render_schedule_wav(
    schedule: ChirpSchedule, *, sample_rate: int = 48000, amplitude: float = 0.5
) -> bytes:
    """The 16-bit mono WAV the operator plays; sample 0 must sound at ``schedule.start_ms``.

    One file carries every speaker's chirp in its slot: the venue routes it to all speakers with
    each speaker muted outside its slot, or (simpler, and what `speaker_track` gives) the operator
    plays one track per speaker.
    """
    return _wav_bytes(sum(speaker_track(schedule, k, sample_rate) for k in
                          range(schedule.n_speakers)) * amplitude, sample_rate)


def speaker_track(schedule: ChirpSchedule, speaker: int, sample_rate: int = 48000) -> np.ndarray:
    """One speaker's chirps over the whole schedule, float64 (N,), aligned with the WAV."""
    if not 0 <= speaker < schedule.n_speakers:
        raise ValueError(f"speaker must be within [0, {schedule.n_speakers}), got {speaker}")
    n = int(round(schedule.repeats * schedule.period_ms * sample_rate / 1000))
    track = np.zeros(n)
    template = _template(schedule, speaker, sample_rate)
    ks, times = schedule.emissions()
    for time_ms in times[ks == speaker]:
        i = int(round((time_ms - schedule.start_ms) * sample_rate / 1000))
        track[i : i + len(template)] += template[: n - i]
    return track


def _wav_bytes(samples: np.ndarray, sample_rate: int) -> bytes:
    pcm = np.clip(np.round(samples * 32767), -32768, 32767).astype("<i2")
    buffer = io.BytesIO()
    with wave.open(buffer, "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(sample_rate)
        out.writeframes(pcm.tobytes())
    return buffer.getvalue()


def recording_wav(recording: Recording) -> bytes:
    """A recording as 16-bit mono WAV bytes (what the pixel page uploads)."""
    return _wav_bytes(recording.samples, recording.sample_rate)


def parse_wav(data: bytes, *, start_ms: float = 0.0) -> Recording:
    """Read an uploaded PCM WAV (8/16/24/32-bit integer, mono or multi-channel, averaged).

    Raises `SoundError` for anything that is not a readable PCM WAV, or has no samples.
    """
    try:
        with wave.open(io.BytesIO(data), "rb") as src:
            channels, width = src.getnchannels(), src.getsampwidth()
            rate, raw = src.getframerate(), src.readframes(src.getnframes())
    except (wave.Error, EOFError) as exc:
        raise SoundError(f"not a PCM WAV file ({exc}); upload 16-bit PCM WAV") from exc
    if width == 1:
        values = (np.frombuffer(raw, np.uint8).astype(np.float32) - 128) / 128
    elif width == 3:
        b = np.frombuffer(raw, np.uint8).reshape(-1, 3).astype(np.int32)
        values = ((b[:, 0] | b[:, 1] << 8 | b[:, 2] << 16) << 8 >> 8).astype(np.float32) / 2**23
    elif width in (2, 4):
        values = np.frombuffer(raw, f"<i{width}").astype(np.float32) / 2 ** (8 * width - 1)
    else:
        raise SoundError(f"unsupported WAV sample width of {width} bytes")
    if values.size == 0:
        raise SoundError("the WAV file holds no samples")
    samples = values.reshape(-1, channels).mean(axis=1).astype(np.float32)
    return Recording(samples, rate, float(start_ms))


# --------------------------------------------------------------------------------- simulator


def simulate_recording(
    position: Any,
    speakers: Any,
    schedule: ChirpSchedule,
    *,
    seed: int,
    snr_db: float = 20.0,
    reverb_rt60_s: float = 0.0,
    drr_db: float = 0.0,
    clock_offset_ms: float = 0.0,
    sample_rate_error_ppm: float = 0.0,
    temperature_c: float = 20.0,
    sample_rate: int = 48000,
    start_ms: float | None = None,
    duration_ms: float | None = None,
    metres_per_unit: float = 1.0,
) -> Recording:
    """What a phone at `position` records of the schedule (seeded, deterministic).

    Parameters
    ----------
    position : array_like, shape (2,)
        Phone position, scene units.
    speakers : array_like, shape (K, 2)
        Speaker positions, scene units, in schedule order.
    schedule : ChirpSchedule
    seed : int
    snr_db : float
        Direct-path chirp power over white-noise power, averaged in dB over the speakers (a far
        speaker is weaker than that, a near one stronger; amplitude falls as 1/distance).
    reverb_rt60_s : float
        Reverberation time of a decaying random impulse response per speaker (0: none). It starts
        1-20 ms after the direct sound.
    drr_db : float
        Direct-to-reverberant energy ratio.
    clock_offset_ms : float
        Phone synced clock minus server clock (includes any playback latency).
    sample_rate_error_ppm : float
        The microphone really samples at ``sample_rate * (1 + ppm / 1e6)``.
    start_ms, duration_ms : float, optional
        Phone-clock start of the clip and its length; by default from 100 ms before the schedule
        for one period plus one slot plus 300 ms (every speaker heard, the first one twice).

    Returns
    -------
    Recording
    """
    rng = np.random.default_rng(seed)
    pos = np.asarray(position, dtype=np.float64) * metres_per_unit
    spk = _speaker_array(speakers, schedule) * metres_per_unit
    c = speed_of_sound(temperature_c)
    start = schedule.start_ms - 100 if start_ms is None else start_ms
    length = (schedule.period_ms + schedule.slot_ms + 300) if duration_ms is None else duration_ms
    n = int(round(length * sample_rate / 1000))
    # Server time (s, relative to the schedule start) at which each phone sample is taken.
    t = (start - clock_offset_ms - schedule.start_ms) / 1000 + np.arange(n) / (
        sample_rate * (1 + sample_rate_error_ppm * 1e-6)
    )
    distance = np.hypot(*(spk - pos).T)
    gain = 1 / np.maximum(distance, 1.0)
    ks, times = schedule.emissions()
    direct = np.zeros((len(spk), n))
    for k, time_ms in zip(ks, times, strict=True):
        arrival = (time_ms - schedule.start_ms) / 1000 + distance[k] / c
        lo, hi = np.searchsorted(t, [arrival, arrival + schedule.chirp_ms / 1000])
        direct[k, lo:hi] += gain[k] * chirp_waveform(schedule, k, t[lo:hi] - arrival)
    signal = direct.sum(axis=0)
    if reverb_rt60_s > 0:
        for k in range(len(spk)):
            ir = _reverb_ir(rng, reverb_rt60_s, drr_db, sample_rate)
            signal += fftconvolve(direct[k], ir)[:n]
    chirp_power = np.mean(_template(schedule, 0, sample_rate) ** 2)
    mean_db = np.mean(10 * np.log10(gain**2 * chirp_power))
    noise_sigma = math.sqrt(10 ** ((mean_db - snr_db) / 10))
    recorded = signal + rng.normal(0, noise_sigma, n)
    recorded *= 0.3 / max(np.abs(recorded).max(), 1e-12)  # the phone's automatic gain
    return Recording(recorded.astype(np.float32), sample_rate, float(start))


def _reverb_ir(rng: np.random.Generator, rt60_s: float, drr_db: float, rate: int) -> np.ndarray:
    delay = int(rng.uniform(0.001, 0.020) * rate)
    t = np.arange(int(rt60_s * rate)) / rate
    tail = rng.normal(size=t.size) * np.exp(-6.9 * t / rt60_s)
    tail *= math.sqrt(10 ** (-drr_db / 10) / np.sum(tail**2))
    return np.concatenate([np.zeros(delay), tail])


def _speaker_array(speakers: Any, schedule: ChirpSchedule) -> np.ndarray:
    spk = np.asarray(speakers, dtype=np.float64)
    if spk.ndim != 2 or spk.shape[1] != 2 or not np.all(np.isfinite(spk)):
        raise ValueError(f"speakers must be finite positions of shape (K, 2), got {spk.shape}")
    if len(spk) != schedule.n_speakers:
        raise ValueError(f"the schedule has {schedule.n_speakers} speakers, got {len(spk)} positions")
    return spk


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
    spk = _speaker_array(speakers, schedule) * metres_per_unit
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
        template = _template(schedule, k, rate)
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
