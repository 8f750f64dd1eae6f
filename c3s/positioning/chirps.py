"""The venue's chirp schedule, its audio (speaker tracks, WAV in and out) and a phone simulator.

Each speaker owns a time slot in a repeating schedule on the server clock and plays its own chirp
in it: a 2-8 kHz sweep whose law (linear, quadratic, logarithmic, hyperbolic) and direction
(up/down) differ between neighbouring slots. `c3s.positioning.sound` finds a phone from what it
records of them.

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
from scipy.signal import chirp, fftconvolve

SWEEP_LAWS = ("linear", "quadratic", "logarithmic", "hyperbolic")
MIN_SPEAKERS = 4  # x, y and the clock offset need three differences, so four speakers


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


def chirp_template(schedule: ChirpSchedule, speaker: int, sample_rate: int) -> np.ndarray:
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
    template = chirp_template(schedule, speaker, sample_rate)
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
    spk = speaker_array(speakers, schedule) * metres_per_unit
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
    chirp_power = np.mean(chirp_template(schedule, 0, sample_rate) ** 2)
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


def speaker_array(speakers: Any, schedule: ChirpSchedule) -> np.ndarray:
    """Speaker positions as float64 (K, 2); `ValueError` unless finite and one per speaker."""
    spk = np.asarray(speakers, dtype=np.float64)
    if spk.ndim != 2 or spk.shape[1] != 2 or not np.all(np.isfinite(spk)):
        raise ValueError(f"speakers must be finite positions of shape (K, 2), got {spk.shape}")
    if len(spk) != schedule.n_speakers:
        raise ValueError(f"the schedule has {schedule.n_speakers} speakers, got {len(spk)} positions")
    return spk
