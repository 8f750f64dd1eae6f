"""Uploaded show media (a still image, an animated GIF/WebP/PNG, or a video) into timed frames.

Everything an operator can upload goes through :func:`decode_media`, which never trusts the
declared content type more than the bytes, checks sizes from the header before decoding pixels
(a 50 kB PNG can claim 100,000 x 100,000 pixels), and stops decoding as soon as a limit is passed.
Every failure is a :class:`MediaError`, saying which kind (the API maps them, to 413, 415 and 422):

- :class:`MediaTooLarge`: too large (pixels per frame, frame count, total duration);
- :class:`UnsupportedMediaType`: not an image or video type we read;
- :class:`MediaError` itself: a known type whose bytes are empty, corrupt or truncated, or a
  video OpenCV cannot open.

Frames come out as ``(H, W, 3)`` ``uint8`` **RGB** arrays (transparent areas composited on black,
because a phone showing "nothing" is dark), each with a duration in milliseconds.
"""

from __future__ import annotations

import contextlib
import io
import math
import os
import tempfile
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import cv2
import numpy as np
from PIL import Image, ImageOps, ImageSequence, UnidentifiedImageError

# Pillow formats we accept, and the magic bytes that identify them.
_IMAGE_SIGNATURES: tuple[tuple[bytes, int, str], ...] = (
    (b"\x89PNG\r\n\x1a\n", 0, "PNG"),
    (b"\xff\xd8\xff", 0, "JPEG"),
    (b"GIF87a", 0, "GIF"),
    (b"GIF89a", 0, "GIF"),
    (b"WEBP", 8, "WEBP"),
    (b"BM", 0, "BMP"),
)
# Containers handed to OpenCV, with the file suffix that helps FFmpeg pick a demuxer.
_VIDEO_SIGNATURES: tuple[tuple[bytes, int, str], ...] = (
    (b"ftyp", 4, ".mp4"),  # MP4, MOV, M4V, 3GP
    (b"\x1a\x45\xdf\xa3", 0, ".webm"),  # Matroska / WebM
    (b"AVI ", 8, ".avi"),
    (b"OggS", 0, ".ogv"),
)
# Browsers show GIF frame delays of 10 ms or less as 100 ms; animators rely on it.
_MIN_GIF_DELAY_MS = 10
_BROWSER_GIF_DELAY_MS = 100


class MediaError(ValueError):
    """Uploaded media that cannot become frames: empty, corrupt or truncated, or a video OpenCV
    cannot open (the subclasses name the other reasons)."""


class MediaTooLarge(MediaError):
    """The media passes a limit (pixels per frame, frame count, duration, decoded bytes)."""


class UnsupportedMediaType(MediaError):
    """Not an image or video type C3S reads."""


@dataclass(frozen=True)
class MediaLimits:
    """Bounds on what one upload may decode to.

    Attributes
    ----------
    max_frames : frames after fps subsampling.
    max_pixels : width x height of one frame, checked from the header before decoding.
    max_total_duration_ms : sum of frame durations.
    max_fps : faster media is subsampled in time to at most this many frames per second.
    max_side_px : frames larger than this on their long side are scaled down (area average) as
        they are decoded; None keeps them as they are.
    max_total_bytes : decoded RGB bytes of all kept frames together (after scaling), so a long
        high-resolution video is refused before it fills the memory of the process decoding it.
    """

    max_frames: int = 600
    max_pixels: int = 3840 * 2160
    max_total_duration_ms: int = 10 * 60 * 1000
    max_fps: float = 30.0
    max_side_px: int | None = None
    max_total_bytes: int = 2 * 1024**3

    def __post_init__(self):
        if self.max_side_px is not None and self.max_side_px < 16:
            raise ValueError(f"MediaLimits.max_side_px must be at least 16, got {self.max_side_px!r}")
        for name in ("max_frames", "max_pixels", "max_total_duration_ms", "max_fps", "max_total_bytes"):
            if not getattr(self, name) > 0:
                raise ValueError(f"MediaLimits.{name} must be positive, got {getattr(self, name)!r}")


@dataclass(frozen=True)
class DecodedFrame:
    """One frame: ``image`` (H, W, 3) uint8 RGB, shown for ``duration_ms`` milliseconds."""

    image: np.ndarray
    duration_ms: int


def sniff_media_type(data: bytes) -> tuple[str, str] | None:
    """``("image", pillow_format)`` or ``("video", file_suffix)`` from magic bytes, else None."""
    for kind, signatures in (("image", _IMAGE_SIGNATURES), ("video", _VIDEO_SIGNATURES)):
        for magic, offset, name in signatures:
            if data[offset : offset + len(magic)] == magic:
                return kind, name
    return None


def decode_media(
    data: bytes,
    *,
    content_type: str | None = None,
    limits: MediaLimits,
    still_duration_ms: int = 1000,
    progress: Callable[[float], None] | None = None,
) -> list[DecodedFrame]:
    """Decode an uploaded image, animation or video into timed RGB frames.

    Parameters
    ----------
    data : the uploaded file's bytes.
    content_type : the declared MIME type, used only when the bytes do not identify themselves
        (then ``video/*`` is tried with OpenCV).
    limits : size, count, duration and frame-rate bounds.
    still_duration_ms : duration given to a single still image.
    progress : called now and then while a video decodes with the fraction of its declared
        frames read so far (0..1).

    Returns
    -------
    list of DecodedFrame, in play order, all of one size; at least one.

    Raises
    ------
    MediaError
        With ``status`` 413 (over a limit), 415 (unsupported type) or 422 (empty, corrupt,
        truncated or unreadable).
    """
    if not data:
        raise MediaError("the uploaded file is empty")
    sniffed = sniff_media_type(data)
    if sniffed is None and (content_type or "").lower().startswith("video/"):
        sniffed = ("video", ".bin")
    if sniffed is None:
        declared = f" (declared {content_type})" if content_type else ""
        raise UnsupportedMediaType(
            f"unsupported file type{declared}: upload PNG, JPEG, GIF, WebP, BMP, or a video "
            "such as MP4 or WebM",
        )
    kind, name = sniffed
    timed = _image_frames(data, name, limits, still_duration_ms) if kind == "image" else (
        _video_frames(data, name, limits, progress))
    # Closed explicitly so a video's temporary file goes as soon as a limit stops decoding.
    with contextlib.closing(timed):
        frames = _limit_and_subsample(timed, limits)
    if not frames:
        raise MediaError("the file holds no frames that could be decoded")
    return frames


def _check_size(width: int, height: int, limits: MediaLimits) -> None:
    if width <= 0 or height <= 0:
        raise MediaError(f"the media has an empty frame size ({width}x{height})")
    if width * height > limits.max_pixels:
        raise MediaTooLarge(
            f"frames of {width}x{height} pixels exceed the limit of {limits.max_pixels:,} pixels "
            "per frame; scale the media down and upload it again",
        )


def _open_image(data: bytes, pillow_format: str, limits: MediaLimits) -> Image.Image:
    try:
        # Our own pixel limit is checked right after the header is read; Pillow's bomb warning
        # would only duplicate it (and it is an error under strict warning filters).
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            image = Image.open(io.BytesIO(data), formats=[pillow_format])
    except Image.DecompressionBombError as error:
        raise MediaTooLarge(
            f"the image header claims far more than the limit of {limits.max_pixels:,} pixels "
            "per frame; scale the image down and upload it again",
        ) from error
    except UnidentifiedImageError as error:
        raise MediaError(f"the {pillow_format} file is corrupt: its header cannot be read") from error
    except (OSError, ValueError, SyntaxError) as error:
        raise MediaError(f"the {pillow_format} file is corrupt and cannot be read ({error})") from error
    _check_size(image.width, image.height, limits)
    return image


def _to_rgb(image: Image.Image) -> np.ndarray:
    if image.mode in ("RGBA", "LA", "PA") or "transparency" in image.info:
        rgba = np.asarray(image.convert("RGBA"), dtype=np.uint16)
        return (rgba[..., :3] * rgba[..., 3:] // 255).astype(np.uint8)
    return np.asarray(image.convert("RGB"))


def _image_frames(
    data: bytes, pillow_format: str, limits: MediaLimits, still_duration_ms: int
) -> Iterator[tuple[np.ndarray, float]]:
    image = _open_image(data, pillow_format, limits)
    try:
        if not getattr(image, "is_animated", False):
            yield _to_rgb(ImageOps.exif_transpose(image)), float(still_duration_ms)
            return
        for frame in ImageSequence.Iterator(image):
            rgb = _to_rgb(frame)  # decoding first: WebP sets a frame's duration when it loads
            delay = frame.info.get("duration", 0) or 0
            if delay <= _MIN_GIF_DELAY_MS:
                delay = _BROWSER_GIF_DELAY_MS
            yield rgb, float(delay)
    except (OSError, ValueError, SyntaxError, EOFError) as error:
        raise MediaError(
            f"the {pillow_format} file is corrupt or truncated and cannot be decoded ({error})",
        ) from error


def _video_frames(
    data: bytes, suffix: str, limits: MediaLimits, progress: Callable[[float], None] | None = None
) -> Iterator[tuple[np.ndarray | None, float]]:
    # cv2.VideoCapture reads only from a path (or a device), so the bytes go to a temporary file.
    handle, path = tempfile.mkstemp(suffix=suffix, prefix="c3s-video-")
    capture = None
    try:
        with os.fdopen(handle, "wb") as file:
            file.write(data)
        capture = cv2.VideoCapture(path)
        if not capture.isOpened():
            raise MediaError(
                "the video cannot be opened: the file is corrupt or truncated, or its codec is "
                "not supported; re-encode it as H.264 MP4 or VP8/VP9 WebM",
            )
        fps = _video_fps(capture, limits)
        declared = max(1.0, capture.get(cv2.CAP_PROP_FRAME_COUNT))
        for index, item in enumerate(_read_video(capture, fps, limits)):
            if progress is not None and index % PROGRESS_EVERY_FRAMES == 0:
                progress(min(1.0, index / declared))
            yield item
    finally:
        if capture is not None:
            capture.release()
        os.unlink(path)


PROGRESS_EVERY_FRAMES = 25


def _video_fps(capture: cv2.VideoCapture, limits: MediaLimits) -> float:
    width = int(capture.get(cv2.CAP_PROP_FRAME_WIDTH))
    height = int(capture.get(cv2.CAP_PROP_FRAME_HEIGHT))
    _check_size(width, height, limits)
    fps = capture.get(cv2.CAP_PROP_FPS)
    if not (math.isfinite(fps) and 0 < fps <= 1000):
        raise MediaError(f"the video declares no usable frame rate ({fps}); re-encode it")
    declared_ms = capture.get(cv2.CAP_PROP_FRAME_COUNT) * 1000.0 / fps
    # Fail before decoding when the header already says it is too long (5 % slack for estimates).
    if declared_ms > 1.05 * limits.max_total_duration_ms:
        raise MediaTooLarge(_duration_message(declared_ms, limits))
    return fps


def _read_video(capture, fps: float, limits: MediaLimits) -> Iterator[tuple[np.ndarray | None, float]]:
    frame_ms = 1000.0 / fps
    gate = _FpsGate(limits.max_fps)
    index = 0
    while capture.grab():
        # Frames the frame-rate limit drops are grabbed but never converted to pixels.
        if not gate.admits(index * frame_ms):
            yield None, frame_ms
        else:
            ok, bgr = capture.retrieve()
            if not ok:
                raise MediaError(f"video frame {index} cannot be decoded; the file is corrupt")
            yield cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB), frame_ms
        index += 1


class _FpsGate:
    """Admits a frame starting at ``start_ms`` only if it opens a new 1/max_fps time slot."""

    def __init__(self, max_fps: float):
        self.slot_ms = 1000.0 / max_fps
        self.next_ms = 0.0

    def admits(self, start_ms: float) -> bool:
        if start_ms + 1e-6 < self.next_ms:
            return False
        self.next_ms = (math.floor(start_ms / self.slot_ms + 1e-9) + 1) * self.slot_ms
        return True


def _duration_message(duration_ms: float, limits: MediaLimits) -> str:
    return (
        f"the media lasts at least {duration_ms / 1000:.1f} s, over the limit of "
        f"{limits.max_total_duration_ms / 1000:.1f} s; shorten it and upload it again"
    )


def _fit_side(image: np.ndarray, max_side_px: int | None) -> np.ndarray:
    """Scale an RGB frame down (area average) so its long side is at most ``max_side_px``."""
    height, width = image.shape[:2]
    if max_side_px is None or max(height, width) <= max_side_px:
        return image
    scale = max_side_px / max(height, width)
    size = (max(1, round(width * scale)), max(1, round(height * scale)))
    return cv2.resize(image, size, interpolation=cv2.INTER_AREA)


def _limit_and_subsample(timed, limits: MediaLimits) -> list[DecodedFrame]:
    """Apply the frame-rate, count and duration limits while frames are being decoded.

    ``timed`` yields ``(image or None, duration_ms)``; None is a frame already dropped. A dropped
    frame's time goes to the kept frame before it, so the total duration is unchanged.
    """
    gate = _FpsGate(limits.max_fps)
    images, starts, clock_ms, total_bytes = [], [], 0.0, 0
    for image, duration_ms in timed:
        if image is not None and gate.admits(clock_ms):
            if len(images) == limits.max_frames:
                raise MediaTooLarge(
                    f"the media has more than {limits.max_frames} frames (at most "
                    f"{limits.max_fps:g} per second are kept); shorten it",
                )
            image = _fit_side(image, limits.max_side_px)
            total_bytes += image.nbytes
            if total_bytes > limits.max_total_bytes:
                raise MediaTooLarge(
                    f"the media decodes to more than {limits.max_total_bytes // 1024**2} MiB of frames "
                    f"({len(images) + 1} frames of {image.shape[1]} x {image.shape[0]} so far); "
                    "shorten it or lower its frame rate")
            images.append(image)
            starts.append(clock_ms)
        clock_ms += duration_ms
        if clock_ms > limits.max_total_duration_ms:
            raise MediaTooLarge(_duration_message(clock_ms, limits))
    bounds = [round(t) for t in starts] + [round(clock_ms)]
    frames = [DecodedFrame(image, max(1, end - start))
              for image, start, end in zip(images, bounds, bounds[1:], strict=False)]
    shapes = {frame.image.shape for frame in frames}
    if len(shapes) > 1:
        raise MediaError(f"frames change size mid-stream ({sorted(shapes)}); re-encode it")
    return frames


def encode_png(image_rgb: np.ndarray) -> bytes:
    """PNG bytes of an (H, W, 3) uint8 RGB image, for storing normalised frames."""
    if not isinstance(image_rgb, np.ndarray) or image_rgb.dtype != np.uint8:
        raise ValueError("image must be a uint8 numpy array of shape (H, W, 3), RGB")
    if image_rgb.ndim != 3 or image_rgb.shape[2] != 3 or 0 in image_rgb.shape:
        raise ValueError(f"image must have shape (H, W, 3) with H, W >= 1, got {image_rgb.shape}")
    ok, encoded = cv2.imencode(".png", cv2.cvtColor(image_rgb, cv2.COLOR_RGB2BGR),
                               [cv2.IMWRITE_PNG_COMPRESSION, 3])
    if not ok:
        raise ValueError("the image could not be encoded as PNG")
    return encoded.tobytes()
