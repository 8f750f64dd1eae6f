"""`c3s bench blink`: decode a synthetic stand of blinking phones filmed at 1080p and 4K.

Each clip is rendered by :mod:`c3s.vision.blink_synth` in a child process and written as an
MPEG-4 part 2 video (``mp4v``, lossy inter-frame compression), so the decoder is measured the way
``c3s locate`` runs it: from a file, frame reading included, one core, and the process's peak
memory is the decoder's, not the renderer's. The baseline reads the same file: fixed global
threshold per channel, no slot-timing recovery (frames are assigned to slots as if the clip
started on a slot boundary), one frame per slot, marker search per blob, no erasures.
"""

from __future__ import annotations

import os

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[_var] = "1"  # one core, set before numpy loads

import json  # noqa: E402
import multiprocessing  # noqa: E402
import resource  # noqa: E402
import statistics  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
import tracemalloc  # noqa: E402
from pathlib import Path  # noqa: E402

import click  # noqa: E402
import cv2  # noqa: E402
import numpy as np  # noqa: E402

from c3s.vision import blink  # noqa: E402
from c3s.vision.blink_synth import make_clip  # noqa: E402

RESOLUTIONS = {"1080p": (1920, 1080), "4k": (3840, 2160)}
QUICK_RESOLUTIONS = {"720p": (1280, 720), "1080p": (1920, 1080)}
MATCH_PX = 2.0
FPS = 30.0
DURATION_MS = 1500.0


def _log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def _render_to_file(params: dict, path: str) -> None:
    cv2.setNumThreads(1)
    clip = make_clip(**params)
    writer = cv2.VideoWriter(
        path, cv2.VideoWriter_fourcc(*"mp4v"), clip.fps, (clip.width, clip.height)
    )
    if not writer.isOpened():
        raise RuntimeError("OpenCV cannot write mp4v video on this machine")
    for frame in clip.frames():
        writer.write(frame)
    writer.release()


def _render(params: dict, path: Path) -> None:
    ctx = multiprocessing.get_context("spawn")
    proc = ctx.Process(target=_render_to_file, args=(params, str(path)))
    proc.start()
    proc.join()
    if proc.exitcode != 0:
        raise click.ClickException(f"rendering {path.name} failed (exit code {proc.exitcode})")


def score(clip, found: list[tuple[int, float, float]]) -> dict:
    """Recall, wrong numbers and median position error of ``(number, x, y)`` detections."""
    truth = {int(n): xy for n, xy in zip(clip.numbers, clip.xy, strict=True)}
    errors, wrong = [], 0
    for number, x, y in found:
        xy = truth.get(number)
        err = None if xy is None else float(np.hypot(x - xy[0], y - xy[1]))
        if err is None or err > MATCH_PX:
            wrong += 1
        else:
            errors.append(err)
    return {
        "identified": len(errors),
        "recall": round(len(errors) / len(truth), 5),
        "wrong_numbers": wrong,
        "median_position_error_px": round(float(np.median(errors)), 4) if errors else None,
    }


def baseline_decode(path: Path, fps: float) -> list[tuple[int, float, float]]:
    """The simplest decoder: fixed thresholds, nominal slot timing, no tracking, no erasures."""
    capture = cv2.VideoCapture(str(path))
    values, xy = [], None
    index = 0
    while True:
        ok, frame = capture.read()
        if not ok:
            break
        if xy is None:
            xy, _ = blink._detect_blobs(frame, threshold=None, max_area=400)
            xi = np.clip(np.rint(xy[:, 0]).astype(int), 1, frame.shape[1] - 2)
            yi = np.clip(np.rint(xy[:, 1]).astype(int), 1, frame.shape[0] - 2)
        slot_pos = ((index + 0.5) * 1000.0 / fps) % blink.SLOT_MS / blink.SLOT_MS
        if abs(slot_pos - 0.5) < 0.5 * 1000.0 / fps / blink.SLOT_MS:  # middle frame of a slot
            patch = sum(
                frame[yi + dy, xi + dx].astype(np.float32) for dy in (-1, 0, 1) for dx in (-1, 0, 1)
            )
            values.append((index, patch[:, ::-1] / 9.0))  # RGB means
        index += 1
    capture.release()
    if xy is None or not values:
        return []
    slots = np.full((len(xy), blink.N_SLOTS, 3), np.nan, np.float32)
    for f, v in values:
        slots[:, int(f * 1000.0 / fps // blink.SLOT_MS) % blink.N_SLOTS] = v
    # One fixed threshold per channel for the whole clip: about half of all channel-slots are on.
    threshold = np.nanmedian(slots, axis=(0, 1))
    bits = (slots > threshold).astype(np.int64)
    return _baseline_numbers(bits, xy)


def _baseline_numbers(bits: np.ndarray, xy: np.ndarray) -> list[tuple[int, float, float]]:
    out = []
    for k in range(blink.N_SLOTS):
        rolled = np.roll(bits, -k, axis=1)
        marker = rolled[:, 0].all(axis=1) & ~rolled[:, 1].any(axis=1)
        code = rolled[:, 2:] @ np.array([4, 2, 1])
        lut = np.full(8, 99)
        for b, i in blink._BITS_TO_DATA.items():
            lut[b[0] * 4 + b[1] * 2 + b[2]] = i
        colour = lut[code].reshape(len(bits), 7, 2)
        valid = (colour < 6).all(axis=(1, 2))
        symbol = np.where(valid[:, None], colour[:, :, 0] * 6 + colour[:, :, 1], 0)
        numbers = blink.decode_symbols(symbol, np.ones(symbol.shape, bool) & valid[:, None])
        for i in np.flatnonzero(marker & (numbers >= 0)):
            out.append((int(numbers[i]), float(xy[i, 0]), float(xy[i, 1])))
    return out


def _read_seconds(path: Path) -> float:
    capture = cv2.VideoCapture(str(path))
    start = time.perf_counter()
    while capture.read()[0]:
        pass
    capture.release()
    return time.perf_counter() - start


def _run_one(name: str, size: tuple[int, int], phones: int, repeats: int, workdir: Path) -> dict:
    params = dict(
        n_phones=phones,
        width=size[0],
        height=size[1],
        fps=FPS,
        duration_ms=DURATION_MS,
        seed=20260 + phones,
    )
    clip = make_clip(**params)
    path = workdir / f"{name}.mp4"
    _log(f"[{name}] rendering {phones} phones at {size[0]}x{size[1]} ...")
    _render(params, path)
    video_s = clip.duration_s
    tracemalloc.start()
    result = blink.decode_clip(path, fps=FPS)
    traced_peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    timings = []
    for r in range(repeats):
        start = time.perf_counter()
        blink.decode_clip(path, fps=FPS)
        timings.append(time.perf_counter() - start)
        _log(f"[{name}] decode run {r + 1}/{repeats}: {timings[-1]:.2f} s")
    found = [(d.number, d.x_img, d.y_img) for d in result.detections]
    start = time.perf_counter()
    base_found = baseline_decode(path, FPS)
    base_s = time.perf_counter() - start
    ours, base = score(clip, found), score(clip, base_found)
    decode_rate = statistics.median(timings) / video_s
    return {
        **ours,
        "phones": phones,
        "distractors": len(clip.distractor_kind),
        "occluded_phones": int(clip.occluded.sum()),
        "frames": result.frames,
        "video_s": round(video_s, 3),
        "decode_s_per_video_s": round(decode_rate, 3),
        "decode_s_runs": [round(t, 3) for t in timings],
        "video_read_s_per_video_s": round(_read_seconds(path) / video_s, 3),
        "peak_traced_mb": round(traced_peak / 2**20, 1),
        "decode_stats": result.decode_stats,
        "baseline": {**base, "decode_s_per_video_s": round(base_s / video_s, 3)},
        "recall_ratio_vs_baseline": round(ours["recall"] / base["recall"], 2)
        if base["recall"]
        else None,
    }


@click.command()
@click.option("--phones", default=10_000, show_default=True, type=click.IntRange(1, 100_000))
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object on stdout.")
@click.option("--quick", is_flag=True, help="Smoke run: at most 1,000 phones, 720p and 1080p.")
@click.option("--repeats", default=3, show_default=True, type=click.IntRange(1, 20))
def command(phones: int, as_json: bool, quick: bool, repeats: int) -> None:
    """Recall, wrong numbers, position error, speed and memory of the blink decoder."""
    cv2.setNumThreads(1)
    load_before = os.getloadavg()
    sizes = QUICK_RESOLUTIONS if quick else RESOLUTIONS
    phones = min(phones, 1000) if quick else phones
    repeats = 1 if quick else repeats
    with tempfile.TemporaryDirectory(prefix="c3s-bench-blink-") as tmp:
        results = {
            name: _run_one(name, size, phones, repeats, Path(tmp)) for name, size in sizes.items()
        }
    last = results[list(sizes)[-1]]
    report = {
        "benchmark": "blink",
        "phones": phones,
        "fps": FPS,
        "clip_s": DURATION_MS / 1000.0,
        "codec": "mp4v",
        "one_core": True,
        "results": results,
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
        # timings are medians of --repeats runs; a busy machine inflates them
        "load_average_1m_before_after": [round(load_before[0], 2), round(os.getloadavg()[0], 2)],
        "cpu_count": os.cpu_count(),
        "targets": {
            "recall": 0.995,
            "wrong_numbers": 0,
            "median_position_error_px": 0.5,
            "decode_s_per_video_s": 3.0,
            "peak_memory_mb": 1536,
        },
        "targets_met_at_largest": {
            "recall": last["recall"] >= 0.995,
            "wrong_numbers": last["wrong_numbers"] == 0,
            "median_position_error_px": (last["median_position_error_px"] or 9) <= 0.5,
            "decode_s_per_video_s": last["decode_s_per_video_s"] <= 3.0,
        },
    }
    report["targets_met_at_largest"]["peak_memory"] = report["peak_rss_mb"] < 1536
    if as_json:
        click.echo(json.dumps(report))
    else:
        click.echo(json.dumps(report, indent=2))
