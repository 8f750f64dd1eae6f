"""A room-acoustics simulator for the sound benchmark, independent of the solver.

Impulse responses come from pyroomacoustics (image-source method in a shoebox). Air absorption is
applied once per impulse response for its direct distance (pyroomacoustics' per-image air
absorption costs seconds per phone). In a hall the image sources stop at `max_order`; a diffuse
tail carries the rest of the reverberant energy (the diffuse field's ``16 pi r^2 / R`` times the
direct sound's energy, R the room constant), decaying by 60 dB in T60, built up over 30 ms and
cut 40 dB down, so the simulation stays affordable. The loudspeaker tracks are the
`speaker-K.wav` periods, looped from the schedule's start and delayed per speaker; the phone adds
crowd noise (many talkers modulated at syllable and cheering rates, pink), its clock is off by a
fixed offset and a rate error, its gain control scales the peak, and it saves 16-bit PCM as the
pixel page does.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy import fft
from scipy.ndimage import map_coordinates
from scipy.signal import fftconvolve

from c3s.positioning.sound import Recording, parse_wav, recording_wav
from c3s.positioning.venue_sound import Venue, speaker_period_track

SAMPLE_RATE = 48000
TAIL_DB = 40.0  # the diffuse tail is cut where it has decayed by this much (affordable convolution)
# Air absorption, dB per metre at 20 degrees C and 50 % relative humidity (ISO 9613-1).
_AIR_HZ = np.array([500.0, 1000, 2000, 4000, 8000, 16000])
_AIR_DB_PER_M = np.array([0.0027, 0.0050, 0.0095, 0.029, 0.10, 0.34])


@dataclass(frozen=True)
class Room:
    """A shoebox venue.

    Attributes
    ----------
    size_m : (float, float, float)
    t60_s : float
        Reverberation time of a closed hall (Sabine); ignored when `open_air`.
    open_air : bool
        No roof: the ceiling absorbs everything, walls (the stands) absorb `wall_absorption`.
    max_order : int
        Image-source order; the diffuse tail carries what lies beyond it.
    """

    size_m: tuple[float, float, float]
    t60_s: float = 0.0
    open_air: bool = False
    wall_absorption: float = 0.6
    max_order: int = 6


def impulse_responses(room: Room, speakers: np.ndarray, phone: np.ndarray, seed: int) -> list[np.ndarray]:
    """One impulse response (N_k,) per speaker at `phone`, metres, at 48 kHz."""
    import pyroomacoustics as pra

    if room.open_air:
        absorption = {wall: room.wall_absorption for wall in ("east", "west", "north", "south")}
        materials = {**{k: pra.Material(v) for k, v in absorption.items()},
                     "floor": pra.Material(0.3), "ceiling": pra.Material(1.0)}
    else:
        alpha, _ = pra.inverse_sabine(room.t60_s, list(room.size_m))
        materials = pra.Material(alpha)
    shoebox = pra.ShoeBox(list(room.size_m), fs=SAMPLE_RATE, materials=materials,
                          max_order=room.max_order, air_absorption=False)
    for s in speakers:
        shoebox.add_source(list(s))
    shoebox.add_microphone(list(phone))
    shoebox.compute_rir()
    rng = np.random.default_rng(seed)
    out = []
    for k, s in enumerate(speakers):
        distance = float(np.linalg.norm(s - phone))
        rir = np.asarray(shoebox.rir[0][k], float)
        if not room.open_air:
            rir = _with_tail(rir, room, distance, rng)
        out.append(_air_absorbed(rir, distance))
    return out


def direct_energy(rir: np.ndarray, distance: float) -> tuple[int, float]:
    """Sample index and energy of the direct sound in an impulse response (its first peak, within
    a millisecond of the free-field delay), as pyroomacoustics scaled it."""
    import pyroomacoustics as pra

    expected = int(distance / pra.constants.get("c") * SAMPLE_RATE)
    lo = max(expected - 48, 0)
    peak = lo + int(np.argmax(np.abs(rir[lo:expected + 96])))
    return peak, float(np.sum(rir[max(peak - 40, 0):peak + 40] ** 2))


def _with_tail(rir: np.ndarray, room: Room, distance: float, rng: np.random.Generator) -> np.ndarray:
    x, y, z = room.size_m
    surface, volume = 2 * (x * y + x * z + y * z), x * y * z
    alpha = 0.161 * volume / (room.t60_s * surface)
    direct, direct_e = direct_energy(rir, distance)
    # Diffuse-field energy over direct energy at distance r: 16 pi r^2 / R (room constant R).
    reverberant = direct_e * 16 * math.pi * distance**2 / (surface * alpha / (1 - alpha))
    early = float(np.sum(rir[direct + 40:] ** 2))
    t = np.arange(int(TAIL_DB / 60 * room.t60_s * SAMPLE_RATE)) / SAMPLE_RATE
    shape = np.exp(-6.9 * t / room.t60_s) * (1 - np.exp(-t / 0.03))
    tail = rng.normal(size=t.size) * shape
    tail *= math.sqrt(max(reverberant - early, 0.0) / np.sum(tail**2))
    out = np.zeros(max(rir.size, direct + tail.size))
    out[: rir.size] += rir
    out[direct : direct + tail.size] += tail
    return out


def _air_absorbed(rir: np.ndarray, distance: float) -> np.ndarray:
    n = fft.next_fast_len(rir.size, real=True)
    f = fft.rfftfreq(n, 1 / SAMPLE_RATE)
    db = np.interp(np.log(np.maximum(f, 1.0)), np.log(_AIR_HZ), _AIR_DB_PER_M) * distance
    return fft.irfft(fft.rfft(rir, n) * 10 ** (-db / 20), n)[: rir.size]


def crowd_noise(n: int, rng: np.random.Generator) -> np.ndarray:
    """Crowd noise (n,): 12 talkers, pink, each modulated at about 4 Hz (syllables) and the whole
    swelling at about 0.3 Hz (cheering)."""
    m = fft.next_fast_len(n, real=True)
    f = fft.rfftfreq(m, 1 / SAMPLE_RATE)
    pink = np.where(f > 100, 1 / np.sqrt(np.maximum(f, 1.0)), 0.0)
    t = np.arange(n) / SAMPLE_RATE
    out = np.zeros(n)
    for _ in range(12):
        voice = fft.irfft(fft.rfft(rng.normal(size=m)) * pink, m)[:n]
        rate = rng.uniform(3, 6)
        out += voice * (1.2 + np.sin(2 * np.pi * rate * t + rng.uniform(0, 2 * np.pi))) ** 2
    swell = 1 + 0.5 * np.sin(2 * np.pi * rng.uniform(0.2, 0.4) * t + rng.uniform(0, 2 * np.pi))
    return out * swell


def _band_power(x: np.ndarray, lo_hz: float, hi_hz: float) -> float:
    spectrum = np.abs(fft.rfft(x)) ** 2
    f = fft.rfftfreq(x.size, 1 / SAMPLE_RATE)
    return float(np.sum(spectrum[(f >= lo_hz) & (f <= hi_hz)]) * 2 / x.size**2)


@dataclass(frozen=True)
class Phone:
    """A phone in the venue: where it is and how its clock and microphone are off."""

    position: np.ndarray  # (3,) metres
    clock_offset_ms: float  # phone clock minus server clock
    rate_error_ppm: float
    start_ms: float  # the phone's own (believed server) time of its first sample
    duration_ms: float


def clean_recording(venue: Venue, schedule_start_ms: float, rirs: list[np.ndarray],
                    phone: Phone) -> tuple[np.ndarray, float]:
    """What `phone`'s microphone hears of the looped speaker tracks (n,), on its own clock, and
    the mean (over speakers, in dB) direct chirp power there, linear."""
    true_start_s = (phone.start_ms - phone.clock_offset_ms - schedule_start_ms) / 1000
    n_out = int(phone.duration_ms * SAMPLE_RATE / 1000)
    longest = max(r.size for r in rirs)
    t0 = int(true_start_s * SAMPLE_RATE) - longest - 64  # server samples since the schedule start
    n_in = longest + n_out + 256
    signal = np.zeros(n_in)
    chirp_db = []
    for k, rir in enumerate(rirs):
        track = speaker_period_track(venue, k, SAMPLE_RATE) * 0.5
        delay = int(round(venue.speaker_delay_ms[k] * SAMPLE_RATE / 1000))
        server = t0 - delay + np.arange(n_in)
        played = np.where(server >= 0, track[server % track.size], 0.0)
        signal += fftconvolve(played, rir)[:n_in]
        _, gain2 = direct_energy(rir, float(np.linalg.norm(venue.speakers[k] - phone.position)))
        chirp_db.append(10 * math.log10(gain2 * np.mean(track[track != 0] ** 2)))
    # Phone sample i is taken at server time true_start + i / (rate * (1 + rate error)).
    positions = (true_start_s * SAMPLE_RATE - t0) + np.arange(n_out) / (1 + phone.rate_error_ppm * 1e-6)
    heard = map_coordinates(signal, [positions], order=3, mode="nearest")
    return heard, 10 ** (float(np.mean(chirp_db)) / 10)


def noisy_recording(heard: np.ndarray, chirp_power: float, phone: Phone, *, snr_db: float,
                    band_hz: tuple[float, float], seed: int) -> Recording:
    """`heard` with crowd noise at `snr_db` in the chirp band, gain-controlled, as 16-bit WAV."""
    noise = crowd_noise(heard.size, np.random.default_rng(seed))
    noise *= math.sqrt(chirp_power / 10 ** (snr_db / 10) / _band_power(noise, *band_hz))
    out = heard + noise
    out *= 0.3 / max(float(np.abs(out).max()), 1e-12)
    clip = Recording(out.astype(np.float32), SAMPLE_RATE, phone.start_ms)
    return parse_wav(recording_wav(clip), start_ms=phone.start_ms)
