"""Seeded synthetic crowd photos: a stand of phones on a seat grid, each showing its QR code.

Used by the tests, ``c3s bench qr`` and the demo. Everything is drawn from one
``numpy.random.Generator`` seeded by ``seed``, so the same arguments give the same photo.

Geometry. The stand is a plane in scene units (metres): seat ``(col, row)`` sits at
``x_scene = col * seat_pitch_x``, ``y_scene = row * seat_pitch_y`` (plus a little jitter: people
hold their phones where they like). A perspective camera maps that plane to the image through a
homography (the far rows look narrower); with ``curvature`` the stand is bent like the rows of a
bowl, so no single homography explains it. Each phone is a small tilted rectangle facing the camera:
in-plane rotation mostly near upright but for 30 % of phones anywhere in 0-360 degrees, its screen normal tilted up to ``tilt_max_deg`` away
from the camera axis. The code's size is drawn per phone (phones differ in size and distance):
``module_px`` is the square root of the code's image area divided by 21, so a tilted code's
modules are narrower than ``module_px`` along one axis and wider along the other.

Photometry: uneven lighting over the stand, phones of different brightness with glare, optical
blur, sensor noise and JPEG compression; clutter (people, seats, patterned clothes) around the
phones, and hands or heads occluding some codes. A code is ``visible`` when no pixel of it (quiet
zone of one module included) is covered by anything drawn in front of it.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field

import cv2
import numpy as np

from c3s.vision.qrcode import anchor_payload, pixel_payload, qr_modules

CODE_MODULES = 21
QUIET_MODULES = 3  # the phone page's margin around the code
SCREEN_MODULES = (CODE_MODULES + 2 * QUIET_MODULES, 33)  # white screen, width x height
BEZEL_MODULES = (1.0, 2.5)  # phone body around the screen: sides, ends


@dataclass(frozen=True)
class PhoneTruth:
    """Ground truth of one code drawn in a synthetic photo.

    ``x_img``/``y_img``: centre of the code in image pixels; ``corners_img``: shape (4, 2), the
    code's outer corners (its own top-left, top-right, bottom-right, bottom-left) in image pixels;
    ``x_scene``/``y_scene``: where it is on the stand, in scene units (metres).
    """

    payload: str
    kind: str  # "pixel", "anchor" or "foreign"
    x_img: float
    y_img: float
    corners_img: np.ndarray
    x_scene: float
    y_scene: float
    module_px: float
    tilt_deg: float
    visible: bool


@dataclass
class CrowdPhoto:
    """A synthetic photo (BGR uint8, shape (height, width, 3)) and the truth about its codes."""

    image: np.ndarray
    phones: list[PhoneTruth]
    scene_id: int
    seed: int
    scene_to_image: np.ndarray  # (3, 3) homography of the flat part of the stand
    curvature_px: float
    anchors: dict[str, tuple[float, float]] = field(default_factory=dict)

    @property
    def visible_phones(self) -> list[PhoneTruth]:
        return [p for p in self.phones if p.visible]

    def scene_to_image_points(self, scene_pts: np.ndarray) -> np.ndarray:
        """Map (N, 2) scene points to image pixels through the true (possibly curved) stand."""
        return _stand_to_image(np.asarray(scene_pts, float), self.scene_to_image,
                               self.curvature_px, self._x_span)

    _x_span: tuple[float, float] = (0.0, 1.0)


def _stand_to_image(pts: np.ndarray, h: np.ndarray, curvature_px: float,
                    x_span: tuple[float, float]) -> np.ndarray:
    out = cv2.perspectiveTransform(pts.reshape(-1, 1, 2), h).reshape(-1, 2)
    if curvature_px:
        lo, hi = x_span
        u = (pts[:, 0] - lo) / max(hi - lo, 1e-9) * 2 - 1  # -1 .. 1 across the stand
        out[:, 1] -= curvature_px * (1 - u**2)  # rows bulge up in the middle, like a bowl
    return out


def _smooth_field(rng: np.random.Generator, shape: tuple[int, int], cells: tuple[int, int],
                  lo: float, hi: float) -> np.ndarray:
    small = rng.uniform(lo, hi, size=(cells[1], cells[0])).astype(np.float32)
    return cv2.resize(small, (shape[1], shape[0]), interpolation=cv2.INTER_CUBIC)


def _draw_background(rng: np.random.Generator, height: int, width: int,
                     seat_pts: np.ndarray, pitch_px: float) -> np.ndarray:
    """Stand, seats and people: low-frequency colour, rows of seats, bodies and heads, patterns."""
    base = np.empty((height, width, 3), np.uint8)
    for c in range(3):
        base[:, :, c] = np.clip(_smooth_field(rng, (height, width), (6, 5), 40, 140), 0, 255)
    # seats and bodies behind each phone, drawn directly (cv2 primitives are fast).
    skin = np.array([[60, 90, 150], [90, 130, 190], [40, 60, 100], [120, 160, 210]])
    for x, y in seat_pts:
        r = pitch_px * rng.uniform(0.35, 0.5)
        colour = tuple(int(v) for v in rng.integers(0, 256, 3))
        cv2.ellipse(base, (int(x), int(y + r * 0.6)), (int(r), int(r * 1.3)),
                    float(rng.uniform(-20, 20)), 0, 360, colour, -1, cv2.LINE_AA)
        if rng.random() < 0.35:  # striped or checked clothes: false-positive bait
            step = int(rng.integers(3, 9))
            for k in range(-int(r), int(r), 2 * step):
                cv2.line(base, (int(x - r), int(y + r * 0.6 + k)),
                         (int(x + r), int(y + r * 0.6 + k)),
                         tuple(int(v) for v in rng.integers(0, 256, 3)), step)
        head = tuple(int(v) for v in skin[rng.integers(len(skin))])
        cv2.circle(base, (int(x + rng.normal(0, r * 0.3)), int(y - r * 0.5)),
                   int(r * 0.45), head, -1, cv2.LINE_AA)
    # text-like clutter (banners, shirts): small dark blobs and glyph-like bars
    n_glyphs = int(height * width / 4000)
    xs = rng.integers(0, width, n_glyphs)
    ys = rng.integers(0, height, n_glyphs)
    ws = rng.integers(2, 9, n_glyphs)
    hs = rng.integers(2, 14, n_glyphs)
    shade = rng.integers(0, 256, n_glyphs)
    for x, y, w, h, s in zip(xs, ys, ws, hs, shade, strict=True):
        cv2.rectangle(base, (int(x), int(y)), (int(x + w), int(y + h)), (int(s),) * 3, -1)
    return base


def _phone_patch(modules: np.ndarray, s: int, screen_level: float, dark_level: float,
                 glare: float, glare_dir: float) -> tuple[np.ndarray, tuple[float, float]]:
    """The phone drawn flat at ``s`` pixels per module (grayscale float32) and its code origin."""
    sw, sh = SCREEN_MODULES
    bx, by = BEZEL_MODULES
    body_w, body_h = sw + 2 * bx, sh + 2 * by
    pw, ph = int(round(body_w * s)), int(round(body_h * s))
    patch = np.full((ph, pw), 18.0, np.float32)  # bezel
    x0, y0 = int(round(bx * s)), int(round(by * s))
    patch[y0:y0 + sh * s, x0:x0 + sw * s] = screen_level
    cx0 = x0 + QUIET_MODULES * s
    cy0 = y0 + ((sh - CODE_MODULES) // 2) * s
    code = np.where(np.kron(modules, np.ones((s, s), bool)), dark_level, screen_level)
    patch[cy0:cy0 + CODE_MODULES * s, cx0:cx0 + CODE_MODULES * s] = code
    if glare:
        yy, xx = np.mgrid[0:ph, 0:pw].astype(np.float32)
        ramp = (np.cos(glare_dir) * xx / pw + np.sin(glare_dir) * yy / ph)
        patch += glare * np.clip(ramp, 0, 1)
    return patch, (cx0 / s, cy0 / s)


def _phone_quad(rng: np.random.Generator, tilt_deg: float) -> np.ndarray:
    """Projective map from flat phone coordinates (modules, code centred at 0) to unit image scale.

    Returns a function-like 3x3 matrix M such that image = M @ [u, v, 1] before scaling.
    """
    # Most people hold their phone roughly upright; some any way round.
    rot = rng.normal(0, 0.35) if rng.random() < 0.7 else rng.uniform(0, 2 * math.pi)
    axis = rng.uniform(0, 2 * math.pi)
    t = math.radians(tilt_deg)
    # Rodrigues rotation about an in-plane axis, then in-plane rotation.
    k = np.array([math.cos(axis), math.sin(axis), 0.0])
    kx = np.array([[0, -k[2], k[1]], [k[2], 0, -k[0]], [-k[1], k[0], 0]])
    r_tilt = np.eye(3) + math.sin(t) * kx + (1 - math.cos(t)) * kx @ kx
    r_rot = np.array([[math.cos(rot), -math.sin(rot), 0], [math.sin(rot), math.cos(rot), 0],
                      [0, 0, 1]])
    r = r_rot @ r_tilt
    # a mild keystone: the phone is 60 code widths from the lens (a 6 cm code 3.6 m from a phone
    # camera gives about 3 px per module)
    distance = 60.0 * CODE_MODULES
    # x_img ~ (r00 u + r01 v) / (r20 u + r21 v + D): a homography in (u, v).
    return np.array([[r[0, 0], r[0, 1], 0.0], [r[1, 0], r[1, 1], 0.0],
                     [r[2, 0] / distance, r[2, 1] / distance, 1.0]])


def _apply_h(h: np.ndarray, pts: np.ndarray) -> np.ndarray:
    p = np.c_[pts, np.ones(len(pts))] @ h.T
    return p[:, :2] / p[:, 2:3]


def render_crowd(
    *,
    seed: int = 0,
    width: int = 4000,
    height: int = 3000,
    cols: int = 16,
    rows: int = 12,
    module_px: float | tuple[float, float] = 3.0,
    scene_id: int = 1,
    n_anchors: int = 0,
    n_foreign: int = 0,
    tilt_max_deg: float = 40.0,
    blur_sigma: tuple[float, float] = (0.4, 0.7),
    phone_blur_sigma: tuple[float, float] = (0.0, 1.8),
    noise_sigma: tuple[float, float] = (2.0, 5.0),
    jpeg_quality: tuple[int, int] = (80, 92),
    occlusion_rate: float = 0.04,
    curvature: float = 0.0,
    seat_pitch: tuple[float, float] = (0.55, 0.85),
    origin: tuple[float, float] = (0.0, 0.0),
    numbers: Sequence[int] | None = None,
    anchor_keys: Sequence[str] | None = None,
) -> CrowdPhoto:
    """Draw a crowd photo of ``cols x rows`` phones (BGR uint8, ``height x width``).

    ``module_px`` is one size for every code or a ``(lo, hi)`` range drawn uniformly per phone.
    ``n_anchors`` seats show anchor codes (keys ``A1``, ``A2``, ...) instead of pixel codes; their
    scene positions are returned in ``anchors`` keyed by payload. ``n_foreign`` seats show pixel
    codes of scene ``scene_id + 1``. ``curvature`` bends the rows up in the middle of the stand by
    ``1.5 * curvature`` row pitches, like a bowl seen from inside. Ranges are drawn per photo.

    To photograph one section of a larger stand whose pixels already have numbers: ``origin`` is
    the scene position of the section's first seat (every scene coordinate, ``anchors`` and
    ``scene_to_image`` included, is shifted by it); ``numbers`` are the pixel numbers of the seats
    that show pixel codes, in seat order (row by row), one per seat that is neither an anchor nor
    foreign; ``anchor_keys`` name the anchors in seat order instead of ``A1``, ``A2``, ...
    Without them the photo is the same as before they existed.
    """
    if width < 64 or height < 64 or cols < 1 or rows < 1:
        raise ValueError("the photo must be at least 64 x 64 pixels with at least one seat")
    if n_anchors + n_foreign > cols * rows:
        raise ValueError("more anchors and foreign codes than seats")
    rng = np.random.default_rng(seed)
    lo_px, hi_px = (module_px, module_px) if np.isscalar(module_px) else module_px

    # Scene positions of the seats and their phones.
    cc, rr = np.meshgrid(np.arange(cols), np.arange(rows))
    scene = np.c_[cc.ravel() * seat_pitch[0], rr.ravel() * seat_pitch[1]]
    scene += rng.normal(0, 0.06, scene.shape) * np.array(seat_pitch)
    view = _view(rng, scene, width, height, cols, rows, seat_pitch, hi_px, curvature)

    ox, oy = (float(v) for v in origin)
    kinds, payloads, anchors = _assign(rng, scene, (ox, oy), scene_id, n_anchors, n_foreign, numbers, anchor_keys)

    image = _draw_background(rng, height, width, view.img_pts, view.pitch_px)
    gain = _smooth_field(rng, (height, width), (5, 4), 0.45, 1.15)
    image = cv2.multiply(image, cv2.merge([gain] * 3), dtype=cv2.CV_8U)
    owner = np.full((height, width), -1, np.int32)

    drawn = _draw_phones(rng, image, owner, gain, view.img_pts, payloads, (lo_px, hi_px),
                         tilt_max_deg, phone_blur_sigma)
    _occlude(rng, image, owner, view.img_pts, view.pitch_px, occlusion_rate)
    phones = _truths(drawn, payloads, kinds, scene + np.array([ox, oy]), owner)

    image = _camera(rng, image, blur_sigma, noise_sigma, jpeg_quality)
    shift = np.array([[1.0, 0.0, -ox], [0.0, 1.0, -oy], [0.0, 0.0, 1.0]])
    photo = CrowdPhoto(image=image, phones=phones, scene_id=scene_id, seed=seed,
                       scene_to_image=view.h_scene @ shift, curvature_px=view.bend, anchors=anchors)
    photo._x_span = (view.x_span[0] + ox, view.x_span[1] + ox)
    return photo


def _draw_phones(rng, image: np.ndarray, owner: np.ndarray, gain: np.ndarray, img_pts: np.ndarray,
                 payloads: Sequence[str], module_px: tuple[float, float], tilt_max_deg: float,
                 phone_blur_sigma: tuple[float, float]) -> list[tuple]:
    """Draw the phones, far rows first so nearer phones cover farther ones; one
    ``(seat, corners, centre, module_px, tilt)`` per phone drawn."""
    drawn = []
    for i in np.argsort(img_pts[:, 1], kind="stable"):
        phone = _draw_phone(rng, image, owner, gain, int(i), img_pts[i], payloads[i], module_px,
                            tilt_max_deg, phone_blur_sigma)
        if phone is not None:
            drawn.append(phone)
    return drawn


def _truths(drawn: list[tuple], payloads: Sequence[str], kinds: np.ndarray, scene: np.ndarray,
            owner: np.ndarray) -> list[PhoneTruth]:
    """Ground truth of the drawn phones; `scene` holds the seats' (shifted) scene positions."""
    height, width = owner.shape
    return [PhoneTruth(
        payload=payloads[i], kind=str(kinds[i]), x_img=float(centre_img[0]),
        y_img=float(centre_img[1]), corners_img=corners, x_scene=float(scene[i, 0]),
        y_scene=float(scene[i, 1]), module_px=mp, tilt_deg=tilt,
        visible=_unobstructed(owner, corners, i, mp, width, height))
        for i, corners, centre_img, mp, tilt in drawn]


def _assign(rng, scene: np.ndarray, origin: tuple[float, float], scene_id: int, n_anchors: int,
            n_foreign: int, numbers: Sequence[int] | None, anchor_keys: Sequence[str] | None):
    """Who shows what: each seat's kind ("pixel", "anchor", "foreign") and payload, and the
    anchors' scene positions keyed by payload."""
    n = len(scene)
    kinds = np.array(["pixel"] * n, dtype=object)
    special = rng.permutation(n)
    anchor_idx = _spread(scene, n_anchors, rng) if n_anchors else np.array([], int)
    kinds[anchor_idx] = "anchor"
    rest = [i for i in special if kinds[i] == "pixel"][:n_foreign]
    kinds[rest] = "foreign"
    drawn_numbers = rng.permutation(np.arange(1, 5 * n + 1))[:n]
    if numbers is not None:
        drawn_numbers = _with_given_numbers(kinds, drawn_numbers, numbers)
    if anchor_keys is not None and len(anchor_keys) != n_anchors:
        raise ValueError(f"anchor_keys names {len(anchor_keys)} anchors but n_anchors is {n_anchors}")
    keys = list(anchor_keys) if anchor_keys is not None else [f"A{k + 1}" for k in range(n_anchors)]
    payloads, anchors = _payloads(kinds, scene + list(origin), scene_id, drawn_numbers, keys)
    return kinds, payloads, anchors


@dataclass(frozen=True)
class _View:
    """Where the camera sees the stand: the scene-to-image homography of its flat part, the bend
    of a curved stand (pixels), every seat's image position and the seat pitch in pixels."""

    h_scene: np.ndarray
    bend: float
    x_span: tuple[float, float]
    img_pts: np.ndarray
    pitch_px: float


def _view(rng, scene: np.ndarray, width: int, height: int, cols: int, rows: int,
          seat_pitch: tuple[float, float], hi_px: float, curvature: float) -> _View:
    """The camera: the stand rectangle maps to a trapezoid (far rows narrower) with a little roll."""
    stand_w, stand_h = (cols - 1) * seat_pitch[0], (rows - 1) * seat_pitch[1]
    body_diag_modules = math.hypot(SCREEN_MODULES[0] + 2 * BEZEL_MODULES[0],
                                   SCREEN_MODULES[1] + 2 * BEZEL_MODULES[1])
    margin = 0.5 * body_diag_modules * hi_px * 1.15 + 4  # a tilt stretches one axis
    margin = min(margin, 0.3 * min(width, height))
    persp = rng.uniform(0.05, 0.2)
    roll = math.radians(rng.uniform(-3, 3))
    x0, x1, y0, y1 = margin, width - margin, margin, height - margin
    bend = curvature * (y1 - y0) / max(rows, 1) * 1.5
    y0 += bend
    inset = persp * (x1 - x0) / 2
    quad = np.array([[x0 + inset, y0], [x1 - inset, y0], [x1, y1], [x0, y1]], np.float64)
    centre = quad.mean(axis=0)
    rot = np.array([[math.cos(roll), -math.sin(roll)], [math.sin(roll), math.cos(roll)]])
    quad = (quad - centre) @ rot.T * 0.97 + centre
    if stand_w <= 0 or stand_h <= 0:
        rect = np.array([[-1, -1], [1, -1], [1, 1], [-1, 1]], np.float64) + scene[0]
        quad = np.array([[x0, y0], [x1, y0], [x1, y1], [x0, y1]], np.float64)
    else:
        rect = np.array([[0, 0], [stand_w, 0], [stand_w, stand_h], [0, stand_h]], np.float64)
    h_scene = cv2.getPerspectiveTransform(rect.astype(np.float32), quad.astype(np.float32))
    x_span = (0.0, max(stand_w, 1e-9))
    return _View(h_scene, bend, x_span, _stand_to_image(scene, h_scene, bend, x_span), (x1 - x0) / max(cols, 1))


def _draw_phone(rng, image: np.ndarray, owner: np.ndarray, gain: np.ndarray, i: int, at: np.ndarray,
                payload: str, module_range: tuple[float, float], tilt_max_deg: float,
                phone_blur_sigma: tuple[float, float]):
    """Draw seat ``i``'s phone showing ``payload`` at image point ``at`` (and mark its body in
    ``owner``); its truth ``(i, corners, centre, module_px, tilt)``, or None when out of frame."""
    height, width = owner.shape
    mp = float(rng.uniform(*module_range))
    tilt = float(rng.uniform(0, tilt_max_deg))
    local = _phone_quad(rng, tilt)
    code_sq = np.array([[0, 0], [21, 0], [21, 21], [0, 21]], float) - 10.5
    proj = _apply_h(local, code_sq)
    d1, d2 = proj[2] - proj[0], proj[3] - proj[1]
    area = 0.5 * abs(d1[0] * d2[1] - d1[1] * d2[0])
    scale = mp * CODE_MODULES / math.sqrt(area)
    place = np.array([[scale, 0, at[0]], [0, scale, at[1]], [0, 0, 1]])
    # Per-phone rendering of flat (u, v) module coordinates, code centre at 0.
    to_img = place @ local
    s = max(2, int(math.ceil(2 * mp)))
    level = float(rng.uniform(150, 255) * math.sqrt(gain[int(np.clip(at[1], 0, height - 1)),
                                                           int(np.clip(at[0], 0, width - 1))]))
    dark = float(rng.uniform(10, 45))
    glare = float(rng.uniform(0, 50)) if rng.random() < 0.3 else 0.0
    patch, (cu, cv_) = _phone_patch(qr_modules(payload), s, min(level, 255), dark, glare,
                                    float(rng.uniform(0, 2 * math.pi)))
    # patch pixel (px, py) -> module coords (px/s - cu - 10.5, ...) -> image
    # pixel centres sit at integer coordinates: pixel k spans modules [k/s, (k+1)/s)
    patch_to_mod = np.array([[1 / s, 0, 0.5 / s - cu - 10.5], [0, 1 / s, 0.5 / s - cv_ - 10.5],
                             [0, 0, 1]])
    h_full = to_img @ patch_to_mod
    ph, pw = patch.shape
    body = np.array([[0, 0], [pw, 0], [pw, ph], [0, ph]], float)
    body_img = _apply_h(h_full, body)
    bx0, by0 = np.floor(body_img.min(axis=0)).astype(int) - 1
    bx1, by1 = np.ceil(body_img.max(axis=0)).astype(int) + 2
    bx0, by0 = max(bx0, 0), max(by0, 0)
    bx1, by1 = min(bx1, width), min(by1, height)
    if bx1 <= bx0 or by1 <= by0:
        return None
    shift = np.array([[1, 0, -bx0], [0, 1, -by0], [0, 0, 1]], float)
    # anti-alias the supersampled patch before the warp shrinks it, plus this phone's own
    # defocus and shake (people at different distances, hands moving)
    own_blur = float(rng.uniform(*phone_blur_sigma))
    patch = cv2.GaussianBlur(patch, (0, 0), math.hypot(0.45, own_blur) * s / mp)
    patch_bgr = cv2.merge([np.clip(patch * t, 0, 255).astype(np.uint8)
                           for t in rng.uniform(0.93, 1.0, 3)])
    roi = image[by0:by1, bx0:bx1]
    cv2.warpPerspective(patch_bgr, shift @ h_full, (bx1 - bx0, by1 - by0), dst=roi,
                        flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_TRANSPARENT)
    cv2.fillConvexPoly(owner, np.round(body_img).astype(np.int32), int(i))
    corners = _apply_h(to_img, code_sq)
    centre_img = _apply_h(to_img, np.zeros((1, 2)))[0]
    return i, corners, centre_img, mp, tilt


def _occlude(rng, image: np.ndarray, owner: np.ndarray, img_pts: np.ndarray, pitch_px: float,
             rate: float) -> None:
    """Hands and heads in front of a few phones (marked -2 in ``owner``)."""
    for i in np.flatnonzero(rng.random(len(img_pts)) < rate):
        x, y = img_pts[i]
        r = pitch_px * rng.uniform(0.12, 0.3)
        c = (int(x + rng.normal(0, pitch_px * 0.2)), int(y + rng.normal(0, pitch_px * 0.2)))
        colour = tuple(int(v) for v in rng.integers(30, 200, 3))
        cv2.circle(image, c, int(r), colour, -1, cv2.LINE_AA)
        cv2.circle(owner, c, int(r) + 1, -2, -1)


def _payloads(kinds: np.ndarray, scene: np.ndarray, scene_id: int, numbers: np.ndarray,
              anchor_keys: list[str]) -> tuple[list[str], dict[str, tuple[float, float]]]:
    """Each seat's payload, and the anchors' scene positions keyed by payload."""
    payloads, anchors = [], {}
    for i, kind in enumerate(kinds):
        if kind == "anchor":
            payload = anchor_payload(scene_id, anchor_keys[len(anchors)])
            anchors[payload] = (float(scene[i, 0]), float(scene[i, 1]))
        elif kind == "foreign":
            payload = pixel_payload(scene_id + 1, int(numbers[i]))
        else:
            payload = pixel_payload(scene_id, int(numbers[i]))
        payloads.append(payload)
    return payloads, anchors


def _with_given_numbers(kinds: np.ndarray, drawn: np.ndarray, numbers: Sequence[int]) -> np.ndarray:
    """The per-seat numbers with the caller's ``numbers`` on the pixel seats, in seat order
    (foreign seats keep their drawn numbers)."""
    pixel_seats = np.flatnonzero(kinds == "pixel")
    given = np.asarray(numbers, dtype=np.int64).ravel()
    if len(given) != len(pixel_seats):
        raise ValueError(f"numbers has {len(given)} entries but {len(pixel_seats)} seats show pixel "
                         "codes (seats minus anchors minus foreign codes)")
    out = drawn.copy()
    out[pixel_seats] = given
    return out


def _unobstructed(owner: np.ndarray, corners: np.ndarray, i: int, mp: float,
                  width: int, height: int) -> bool:
    centre = corners.mean(axis=0)
    grown = centre + (corners - centre) * (1 + 2.0 / CODE_MODULES)  # one module of quiet zone
    if grown.min() < 0 or grown[:, 0].max() >= width or grown[:, 1].max() >= height:
        return False
    x0, y0 = np.floor(grown.min(axis=0)).astype(int)
    x1, y1 = np.ceil(grown.max(axis=0)).astype(int) + 1
    mask = np.zeros((y1 - y0, x1 - x0), np.uint8)
    cv2.fillConvexPoly(mask, np.round(grown - [x0, y0]).astype(np.int32), 1)
    region = owner[y0:y1, x0:x1][mask.astype(bool)]
    return bool(region.size) and bool(np.all(region == i))


def _spread(points: np.ndarray, k: int, rng: np.random.Generator) -> np.ndarray:
    """Indices of ``k`` points spread over the set (farthest-point sampling)."""
    k = min(k, len(points))
    chosen = [int(rng.integers(len(points)))]
    dist = np.linalg.norm(points - points[chosen[0]], axis=1)
    while len(chosen) < k:
        j = int(np.argmax(dist))
        chosen.append(j)
        dist = np.minimum(dist, np.linalg.norm(points - points[j], axis=1))
    return np.array(chosen, int)


def _camera(rng: np.random.Generator, image: np.ndarray, blur_sigma: tuple[float, float],
            noise_sigma: tuple[float, float], jpeg_quality: tuple[int, int]) -> np.ndarray:
    sigma = float(rng.uniform(*blur_sigma))
    if sigma > 0:
        image = cv2.GaussianBlur(image, (0, 0), sigma)
    noise = float(rng.uniform(*noise_sigma))
    if noise > 0:
        # luminance noise shared by the channels, like a demosaiced sensor after denoising
        h, w = image.shape[:2]
        grain = rng.standard_normal((h, w), dtype=np.float32) * noise
        grain = cv2.merge([grain] * 3)
        image = cv2.add(image, grain, dtype=cv2.CV_8U)
    quality = int(rng.integers(jpeg_quality[0], jpeg_quality[1] + 1))
    ok, jpg = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, quality])
    if not ok:
        raise RuntimeError("JPEG encoding failed")
    return cv2.imdecode(jpg, cv2.IMREAD_COLOR)
