"""Payload format and rendering of the code a pixel phone shows."""

from __future__ import annotations

import io

import numpy as np
import pytest
import zxingcpp
from PIL import Image

from c3s.vision.qrcode import (
    MAX_ANCHOR_KEY_LEN,
    MAX_PIXEL_NUMBER,
    MAX_SCENE_ID,
    Payload,
    anchor_payload,
    parse_payload,
    pixel_payload,
    qr_modules,
    render_qr_png,
    render_qr_svg,
)

LARGEST = [
    pixel_payload(MAX_SCENE_ID, MAX_PIXEL_NUMBER),
    anchor_payload(MAX_SCENE_ID, "Z" * MAX_ANCHOR_KEY_LEN),
]


def read_png(data: bytes) -> list:
    image = np.asarray(Image.open(io.BytesIO(data)).convert("L"))
    return zxingcpp.read_barcodes(image, formats=zxingcpp.BarcodeFormat.QRCode)


def test_pixel_payload_round_trips():
    for scene_id, number in [(0, 0), (1, 1), (71, 100), (MAX_SCENE_ID, MAX_PIXEL_NUMBER)]:
        text = pixel_payload(scene_id, number)
        assert parse_payload(text) == Payload(scene_id=scene_id, kind="pixel", number=number)


def test_anchor_payload_round_trips():
    text = anchor_payload(71, "NW1")
    assert text == "C3A:1Z:NW1"
    assert parse_payload(text) == Payload(scene_id=71, kind="anchor", anchor_key="NW1")


def test_payloads_are_compact_and_alphanumeric():
    assert pixel_payload(71, 100) == "C3P:1Z:2S"
    alphanumeric = set("0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ $%*+-./:")
    for text in LARGEST:
        assert set(text) <= alphanumeric
        assert len(text) <= 16  # fits version 1 at level Q


@pytest.mark.parametrize("payload", LARGEST + ["C3P:1:1"])
def test_largest_payloads_still_make_version_1_with_error_correction(payload):
    modules = qr_modules(payload)
    assert modules.shape == (21, 21) and modules.dtype == bool
    (barcode,) = read_png(render_qr_png(payload, module_px=4))
    assert barcode.text == payload
    assert barcode.extra["Version"] == "1"
    assert barcode.ec_level in ("Q", "H")


@pytest.mark.parametrize("bad", [(-1, 0), (MAX_SCENE_ID + 1, 0), (1, MAX_PIXEL_NUMBER + 1),
                                 (1.5, 1), (True, 1), ("1", 1)])
def test_out_of_range_ids_are_refused(bad):
    with pytest.raises(ValueError):
        pixel_payload(*bad)


@pytest.mark.parametrize("key", ["", "nw", "A:B", "TOOLONG7", "É"])
def test_bad_anchor_keys_are_refused(key):
    with pytest.raises(ValueError, match="anchor key"):
        anchor_payload(1, key)


@pytest.mark.parametrize("text", ["", "hello", "https://example.org/C3P:1:2", "C3P:1", "C3P:1:2:3",
                                  "C3P:01:2", "C3X:1:2", "c3p:1:2", "C3P:1:ZZZZZ", "C3A:1:",
                                  "C3P:-1:2", None, 42])
def test_foreign_payloads_parse_to_none(text):
    assert parse_payload(text) is None


def test_png_has_the_quiet_zone_and_scale_asked_for():
    data = render_qr_png("C3P:1:2", module_px=10, quiet_modules=4)
    image = Image.open(io.BytesIO(data))
    assert image.size == (290, 290)
    pixels = np.asarray(image.convert("L"))
    assert pixels[:40].min() == 255 and pixels[:, :40].min() == 255  # white quiet zone
    assert pixels[40:50, 40:50].max() == 0  # top-left finder starts right after it


def test_svg_scales_and_matches_the_modules():
    svg = render_qr_svg("C3P:1:2", quiet_modules=4)
    assert svg.startswith("<svg") and 'viewBox="0 0 29 29"' in svg
    assert "width=" not in svg.split(">")[0]  # no fixed size: the page scales it to the screen


def test_modules_match_the_png():
    payload = pixel_payload(3, 77)
    png = np.asarray(Image.open(io.BytesIO(render_qr_png(payload, module_px=1,
                                                         quiet_modules=0))).convert("L"))
    assert np.array_equal(png < 128, qr_modules(payload))


def test_too_long_payload_is_refused():
    with pytest.raises(ValueError, match="version 1"):
        qr_modules("X" * 40)
