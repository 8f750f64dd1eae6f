import io
import struct
import zlib

import cv2
import numpy as np
import pytest
from PIL import Image

from c3s.vision.media import (
    MediaError,
    MediaLimits,
    MediaTooLarge,
    UnsupportedMediaType,
    decode_media,
    encode_png,
)

LIMITS = MediaLimits(max_frames=100, max_pixels=640 * 480, max_total_duration_ms=60_000, max_fps=30)


def png_bytes(image, mode="RGB"):
    buffer = io.BytesIO()
    Image.fromarray(image, mode).save(buffer, format="PNG")
    return buffer.getvalue()


def gif_bytes(colors, durations, size=(32, 24)):
    frames = [Image.new("RGB", size, color) for color in colors]
    buffer = io.BytesIO()
    frames[0].save(buffer, format="GIF", save_all=True, append_images=frames[1:],
                   duration=durations, loop=0)
    return buffer.getvalue()


def mp4_bytes(tmp_path, n_frames, fps, size=(64, 48), codec=("mp4v", ".mp4")):
    path = str(tmp_path / f"clip{codec[1]}")
    writer = cv2.VideoWriter(path, cv2.VideoWriter_fourcc(*codec[0]), fps, size)
    assert writer.isOpened(), f"OpenCV on this machine cannot write {codec}"
    for i in range(n_frames):
        frame = np.zeros((size[1], size[0], 3), np.uint8)
        frame[..., 2] = 255 * (i % 2)  # BGR: odd frames red
        frame[..., 1] = 255 * ((i + 1) % 2)  # even frames green
        writer.write(frame)
    writer.release()
    with open(path, "rb") as file:
        return file.read()


def png_with_header(width, height):
    """A PNG whose IHDR claims width x height, followed by a tiny (wrong) IDAT."""
    def chunk(kind, body):
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr)
            + chunk(b"IDAT", zlib.compress(b"\x00" * 16)) + chunk(b"IEND", b""))


def test_png_becomes_one_rgb_frame_with_the_still_duration():
    image = np.random.default_rng(0).integers(0, 256, (24, 32, 3), dtype=np.uint8)
    frames = decode_media(png_bytes(image), content_type="image/png", limits=LIMITS,
                          still_duration_ms=2500)
    assert len(frames) == 1
    assert np.array_equal(frames[0].image, image)
    assert frames[0].duration_ms == 2500


def test_transparent_areas_become_black():
    rgba = np.zeros((8, 8, 4), np.uint8)
    rgba[..., :3] = 255
    rgba[:, :4, 3] = 255  # left half opaque white, right half fully transparent
    (frame,) = decode_media(png_bytes(rgba, "RGBA"), limits=LIMITS)
    assert (frame.image[:, :4] == 255).all() and (frame.image[:, 4:] == 0).all()


def test_gif_keeps_its_frames_colours_and_durations():
    data = gif_bytes([(255, 0, 0), (0, 255, 0), (0, 0, 255)], [100, 250, 40])
    frames = decode_media(data, content_type="image/gif", limits=LIMITS)
    assert [f.duration_ms for f in frames] == [100, 250, 40]
    assert [tuple(f.image[0, 0]) for f in frames] == [(255, 0, 0), (0, 255, 0), (0, 0, 255)]


def test_gif_zero_delay_plays_like_a_browser_at_100_ms():
    data = gif_bytes([(255, 0, 0), (0, 0, 255)], [0, 0])
    assert [f.duration_ms for f in decode_media(data, limits=LIMITS)] == [100, 100]


@pytest.mark.parametrize("codec", [("mp4v", ".mp4"), ("VP80", ".webm")])
def test_video_frames_follow_the_video_fps(tmp_path, codec):
    frames = decode_media(mp4_bytes(tmp_path, 10, 20, codec=codec), limits=LIMITS)
    assert len(frames) == 10
    assert all(f.duration_ms == 50 for f in frames)
    assert frames[0].image.shape == (48, 64, 3)
    # RGB order: frame 0 green, frame 1 red (lossy codec, so roughly).
    assert frames[0].image[..., 1].mean() > 200 and frames[0].image[..., 0].mean() < 50
    assert frames[1].image[..., 0].mean() > 200 and frames[1].image[..., 1].mean() < 50


def test_fast_video_is_subsampled_to_max_fps_keeping_total_duration(tmp_path):
    limits = MediaLimits(max_frames=100, max_pixels=640 * 480, max_total_duration_ms=60_000,
                         max_fps=10)
    frames = decode_media(mp4_bytes(tmp_path, 30, 30), limits=limits)
    assert len(frames) == 10
    assert sum(f.duration_ms for f in frames) == 1000
    assert all(95 <= f.duration_ms <= 105 for f in frames)


@pytest.mark.parametrize(
    ("limits", "match"),
    [
        (MediaLimits(max_frames=4), "more than 4 frames"),
        (MediaLimits(max_total_duration_ms=500), "limit of 0.5 s"),
        (MediaLimits(max_pixels=32 * 24 - 1), "exceed the limit"),
    ],
)
def test_limits_answer_413(limits, match):
    data = gif_bytes([(i * 20, 0, 0) for i in range(10)], [100] * 10)
    with pytest.raises(MediaError, match=match) as raised:
        decode_media(data, limits=limits)
    assert isinstance(raised.value, MediaTooLarge)


def test_video_over_the_duration_limit_answers_413(tmp_path):
    limits = MediaLimits(max_total_duration_ms=200)
    with pytest.raises(MediaError) as raised:
        decode_media(mp4_bytes(tmp_path, 10, 20), limits=limits)
    assert isinstance(raised.value, MediaTooLarge)


def test_decompression_bomb_is_refused_from_its_header():
    with pytest.raises(MediaError) as raised:
        decode_media(png_with_header(100_000, 100_000), limits=LIMITS)
    assert isinstance(raised.value, MediaTooLarge)
    with pytest.raises(MediaError, match="5000x5000") as raised:
        decode_media(png_with_header(5000, 5000), limits=LIMITS)
    assert isinstance(raised.value, MediaTooLarge)


@pytest.mark.parametrize(
    ("data", "content_type", "kind"),
    [
        (b"", "image/png", MediaError),
        (b"hello, this is not a picture", "image/png", UnsupportedMediaType),
        (b"%PDF-1.4 not a picture", None, UnsupportedMediaType),
        (png_with_header(0, 10), None, MediaError),
        (b"\x89PNG\r\n\x1a\n" + b"\x00" * 50, None, MediaError),
        (b"\x00\x00\x00\x18ftypmp42" + b"\x00" * 200, "video/mp4", MediaError),
        (b"not a video at all" * 20, "video/webm", MediaError),
    ],
)
def test_bad_input_says_what_kind_of_bad_it_is(data, content_type, kind):
    with pytest.raises(MediaError) as raised:
        decode_media(data, content_type=content_type, limits=LIMITS)
    assert type(raised.value) is kind
    assert isinstance(raised.value, ValueError)


def test_truncated_png_gif_and_mp4_answer_422(tmp_path):
    image = np.random.default_rng(1).integers(0, 256, (48, 64, 3), dtype=np.uint8)
    gif = gif_bytes([(255, 0, 0), (0, 255, 0), (0, 0, 255)], [100] * 3)
    mp4 = mp4_bytes(tmp_path, 10, 20)
    for data in (png_bytes(image), gif, mp4):
        with pytest.raises(MediaError) as raised:
            decode_media(data[: len(data) * 2 // 3], limits=LIMITS)
        assert type(raised.value) is MediaError


def test_encode_png_round_trips():
    image = np.random.default_rng(2).integers(0, 256, (20, 30, 3), dtype=np.uint8)
    (frame,) = decode_media(encode_png(image), limits=LIMITS)
    assert np.array_equal(frame.image, image)
    with pytest.raises(ValueError, match="shape"):
        encode_png(np.zeros((4, 4), np.uint8))


def test_phone_photo_is_turned_upright_by_its_exif_orientation():
    image = Image.new("RGB", (40, 20), (0, 0, 255))
    exif = Image.Exif()
    exif[0x0112] = 6  # "rotate 90 degrees clockwise to view"
    buffer = io.BytesIO()
    image.save(buffer, format="JPEG", exif=exif)
    (frame,) = decode_media(buffer.getvalue(), content_type="image/jpeg", limits=LIMITS)
    assert frame.image.shape == (40, 20, 3)


def test_animated_webp_keeps_its_durations():
    frames = [Image.new("RGB", (16, 16), color) for color in ((255, 0, 0), (0, 255, 0))]
    buffer = io.BytesIO()
    frames[0].save(buffer, format="WEBP", save_all=True, append_images=frames[1:],
                   duration=[120, 300], lossless=True)
    decoded = decode_media(buffer.getvalue(), limits=LIMITS)
    assert [f.duration_ms for f in decoded] == [120, 300]
    assert [tuple(f.image[0, 0]) for f in decoded] == [(255, 0, 0), (0, 255, 0)]


def test_large_frames_are_scaled_down_by_area_average():
    image = np.zeros((400, 1000, 3), np.uint8)
    image[:, ::2] = 255  # one-pixel stripes average to mid grey, never alias to black or white
    frames = decode_media(png_bytes(image), limits=MediaLimits(max_side_px=250))
    assert frames[0].image.shape == (100, 250, 3)
    assert 120 <= frames[0].image.mean() <= 135


def test_media_that_decodes_to_too_many_bytes_answers_413(tmp_path):
    data = mp4_bytes(tmp_path, n_frames=20, fps=10)
    with pytest.raises(MediaError, match="MiB of frames") as refused:
        decode_media(data, limits=MediaLimits(max_total_bytes=64 * 48 * 3 * 5))
    assert isinstance(refused.value, MediaTooLarge)
