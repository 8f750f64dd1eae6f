"""`c3s bench colormap`: colour maps for a stadium crowd, vectorised vs a per-pixel Python loop.

Input: 100,000 pixels on a jittered seat grid over a 160 x 90 m stand, with aisles, a few
sparsely filled blocks and an empty patch; a synthetic "natural" frame (gradients, hard-edged
shapes, fine stripes and text-like strokes, noise). Measured on one core:

- ``frame_ms``: median time of ``ColorMapper.colors`` on one 3840 x 2160 frame (linear light
  included; the mapper is built once, its build time is reported apart);
- ``tracks_s``: ``build_track_table`` for 300 frames of 1920 x 1080 (ten distinct frames cycled,
  so generating frames is not timed);
- ``loop_frame_ms``: ``reference_colors``, a plain per-pixel Python loop computing the exact area
  average at full resolution, timed on a random subset of pixels and scaled to all of them;
- the error of the fast path against that exact reference, in 8-bit sRGB levels.
"""

from __future__ import annotations

import os

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")  # one core: the machine is shared, timings must compare

import json  # noqa: E402
import statistics  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402

import click  # noqa: E402
import cv2  # noqa: E402
import numpy as np  # noqa: E402

from c3s.vision.colormap import ColorMapper, build_track_table, reference_colors  # noqa: E402

SCENE = (160.0, 90.0)
N_PIXELS = 100_000
TARGET_FRAME_MS = 25.0
TARGET_TRACKS_S = 3.0


def stand_positions(n: int, scene_size=SCENE, *, seed: int = 0) -> np.ndarray:
    """(n, 2) scene positions: a jittered seat grid with aisles, sparse blocks and a gap."""
    rng = np.random.default_rng(seed)
    scene_w, scene_h = scene_size
    pitch = np.sqrt(scene_w * scene_h / (1.5 * n))
    xs = np.arange(pitch / 2, scene_w, pitch)
    ys = np.arange(pitch / 2, scene_h, pitch)
    col, row = np.meshgrid(np.arange(len(xs)), np.arange(len(ys)))
    seats = np.stack([xs[col.ravel()], ys[row.ravel()]], axis=1)
    keep = (col.ravel() % 30 != 0) & (row.ravel() % 25 != 0)  # aisles and walkways
    block = (col.ravel() // 60) * 10 + row.ravel() // 50
    sparse = np.isin(block, rng.choice(block.max() + 1, size=4, replace=False))
    keep &= ~sparse | (rng.random(len(seats)) < 0.15)  # a few blocks only 15 % full
    gap = (np.abs(seats[:, 0] - 0.5 * scene_w) < 8) & (seats[:, 1] > scene_h - 12)  # a tunnel
    candidates = np.flatnonzero(keep & ~gap)
    if len(candidates) < n:
        raise ValueError(f"the stand has only {len(candidates)} seats for {n} pixels")
    chosen = seats[np.sort(rng.choice(candidates, size=n, replace=False))]
    # People sit off-centre, and positions are estimates: jitter by up to a quarter pitch.
    return chosen + rng.uniform(-0.25 * pitch, 0.25 * pitch, chosen.shape)


def natural_frame(height: int, width: int, *, seed: int = 0) -> np.ndarray:
    """(height, width, 3) uint8 RGB test picture with both smooth areas and fine detail."""
    rng = np.random.default_rng(seed)
    x = np.linspace(0, 1, width, dtype=np.float32)
    y = np.linspace(0, 1, height, dtype=np.float32)[:, None]
    frame = np.empty((height, width, 3), np.uint8)
    frame[..., 0] = (255 * x).astype(np.uint8)
    frame[..., 1] = (255 * y).astype(np.uint8)
    frame[..., 2] = (127 + 120 * np.sin(9 * x + 5 * y + seed)).astype(np.uint8)
    scale = width / 3840
    for _ in range(120):
        color = tuple(int(c) for c in rng.integers(0, 256, 3))
        centre = (int(rng.integers(0, width)), int(rng.integers(0, height)))
        if rng.random() < 0.5:
            cv2.circle(frame, centre, int(rng.integers(10, 300) * scale) + 1, color, -1)
        else:
            size = rng.integers(20, 500, 2) * scale
            end = (centre[0] + int(size[0]), centre[1] + int(size[1]))
            cv2.rectangle(frame, centre, end, color, -1)
    for i in range(30):  # text-like strokes: thin, high contrast
        origin = (int(rng.integers(0, width - 400 * scale)), int(rng.integers(40, height)))
        cv2.putText(frame, f"C3S {seed}-{i}", origin, cv2.FONT_HERSHEY_SIMPLEX,
                    2.5 * scale, (255, 255, 255), max(1, int(3 * scale)), cv2.LINE_AA)
    frame[: height // 6, : width // 8][::2] = 0  # one-pixel stripes
    noise = rng.integers(-6, 7, (height, width, 1), dtype=np.int16)
    return np.clip(frame + noise, 0, 255).astype(np.uint8)


def _timings_ms(function, repeats: int) -> list[float]:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        function()
        times.append(1000 * (time.perf_counter() - start))
    return times


def _errors(fast: np.ndarray, exact: np.ndarray) -> dict:
    error = np.abs(fast.astype(np.int16) - exact.astype(np.int16))
    return {
        "mean_abs_levels": round(float(error.mean()), 3),
        "p99_abs_levels": float(np.percentile(error, 99)),
        "max_abs_levels": int(error.max()),
        "within_2_levels_fraction": round(float(np.mean(error.max(axis=1) <= 2)), 4),
    }


def _point_sample(mapper: ColorMapper, frame: np.ndarray, subset: np.ndarray) -> np.ndarray:
    boxes = mapper.boxes_px[subset]
    x = np.clip(((boxes[:, 0] + boxes[:, 2]) / 2).astype(int), 0, frame.shape[1] - 1)
    y = np.clip(((boxes[:, 1] + boxes[:, 3]) / 2).astype(int), 0, frame.shape[0] - 1)
    return frame[y, x]


def _frame_case(positions, frame, subset, repeats: int, **options) -> dict:
    start = time.perf_counter()
    mapper = ColorMapper.build(positions, SCENE, frame.shape, fit="contain", **options)
    build_s = time.perf_counter() - start
    colors = mapper.colors(frame)
    frame_times = _timings_ms(lambda: mapper.colors(frame), repeats)
    exact = reference_colors(mapper, frame, subset)
    levels, counts = np.unique(mapper.cell_px, return_counts=True)
    return {
        "frame_ms": round(statistics.median(frame_times), 2),
        "frame_ms_min": round(min(frame_times), 2),
        "build_s": round(build_s, 3),
        "cells_per_footprint": options.get("cells_per_footprint", 2.0),
        "pyramid_cell_px": {int(k): int(v) for k, v in zip(levels, counts, strict=True)},
        "median_footprint_px": round(float(np.median(mapper.boxes_px[:, 2] - mapper.boxes_px[:, 0])), 2),
        "error_vs_exact": _errors(colors[subset], exact),
        "point_sample_error_vs_exact": _errors(_point_sample(mapper, frame, subset), exact),
    }, mapper


def _loop_ms(mapper: ColorMapper, frame: np.ndarray, subset: np.ndarray, repeats: int) -> float:
    per_subset = statistics.median(
        _timings_ms(lambda: reference_colors(mapper, frame, subset), repeats))
    return per_subset * mapper.n_pixels / len(subset)


def _tracks(positions, n_frames: int, repeats: int) -> dict:
    frames = [natural_frame(1080, 1920, seed=s) for s in range(10)]
    mapper = ColorMapper.build(positions, SCENE, frames[0].shape, fit="contain")
    seconds = []
    for _ in range(repeats):
        start = time.perf_counter()
        table = build_track_table(mapper, (frames[i % len(frames)] for i in range(n_frames)))
        seconds.append(time.perf_counter() - start)
    return {
        "tracks_s": round(statistics.median(seconds) * 300 / n_frames, 3),
        "tracks_s_min": round(min(seconds) * 300 / n_frames, 3),
        "tracks_frames_measured": n_frames,
        "tracks_distinct_frames": len(frames),
        "tracks_table_shape": list(table.shape),
        "tracks_pyramid_base_px": mapper.pyramid.base,
    }


def run(*, quick: bool) -> dict:
    cv2.setNumThreads(1)
    rng = np.random.default_rng(1)
    print("building the stand and a 4K frame", file=sys.stderr)
    positions = stand_positions(N_PIXELS)
    frame = natural_frame(2160, 3840)
    subset = np.sort(rng.choice(N_PIXELS, size=300 if quick else 2000, replace=False))
    repeats = 5 if quick else 21
    print("timing one 4K frame", file=sys.stderr)
    headline, mapper = _frame_case(positions, frame, subset, repeats)
    print("timing the per-pixel loop", file=sys.stderr)
    loop_ms = _loop_ms(mapper, frame, subset, 1 if quick else 3)
    print("timing the finer variant", file=sys.stderr)
    finer, _ = _frame_case(positions, frame, subset, repeats, cells_per_footprint=4.0)
    print("timing the track table", file=sys.stderr)
    tracks = _tracks(positions, 30 if quick else 300, 1 if quick else 3)
    frame_ms = headline.pop("frame_ms")
    return {
        "benchmark": "colormap",
        "pixels": N_PIXELS,
        "frame_px": [3840, 2160],
        "fit": "contain",
        "frame_ms": frame_ms,
        "target_frame_ms": TARGET_FRAME_MS,
        "tracks_s": tracks.pop("tracks_s"),
        "target_tracks_s": TARGET_TRACKS_S,
        "loop_frame_ms": round(loop_ms, 1),
        "loop_note": (f"reference_colors (exact, per-pixel Python loop) timed on {len(subset)} "
                      f"random pixels and scaled to {N_PIXELS}"),
        "speedup": round(loop_ms / frame_ms, 1),
        **headline,
        "finer_variant": finer,
        **tracks,
        "repeats": repeats,
        "timing_note": "medians (and minimums) of repeated runs on a machine shared with other work",
        "threads": 1,
        "quick": quick,
    }


@click.command("colormap")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object on stdout.")
@click.option("--quick", is_flag=True, help="Fewer repeats and frames, for a smoke run.")
def command(as_json: bool, quick: bool) -> None:
    """Colour maps: one 4K frame and a 300-frame track table onto 100,000 pixels vs a Python loop."""
    result = run(quick=quick)
    if as_json:
        click.echo(json.dumps(result, indent=2))
        return
    click.echo(
        f"4K frame onto {result['pixels']:,} pixels: {result['frame_ms']} ms "
        f"(target {TARGET_FRAME_MS}); 300 x 1080p tracks: {result['tracks_s']} s "
        f"(target {TARGET_TRACKS_S}); per-pixel loop {result['loop_frame_ms']} ms, "
        f"speedup {result['speedup']}x; mean error "
        f"{result['error_vs_exact']['mean_abs_levels']} levels"
    )
