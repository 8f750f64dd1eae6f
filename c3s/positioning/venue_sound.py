"""Locating a phone in a 3-D venue (an arena, an open-air stadium) by the speakers' chirps.

The chirps, their schedule and the WAV handling are those of `c3s.positioning.sound`; this module
adds what a real venue needs:

- speakers at (x, y, z), each with its own playback delay (PA zones are delay-aligned);
- the phone's height, from the seats' heights where a seat map is known (a phone is held near its
  seat), otherwise solved within the venue's height range;
- the speed of sound solved from the data, held within what the venue's temperature range (and
  humidity, known or bounded) allows;
- the direct path picked as the first significant arrival of each chirp, not its loudest
  reflection, then searched again around the arrival the first fit predicts;
- an uncertainty that accounts for the solved clock, rate, height and speed of sound, and a fix
  whose uncertainty is above half a seat reported as not placed.

Units: positions in metres (the caller converts scene units), times in seconds unless a name says
milliseconds (``_ms``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy import fft
from scipy.optimize import least_squares
from scipy.spatial import cKDTree

from c3s.positioning.sound import (
    ChirpSchedule,
    Recording,
    SoundError,
    check_recording,
    chirp_waveform,
)

MIN_SPEAKERS = 4
CHIRP_MS = 50.0
MIN_SLOT_MS = 600.0
DETECT_RATIO = 8.0  # envelope peak over the speaker's median envelope level to count as heard
EDGE_RATIO = 6.0  # a direct path must stand this far above the median level, too
EDGE_FRACTION = 0.3  # and reach this share of the strongest arrival in its window
ENVELOPE_RATE_HZ = 24000.0  # the analytic correlation is kept at this rate (band 1.5-8.5 kHz)
PHONE_HOLD_SIGMA_M = 0.4  # a phone is held this far above or below its seat's phone height
RATE_PRIOR = 100e-6  # microphone rates are within about 100 ppm
TIMING_FLOOR_M = 0.06  # picks share biases (reflections merged into the peak, air absorption)
DEFAULT_SEAT_WIDTH_M = 0.5


def speed_of_sound(temperature_c: float, humidity_pct: float = 0.0) -> float:
    """Speed of sound in air, m/s, at `temperature_c` and relative humidity `humidity_pct`.

    ``331.3 * sqrt(1 + T / 273.15)`` for dry air, raised by water vapour: about 0.15 times its mole
    fraction (Magnus saturation pressure over 101.325 kPa), +0.35 % at 20 degrees C and 100 %.
    """
    if not (math.isfinite(temperature_c) and -60 <= temperature_c <= 60):
        raise ValueError(f"temperature_c must be within [-60, 60] degrees C, got {temperature_c}")
    if not (math.isfinite(humidity_pct) and 0 <= humidity_pct <= 100):
        raise ValueError(f"humidity_pct must be within [0, 100] %, got {humidity_pct}")
    saturation_kpa = 0.61094 * math.exp(17.625 * temperature_c / (temperature_c + 243.04))
    vapour = humidity_pct / 100 * saturation_kpa / 101.325
    return 331.3 * math.sqrt(1 + temperature_c / 273.15) * (1 + 0.15 * vapour)


@dataclass(frozen=True)
class Venue:
    """What the solver knows of a venue, in metres.

    Attributes
    ----------
    speakers : ndarray, shape (K, 3)
        Speaker positions (x, y, z), metres, in schedule order.
    speaker_delay_ms : ndarray, shape (K,)
        Each speaker's playback delay after its scheduled time (a PA zone's delay alignment).
    temperature_c : (float, float)
        The air temperature's range (min, max); equal ends for a single reading.
    humidity_pct : (float, float)
        Relative humidity range; (0, 100) when unknown.
    seats : ndarray, shape (S, 3), optional
        Where phones can be (x, y, phone height), metres; None when the height must be solved.
    seat_width_m : float
        A fix whose 1-sigma uncertainty exceeds half of it is not placed.
    """

    speakers: np.ndarray
    speaker_delay_ms: np.ndarray
    temperature_c: tuple[float, float] = (20.0, 20.0)
    humidity_pct: tuple[float, float] = (0.0, 100.0)
    seats: np.ndarray | None = None
    seat_width_m: float = DEFAULT_SEAT_WIDTH_M

    def __post_init__(self) -> None:
        spk = np.asarray(self.speakers, dtype=np.float64)
        if spk.ndim != 2 or spk.shape[1] != 3 or not np.all(np.isfinite(spk)):
            raise ValueError(f"speakers must be finite (x, y, z) positions, shape (K, 3); got {spk.shape}")
        if len(spk) < MIN_SPEAKERS:
            raise ValueError(f"a venue needs at least {MIN_SPEAKERS} speakers, got {len(spk)}")
        delay = np.asarray(self.speaker_delay_ms, dtype=np.float64).reshape(-1)
        if delay.shape != (len(spk),) or not np.all(np.isfinite(delay)) or np.any(np.abs(delay) > 2000):
            raise ValueError(f"speaker_delay_ms must hold one finite delay within +-2000 ms per speaker "
                             f"({len(spk)}), got {delay.tolist()}")
        low, high = (float(v) for v in self.temperature_c)
        if not low <= high:
            raise ValueError(f"the temperature range must be [min, max], got [{low}, {high}]")
        speed_of_sound(low), speed_of_sound(high)
        h_low, h_high = (float(v) for v in self.humidity_pct)
        if not 0 <= h_low <= h_high <= 100:
            raise ValueError(f"the humidity range must be within [0, 100] %, got [{h_low}, {h_high}]")
        seats = None
        if self.seats is not None:
            seats = np.asarray(self.seats, dtype=np.float64)
            if seats.ndim != 2 or seats.shape[1] != 3 or len(seats) == 0 or not np.all(np.isfinite(seats)):
                raise ValueError(f"seats must be finite (x, y, z) positions, shape (S, 3); got {seats.shape}")
        if not (math.isfinite(self.seat_width_m) and self.seat_width_m > 0):
            raise ValueError(f"seat_width_m must be positive, got {self.seat_width_m}")
        object.__setattr__(self, "speakers", spk)
        object.__setattr__(self, "speaker_delay_ms", delay)
        object.__setattr__(self, "temperature_c", (low, high))
        object.__setattr__(self, "humidity_pct", (h_low, h_high))
        object.__setattr__(self, "seats", seats)

    @property
    def speed_range(self) -> tuple[float, float]:
        """Slowest and fastest speed of sound the temperature and humidity ranges allow, m/s."""
        return (speed_of_sound(self.temperature_c[0], self.humidity_pct[0]),
                speed_of_sound(self.temperature_c[1], self.humidity_pct[1]))

    def bounds(self) -> tuple[np.ndarray, np.ndarray]:
        """Box (3,) low, (3,) high where phones can be: the seats, or the speakers' footprint."""
        points = self.seats if self.seats is not None else self.speakers
        low = points.min(axis=0) - (1.0 if self.seats is not None else 5.0)
        high = points.max(axis=0) + (1.0 if self.seats is not None else 5.0)
        if self.seats is None:
            low[2], high[2] = 0.0, max(float(self.speakers[:, 2].max()), 3.0)
        return low, high


def venue_slot_ms(venue: Venue) -> float:
    """A slot holds the chirp, the longest travel-time spread and the delays' spread, in 100 ms."""
    low, high = venue.bounds()
    corners = np.array(np.meshgrid(*zip(low, high, strict=True))).reshape(3, -1).T
    reach = np.hypot.reduce(venue.speakers[:, None] - corners[None], axis=2).max()
    spread_ms = float(np.ptp(venue.speaker_delay_ms))
    need_ms = CHIRP_MS + (reach + 10) / venue.speed_range[0] * 1000 + spread_ms + 100
    return max(MIN_SLOT_MS, math.ceil(need_ms / 100) * 100)


def venue_schedule(venue: Venue, start_ms: float, repeats: int = 1) -> ChirpSchedule:
    """The venue's chirp schedule from `start_ms` (a period boundary), `repeats` periods long."""
    return ChirpSchedule(len(venue.speakers), start_ms=float(start_ms), slot_ms=venue_slot_ms(venue),
                         chirp_ms=CHIRP_MS, repeats=repeats)


def schedule_around(venue: Venue, origin_ms: float, start_ms: float, duration_ms: float,
                    max_clock_offset_ms: float) -> ChirpSchedule:
    """Every chirp that can be heard in a clip from `start_ms` lasting `duration_ms`, for a
    schedule looped from `origin_ms` on."""
    period = venue_schedule(venue, 0.0).period_ms
    lead = max_clock_offset_ms + float(np.max(np.abs(venue.speaker_delay_ms)))
    first = origin_ms + math.floor((start_ms - lead - period - origin_ms) / period) * period
    repeats = math.ceil((start_ms + duration_ms + lead - first) / period) + 1
    return venue_schedule(venue, first, repeats)


def speaker_period_track(venue: Venue, speaker: int, sample_rate: int = 48000) -> np.ndarray:
    """Speaker's chirp in its slot of one period, float64 (N,): the file it loops from the
    schedule's start on."""
    schedule = venue_schedule(venue, 0.0)
    if not 0 <= speaker < schedule.n_speakers:
        raise ValueError(f"speaker must be within [0, {schedule.n_speakers}), got {speaker}")
    track = np.zeros(int(round(schedule.period_ms * sample_rate / 1000)))
    start = int(round(speaker * schedule.slot_ms * sample_rate / 1000))
    n = int(round(schedule.chirp_ms * sample_rate / 1000))
    track[start:start + n] = chirp_waveform(schedule, speaker, np.arange(n) / sample_rate)
    return track


# ----------------------------------------------------------------------------------- arrivals


@dataclass(frozen=True)
class _Envelopes:
    """Per speaker, the analytic matched-filter output at `rate` Hz from lag 0 of the clip."""

    env: list[np.ndarray]
    floor: np.ndarray  # (K,) median envelope level
    rate: float


def _envelopes(samples: np.ndarray, schedule: ChirpSchedule, sample_rate: int) -> _Envelopes:
    """One forward FFT of the clip, then per speaker one short inverse FFT of the chirp band only
    (the analytic correlation shifted to baseband): a fast length, a fraction of the work."""
    n = int(round(schedule.chirp_ms * sample_rate / 1000))
    if n >= len(samples):
        raise SoundError("the recording is shorter than one chirp")
    n_fft = fft.next_fast_len(len(samples), real=True)
    spectrum = fft.rfft(samples, n_fft)
    bin_hz = sample_rate / n_fft
    i0 = max(int((schedule.f_lo_hz - 500) / bin_hz), 0)
    i1 = min(int((schedule.f_hi_hz + 500) / bin_hz) + 1, len(spectrum))
    m = fft.next_fast_len(max(int(n_fft * ENVELOPE_RATE_HZ / sample_rate), i1 - i0 + 1))
    rate = sample_rate * m / n_fft
    valid = int((len(samples) - n) * m / n_fft) + 1
    t = np.arange(n) / sample_rate
    env = []
    for k in range(schedule.n_speakers):
        template = fft.rfft(chirp_waveform(schedule, k, t), n_fft)
        band = np.zeros(m, complex)
        band[: i1 - i0] = spectrum[i0:i1] * np.conj(template[i0:i1])
        env.append(np.abs(fft.ifft(band))[:valid] * (2 * m / n_fft))
    floor = np.array([float(np.median(e)) + 1e-15 for e in env])
    return _Envelopes(env, floor, rate)


def _pick(env: np.ndarray, floor: float, lo: int, hi: int) -> float | None:
    """Index (fractional) of the first significant arrival in env[lo:hi], or None if none.

    The direct sound comes first: the first sample above both a share of the window's strongest
    arrival and a margin over the noise, climbed to its local maximum, then a parabola through
    the log envelope."""
    lo, hi = max(lo, 1), min(hi, env.size - 1)
    if hi - lo < 3:
        return None
    window = env[lo:hi]
    top = float(window.max())
    if top < DETECT_RATIO * floor:
        return None
    i = int(np.argmax(window >= max(EDGE_FRACTION * top, EDGE_RATIO * floor)))
    while i + 1 < window.size and window[i + 1] >= window[i]:
        i += 1
    j = lo + i
    a, b, c = np.log(env[j - 1 : j + 2] + 1e-30)
    denom = a - 2 * b + c
    return j + (0.5 * (a - c) / denom if denom < 0 else 0.0)


@dataclass(frozen=True)
class _Arrivals:
    speaker: np.ndarray  # (A,) int
    emitted_s: np.ndarray  # (A,) server time of emission plus the speaker's delay, from clip start
    arrival_s: np.ndarray  # (A,) measured arrival, seconds of phone samples from sample 0

    def subset(self, keep: np.ndarray) -> _Arrivals:
        return _Arrivals(self.speaker[keep], self.emitted_s[keep], self.arrival_s[keep])


def _emissions(venue: Venue, schedule: ChirpSchedule, recording: Recording,
               n_lags: int, rate: float, max_offset_s: float) -> tuple[np.ndarray, np.ndarray]:
    ks, times = schedule.emissions()
    emitted = (times - recording.start_ms + venue.speaker_delay_ms[ks]) / 1000
    reach = _reach_s(venue)
    inside = (emitted + max_offset_s + reach[ks] > 0) & ((emitted - max_offset_s) * rate < n_lags)
    if not inside.any():
        raise SoundError(
            f"the recording ({n_lags / rate:.1f} s from {recording.start_ms:.0f} ms) does not cover "
            f"a chirp of the schedule ({schedule.start_ms:.0f} ms to "
            f"{schedule.start_ms + schedule.repeats * schedule.period_ms:.0f} ms); check the phone's "
            "clock sync and record for the whole period")
    return ks[inside], emitted[inside]


def _reach_s(venue: Venue) -> np.ndarray:
    """Per speaker, the longest travel time to anywhere a phone can be (K,), seconds."""
    low, high = venue.bounds()
    corners = np.array(np.meshgrid(*zip(low, high, strict=True))).reshape(3, -1).T
    return np.hypot.reduce(venue.speakers[:, None] - corners[None], axis=2).max(axis=1) / venue.speed_range[0]


def _coarse_offset(envs: _Envelopes, ks: np.ndarray, emitted: np.ndarray, reach_s: np.ndarray,
                   max_offset_s: float) -> float:
    """The clock offset (s, 1 ms grid) under which the chirps' windows hold the most energy."""
    from scipy.ndimage import maximum_filter1d

    grid = np.arange(-max_offset_s, max_offset_s + 1e-9, 0.001)
    score = np.zeros(grid.size)
    for k in np.unique(ks):
        width = max(int(reach_s[k] * envs.rate), 1)
        windowed = maximum_filter1d(envs.env[k], size=width, origin=-(width // 2), mode="nearest")
        for e in emitted[ks == k]:
            idx = np.clip(((e + grid) * envs.rate).astype(int), 0, len(windowed) - 1)
            score += np.log(windowed[idx] / envs.floor[k])
    return float(grid[np.argmax(score)])


def _first_arrivals(envs: _Envelopes, ks: np.ndarray, emitted: np.ndarray, offset: float,
                    reach_s: np.ndarray) -> _Arrivals:
    found = []
    for k, e in zip(ks, emitted, strict=True):
        lo = int((e + offset - 0.005) * envs.rate)
        hi = int((e + offset + reach_s[k] + 0.005) * envs.rate)
        lag = _pick(envs.env[k], envs.floor[k], lo, hi)
        if lag is not None:
            found.append((k, e, lag / envs.rate))
    return _arrivals(found)


def _arrivals(found: list[tuple[int, float, float]]) -> _Arrivals:
    if not found:
        return _Arrivals(np.zeros(0, int), np.zeros(0), np.zeros(0))
    k, e, t = zip(*found, strict=True)
    return _Arrivals(np.array(k, int), np.array(e), np.array(t))


def _arrivals_near(envs: _Envelopes, ks: np.ndarray, emitted: np.ndarray,
                   predicted_s: np.ndarray, guard_s: float) -> _Arrivals:
    """The first significant arrival within `guard_s` of each predicted arrival."""
    found = []
    for k, e, p in zip(ks, emitted, predicted_s, strict=True):
        lag = _pick(envs.env[k], envs.floor[k], int((p - guard_s) * envs.rate),
                    int((p + guard_s) * envs.rate) + 2)
        if lag is not None:
            found.append((k, e, lag / envs.rate))
    return _arrivals(found)


# ------------------------------------------------------------------------------------- solver


@dataclass(frozen=True)
class VenueFix:
    """A phone's position found from chirps in a 3-D venue.

    Attributes
    ----------
    x, y, z : float
        Metres, in the venue's frame (z up).
    uncertainty_m : float
        1-sigma radius of the horizontal position, metres, with the clock offset, rate error,
        height and speed of sound solved alongside accounted for.
    uncertainty_z_m : float
        1-sigma of the height, metres.
    placed : bool
        False when `uncertainty_m` exceeds half a seat: the fix must not be snapped or counted.
    chirps_heard, speakers_heard : int
    residual_ms : float
        RMS of the arrival-time residuals.
    clock_offset_ms : float
        Phone clock minus server clock (plus the sound system's common latency).
    sample_rate_error_ppm : float
    speed_of_sound_m_s : float
        As solved, within the venue's temperature and humidity bounds.
    """

    x: float
    y: float
    z: float
    uncertainty_m: float
    uncertainty_z_m: float
    placed: bool
    chirps_heard: int
    speakers_heard: int
    residual_ms: float
    clock_offset_ms: float
    sample_rate_error_ppm: float
    speed_of_sound_m_s: float


class _Height:
    """The phone height a seat map gives at (x, y): a Gaussian-weighted mean of the nearest seats'
    heights (smooth, so the least squares can follow it across tier steps)."""

    def __init__(self, seats: np.ndarray):
        self.tree = cKDTree(seats[:, :2])
        self.z = seats[:, 2]
        self.k = min(8, len(seats))

    def __call__(self, x: float, y: float) -> float:
        d, i = self.tree.query((x, y), k=self.k)
        w = np.exp(-0.5 * (np.atleast_1d(d) - np.min(d)) ** 2) + 1e-12
        return float(np.sum(w * self.z[np.atleast_1d(i)]) / np.sum(w))


@dataclass
class _Problem:
    venue: Venue
    height: _Height | None
    c0: float
    sigma_c: float
    c_bounds: tuple[float, float]
    z_bounds: tuple[float, float]

    @classmethod
    def of(cls, venue: Venue) -> _Problem:
        c_lo, c_hi = venue.speed_range
        c0 = (c_lo + c_hi) / 2
        # A single reading may be a few degrees off (sun, crowd heat): 3 degrees C is 1.8 m/s.
        sigma_c = max((c_hi - c_lo) / 2, 1.8)
        margin = 6.0 if c_hi > c_lo else 9.0  # 10 or 15 degrees C beyond the range
        low, high = venue.bounds()
        height = _Height(venue.seats) if venue.seats is not None else None
        return cls(venue, height, c0, sigma_c, (c_lo - margin, c_hi + margin),
                   (float(low[2]) - 1.0, float(high[2]) + 1.0))

    def predict(self, theta: np.ndarray, speaker: np.ndarray, emitted_s: np.ndarray) -> np.ndarray:
        x, y, z, offset, rate_error, c = theta
        d = np.hypot.reduce(self.venue.speakers[speaker] - (x, y, z), axis=1)
        return (emitted_s + d / c + offset) * (1 + rate_error)

    def residuals(self, theta: np.ndarray, arr: _Arrivals, sigma_t: float) -> np.ndarray:
        timing = (arr.arrival_s - self.predict(theta, arr.speaker, arr.emitted_s)) * self.c0 / sigma_t
        if self.height is not None:
            z_prior = (theta[2] - self.height(theta[0], theta[1])) / PHONE_HOLD_SIGMA_M
        else:
            z_prior = (theta[2] - np.mean(self.z_bounds)) / np.ptp(self.z_bounds)
        return np.append(timing, [theta[4] / RATE_PRIOR, (theta[5] - self.c0) / self.sigma_c, z_prior])

    def fit(self, arr: _Arrivals, sigma_t: float, starts: list[np.ndarray], robust: bool):
        lower = [-np.inf, -np.inf, self.z_bounds[0], -np.inf, -1e-3, self.c_bounds[0]]
        upper = [np.inf, np.inf, self.z_bounds[1], np.inf, 1e-3, self.c_bounds[1]]
        best = None
        for start in starts:
            result = least_squares(
                self.residuals, start, args=(arr, sigma_t), bounds=(lower, upper),
                x_scale=[10, 10, 1, 0.03, 1e-4, 1], loss="soft_l1" if robust else "linear",
                f_scale=3.0,
            )
            if best is None or result.cost < best.cost:
                best = result
        return best

    def starts(self, arr: _Arrivals) -> list[np.ndarray]:
        low, high = self.venue.bounds()
        centre, half = (low + high) / 2, (high - low) / 4
        out = []
        for sx, sy in ((0, 0), (1, 1), (1, -1), (-1, 1), (-1, -1)):
            x, y = centre[0] + sx * half[0], centre[1] + sy * half[1]
            z = self.height(x, y) if self.height is not None else float(np.mean(self.z_bounds))
            z = float(np.clip(z, self.z_bounds[0] + 1e-3, self.z_bounds[1] - 1e-3))
            d = np.hypot.reduce(self.venue.speakers[arr.speaker] - (x, y, z), axis=1)
            offset = float(np.median(arr.arrival_s - arr.emitted_s - d / self.c0))
            out.append(np.array([x, y, z, offset, 0.0, self.c0]))
        return out


def _solve(problem: _Problem, arr: _Arrivals, starts: list[np.ndarray]):
    """Robust fit, outliers dropped, the timing noise estimated, then a plain weighted fit.

    Returns (theta, covariance, sigma_t_m, arrivals used)."""
    result = problem.fit(arr, 0.05, starts, robust=True)
    timing = (arr.arrival_s - problem.predict(result.x, arr.speaker, arr.emitted_s)) * problem.c0
    spread = 1.4826 * float(np.median(np.abs(timing - np.median(timing))))
    keep = np.abs(timing) <= max(4 * spread, 0.15)
    if not keep.all() and len(np.unique(arr.speaker[keep])) >= MIN_SPEAKERS and keep.sum() >= 6:
        arr = arr.subset(keep)
    sigma_t = 0.05
    for _ in range(2):
        result = problem.fit(arr, sigma_t, [result.x], robust=False)
        timing = (arr.arrival_s - problem.predict(result.x, arr.speaker, arr.emitted_s)) * problem.c0
        dof = max(len(timing) - 4, 1)
        # Pooled with two pseudo-observations at 5 cm, so a lucky tiny residual on few
        # arrivals does not claim millimetres.
        sigma_t = max(math.sqrt((np.sum(timing**2) + 2 * 0.08**2) / (dof + 2)), TIMING_FLOOR_M)
    try:
        cov = np.linalg.inv(result.jac.T @ result.jac)
    except np.linalg.LinAlgError:
        cov = np.full((6, 6), np.inf)
    return result.x, cov, sigma_t, arr


def locate_in_venue(recording: Recording, venue: Venue, schedule: ChirpSchedule, *,
                    max_clock_offset_ms: float = 250.0) -> VenueFix:
    """Position (x, y, z, metres) of the phone that made `recording` in `venue`.

    Matched filtering gives each chirp's first significant arrival; the common clock offset is
    found coarsely by the offset that best explains all chirps at once; a robust least-squares fit
    solves x, y, z, the clock offset, the microphone's rate error and the speed of sound (held
    near the venue's range), drops gross outliers, then every chirp is searched again within
    3 ms of the arrival that fit predicts and the whole is solved again.

    Raises
    ------
    SoundError
        Bad audio, a clip that misses the schedule, chirps from fewer than four speakers, or
        arrivals that agree on no position.
    """
    if schedule.n_speakers != len(venue.speakers):
        raise ValueError(f"the schedule has {schedule.n_speakers} speakers, the venue {len(venue.speakers)}")
    samples = check_recording(recording, schedule)
    envs = _envelopes(samples, schedule, recording.sample_rate)
    max_offset_s = max_clock_offset_ms / 1000
    ks, emitted = _emissions(venue, schedule, recording, len(envs.env[0]), envs.rate, max_offset_s)
    reach = _reach_s(venue)
    offset = _coarse_offset(envs, ks, emitted, reach, max_offset_s)
    arr = _first_arrivals(envs, ks, emitted, offset, reach)
    _require_speakers(arr)
    problem = _Problem.of(venue)
    theta, cov, sigma_t, used = _solve(problem, arr, problem.starts(arr))
    again = _arrivals_near(envs, ks, emitted, problem.predict(theta, ks, emitted), 0.003)
    if len(np.unique(again.speaker)) >= MIN_SPEAKERS:
        theta, cov, sigma_t, used = _solve(problem, again, [theta])
    return _fix(problem, theta, cov, sigma_t, used)


def _require_speakers(arr: _Arrivals) -> None:
    heard = np.unique(arr.speaker)
    if len(heard) < MIN_SPEAKERS:
        raise SoundError(
            f"heard chirps from {len(heard)} speaker(s) (need at least {MIN_SPEAKERS}): "
            f"{', '.join(str(k) for k in heard) or 'none'}; record again away from noise, hold the "
            "phone up, or ask for the volume to be raised")


def _fix(problem: _Problem, theta: np.ndarray, cov: np.ndarray, sigma_t: float,
         arr: _Arrivals) -> VenueFix:
    venue = problem.venue
    horizontal = float(cov[0, 0] + cov[1, 1])
    uncertainty = math.sqrt(horizontal) if np.isfinite(horizontal) and horizontal > 0 else math.inf
    low, high = venue.bounds()
    outside = np.max(np.maximum(low[:2] - theta[:2], theta[:2] - high[:2]))
    if not np.isfinite(uncertainty) or outside > 10:
        raise SoundError("the chirp arrivals agree on no position inside the venue; record again")
    timing = (arr.arrival_s - problem.predict(theta, arr.speaker, arr.emitted_s)) * problem.c0
    return VenueFix(
        x=float(theta[0]), y=float(theta[1]), z=float(theta[2]),
        uncertainty_m=uncertainty,
        uncertainty_z_m=math.sqrt(max(float(cov[2, 2]), 0.0)),
        placed=bool(uncertainty <= venue.seat_width_m / 2),
        chirps_heard=int(len(arr.speaker)),
        speakers_heard=int(len(np.unique(arr.speaker))),
        residual_ms=float(np.sqrt(np.mean(timing**2)) / problem.c0 * 1000),
        clock_offset_ms=float(theta[3] * 1000),
        sample_rate_error_ppm=float(theta[4] * 1e6),
        speed_of_sound_m_s=float(theta[5]),
    )


def venue_from_json(raw: Any, *, metres_per_unit: float = 1.0) -> Venue:
    """A `Venue` from the VENUE.json object (scene units scaled by `metres_per_unit`).

    Raises `ValueError` naming the key that is missing or wrong."""
    if not isinstance(raw, dict):
        raise ValueError('VENUE.json must hold one JSON object {"units": "m", "speakers": [...], ...}')
    for key in ("speakers", "schedule_start_ms", "temperature_c"):
        if key not in raw:
            raise ValueError(f"VENUE.json has no {key!r}")
    speakers = _points(raw["speakers"], "speakers") * metres_per_unit
    delay = raw.get("speaker_delay_ms", [0.0] * len(speakers))
    temperature = raw["temperature_c"]
    temperature = (temperature, temperature) if _number(temperature) else temperature
    humidity = raw.get("humidity_pct", [0.0, 100.0])
    humidity = (humidity, humidity) if _number(humidity) else humidity
    for key, pair in (("temperature_c", temperature), ("humidity_pct", humidity)):
        if not (isinstance(pair, list | tuple) and len(pair) == 2 and all(map(_number, pair))):
            raise ValueError(f"{key} must be a number or a [min, max] pair of numbers")
    if not (isinstance(delay, list) and all(map(_number, delay))):
        raise ValueError("speaker_delay_ms must be a list of numbers, one per speaker")
    seats = raw.get("seats")
    return Venue(
        speakers=speakers, speaker_delay_ms=np.array(delay, float),
        temperature_c=tuple(temperature), humidity_pct=tuple(humidity),
        seats=None if seats is None else _points(seats, "seats") * metres_per_unit,
        seat_width_m=float(raw.get("seat_width_m", DEFAULT_SEAT_WIDTH_M)),
    )


def _number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def _points(value: Any, key: str) -> np.ndarray:
    if not (isinstance(value, list) and value and all(
            isinstance(p, list) and len(p) == 3 and all(map(_number, p)) for p in value)):
        raise ValueError(f"{key} must be a non-empty list of [x, y, z] triples of numbers")
    return np.array(value, float)
