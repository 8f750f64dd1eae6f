"""Printable posters of a scene: the join poster (the phone link as a QR code and what to do) and
one reference-anchor poster per anchor (its code and scene coordinates). A poster is a list of
pages of boxes and text lines in millimetres, written out as SVG or PDF by the same drawing.

How big an anchor code must be. The QR decoder reads a version 1 code reliably from about 3
image pixels per module (`c3s bench qr`: 99.6 % at 3 px, 100 % at 6 px). A phone photo is about
4,000 pixels across a 70 degree view, so at distance d it spends 4000 / (2 d tan 35°) = 2,857 / d
pixels per metre, and a module must be at least 3 d / 2,857 = 1.05 mm per metre of distance:
21 modules plus the 4-module quiet zone on each side make a code 29 modules (30.5 mm per metre)
wide. An A4 sheet (a 188 mm code, 6.5 mm modules) is read from 6 m, A3 (9.5 mm) from 9 m, A2
from 13 m, A1 from 19 m, A0 (28 mm) from 27 m; zooming in multiplies the distance by the zoom.
"""

from __future__ import annotations

import math
import textwrap
import zlib
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import segno

from c3s.vision.qrcode import anchor_payload, qr_modules

# ISO 216 portrait sizes, millimetres.
PAGE_SIZES_MM = {"a4": (210.0, 297.0), "a3": (297.0, 420.0), "a2": (420.0, 594.0),
                 "a1": (594.0, 841.0), "a0": (841.0, 1189.0)}
JOIN_SIZES = ("a4", "a3")  # the join poster is read from arm's length: no larger page
MARGIN_MM = 10.0
QUIET_MODULES = 4
MIN_PX_PER_MODULE = 3.0          # what the QR decoder needs (see the module docstring)
CAMERA_PX = 4000                 # a 12 MP phone photo's width
CAMERA_HFOV_DEG = 70.0           # a phone's main camera at 1x zoom
_MM_PER_PT = 25.4 / 72.0


@dataclass(frozen=True)
class Box:
    x_mm: float
    y_mm: float
    w_mm: float
    h_mm: float


@dataclass(frozen=True)
class Line:
    x_mm: float
    y_mm: float                   # the text's baseline
    size_mm: float
    text: str
    bold: bool = False


@dataclass
class Page:
    width_mm: float
    height_mm: float
    boxes: list[Box] = field(default_factory=list)   # black on the white page
    lines: list[Line] = field(default_factory=list)

    def code(self, modules: np.ndarray, x_mm: float, y_mm: float, module_mm: float) -> None:
        """Draw a QR symbol (True = dark) with its top-left module at (x, y); runs of dark
        modules in a row are one box, so a code costs a few dozen boxes."""
        for row, values in enumerate(modules):
            col = 0
            while col < len(values):
                if not values[col]:
                    col += 1
                    continue
                start = col
                while col < len(values) and values[col]:
                    col += 1
                self.boxes.append(Box(x_mm + start * module_mm, y_mm + row * module_mm,
                                      (col - start) * module_mm, module_mm))

    def text(self, x_mm: float, y_mm: float, size_mm: float, text: str, *, bold: bool = False,
             width_mm: float | None = None) -> float:
        """Write `text` wrapped to `width_mm`; returns the y below the last line."""
        chars = max(8, int((width_mm or self.width_mm - x_mm - MARGIN_MM) / (0.55 * size_mm)))
        for line in textwrap.wrap(text, chars) or [""]:
            y_mm += size_mm
            self.lines.append(Line(x_mm, y_mm, size_mm, line, bold))
            y_mm += 0.35 * size_mm
        return y_mm


def page_size(size: str) -> tuple[float, float]:
    try:
        return PAGE_SIZES_MM[size]
    except KeyError:
        raise ValueError(f"unknown page size {size!r}; use one of {', '.join(PAGE_SIZES_MM)}") from None


def readable_distance_m(module_mm: float, *, zoom: float = 1.0) -> float:
    """The farthest distance (m) at which a phone photo still has MIN_PX_PER_MODULE per module."""
    px_per_m = CAMERA_PX / (2.0 * math.tan(math.radians(CAMERA_HFOV_DEG / 2)))
    return module_mm / 1000.0 * px_per_m * zoom / MIN_PX_PER_MODULE


def max_readable_distance_m() -> float:
    """How far the largest page's anchor code is read from (at 1x zoom)."""
    return readable_distance_m(anchor_module_mm(list(PAGE_SIZES_MM)[-1]))


def size_for_distance(distance_m: float) -> str:
    """The smallest ISO page whose anchor code is read from `distance_m` at 1x zoom."""
    for size in PAGE_SIZES_MM:
        if readable_distance_m(anchor_module_mm(size)) >= distance_m:
            return size
    raise ValueError(
        f"at {distance_m:g} m a code needs {1000 * distance_m / readable_distance_m(1000.0):.0f} mm "
        f"modules, more than an A0 poster holds (read from {readable_distance_m(anchor_module_mm('a0')):.0f} m); "
        "zoom in, or photograph from closer")


def anchor_module_mm(size: str) -> float:
    width, height = page_size(size)
    side = min(width - 2 * MARGIN_MM, height - 2 * MARGIN_MM - 0.3 * height)
    return side / (21 + 2 * QUIET_MODULES)


def anchor_page(scene_id: int, scene_name: str, units: str, anchor: dict, size: str) -> Page:
    """One anchor's poster: its code as large as the page allows, key and scene coordinates."""
    width, height = page_size(size)
    page = Page(width, height)
    module = anchor_module_mm(size)
    side = module * (21 + 2 * QUIET_MODULES)
    left = (width - side) / 2
    page.code(qr_modules(anchor_payload(scene_id, anchor["key"])), left + QUIET_MODULES * module,
              MARGIN_MM + QUIET_MODULES * module, module)
    scale = width / 210.0
    y = MARGIN_MM + side
    y = page.text(MARGIN_MM, y, 22 * scale, f"Anchor {anchor['key']}", bold=True)
    y = page.text(MARGIN_MM, y, 11 * scale,
                  f"x = {anchor['x']:g} {units}, y = {anchor['y']:g} {units}", bold=True)
    y = page.text(MARGIN_MM, y + 2 * scale, 4.2 * scale,
                  f"Reference code of scene {scene_id} ({scene_name}). Fix this sheet flat, facing "
                  f"the observers, with the centre of the code exactly at x = {anchor['x']:g}, "
                  f"y = {anchor['y']:g} on the scene plan. Keep at least four anchors in every photo.")
    page.text(MARGIN_MM, y + 1 * scale, 3.6 * scale,
              f"Module {module:.1f} mm: a 12 MP phone photo reads it from up to "
              f"{readable_distance_m(module):.0f} m at 1x zoom, {readable_distance_m(module, zoom=3):.0f} m "
              "at 3x.")
    return page


def anchor_pages(scene_id: int, scene_name: str, units: str, anchors: Sequence[dict], *,
                 size: str = "a4") -> list[Page]:
    if not anchors:
        raise ValueError("the scene has no reference anchors yet: add them (KEY x y) to the scene first")
    return [anchor_page(scene_id, scene_name, units, a, size) for a in anchors]


def join_page(scene_id: int, scene_name: str, link: str, *, size: str = "a4") -> Page:
    """The join poster: a title, the phone link as a large QR code, three steps, the link."""
    width, height = page_size(size)
    page = Page(width, height)
    scale = width / 210.0
    y = page.text(MARGIN_MM, MARGIN_MM, 13 * scale, "Be a pixel of the big screen", bold=True)
    y = page.text(MARGIN_MM, y, 7 * scale, scene_name)
    modules = np.array(segno.make_qr(link, error="M").matrix, dtype=bool)
    module = min(150 * scale, height * 0.5) / (modules.shape[0] + 2 * QUIET_MODULES)
    side = module * (modules.shape[0] + 2 * QUIET_MODULES)
    page.code(modules, (width - side) / 2 + QUIET_MODULES * module, y + QUIET_MODULES * module, module)
    y += side + 2 * scale
    for step in ("1. Point your phone's camera at the code and open the link. No app needed.",
                 "2. Turn the screen brightness up and keep the page open.",
                 "3. Do what your screen asks; when the show starts your phone lights up as one "
                 "pixel of the picture."):
        y = page.text(MARGIN_MM, y, 5.5 * scale, step)
    page.text(MARGIN_MM, y + 2 * scale, 5 * scale, link, bold=True)
    return page


# ---------------------------------------------------------------- writers


def _xml(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;").replace('"', "&quot;")


def to_svg(page: Page) -> bytes:
    """The page as a standalone SVG sized in millimetres (prints at its true size)."""
    w, h = page.width_mm, page.height_mm
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{w:g}mm" height="{h:g}mm" '
             f'viewBox="0 0 {w:g} {h:g}">', f'<rect width="{w:g}" height="{h:g}" fill="#fff"/>',
             '<path fill="#000" d="']
    parts += [f"M{b.x_mm:.3f} {b.y_mm:.3f}h{b.w_mm:.3f}v{b.h_mm:.3f}h{-b.w_mm:.3f}z" for b in page.boxes]
    parts.append('"/>')
    for line in page.lines:
        weight = ' font-weight="bold"' if line.bold else ""
        parts.append(f'<text x="{line.x_mm:.2f}" y="{line.y_mm:.2f}" font-size="{line.size_mm:.2f}" '
                     f'font-family="Helvetica, Arial, sans-serif"{weight}>{_xml(line.text)}</text>')
    parts.append("</svg>")
    return "\n".join(parts).encode("utf-8")


def _pdf_text(text: str) -> str:
    latin = text.encode("latin-1", "replace").decode("latin-1")
    return latin.replace("\\", "\\\\").replace("(", "\\(").replace(")", "\\)")


def _pdf_stream(page: Page) -> bytes:
    pt = 1 / _MM_PER_PT
    h = page.height_mm
    ops = ["0 g"]
    ops += [f"{b.x_mm * pt:.3f} {(h - b.y_mm - b.h_mm) * pt:.3f} {b.w_mm * pt:.3f} {b.h_mm * pt:.3f} re"
            for b in page.boxes]
    ops.append("f")
    for line in page.lines:
        font = "/F2" if line.bold else "/F1"
        ops.append(f"BT {font} {line.size_mm * pt:.2f} Tf {line.x_mm * pt:.2f} {(h - line.y_mm) * pt:.2f} Td "
                   f"({_pdf_text(line.text)}) Tj ET")
    return zlib.compress("\n".join(ops).encode("latin-1"))


def to_pdf(pages: Sequence[Page]) -> bytes:
    """The pages as one PDF (the base-14 Helvetica fonts, so nothing is embedded)."""
    objects: list[bytes] = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"",  # the page tree, filled in below
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica /Encoding /WinAnsiEncoding >>",
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica-Bold /Encoding /WinAnsiEncoding >>",
    ]
    kids = []
    for page in pages:
        stream = _pdf_stream(page)
        objects.append(b"<< /Length %d /Filter /FlateDecode >>\nstream\n" % len(stream) + stream
                       + b"\nendstream")
        w, h = page.width_mm / _MM_PER_PT, page.height_mm / _MM_PER_PT
        objects.append((f"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 {w:.2f} {h:.2f}] "
                        f"/Resources << /Font << /F1 3 0 R /F2 4 0 R >> >> /Contents {len(objects)} 0 R >>")
                       .encode())
        kids.append(f"{len(objects)} 0 R")
    objects[1] = f"<< /Type /Pages /Kids [{' '.join(kids)}] /Count {len(kids)} >>".encode()
    out = bytearray(b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n")
    offsets = []
    for number, body in enumerate(objects, start=1):
        offsets.append(len(out))
        out += b"%d 0 obj\n" % number + body + b"\nendobj\n"
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1)
    out += b"".join(b"%010d 00000 n \n" % offset for offset in offsets)
    out += b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (len(objects) + 1, xref)
    return bytes(out)
