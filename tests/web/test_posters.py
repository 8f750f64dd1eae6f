"""Posters: the join poster and the reference-anchor posters, rasterised as a printer would and
read back with plain zxing-cpp; their printed text; who may print them."""

from __future__ import annotations

import io

import cairosvg
import numpy as np
import pypdfium2
import pytest
import zxingcpp
from PIL import Image

from c3s import posters
from c3s.vision.qrcode import anchor_payload
from tests.helpers.factories import auth, make_scene, make_user

ANCHORS = [{"key": "A1", "x": 0, "y": 0}, {"key": "A2", "x": 120, "y": 0},
           {"key": "A3", "x": 120, "y": 40}, {"key": "NW9", "x": 0, "y": 40}]


@pytest.fixture()
def scene(client, session):
    _, token = make_user(session, "scene_admin")
    return make_scene(client, token, name="North stand", width=120.0, height=40.0, anchors=ANCHORS), token


def _pdf_pages(data: bytes, dpi: float) -> list[tuple[np.ndarray, str]]:
    document = pypdfium2.PdfDocument(data)
    pages = []
    for page in document:
        gray = np.asarray(page.render(scale=dpi / 72, grayscale=True).to_pil().convert("L"))
        pages.append((gray, page.get_textpage().get_text_range()))
    return pages


def _decode(gray: np.ndarray) -> list[str]:
    return [r.text for r in zxingcpp.read_barcodes(gray)]


def test_join_poster_pdf_and_svg_carry_the_phone_link(client, scene):
    scene, token = scene
    link = f"http://localhost/s/{scene['id']}"
    pdf = client.get(f"/api/scenes/{scene['id']}/posters/join", headers=auth(token))
    assert pdf.status_code == 200 and pdf.mimetype == "application/pdf"
    [(gray, text)] = _pdf_pages(pdf.data, dpi=100)
    assert abs(gray.shape[0] - 297 / 25.4 * 100) <= 1 and abs(gray.shape[1] - 210 / 25.4 * 100) <= 1  # A4
    assert _decode(gray) == [link]
    assert "North stand" in text and "camera" in text and link in text

    svg = client.get(f"/api/scenes/{scene['id']}/posters/join?format=svg&size=a3", headers=auth(token))
    assert svg.status_code == 200 and svg.mimetype == "image/svg+xml"
    assert b'width="297mm" height="420mm"' in svg.data
    png = cairosvg.svg2png(bytestring=svg.data, output_width=1200)
    assert _decode(np.asarray(Image.open(io.BytesIO(png)).convert("L"))) == [link]


def test_anchor_posters_print_each_code_with_its_coordinates(client, scene):
    scene, token = scene
    answer = client.get(f"/api/scenes/{scene['id']}/posters/anchors?size=a3", headers=auth(token))
    assert answer.status_code == 200 and answer.mimetype == "application/pdf"
    pages = _pdf_pages(answer.data, dpi=60)
    assert len(pages) == 4
    for anchor, (gray, text) in zip(ANCHORS, pages, strict=True):
        assert _decode(gray) == [anchor_payload(scene["id"], anchor["key"])]
        assert f"x = {anchor['x']} m, y = {anchor['y']} m" in text
        assert f"Anchor {anchor['key']}" in text

    one = client.get(f"/api/scenes/{scene['id']}/posters/anchors?format=svg&key=nw9", headers=auth(token))
    assert one.status_code == 200 and one.mimetype == "image/svg+xml"
    assert b"x = 0 m, y = 40 m" in one.data
    png = cairosvg.svg2png(bytestring=one.data, output_width=800)
    assert _decode(np.asarray(Image.open(io.BytesIO(png)).convert("L"))) == [anchor_payload(scene["id"], "NW9")]


@pytest.mark.parametrize("size", ["a4", "a0"])
def test_an_anchor_code_reads_at_the_distance_the_poster_promises(client, scene, size):
    """Rendered so one module covers the decoder's 3 image pixels (the photo taken from the
    printed distance), the code still decodes; much smaller, it does not."""
    scene, token = scene
    pdf = client.get(f"/api/scenes/{scene['id']}/posters/anchors?key=A2&size={size}", headers=auth(token)).data
    module_mm = posters.anchor_module_mm(size)
    promised = posters.readable_distance_m(module_mm)
    [(_, text)] = _pdf_pages(pdf, dpi=10)
    assert f"from up to {promised:.0f} m" in text
    dpi_at_distance = posters.MIN_PX_PER_MODULE / module_mm * 25.4
    [(gray, _)] = _pdf_pages(pdf, dpi=dpi_at_distance)
    assert _decode(gray) == [anchor_payload(scene["id"], "A2")]
    [(far, _)] = _pdf_pages(pdf, dpi=dpi_at_distance / 3)
    assert _decode(far) == []


def test_distance_picks_the_page_and_bad_requests_are_clear_4xx(client, scene, session):
    scene, token = scene
    url = f"/api/scenes/{scene['id']}/posters/anchors"
    picked = client.get(f"{url}?distance_m=12", headers=auth(token))
    assert picked.status_code == 200 and 'anchors-a2.pdf' in picked.headers["Content-Disposition"]
    too_far = client.get(f"{url}?distance_m=80", headers=auth(token))
    assert too_far.status_code == 422 and "zoom in" in str(too_far.json["detail"])
    # What the scene holds (more than one anchor, none named ZZ) refuses these: 409 and 404.
    assert client.get(f"{url}?format=svg", headers=auth(token)).status_code == 409
    assert client.get(f"{url}?key=ZZ", headers=auth(token)).status_code == 404
    assert client.get(f"{url}?format=png", headers=auth(token)).status_code == 422
    assert client.get(f"/api/scenes/{scene['id']}/posters/join?size=a0", headers=auth(token)).status_code == 422
    bare = make_scene(client, token, name="Bare")
    empty = client.get(f"/api/scenes/{bare['id']}/posters/anchors", headers=auth(token))
    assert empty.status_code == 409 and "no reference anchors" in empty.json["message"]


def test_observers_of_the_scene_may_print_and_nobody_else(client, scene, session):
    scene, _ = scene
    _, observer = make_user(session, ("observer", scene["id"]))
    _, stranger = make_user(session)
    _, guest = make_user(session, guest=True)
    for path in ("join", "anchors"):
        url = f"/api/scenes/{scene['id']}/posters/{path}"
        assert client.get(url, headers=auth(observer)).status_code == 200
        assert client.get(url, headers=auth(stranger)).status_code == 403
        assert client.get(url, headers=auth(guest)).status_code == 403
        assert client.get(url).status_code == 401
