"""Seeded synthetic video of a stand of phones playing blink patterns, with ground truth.

The world it models:

- **Phones** each have their own brightness, white balance and timing. A phone's clock is off the
  server clock by a normal error (``clock_error_ms`` is its sigma), so it starts each slot that
  much late (or early); its display then shows the change after a latency drawn uniformly from
  ``latency_ms`` (40-70 ms by default, as measured on phone models), and a channel turning on
  (black to white) lags differently from one turning off (white to black): the two latencies
  differ by up to ``rise_fall_ms`` (15 ms), per phone. A phone's *light-output offset*
  (:attr:`SynthClip.offset_ms`) is its clock error plus the mean of its two latencies: when its
  light changes, relative to the server clock, positive = late.
- **The camera** has its own frame rate (with timing jitter), starts at a random moment of the
  server clock, drifts like a hand-held phone, blurs and adds noise. Its rolling shutter starts
  exposing row ``y`` of a frame ``readout_ms * y / height`` after the top row; every pixel
  integrates the light over ``exposure_ms`` from its row's start (a frame whose exposure spans a
  colour change records a blend).
- **The scene**: a few per cent of phones are hidden for part of the clip; distractors (flashing
  lamps, screens cycling colours, steady lights and screens playing a random code with a correct
  sync marker) are mixed in.

Frames are BGR uint8 (OpenCV order) and are rendered lazily, so a 4K clip of 10,000 phones never
sits in memory. :attr:`SynthClip.server_timestamps_ms` are the frames' times on the server clock
(the top row's exposure start), the timestamps a decoder needs to measure each phone's offset.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field

import cv2
import numpy as np
from scipy.special import erf

from c3s.vision.blink import N_NUMBERS, N_SLOTS, SLOT_MS, pattern_bits

DISTRACTOR_KINDS = ("lamp", "screen", "steady", "random_code")


@dataclass(frozen=True)
class SynthClip:
    """A rendered-on-demand clip and its ground truth.

    Attributes
    ----------
    numbers : np.ndarray, shape (n,), int64
        Pixel number of each phone.
    xy : np.ndarray, shape (n, 2), float64
        True image position (x, y in pixels, pixel centres at integers) of each phone's screen
        centre in the first frame.
    occluded : np.ndarray, shape (n,), bool
        Phones hidden for part of the clip.
    occlusion_ms : np.ndarray, shape (n, 2)
        Hidden interval (camera clock, ms) of each phone; (inf, inf) if never hidden.
    distractor_xy : np.ndarray, shape (m, 2)
        First-frame positions of distractors.
    distractor_kind : tuple of str
        One of ``DISTRACTOR_KINDS`` per distractor.
    timestamps_ms : np.ndarray, shape (frames,)
        Camera timestamps of the frames (ms, first frame at 0, with jitter): when the top row of
        each frame starts its exposure.
    offset_ms : np.ndarray, shape (n,), float64
        Each phone's true light-output offset (ms, positive = late): clock error plus the mean
        of its rise (black to white) and fall (white to black) display latencies.
    server_start_ms : float
        Server-clock time (Unix ms) of the first frame's top-row exposure start.
    readout_ms : float
        Rolling-shutter readout: the bottom row starts exposing this long after the top row.
    exposure_ms : float
        Exposure (integration) time of every pixel.
    """

    width: int
    height: int
    fps: float
    numbers: np.ndarray
    xy: np.ndarray
    occluded: np.ndarray
    occlusion_ms: np.ndarray
    distractor_xy: np.ndarray
    distractor_kind: tuple
    timestamps_ms: np.ndarray
    params: dict = field(repr=False)
    offset_ms: np.ndarray = field(repr=False)
    server_start_ms: float
    readout_ms: float
    exposure_ms: float

    @property
    def duration_s(self) -> float:
        return len(self.timestamps_ms) / self.fps

    @property
    def server_timestamps_ms(self) -> np.ndarray:
        """Server-clock times (Unix ms, float64) of each frame's top-row exposure start."""
        return self.server_start_ms + self.timestamps_ms

    def frames(self) -> Iterator[np.ndarray]:
        """Render the frames lazily, one (height, width, 3) BGR uint8 array at a time.

        Rendering is deterministic: calling this twice yields the same frames.
        """
        return _render(self)


def _layout(rng, n_cells: int, width: int, height: int):
    margin = 12
    aw, ah = width - 2 * margin, height - 2 * margin
    cols = int(np.ceil(np.sqrt(n_cells * aw / ah)))
    rows = int(np.ceil(n_cells / cols))
    sx, sy = aw / cols, ah / rows
    cells = rng.permutation(rows * cols)[:n_cells]
    r, c = np.divmod(cells, cols)
    x = margin + (c + 0.5) * sx + rng.uniform(-0.15, 0.15, n_cells) * sx
    y = margin + (r + 0.5) * sy + rng.uniform(-0.15, 0.15, n_cells) * sy
    return np.stack([x, y], axis=1), sx, sy


def make_clip(
    n_phones: int = 200,
    *,
    width: int = 1280,
    height: int = 720,
    fps: float = 30.0,
    duration_ms: float = 1500.0,
    seed: int = 0,
    jitter_ms: float = 1.5,
    exposure_ms: float | None = None,
    n_distractors: int | None = None,
    occluded_fraction: float = 0.05,
    occlusion_range_ms: tuple[float, float] = (100.0, 300.0),
    drift_px_per_s: float = 3.0,
    noise_sigma: float = 2.5,
    blur_sigma: float = 0.7,
    clock_error_ms: float = 4.0,
    latency_ms: tuple[float, float] = (40.0, 70.0),
    rise_fall_ms: float = 15.0,
    readout_ms: float | None = None,
    jpeg_quality: int | None = None,
    numbers: np.ndarray | None = None,
    xy: np.ndarray | None = None,
) -> SynthClip:
    """Draw a stand of ``n_phones`` phones (distinct random numbers) and a camera; see module doc.

    Parameters
    ----------
    n_phones : int
        Phones in view (1 .. 100,000).
    width, height : int
        Frame size in pixels.
    fps : float
        Nominal camera frame rate (24..60 typical); ``jitter_ms`` is the standard deviation of
        each frame's capture time around the nominal grid.
    duration_ms : float
        Clip length.
    exposure_ms : float, optional
        Exposure per pixel (ms, at most the frame interval); default random between 30 % and
        100 % of the frame interval.
    n_distractors : int, optional
        Default: 2 % of the phones plus 8, cycling through ``DISTRACTOR_KINDS``.
    occluded_fraction : float
        Share of phones hidden once, for a random interval of ``occlusion_range_ms``.
    drift_px_per_s : float
        Speed of the camera's slow drift (pixels per second, plus a small wobble).
    noise_sigma : float
        Sensor noise (8-bit levels, Gaussian).
    blur_sigma : float
        Optical blur (Gaussian sigma, pixels).
    clock_error_ms : float
        Standard deviation (ms) of each phone's error in following the server clock (normal;
        positive = late).
    latency_ms : (float, float)
        Range (ms) of the phones' mean display latency, drawn uniformly per phone.
    rise_fall_ms : float
        Largest difference (ms) between a phone's black-to-white and white-to-black latencies;
        the difference is drawn uniformly from [-rise_fall_ms, rise_fall_ms] per phone.
    readout_ms : float, optional
        Rolling-shutter readout time (ms, at most the frame interval): row ``y`` starts exposing
        ``readout_ms * y / height`` after the top row (0 = global shutter). Default 20 ms, or the
        frame interval if shorter.
    jpeg_quality : int, optional
        If given, every frame goes through JPEG at this quality (compression artefacts).
    numbers : np.ndarray, shape (n_phones,), optional
        The phones' pixel numbers (distinct, 0 .. ``N_NUMBERS`` - 1) instead of random ones.
    xy : np.ndarray, shape (n_phones, 2), optional
        Where the phones are (image pixels, first frame before drift) instead of a random grid,
        e.g. a stand seen through a camera; at least 12 pixels inside the frame. Phone size
        follows their median spacing; distractors go where no phone is within that spacing
        (fewer of them when the frame has no room). Without ``numbers`` and ``xy`` the clip is
        the same as before they existed.
    """
    _check_clip(n_phones, width, height, fps)
    readout_ms = min(20.0, 1000.0 / fps) if readout_ms is None else readout_ms
    _check_timing(fps, exposure_ms, clock_error_ms, latency_ms, rise_fall_ms, readout_ms)
    rng = np.random.default_rng(seed)
    n_distractors = int(0.02 * n_phones) + 8 if n_distractors is None else n_distractors
    frame_ms = 1000.0 / fps
    times = _frame_times(rng, int(np.floor(duration_ms * fps / 1000.0)), frame_ms, jitter_ms)
    exposure = exposure_ms if exposure_ms is not None else rng.uniform(0.3, 1.0) * frame_ms
    positions, sx, sy = _layout(rng, n_phones + n_distractors, width, height)
    if xy is not None:
        positions, sx, sy = _given_layout(rng, xy, n_phones, n_distractors, width, height)
        n_distractors = len(positions) - n_phones
    drawn = rng.choice(N_NUMBERS, size=n_phones, replace=False).astype(np.int64)
    numbers = drawn if numbers is None else _check_numbers(numbers, n_phones)
    occluded, occ = _occlusions(rng, n_phones, occluded_fraction, occlusion_range_ms,
                                times[-1] + frame_ms)
    params = _world(rng, n_phones, n_distractors, seed=seed, exposure=exposure,
                    drift_px_per_s=drift_px_per_s, spacing=(sx, sy), noise_sigma=noise_sigma,
                    blur_sigma=blur_sigma, jpeg_quality=jpeg_quality,
                    clock_error_ms=clock_error_ms, readout_ms=readout_ms,
                    latency_ms=latency_ms, rise_fall_ms=rise_fall_ms)
    kinds = tuple(DISTRACTOR_KINDS[i % len(DISTRACTOR_KINDS)] for i in range(n_distractors))
    return SynthClip(
        width=width,
        height=height,
        fps=float(fps),
        numbers=numbers,
        xy=positions[:n_phones] + _drift(params, 0.0),
        occluded=occluded,
        occlusion_ms=occ,
        distractor_xy=positions[n_phones:] + _drift(params, 0.0),
        distractor_kind=kinds,
        timestamps_ms=times,
        params={**params, "base_xy": positions},
        offset_ms=params["clock_error_ms"] + params["latency_ms"],
        server_start_ms=float(params["server_start_ms"]),
        readout_ms=float(readout_ms),
        exposure_ms=float(exposure),
    )


def _check_clip(n_phones: int, width: int, height: int, fps: float) -> None:
    if not 1 <= n_phones <= 100_000:
        raise ValueError(f"n_phones must be in 1..100000, got {n_phones}")
    if width < 64 or height < 64:
        raise ValueError("frames must be at least 64 x 64 pixels")
    if not 1.0 <= fps <= 240.0:
        raise ValueError(f"fps must be in 1..240, got {fps}")


def _frame_times(rng, n_frames: int, frame_ms: float, jitter_ms: float) -> np.ndarray:
    """Camera timestamps: the nominal grid plus jitter, first frame at 0, strictly increasing."""
    times = np.arange(n_frames) * frame_ms + rng.normal(0, jitter_ms, n_frames)
    return np.maximum.accumulate(times - times[0] + np.arange(n_frames) * 1e-3)


def _occlusions(rng, n_phones: int, fraction: float, range_ms: tuple[float, float],
                end_ms: float) -> tuple[np.ndarray, np.ndarray]:
    """Which phones are hidden once, and when (camera ms; (inf, inf) for the others)."""
    occluded = rng.random(n_phones) < fraction
    occ = np.full((n_phones, 2), np.inf)
    length = rng.uniform(*range_ms, n_phones)
    start = rng.uniform(-0.5 * length, end_ms - 0.5 * length)
    occ[occluded] = np.stack([start, start + length], axis=1)[occluded]
    return occluded, occ


def _world(rng, n_phones: int, n_distractors: int, *, seed: int, exposure: float,
           drift_px_per_s: float, spacing: tuple[float, float], noise_sigma: float,
           blur_sigma: float, jpeg_quality: int | None, clock_error_ms: float,
           readout_ms: float, latency_ms: tuple[float, float], rise_fall_ms: float) -> dict:
    """The camera's drift and optics and each light's brightness, colour and timing.

    The draws are made in a fixed order, so a seed gives the same clip.
    """
    sx, sy = spacing
    angle = rng.uniform(0, 2 * np.pi)
    params = {
        "seed": seed,
        "server_start_ms": 1.7e12 + rng.uniform(0, 1e7),
        "exposure_ms": float(exposure),
        "velocity": drift_px_per_s * np.array([np.cos(angle), np.sin(angle)]) / 1000.0,
        "wobble": rng.uniform(0.2, 0.6, 2),
        "wobble_ms": rng.uniform(400, 900),
        "phone_w": float(np.clip(0.12 * sx, 1.5, 4.0)),
        "phone_h": float(np.clip(0.2 * sy, 2.0, 6.0)),
        "noise_sigma": noise_sigma,
        "blur_sigma": blur_sigma,
        "jpeg_quality": jpeg_quality,
        "brightness": rng.uniform(0.35, 1.0, n_phones + n_distractors),
        "white_balance": rng.uniform(0.7, 1.0, (n_phones + n_distractors, 3)),
        "clock_error_ms": rng.normal(0, clock_error_ms, n_phones),
        "distractor_rng_seed": int(rng.integers(2**31)),
        "noise_seed": int(rng.integers(2**31)),
        "readout_ms": float(readout_ms),
    }
    params["latency_ms"] = rng.uniform(latency_ms[0], latency_ms[1], n_phones)
    params["rise_minus_fall_ms"] = rng.uniform(-rise_fall_ms, rise_fall_ms, n_phones)
    return params


def _check_timing(fps, exposure_ms, clock_error_ms, latency_ms, rise_fall_ms, readout_ms) -> None:
    if exposure_ms is not None and not 0.0 < exposure_ms <= 1000.0 / fps:
        raise ValueError(f"exposure_ms must be in (0, {1000.0 / fps:.1f}] (the frame interval)")
    if not 0.0 <= clock_error_ms <= 1000.0:
        raise ValueError(f"clock_error_ms must be in 0..1000, got {clock_error_ms}")
    if len(latency_ms) != 2 or not 0.0 <= latency_ms[0] <= latency_ms[1] <= 1000.0:
        raise ValueError(f"latency_ms must be (low, high) with 0 <= low <= high <= 1000, got {latency_ms}")
    if not 0.0 <= rise_fall_ms < 0.5 * SLOT_MS:
        raise ValueError(f"rise_fall_ms must be in [0, {0.5 * SLOT_MS}), got {rise_fall_ms}")
    if not 0.0 <= readout_ms <= 1000.0 / fps:
        raise ValueError(f"readout_ms must be in 0..{1000.0 / fps:.1f} (the frame interval)")


def _check_numbers(numbers: np.ndarray, n_phones: int) -> np.ndarray:
    numbers = np.asarray(numbers, dtype=np.int64).ravel()
    if len(numbers) != n_phones or len(np.unique(numbers)) != n_phones:
        raise ValueError(f"numbers must be {n_phones} distinct pixel numbers, got {len(numbers)} "
                         f"({len(np.unique(numbers))} distinct)")
    if numbers.min() < 0 or numbers.max() >= N_NUMBERS:
        raise ValueError(f"pixel numbers must be in 0..{N_NUMBERS - 1} to blink, got "
                         f"{numbers.min()}..{numbers.max()}")
    return numbers


def _given_layout(rng, xy: np.ndarray, n_phones: int, n_distractors: int, width: int, height: int):
    """The given phone positions, then distractors in free spots; cell size from the spacing."""
    from scipy.spatial import cKDTree

    xy = np.asarray(xy, dtype=np.float64)
    margin = 12
    if xy.shape != (n_phones, 2) or not np.isfinite(xy).all():
        raise ValueError(f"xy must be a finite ({n_phones}, 2) array, got shape {xy.shape}")
    if (xy.min(axis=0) < margin).any() or xy[:, 0].max() > width - margin or xy[:, 1].max() > height - margin:
        raise ValueError(f"phones must lie at least {margin} pixels inside the {width} x {height} frame")
    tree = cKDTree(xy)
    spacing = float(np.median(tree.query(xy, k=2)[0][:, 1])) if n_phones > 1 else 20.0
    candidates = rng.uniform([margin, margin], [width - margin, height - margin], (20 * n_distractors + 20, 2))
    free = candidates[tree.query(candidates)[0] >= spacing]
    kept: list[np.ndarray] = []
    for point in free:  # distractors must not overlap each other either
        if len(kept) == n_distractors:
            break
        if all(np.hypot(*(point - other)) >= spacing for other in kept):
            kept.append(point)
    return np.concatenate([xy, np.array(kept).reshape(-1, 2)]), spacing, spacing


def _drift(params: dict, t_ms: float) -> np.ndarray:
    wobble = params["wobble"] * np.sin(2 * np.pi * t_ms / params["wobble_ms"] + np.array([0, 1]))
    return params["velocity"] * t_ms + wobble


def _lit_share(bits: np.ndarray, u0: np.ndarray, exposure: float, half_gap: np.ndarray):
    """Share of ``[u0, u0 + exposure]`` each channel of each phone is lit, (n, 3) float.

    ``u0`` (n,) is in each phone's pattern time (server time minus clock error minus mean
    latency, ms). Slot ``k`` shows ``bits[:, k mod 16]``; a channel turning on does so
    ``half_gap`` (n,) after the slot boundary, one turning off ``half_gap`` before it.
    """
    rows = np.arange(len(bits))
    first = np.floor(u0 / SLOT_MS).astype(np.int64) - 1
    h = half_gap[:, None]
    lit = np.zeros((len(bits), 3))
    for slot in (first + j for j in range(4)):  # the slots around each window
        before, now, after = (bits[rows, (slot + d) % N_SLOTS].astype(np.float64) for d in (-1, 0, 1))
        on_at = slot[:, None] * SLOT_MS + h * (now > before)
        off_at = (slot[:, None] + 1) * SLOT_MS - h * (after < now)
        seen = np.minimum(off_at, u0[:, None] + exposure) - np.maximum(on_at, u0[:, None])
        lit += now * np.maximum(seen, 0.0)
    return lit / exposure


def _distractor_bits(clip: SynthClip) -> tuple[np.ndarray, np.ndarray]:
    """Per distractor a long colour sequence (m, L, 3) and its step in ms (m,)."""
    rng = np.random.default_rng(clip.params["distractor_rng_seed"])
    m = len(clip.distractor_kind)
    seq = np.zeros((m, 64, 3), np.uint8)
    step = np.full(m, SLOT_MS)
    palette = np.array([[(c >> 2) & 1, (c >> 1) & 1, c & 1] for c in range(8)], np.uint8)
    for i, kind in enumerate(clip.distractor_kind):
        if kind == "lamp":
            colour = palette[rng.choice([7, 7, 4, 6])]
            seq[i, ::2] = colour
            step[i] = rng.uniform(40.0, 600.0)
        elif kind == "screen":
            seq[i] = palette[rng.integers(0, 8, 64)]
            step[i] = rng.uniform(50.0, 300.0)
        elif kind == "steady":
            seq[i] = palette[rng.choice([7, 6, 3])]
        else:  # random data colours behind a correct marker, on the server clock
            data = palette[rng.choice([1, 2, 3, 4, 5, 6], size=(4, 14))]
            for rep in range(4):
                seq[i, rep * 16] = palette[7]
                seq[i, rep * 16 + 2 : rep * 16 + 16] = data[rep]
    return seq, step


def _footprints(xy: np.ndarray, w: float, h: float, sigma: float, half: int):
    """Blurred-rectangle weights (n, P, P) on integer grids starting at (x0, y0) (n,)."""
    x0 = np.floor(xy[:, 0]).astype(np.int64) - half
    y0 = np.floor(xy[:, 1]).astype(np.int64) - half
    u = np.arange(2 * half + 1)
    s = np.sqrt(2.0) * max(sigma, 0.3)

    def profile(origin, centre, size):
        d = (origin[:, None] + u[None, :]) - centre[:, None]
        return 0.5 * (erf((d + size / 2) / s) - erf((d - size / 2) / s))

    px = profile(x0, xy[:, 0], w)
    py = profile(y0, xy[:, 1], h)
    return py[:, :, None] * px[:, None, :], x0, y0


def _phone_rgb(clip: SynthClip, bits, t_row: np.ndarray, exposure: float):
    """Light each phone sends (n, 3) RGB in 0..1, integrated over its pixels' exposure, which
    starts at camera time ``t_row`` (n,) (the frame time plus the phone's row delay)."""
    p = clip.params
    u0 = p["server_start_ms"] + t_row - p["clock_error_ms"] - p["latency_ms"]
    rgb = _lit_share(bits, u0, exposure, 0.5 * p["rise_minus_fall_ms"])
    lo, hi = clip.occlusion_ms[:, 0], clip.occlusion_ms[:, 1]
    hidden = np.clip((np.minimum(hi, t_row + exposure) - np.maximum(lo, t_row)) / exposure, 0, 1)
    return rgb * (1.0 - hidden)[:, None]


def _distractor_rgb(clip: SynthClip, seq, step, t_cam: np.ndarray):
    server = clip.params["server_start_ms"] + t_cam
    own = t_cam + np.arange(len(seq)) * 37.0  # each flashing light has its own phase
    clock = np.where(np.array([k == "random_code" for k in clip.distractor_kind]), server, own)
    idx = np.floor(clock / step).astype(np.int64) % seq.shape[1]
    return seq[np.arange(len(seq)), idx].astype(np.float32)


def _render(clip: SynthClip) -> Iterator[np.ndarray]:
    p = clip.params
    h, w = clip.height, clip.width
    bits = pattern_bits(clip.numbers)
    seq, step = _distractor_bits(clip)
    nrng = np.random.default_rng(p["noise_seed"])
    pad = 64
    noise = nrng.standard_normal((h + pad, w + pad, 3), dtype=np.float32) * p["noise_sigma"]
    yy = np.linspace(0, 1, h, dtype=np.float32)[:, None, None]
    background = 6.0 + 10.0 * yy * np.ones((1, w, 1), np.float32)  # a dim, uneven stand
    crosstalk = np.array([[0.92, 0.06, 0.02], [0.05, 0.9, 0.05], [0.02, 0.08, 0.9]], np.float32)
    half = int(np.ceil(max(p["phone_w"], p["phone_h"]) / 2 + 2.5 * p["blur_sigma"]))
    gain = (p["brightness"][:, None] * p["white_balance"] * 240.0).astype(np.float32)
    n = len(clip.numbers)
    for f, t_cam in enumerate(clip.timestamps_ms):
        xy = p["base_xy"] + _drift(p, t_cam)
        t_row = t_cam + p["readout_ms"] * np.clip(xy[:, 1], 0, h) / h  # rolling shutter
        colour = np.concatenate(
            [
                _phone_rgb(clip, bits, t_row[:n], p["exposure_ms"]),
                _distractor_rgb(clip, seq, step, t_row[n:]),
            ]
        )
        emitted = (0.03 + 0.97 * colour) @ crosstalk.T * gain  # (n + m, 3) RGB, screen black 3 %
        weights, x0, y0 = _footprints(xy, p["phone_w"], p["phone_h"], p["blur_sigma"], half)
        img = (
            background
            + noise[(f * 7) % pad : (f * 7) % pad + h, (f * 13) % pad : (f * 13) % pad + w]
        )
        _splat(img, weights, x0, y0, emitted[:, ::-1])  # BGR
        frame = np.clip(img, 0, 255).astype(np.uint8)
        if p["jpeg_quality"] is not None:
            ok, buf = cv2.imencode(
                ".jpg", frame, [cv2.IMWRITE_JPEG_QUALITY, int(p["jpeg_quality"])]
            )
            frame = cv2.imdecode(buf, cv2.IMREAD_COLOR)
        yield frame


def _splat(img: np.ndarray, weights, x0, y0, bgr) -> None:
    """Add each light's footprint times its BGR colour into ``img`` (in place).

    Footprints of different lights do not overlap on the stand layout, so plain fancy-index
    addition is exact; pixels falling outside the frame are clamped to its edge (lights sit at
    least 12 pixels inside, so the clamped part is blur tail only).
    """
    h, w = img.shape[:2]
    size = weights.shape[1]
    u = np.arange(size)
    ys = np.clip(y0[:, None, None] + u[None, :, None], 0, h - 1)
    xs = np.clip(x0[:, None, None] + u[None, None, :], 0, w - 1)
    flat = (ys * w + xs).ravel()
    vals = (weights[:, :, :, None] * bgr[:, None, None, :]).reshape(-1, 3)
    img.reshape(-1, 3)[flat] += vals.astype(np.float32)
