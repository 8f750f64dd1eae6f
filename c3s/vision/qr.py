"""Find and decode every QR code in a crowd photo.

Three passes share one grayscale image:

1. Plain zxing-cpp reads the whole frame with its own defaults (downscaled and inverted tries
   included, QR Model 1 and 2), so the decoder never reads less than plain zxing-cpp; it gets
   nearly every code of 4 px per module or more. A tiny image (a code cut out at 1-3 px per
   module) that gives nothing is read again upscaled.
2. A candidate search at half resolution finds dark, compact blobs inside bright surroundings
   (a code on a phone screen) that pass 1 did not decode.
3. Each candidate is located precisely by matching the three finder patterns in a rectified view,
   its 21 x 21 modules are sampled after a sharpening tuned for blurred small codes, and the module
   matrix is decoded by zxing-cpp's error-correcting decoder (as a clean "pure" symbol). Candidates
   this fails on get a last try with zxing-cpp on an upsampled, sharpened crop.

Codes are de-duplicated by payload and position. QR Model 1 and 2 symbols are reported (micro
and rectangular QR are not); the own-grid pass (3) only reads version 1 symbols, which is what
C3S phones show.
"""

from __future__ import annotations

import io
import math
import warnings
from dataclasses import dataclass

import cv2
import numpy as np
import zxingcpp

__all__ = ["QRDetection", "decode_qr_codes", "load_photo", "to_gray"]

_QR_MODEL2 = zxingcpp.BarcodeFormat.QRCodeModel2
_QR_FAMILY = zxingcpp.BarcodeFormat.QRCode  # zxing-cpp's pure-symbol reader wants the family
# zxing-cpp reports a family read as the family; micro and rectangular QR come back as themselves
_QR_MODELS = (_QR_FAMILY, zxingcpp.BarcodeFormat.QRCodeModel1, _QR_MODEL2)
TINY_PX = 300  # an image this small that gives nothing is read again, upscaled to about this
N = 21  # modules per side of a version 1 symbol


@dataclass(frozen=True)
class QRDetection:
    """One decoded code, in image pixels of the photo passed to :func:`decode_qr_codes`.

    ``corners``: shape (4, 2) float64, the symbol's outer corners in its own reading order
    (top-left, top-right, bottom-right, bottom-left of the code, whatever its rotation in the
    photo). ``x_img``/``y_img``: the code's centre. ``module_px``: square root of the code's
    area divided by 21 (its mean module size in pixels). ``method``: which pass read it.
    """

    payload: str
    x_img: float
    y_img: float
    corners: np.ndarray
    module_px: float
    method: str = "zxing"


# ---------------------------------------------------------------------------------------------
# Input


def to_gray(image: np.ndarray) -> np.ndarray:
    """Any supported photo array as 8-bit grayscale (H, W).

    Accepts uint8/uint16/float arrays of shape (H, W), (H, W, 1), (H, W, 3) BGR or (H, W, 4)
    BGRA. 16-bit images are scaled by 1/257, float images are taken as 0..1.
    """
    if not isinstance(image, np.ndarray):
        raise ValueError("image must be a numpy array")
    if image.ndim == 3 and image.shape[2] == 1:
        image = image[:, :, 0]
    if image.ndim not in (2, 3) or (image.ndim == 3 and image.shape[2] not in (3, 4)):
        raise ValueError(
            f"image must be (H, W), (H, W, 3) BGR or (H, W, 4) BGRA, got shape {image.shape}"
        )
    if image.shape[0] < 1 or image.shape[1] < 1:
        raise ValueError("image is empty")
    if image.dtype == np.uint16:
        image = (image // 257).astype(np.uint8)
    elif image.dtype == bool:
        image = image.astype(np.uint8) * 255
    elif np.issubdtype(image.dtype, np.floating):
        image = np.clip(np.nan_to_num(image) * 255.0 + 0.5, 0, 255).astype(np.uint8)
    elif image.dtype != np.uint8:
        raise ValueError(f"unsupported image dtype {image.dtype}; use uint8, uint16 or float")
    if image.ndim == 3:
        code = cv2.COLOR_BGR2GRAY if image.shape[2] == 3 else cv2.COLOR_BGRA2GRAY
        image = cv2.cvtColor(image, code)
    return np.ascontiguousarray(image)


def load_photo(data: bytes, *, max_pixels: int) -> np.ndarray:
    """Decode an uploaded photo to a BGR uint8 array (H, W, 3), upright per its EXIF orientation.

    The header is read first: a file that is not an image, or whose width x height exceeds
    ``max_pixels``, raises ``ValueError`` before any pixel is decoded. Grayscale, palette, RGBA,
    CMYK and 16-bit images are converted. A truncated or corrupt file raises ``ValueError`` too.
    """
    from PIL import Image, ImageOps, UnidentifiedImageError

    if not isinstance(data, bytes | bytearray | memoryview) or len(data) == 0:
        raise ValueError("the upload is empty")
    with warnings.catch_warnings():
        warnings.simplefilter("error", Image.DecompressionBombWarning)
        try:
            img = Image.open(io.BytesIO(bytes(data)))  # parses the header only
        except (UnidentifiedImageError, OSError, SyntaxError) as exc:
            # A JPEG/PNG signature followed by garbage fails inside the header parser.
            raise ValueError("the file is not an image this service can read") from exc
        except (Image.DecompressionBombWarning, Image.DecompressionBombError) as exc:
            raise ValueError(f"the image is too large ({exc})") from exc
    width, height = img.size
    if width < 1 or height < 1:
        raise ValueError("the image has no pixels")
    if width * height > max_pixels:
        raise ValueError(
            f"the image is {width} x {height} = {width * height} pixels, over the limit of "
            f"{max_pixels} pixels"
        )
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            img.load()
            img = ImageOps.exif_transpose(img)
    except (OSError, SyntaxError, ValueError, Image.DecompressionBombError) as exc:
        raise ValueError(f"the image file is corrupt or truncated: {exc}") from exc
    return _pil_to_bgr(img)


def _pil_to_bgr(img) -> np.ndarray:
    from PIL import Image

    mode = img.mode
    if mode in ("I;16", "I;16B", "I;16L", "I;16N", "I"):
        arr = np.asarray(img, dtype=np.float64)
        peak = 65535.0 if arr.max(initial=0) > 255 else 255.0
        gray = np.clip(arr * (255.0 / peak), 0, 255).astype(np.uint8)
        return cv2.cvtColor(gray, cv2.COLOR_GRAY2BGR)
    if mode == "F":
        arr = np.nan_to_num(np.asarray(img, dtype=np.float64))
        peak = 1.0 if arr.max(initial=0) <= 1.0 else 255.0
        gray = np.clip(arr * (255.0 / peak), 0, 255).astype(np.uint8)
        return cv2.cvtColor(gray, cv2.COLOR_GRAY2BGR)
    if mode in ("RGBA", "LA", "PA") or (mode == "P" and "transparency" in img.info):
        # transparent parts read as white, like a code shown on a page
        rgba = img.convert("RGBA")
        white = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        img = Image.alpha_composite(white, rgba)
    rgb = np.asarray(img.convert("RGB"))
    return cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR)


# ---------------------------------------------------------------------------------------------
# The model of a version 1 symbol: its corners, finder centres and the finder template

_MODULE_SQUARE = np.array([[0, 0], [N, 0], [N, N], [0, N]], np.float64)
_FINDER_CENTRES = np.array([[3.5, 3.5], [17.5, 3.5], [3.5, 17.5]], np.float32)  # TL, TR, BL
_RECT_PX = 3  # pixels per module of the rectified views used to locate finders
_RECT_MARGIN = 4  # modules of margin around the symbol in those views


def _finder_template(r: int) -> np.ndarray:
    t = np.zeros((9, 9), np.float32)  # the finder with its light separator ring; 1 = dark
    t[1:8, 1:8] = 1
    t[2:7, 2:7] = 0
    t[3:6, 3:6] = 1
    tpl = cv2.GaussianBlur(np.kron(t, np.ones((r, r), np.float32)), (0, 0), 0.6 * r)
    return tpl - tpl.mean()


_FINDER_TPLS = {r: _finder_template(r) for r in (2, 3)}


# ---------------------------------------------------------------------------------------------
# Pass 1: zxing-cpp on the whole frame


def _position_corners(barcode) -> np.ndarray:
    """zxing-cpp's corners, converted to our convention (pixel centres at integer coordinates;
    zxing-cpp puts pixel i on [i, i + 1), half a pixel off)."""
    p = barcode.position
    return np.array([[p.top_left.x, p.top_left.y], [p.top_right.x, p.top_right.y],
                     [p.bottom_right.x, p.bottom_right.y], [p.bottom_left.x, p.bottom_left.y]],
                    np.float64) - 0.5


def _detection(payload: str, corners: np.ndarray, method: str) -> QRDetection:
    corners = np.asarray(corners, np.float64)
    if method == "zxing":
        centre = 0.5 * (corners[1] + corners[3])
    else:
        h = cv2.getPerspectiveTransform(_MODULE_SQUARE.astype(np.float32),
                                        corners.astype(np.float32))
        centre = cv2.perspectiveTransform(np.array([[[N / 2, N / 2]]]), h)[0, 0]
    d1, d2 = corners[2] - corners[0], corners[3] - corners[1]
    area = 0.5 * abs(d1[0] * d2[1] - d1[1] * d2[0])
    return QRDetection(payload=payload, x_img=float(centre[0]), y_img=float(centre[1]),
                       corners=corners, module_px=math.sqrt(area) / N, method=method)


# ---------------------------------------------------------------------------------------------
# Pass 2: candidates at half resolution


def _candidates(gray: np.ndarray, min_module_px: float, max_module_px: float,
                covered: _Covered) -> list[np.ndarray]:
    """Convex hulls (full-resolution pixels) of dark compact blobs the size of a code that are
    not inside a code already decoded."""
    half = cv2.resize(gray, (gray.shape[1] // 2, gray.shape[0] // 2),
                      interpolation=cv2.INTER_AREA)
    # dark = below the midpoint of the local min and max: a dim screen's code still stands out
    # against its own screen, whatever the lighting around it
    # (computed at quarter resolution: the midpoint is smooth, and this is 4x cheaper)
    quarter = cv2.resize(half, (half.shape[1] // 2, half.shape[0] // 2),
                         interpolation=cv2.INTER_AREA)
    kernel = np.ones((7, 7), np.uint8)
    midpoint = cv2.addWeighted(cv2.dilate(quarter, kernel), 0.5, cv2.erode(quarter, kernel), 0.5, 0)
    midpoint = cv2.resize(cv2.blur(midpoint, (7, 7)), (half.shape[1], half.shape[0]),
                          interpolation=cv2.INTER_LINEAR)
    dark = cv2.compare(half, midpoint, cv2.CMP_LT)
    dark = cv2.morphologyEx(dark, cv2.MORPH_CLOSE, np.ones((3, 3), np.uint8))
    _, labels, stats, _ = cv2.connectedComponentsWithStats(dark, connectivity=8)
    w, h, area = stats[:, 2], stats[:, 3], stats[:, 4]
    side = np.maximum(w, h)
    keep = ((side >= N * min_module_px / 2 * 0.7) & (side <= N * max_module_px / 2 * 1.5)
            & (np.minimum(w, h) >= 0.35 * side) & (area >= 0.25 * w * h))
    keep[0] = False
    idx = np.flatnonzero(keep)
    centres = (stats[idx, :2] + stats[idx, 2:4] / 2.0) * 2.0
    idx = idx[~covered.contains(centres)]
    hulls = []
    for i in idx:
        x, y, ww, hh, _ = stats[i]
        mask = (labels[y:y + hh, x:x + ww] == i).astype(np.uint8)
        contours, _ = cv2.findContours(mask, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
        contour = max(contours, key=len).reshape(-1, 2).astype(np.float32)
        hull = cv2.convexHull(contour).reshape(-1, 2)
        hulls.append((hull + (x, y)) * 2.0 + 0.5)
    return hulls


def _quad_from_hull(hull: np.ndarray) -> np.ndarray:
    """Four corners (clockwise on screen) of the square a hull outlines."""
    (cx, cy), (w, h), angle = cv2.minAreaRect(hull.astype(np.float32))
    box = cv2.boxPoints(((cx, cy), (w, h), angle))
    centre = np.array([cx, cy])
    quad = np.array([hull[np.argmax((hull - centre) @ (b - centre))] for b in box], np.float64)
    angles = np.arctan2(quad[:, 1] - cy, quad[:, 0] - cx)
    return quad[np.argsort(angles)]


# ---------------------------------------------------------------------------------------------
# Pass 3: locate by finder patterns, sample the module grid, decode


def _rectify(gray: np.ndarray, h: np.ndarray, r: int, margin: int) -> np.ndarray:
    """A view of the symbol at ``r`` px per module with ``margin`` modules around it."""
    size = (N + 2 * margin) * r
    to_modules = np.array([[1 / r, 0, -margin], [0, 1 / r, -margin], [0, 0, 1]])
    return cv2.warpPerspective(gray, h @ to_modules, (size, size),
                               flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP,
                               borderMode=cv2.BORDER_REPLICATE)


def _peak(res: np.ndarray, x0: int, y0: int, x1: int, y1: int) -> tuple[float, float, float]:
    sub = res[max(y0, 0):y1, max(x0, 0):x1]
    if sub.size == 0:
        return -1.0, 0.0, 0.0
    _, value, _, (px, py) = cv2.minMaxLoc(sub)
    px, py = px + max(x0, 0), py + max(y0, 0)
    dx = dy = 0.0
    if 0 < px < res.shape[1] - 1:
        a, b, c = res[py, px - 1], res[py, px], res[py, px + 1]
        if a - 2 * b + c < 0:
            dx = 0.5 * (a - c) / (a - 2 * b + c)
    if 0 < py < res.shape[0] - 1:
        a, b, c = res[py - 1, px], res[py, px], res[py + 1, px]
        if a - 2 * b + c < 0:
            dy = 0.5 * (a - c) / (a - 2 * b + c)
    return float(value), px + dx, py + dy


def _locate_finders(gray: np.ndarray, h: np.ndarray, min_score: float,
                    r: int = _RECT_PX) -> list[tuple[np.ndarray, float]]:
    """Module->image affine maps (3x3) fitted to the three finder patterns near a rough frame,
    matched in a view rectified at ``r`` px per module.

    Returns one map per plausible choice of the corner without a finder (usually one).
    """
    m = _RECT_MARGIN
    view = _rectify(gray, h, r, m)
    darkness = 255.0 - view.astype(np.float32)
    template = _FINDER_TPLS[r]
    tpl = template.shape[0]
    win = int(2.5 * r)
    corners = ((0, 0), (1, 0), (1, 1), (0, 1))  # clockwise in the rough frame
    peaks = []
    for cx, cy in corners:
        # expected top-left of the template where this corner's finder would be
        ex = int(round((m + (3.5 if cx == 0 else 17.5) - 4.5) * r))
        ey = int(round((m + (3.5 if cy == 0 else 17.5) - 4.5) * r))
        x0, y0 = max(ex - win, 0), max(ey - win, 0)
        window = darkness[y0:ey + win + tpl, x0:ex + win + tpl]
        res = cv2.matchTemplate(window, template, cv2.TM_CCOEFF_NORMED)
        value, px, py = _peak(res, 0, 0, res.shape[1], res.shape[0])
        # the template's centre is (9r - 1) / 2 pixels in; view pixel k is at module k / r - m
        c = 4.5 * r - 0.5
        peaks.append((value, (x0 + px + c) / r - m, (y0 + py + c) / r - m))
    order = sorted(range(4), key=lambda k: peaks[k][0])
    if peaks[order[1]][0] < min_score:
        return []
    # the corner with the weakest peak has no finder; try the second weakest too if it is close
    choices = [order[0]]
    if peaks[order[1]][0] - peaks[order[0]][0] < 0.1:
        choices.append(order[1])
    maps = []
    for data_corner in choices:
        tl = (data_corner + 2) % 4
        tr, bl = (tl + 1) % 4, (tl + 3) % 4
        rough = np.array([peaks[k][1:] for k in (tl, tr, bl)], np.float64)
        img = cv2.perspectiveTransform(rough.reshape(-1, 1, 2), h).reshape(-1, 2)
        affine = cv2.getAffineTransform(_FINDER_CENTRES, img.astype(np.float32))
        score = float(np.mean([peaks[k][0] for k in (tl, tr, bl)]))
        maps.append((np.vstack([affine, [0, 0, 1]]), score))
    return maps


def _refine(gray: np.ndarray, quad: np.ndarray) -> list[np.ndarray]:
    h = cv2.getPerspectiveTransform(_MODULE_SQUARE.astype(np.float32), quad.astype(np.float32))
    # a coarse first look (cheap, rejects most clutter), then a finer one in the corrected frame
    first = _locate_finders(gray, h, min_score=0.35, r=2)
    out = []
    for h1, _ in first:
        again = _locate_finders(gray, h1, min_score=0.45, r=3)
        if again:
            out.append(again[0][0])
    return out


def _module_values(gray: np.ndarray, h: np.ndarray, sharpen_sigma: float,
                   sharpen_amount: float) -> np.ndarray:
    r, m = 4, 2
    view = _rectify(gray, h, r, m).astype(np.float32)
    if sharpen_amount:
        blurred = cv2.GaussianBlur(view, (0, 0), r * sharpen_sigma)
        view = cv2.addWeighted(view, 1 + sharpen_amount, blurred, -sharpen_amount, 0)
    off = m * r + r // 2
    return view[off:off + N * r:r, off:off + N * r:r]


def _decode_modules(dark: np.ndarray):
    img = np.pad(np.where(dark, 0, 255).astype(np.uint8), 1, constant_values=255)
    for barcode in zxingcpp.read_barcodes(img, formats=_QR_FAMILY, is_pure=True,
                                          try_rotate=False, try_downscale=False,
                                          try_invert=False):
        if barcode.valid and barcode.extra.get("Version") == "1":
            return barcode
    return None


_SAMPLING_VARIANTS = ((0.5, 5.0, 7), (0.5, 3.0, 9), (0.8, 5.0, 7), (0.5, 1.5, 7))


def _decode_grid(gray: np.ndarray, h: np.ndarray) -> str | None:
    for sigma, amount, window in _SAMPLING_VARIANTS:
        values = _module_values(gray, h, sigma, amount)
        threshold = cv2.blur(values, (window, window), borderType=cv2.BORDER_REFLECT)
        barcode = _decode_modules(values < threshold)
        if barcode is not None:
            return barcode.text
    return None


def _decode_crop(gray: np.ndarray, quad: np.ndarray) -> tuple[str, np.ndarray] | None:
    """zxing-cpp on an upsampled, sharpened crop around a candidate."""
    centre = quad.mean(axis=0)
    half = 0.9 * float(np.max(np.ptp(quad, axis=0)))
    x0, y0 = (max(int(v - half), 0) for v in centre)
    x1 = min(int(centre[0] + half) + 1, gray.shape[1])
    y1 = min(int(centre[1] + half) + 1, gray.shape[0])
    if x1 - x0 < 8 or y1 - y0 < 8:
        return None
    crop = cv2.resize(gray[y0:y1, x0:x1], None, fx=2, fy=2, interpolation=cv2.INTER_CUBIC)
    for sigma, amount in ((3.0, 1.5), (4.0, 4.0)):
        blurred = cv2.GaussianBlur(crop, (0, 0), sigma)
        sharp = cv2.addWeighted(crop, 1 + amount, blurred, -amount, 0)
        for barcode in zxingcpp.read_barcodes(sharp, formats=_QR_MODEL2, try_rotate=True,
                                              try_downscale=False, try_invert=False):
            if barcode.valid:
                # upsampled pixel centre u is at crop coordinate (u + 0.5) / 2 - 0.5
                return barcode.text, (_position_corners(barcode) + 0.5) / 2.0 - 0.5 + (x0, y0)
    return None


# ---------------------------------------------------------------------------------------------


def _zxing_pass(gray: np.ndarray) -> list[QRDetection]:
    """Plain zxing-cpp on the whole frame (its default tries), then upscaled if the frame is tiny
    and gave nothing (zxing-cpp needs a few pixels per module that a 41 x 41 px cut-out lacks)."""
    found = _zxing_read(gray, 1)
    if not found and max(gray.shape) < TINY_PX:
        scale = int(math.ceil(TINY_PX / max(gray.shape)))
        for interpolation in (cv2.INTER_NEAREST, cv2.INTER_CUBIC):
            up = cv2.resize(gray, None, fx=scale, fy=scale, interpolation=interpolation)
            found = _zxing_read(up, scale)
            if found:
                break
    return found


def _zxing_read(gray: np.ndarray, scale: int) -> list[QRDetection]:
    found = []
    for barcode in zxingcpp.read_barcodes(gray, formats=_QR_FAMILY):
        if barcode.valid and barcode.text and barcode.format in _QR_MODELS:
            corners = _position_corners(barcode)
            if barcode.extra.get("Version") == "1":
                # a version 1 symbol has no alignment pattern: zxing-cpp guesses the corner
                # without a finder, often pixels off; the parallelogram of the other three is
                # closer (and the centre is then the midpoint of the two finder corners)
                corners[2] = corners[1] + corners[3] - corners[0]
            # upscaled pixel centre u is at (u + 0.5) / scale - 0.5 in the frame
            found.append(_detection(barcode.text, (corners + 0.5) / scale - 0.5, "zxing"))
    return found


_NUDGES = ((0.2, 0.0), (-0.2, 0.0), (0.0, 0.2), (0.0, -0.2))


def _shift(dx: float, dy: float) -> np.ndarray:
    return np.array([[1.0, 0.0, dx], [0.0, 1.0, dy], [0.0, 0.0, 1.0]])


def _decode_candidate(gray: np.ndarray, quad: np.ndarray) -> QRDetection | None:
    maps = _refine(gray, quad)
    # the finder fit is good to about a tenth of a module; codes at the edge of legibility can
    # need the grid nudged by a bit more, so a failed read is retried with small shifts
    nudges = [h @ _shift(dx, dy) for h in maps[:1] for dx, dy in _NUDGES]
    for h in maps + nudges:
        text = _decode_grid(gray, h)
        if text is not None:
            corners = cv2.perspectiveTransform(_MODULE_SQUARE.reshape(-1, 1, 2), h).reshape(-1, 2)
            return _detection(text, corners, "grid")
    if maps:  # finder patterns seen: worth one more, slower try
        crop = _decode_crop(gray, quad)
        if crop is not None:
            return _detection(crop[0], crop[1], "crop")
    return None


def decode_qr_codes(
    image: np.ndarray,
    *,
    search: bool = True,
    min_module_px: float = 2.2,
    max_module_px: float = 9.0,
    max_candidates: int = 1500,
) -> list[QRDetection]:
    """Decode every QR code in a photo.

    Parameters
    ----------
    image : ndarray
        (H, W) grayscale or (H, W, 3) BGR / (H, W, 4) BGRA; uint8, uint16 or float 0..1.
    search : bool
        Run passes 2-3 (the candidate search for small, blurred codes). Off, this is plain
        zxing-cpp on the whole frame (with the upscaled retry of a tiny image).
    min_module_px, max_module_px : float
        Module sizes (image pixels) the candidate search looks for; larger codes are still
        found by pass 1.
    max_candidates : int
        Bound on candidates examined, so a photo of pure clutter cannot take unbounded time.

    Returns
    -------
    list of QRDetection, in the order they were found; each payload once per position.
    """
    gray = to_gray(image)
    found = _zxing_pass(gray)
    if not search or min(gray.shape) < 2 * N:
        return _dedupe(found)
    covered = _Covered()
    for d in found:
        covered.add(d.corners)
    for hull in _candidates(gray, min_module_px, max_module_px, covered)[:max_candidates]:
        quad = _quad_from_hull(hull)
        if covered.contains(quad.mean(axis=0))[0]:
            continue
        detection = _decode_candidate(gray, quad)
        if detection is not None:
            found.append(detection)
            covered.add(detection.corners)
    return _dedupe(found)


class _Covered:
    """The quads of codes decoded so far, to skip candidates that fall inside one."""

    def __init__(self) -> None:
        self.quads: list[np.ndarray] = []
        self.boxes = np.empty((0, 4))

    def add(self, quad: np.ndarray) -> None:
        quad = np.asarray(quad, np.float32)
        self.quads.append(quad)
        box = np.r_[quad.min(axis=0), quad.max(axis=0)]
        self.boxes = np.vstack([self.boxes, box])

    def contains(self, points: np.ndarray) -> np.ndarray:
        points = np.asarray(points, np.float64).reshape(-1, 2)
        inside = np.zeros(len(points), bool)
        if not self.quads:
            return inside
        x, y = points[:, 0:1], points[:, 1:2]
        b = self.boxes
        hits = (x >= b[:, 0]) & (x <= b[:, 2]) & (y >= b[:, 1]) & (y <= b[:, 3])
        for i, j in zip(*np.nonzero(hits), strict=True):
            if not inside[i] and cv2.pointPolygonTest(
                    self.quads[j].reshape(-1, 1, 2), (float(x[i, 0]), float(y[i, 0])), False) >= 0:
                inside[i] = True
        return inside


def _dedupe(found: list[QRDetection]) -> list[QRDetection]:
    """One detection per code: same payload within one code width is the same code."""
    kept: list[QRDetection] = []
    for d in found:
        same = [k for k in kept if k.payload == d.payload
                and math.hypot(k.x_img - d.x_img, k.y_img - d.y_img) < N * max(k.module_px, 1.0)]
        if not same:
            kept.append(d)
    return kept
