"""Clips on disk: a video file or a folder of frames, decoded with :func:`decode_frames`."""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from pathlib import Path

import cv2
import numpy as np

from c3s.vision.blink._decode import BlinkDetection, BlinkResult, decode_frames

_IMAGE_EXT = {".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp"}
_MS_RE = re.compile(r"(\d+(?:\.\d+)?)ms", re.IGNORECASE)


def _natural_key(name: str):
    return [int(p) if p.isdigit() else p for p in re.split(r"(\d+)", name)]


def _folder_timestamps(folder: Path, names: list[str]) -> list[float] | None:
    """Timestamps from ``timestamps.txt`` (one ms value per frame, in file order, or
    ``name ms`` per line) or from file names containing ``<number>ms``."""
    listing = folder / "timestamps.txt"
    if listing.exists():
        rows = [r.split() for r in listing.read_text().splitlines() if r.strip()]
        try:
            if all(len(r) == 2 for r in rows):
                table = {r[0]: float(r[1]) for r in rows}
                return [table[name] for name in names]
            return [float(r[0]) for r in rows]
        except (KeyError, ValueError) as exc:
            raise ValueError(
                f"{listing}: expected one millisecond value per frame or 'name ms' per line ({exc})"
            ) from exc
    found = [_MS_RE.findall(name) for name in names]
    if all(found):
        return [float(f[-1]) for f in found]
    return None


def _read_folder(folder: Path, fps: float | None):
    names = sorted(
        (p.name for p in folder.iterdir() if p.suffix.lower() in _IMAGE_EXT), key=_natural_key
    )
    if not names:
        raise ValueError(f"{folder} holds no image files ({', '.join(sorted(_IMAGE_EXT))})")
    stamps = None if fps is not None else _folder_timestamps(folder, names)
    if fps is None and stamps is None:
        raise ValueError(
            f"{folder} is a folder of frames without timestamps: pass --fps, or add "
            "timestamps.txt (one millisecond value per frame), or name frames like "
            "'frame_0133ms.png'"
        )
    if stamps is not None and len(stamps) != len(names):
        raise ValueError(f"timestamps.txt has {len(stamps)} values for {len(names)} frames")

    def frames() -> Iterator[np.ndarray]:
        for name in names:
            image = cv2.imread(str(folder / name), cv2.IMREAD_COLOR)
            if image is None:
                raise ValueError(f"cannot read image {folder / name}")
            yield image

    return frames(), stamps


def clip_header(path: str | os.PathLike) -> tuple[int, int, int, float]:
    """What a video's container says, without decoding a frame.

    Returns
    -------
    tuple of (int, int, int, float)
        Width and height in pixels, the frame count (0 when the container does not say) and
        the frame rate (0.0 when it does not say).

    Raises
    ------
    ValueError
        When no OpenCV backend opens the file as a video.
    """
    capture = cv2.VideoCapture(str(path))
    try:
        if not capture.isOpened():
            raise ValueError("the file is not a video OpenCV can read")
        return (int(capture.get(cv2.CAP_PROP_FRAME_WIDTH)), int(capture.get(cv2.CAP_PROP_FRAME_HEIGHT)),
                max(0, int(capture.get(cv2.CAP_PROP_FRAME_COUNT))), float(capture.get(cv2.CAP_PROP_FPS) or 0.0))
    finally:
        capture.release()


def _read_video(path: Path, fps: float | None):
    capture = cv2.VideoCapture(str(path))
    if not capture.isOpened():
        capture.release()
        raise ValueError(f"cannot open {path} as a video (is it a video file OpenCV can read?)")
    container_fps = capture.get(cv2.CAP_PROP_FPS)
    if fps is None and not (container_fps and container_fps > 0):
        capture.release()
        raise ValueError(f"{path} does not state its frame rate; pass --fps")
    rate = float(fps if fps is not None else container_fps)

    def frames() -> Iterator[np.ndarray]:
        try:
            while True:
                ok, image = capture.read()
                if not ok:
                    return
                yield image
        finally:
            capture.release()

    return frames(), rate


def locate_clip(path: str | os.PathLike, *, fps: float | None = None, start_ms: float | None = None,
                readout_ms: float | None = None, exposure_ms: float | None = None
                ) -> list[BlinkDetection]:
    """Decode the blinking phones of a video file or a folder of frames.

    Parameters
    ----------
    path : path-like
        A video any OpenCV backend reads (frame rate from the container unless ``fps`` is given),
        or a folder of images in natural name order. For a folder, timing comes from ``fps``, else
        from ``timestamps.txt`` (one millisecond value per frame in name order, or ``name ms`` per
        line), else from file names containing ``<number>ms`` (``frame_0133ms.png``).
        Folder timestamps are read as server-clock times (Unix ms) of each frame's top-row
        exposure start, so that ``offset_ms`` is relative to the server clock.
    fps : float, optional
        Frame rate override.
    start_ms : float, optional
        Server-clock time (Unix ms) of the first frame's top-row exposure start, for a video or
        a folder timed by ``fps``; without it (and without folder timestamps) offsets are None.
    readout_ms, exposure_ms : float, optional
        The camera's rolling-shutter readout and exposure time (ms); estimated from the crowd
        when not given (see :func:`decode_frames`).

    Returns
    -------
    list of BlinkDetection
        ``code`` (decimal pixel number), ``x_img``, ``y_img`` (first-frame image pixels),
        ``confidence`` (0..1), ``offset_ms`` (light-output offset, ms, positive = late, or None).

    Raises
    ------
    ValueError
        Missing path, unreadable input, a folder with no timing information, or ``start_ms``
        with a folder that has its own timestamps.
    """
    return decode_clip(path, fps=fps, start_ms=start_ms, readout_ms=readout_ms,
                       exposure_ms=exposure_ms).detections


def decode_clip(path: str | os.PathLike, *, fps: float | None = None, start_ms: float | None = None,
                readout_ms: float | None = None, exposure_ms: float | None = None) -> BlinkResult:
    """Like :func:`locate_clip` but returns the whole :class:`BlinkResult` (with decode_stats)."""
    if fps is not None and (not np.isfinite(fps) or fps <= 0):
        raise ValueError(f"fps must be a positive number, got {fps}")
    source = Path(path)
    if not source.exists():
        raise ValueError(f"{source} does not exist")
    timing = {"readout_ms": readout_ms, "exposure_ms": exposure_ms}
    if source.is_dir():
        frames, stamps = _read_folder(source, fps)
        if stamps is not None and start_ms is not None:
            raise ValueError(f"{source} has its own frame timestamps; start_ms goes with a frame rate")
        return decode_frames(frames, stamps, fps, start_ms=start_ms, **timing)
    frames, rate = _read_video(source, fps)
    return decode_frames(frames, None, rate, start_ms=start_ms, **timing)
