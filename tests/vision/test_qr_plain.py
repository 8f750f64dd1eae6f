"""The crowd decoder never reads less than plain zxing-cpp: inverted codes, tiny cut-outs,
blurred and tilted codes, each made here with segno."""

from __future__ import annotations

import io

import cv2
import numpy as np
import pytest
import segno
import zxingcpp

from c3s.vision.qr import decode_qr_codes

TEXT = "C3S-7-1234"


def code_image(version: int, border: int = 4, scale: int = 10) -> np.ndarray:
    buffer = io.BytesIO()
    segno.make_qr(TEXT, version=version, error="m").save(buffer, kind="png", scale=scale, border=border)
    return cv2.imdecode(np.frombuffer(buffer.getvalue(), np.uint8), cv2.IMREAD_GRAYSCALE)


def plain(image: np.ndarray) -> set[str]:
    return {b.text for b in zxingcpp.read_barcodes(image) if b.valid}


def ours(image: np.ndarray) -> set[str]:
    return {d.payload for d in decode_qr_codes(image)}


def tilted(image: np.ndarray, tilt: float, blur: float) -> np.ndarray:
    h, w = image.shape
    src = np.float32([[0, 0], [w, 0], [w, h], [0, h]])
    dst = np.float32([[w * tilt, h * tilt / 2], [w * (1 - tilt * 0.3), 0], [w, h], [0, h * (1 - tilt * 0.2)]])
    warped = cv2.warpPerspective(image, cv2.getPerspectiveTransform(src, dst), (w, h), borderValue=255)
    return cv2.GaussianBlur(warped, (0, 0), blur) if blur else warped


def test_a_light_on_dark_code_is_read():
    inverted = 255 - code_image(1)
    assert ours(inverted) == {TEXT}
    # On a BGR photo with a dark surround, too.
    photo = cv2.cvtColor(cv2.copyMakeBorder(inverted, 200, 200, 300, 300, cv2.BORDER_CONSTANT, value=0),
                         cv2.COLOR_GRAY2BGR)
    assert ours(photo) == {TEXT}


@pytest.mark.parametrize("size", [41, 66])
@pytest.mark.parametrize("version", [1, 3])
def test_a_tiny_cut_out_is_read(size, version):
    small = cv2.GaussianBlur(cv2.resize(code_image(version, border=1), (size, size),
                                        interpolation=cv2.INTER_AREA), (0, 0), 0.6)
    assert ours(small) == {TEXT}


@pytest.mark.parametrize("tilt", [0.0, 0.2, 0.35])
@pytest.mark.parametrize("blur", [0.0, 1.5, 3.0])
def test_whatever_plain_zxing_reads_is_read(tilt, blur):
    for version in (1, 4):
        image = tilted(code_image(version), tilt, blur)
        assert plain(image) <= ours(image), (version, tilt, blur)


def test_a_tilted_blurred_small_code_plain_zxing_misses_is_read_upscaled():
    image = tilted(code_image(1), 0.35, 1.5)
    assert plain(image) == set()
    assert ours(image) == {TEXT}
