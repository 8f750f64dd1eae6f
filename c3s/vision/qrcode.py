"""The QR code a pixel phone (or an anchor poster) shows: payload format and rendering.

Every code is a QR version 1 symbol (21 x 21 modules), the smallest QR symbol, so it stays
decodable when a phone is only a few dozen image pixels wide in an observer's photo. Payloads use
only QR *alphanumeric* characters (upper-case letters, digits and ``:``), which pack 5.5 bits per
character, and are short enough that the symbol always gets error-correction level Q (25 % of the
codewords recoverable) or H when the payload is short enough (30 %).

Payload format (numbers in upper-case base 36, no leading zeros)::

    C3P:<scene>:<number>      a pixel:  "C3P:1Z:2S"   = scene 71, pixel 100
    C3A:<scene>:<key>         an anchor: "C3A:1Z:NW1" = scene 71, anchor "NW1"

Limits, chosen so that the longest payload (15 characters) still fits version 1 at level Q:

- scene ids and pixel numbers: 0 .. 36**4 - 1 (1,679,615);
- anchor keys: 1 to 6 characters from ``0-9 A-Z``.
"""

from __future__ import annotations

import io
import re
from dataclasses import dataclass
from typing import Literal

import numpy as np
import segno

MAX_SCENE_ID = 36**4 - 1
MAX_PIXEL_NUMBER = 36**4 - 1
MAX_ANCHOR_KEY_LEN = 6
PIXEL_PREFIX = "C3P"
ANCHOR_PREFIX = "C3A"

_BASE36 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ"
_B36 = r"(?:0|[1-9A-Z][0-9A-Z]{0,3})"
_PAYLOAD_RE = re.compile(
    rf"^(?:(?P<pixel>{PIXEL_PREFIX}):(?P<pscene>{_B36}):(?P<number>{_B36})"
    rf"|(?P<anchor>{ANCHOR_PREFIX}):(?P<ascene>{_B36}):(?P<key>[0-9A-Z]{{1,{MAX_ANCHOR_KEY_LEN}}}))$"
)
_ANCHOR_KEY_RE = re.compile(rf"^[0-9A-Z]{{1,{MAX_ANCHOR_KEY_LEN}}}$")


@dataclass(frozen=True)
class Payload:
    """What a C3S code says: which scene, and which pixel or anchor of it."""

    scene_id: int
    kind: Literal["pixel", "anchor"]
    number: int | None = None
    anchor_key: str | None = None


def _base36(value: int) -> str:
    if value == 0:
        return "0"
    digits = []
    while value:
        value, digit = divmod(value, 36)
        digits.append(_BASE36[digit])
    return "".join(reversed(digits))


def _check_int(name: str, value: int, maximum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int | np.integer):
        raise ValueError(f"{name} must be an integer, got {value!r}")
    if not 0 <= int(value) <= maximum:
        raise ValueError(f"{name} must be between 0 and {maximum}, got {value}")
    return int(value)


def pixel_payload(scene_id: int, number: int) -> str:
    """Payload of pixel ``number`` of scene ``scene_id``, e.g. ``"C3P:1Z:2S"``."""
    scene_id = _check_int("scene_id", scene_id, MAX_SCENE_ID)
    number = _check_int("pixel number", number, MAX_PIXEL_NUMBER)
    return f"{PIXEL_PREFIX}:{_base36(scene_id)}:{_base36(number)}"


def anchor_payload(scene_id: int, anchor_key: str) -> str:
    """Payload of the reference code ``anchor_key`` (1-6 characters of 0-9 A-Z) of a scene."""
    scene_id = _check_int("scene_id", scene_id, MAX_SCENE_ID)
    if not isinstance(anchor_key, str) or not _ANCHOR_KEY_RE.match(anchor_key):
        raise ValueError(
            f"anchor key must be 1 to {MAX_ANCHOR_KEY_LEN} characters of 0-9 and A-Z, "
            f"got {anchor_key!r}"
        )
    return f"{ANCHOR_PREFIX}:{_base36(scene_id)}:{anchor_key}"


def parse_payload(text: str) -> Payload | None:
    """Read a decoded payload; ``None`` when it is not a C3S payload (a foreign code)."""
    if not isinstance(text, str):
        return None
    match = _PAYLOAD_RE.match(text)
    if match is None:
        return None
    if match["pixel"]:
        return Payload(
            scene_id=int(match["pscene"], 36), kind="pixel", number=int(match["number"], 36)
        )
    return Payload(scene_id=int(match["ascene"], 36), kind="anchor", anchor_key=match["key"])


def _make(payload: str) -> segno.QRCode:
    if not isinstance(payload, str) or not payload:
        raise ValueError("payload must be a non-empty string")
    try:
        # boost_error raises the level from M to Q or H whenever the payload still fits version 1.
        return segno.make_qr(payload, version=1, error="M", boost_error=True)
    except segno.DataOverflowError as exc:
        raise ValueError(
            f"payload {payload!r} does not fit a version 1 QR code at error level M"
        ) from exc


def qr_modules(payload: str) -> np.ndarray:
    """The symbol's modules as a bool array of shape (21, 21), True = dark, no quiet zone."""
    matrix = np.array(_make(payload).matrix, dtype=np.uint8)
    return matrix.astype(bool)


def render_qr_png(payload: str, *, module_px: int = 10, quiet_modules: int = 4) -> bytes:
    """A black-on-white PNG of the code, ``module_px`` pixels per module, quiet zone included."""
    if module_px < 1 or quiet_modules < 0:
        raise ValueError("module_px must be >= 1 and quiet_modules >= 0")
    buffer = io.BytesIO()
    _make(payload).save(buffer, kind="png", scale=module_px, border=quiet_modules)
    return buffer.getvalue()


def render_qr_svg(payload: str, *, quiet_modules: int = 4) -> str:
    """A scalable SVG of the code (viewBox in modules, no fixed size), quiet zone included."""
    if quiet_modules < 0:
        raise ValueError("quiet_modules must be >= 0")
    buffer = io.BytesIO()
    _make(payload).save(
        buffer, kind="svg", border=quiet_modules, xmldecl=False, omitsize=True, light="#fff"
    )
    return buffer.getvalue().decode("utf-8")
