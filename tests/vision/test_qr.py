"""The crowd-photo QR decoder and photo loading, on small synthetic photos."""

from __future__ import annotations

import io

import cv2
import numpy as np
import pytest
from PIL import Image

from c3s.vision.crowd import render_crowd
from c3s.vision.qr import QRDetection, decode_qr_codes, load_photo
from c3s.vision.qrcode import parse_payload, pixel_payload, render_qr_png


def small(seed=1, **kw):
    args = dict(seed=seed, width=1200, height=900, cols=6, rows=5, module_px=3.0)
    args.update(kw)
    return render_crowd(**args)


def check(photo, detections, min_recall):
    """Recall over fully visible codes; every payload real and reported at its own phone."""
    truth = {p.payload: p for p in photo.phones}
    for d in detections:
        assert isinstance(d, QRDetection)
        assert d.payload in truth, f"wrong payload {d.payload!r}"
        phone = truth[d.payload]
        assert np.hypot(d.x_img - phone.x_img, d.y_img - phone.y_img) < 2.0
        assert d.corners.shape == (4, 2)
        assert d.module_px == pytest.approx(phone.module_px, rel=0.15)
    visible = {p.payload for p in photo.visible_phones}
    found = {d.payload for d in detections}
    assert len(found & visible) >= min_recall * len(visible), sorted(visible - found)
    return found


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_small_blurred_codes_are_decoded(seed):
    photo = small(seed)
    check(photo, decode_qr_codes(photo.image), min_recall=0.96)  # at most one miss in ~28


def test_search_beats_plain_zxing_on_small_codes():
    photos = [small(seed) for seed in (4, 5, 6)]
    plain = sum(len({d.payload for d in decode_qr_codes(p.image, search=False)}
                    & {q.payload for q in p.visible_phones}) for p in photos)
    ours = sum(len(check(p, decode_qr_codes(p.image), min_recall=0.9)) for p in photos)
    assert ours > plain


def test_mixed_sizes_and_anchors():
    photo = small(7, module_px=(2.5, 5.0), n_anchors=5, cols=5, rows=4)
    found = check(photo, decode_qr_codes(photo.image), min_recall=0.95)
    assert sum(parse_payload(p).kind == "anchor" for p in found) >= 4


def test_corners_are_in_reading_order():
    photo = small(8, module_px=5.0, blur_sigma=(0.3, 0.3), phone_blur_sigma=(0, 0))
    truth = {p.payload: p for p in photo.phones}
    for d in decode_qr_codes(photo.image):
        assert np.abs(d.corners - truth[d.payload].corners_img).max() < 3.0


def test_codes_of_another_scene_are_decoded_and_told_apart():
    photo = small(9, module_px=4.0, n_foreign=4)
    scenes = {parse_payload(d.payload).scene_id for d in decode_qr_codes(photo.image)}
    assert scenes == {photo.scene_id, photo.scene_id + 1}


def test_photo_without_codes():
    rng = np.random.default_rng(0)
    clutter = cv2.GaussianBlur(rng.integers(0, 256, (900, 1200, 3), dtype=np.uint8), (0, 0), 2)
    assert decode_qr_codes(clutter) == []
    assert decode_qr_codes(np.zeros((50, 50), np.uint8)) == []


def test_grayscale_rgba_16bit_and_float_inputs():
    photo = small(10, module_px=4.0)
    bgr = photo.image
    gray = cv2.cvtColor(bgr, cv2.COLOR_BGR2GRAY)
    expected = {d.payload for d in decode_qr_codes(bgr)}
    assert len(expected) >= 20
    for variant in (gray, gray[:, :, None], cv2.cvtColor(bgr, cv2.COLOR_BGR2BGRA),
                    gray.astype(np.uint16) * 257, gray.astype(np.float32) / 255.0):
        assert {d.payload for d in decode_qr_codes(variant)} == expected


@pytest.mark.parametrize("bad", [np.zeros((10, 10, 2), np.uint8), np.zeros((0, 5), np.uint8),
                                 np.zeros((10, 10), np.int64), "not an array"])
def test_unusable_arrays_raise_value_error(bad):
    with pytest.raises(ValueError):
        decode_qr_codes(bad)


# --- load_photo -----------------------------------------------------------------------------

def encode(image: Image.Image, fmt: str, **kw) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, fmt, **kw)
    return buffer.getvalue()


def code_image(payload="C3P:1:2") -> Image.Image:
    return Image.open(io.BytesIO(render_qr_png(payload, module_px=6))).convert("RGB")


def test_load_photo_gives_bgr_and_decodes():
    arr = load_photo(encode(code_image(), "JPEG", quality=92), max_pixels=10**6)
    assert arr.dtype == np.uint8 and arr.ndim == 3 and arr.shape[2] == 3
    assert [d.payload for d in decode_qr_codes(arr)] == ["C3P:1:2"]


def test_load_photo_keeps_colour_order_bgr():
    red = Image.new("RGB", (8, 8), (255, 0, 0))
    arr = load_photo(encode(red, "PNG"), max_pixels=100)
    assert tuple(arr[0, 0]) == (0, 0, 255)


def test_load_photo_applies_exif_orientation():
    image = code_image()
    wide = Image.new("RGB", (image.width * 2, image.height), "white")
    wide.paste(image, (0, 0))
    exif = Image.Exif()
    exif[0x0112] = 6  # stored rotated: display needs a 90 degree turn clockwise
    data = encode(wide, "JPEG", exif=exif.tobytes())
    arr = load_photo(data, max_pixels=10**6)
    assert arr.shape[:2] == (wide.width, wide.height)  # upright: tall, not wide
    (d,) = decode_qr_codes(arr)
    assert d.y_img < arr.shape[0] / 2  # the code was on the left, now it is on top


@pytest.mark.parametrize("mode", ["L", "RGBA", "LA", "P", "I;16", "CMYK"])
def test_load_photo_converts_modes(mode):
    image = code_image()
    if mode == "I;16":
        gray = np.asarray(image.convert("L")).astype(np.uint16) * 257
        converted = Image.fromarray(gray)
        data = encode(converted, "PNG")
        assert Image.open(io.BytesIO(data)).mode.startswith("I")
    else:
        converted = image.convert(mode)
        data = encode(converted, "TIFF" if mode == "CMYK" else "PNG")
    arr = load_photo(data, max_pixels=10**6)
    assert arr.shape[2] == 3
    assert [d.payload for d in decode_qr_codes(arr)] == ["C3P:1:2"]


def test_load_photo_rejects_over_limit_before_decoding(monkeypatch):
    data = encode(Image.new("RGB", (3000, 2000), "white"), "PNG")
    loaded = []
    monkeypatch.setattr(Image.Image, "load", lambda self: loaded.append(1))
    with pytest.raises(ValueError, match="over the limit of 5000000 pixels"):
        load_photo(data, max_pixels=5_000_000)
    assert loaded == []


def test_load_photo_rejects_decompression_bombs():
    # a header claiming 100k x 100k pixels (PIL refuses at open) must be a clean ValueError
    data = encode(Image.new("L", (1, 1)), "PNG")
    bomb = data[:16] + (100_000).to_bytes(4, "big") + (100_000).to_bytes(4, "big") + data[24:]
    with pytest.raises(ValueError):
        load_photo(bomb, max_pixels=10**12)


@pytest.mark.parametrize("data", [b"", b"not an image at all", b"%PDF-1.4 ...", b"\x89PNG\r\n\x1a\n"])
def test_load_photo_rejects_non_images(data):
    with pytest.raises(ValueError):
        load_photo(data, max_pixels=10**6)


def test_load_photo_rejects_corrupt_jpeg():
    data = encode(code_image(), "JPEG")
    with pytest.raises(ValueError, match="corrupt or truncated"):
        load_photo(data[: len(data) // 2], max_pixels=10**6)


def test_a_rendered_phone_code_reads_back_as_its_pixel():
    payload = pixel_payload(12, 3456)
    arr = load_photo(encode(code_image(payload), "PNG"), max_pixels=10**6)
    (d,) = decode_qr_codes(arr)
    assert parse_payload(d.payload).number == 3456
