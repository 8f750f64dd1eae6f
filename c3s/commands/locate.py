"""`c3s locate`: find pixel codes in photos (QR) or a clip (blink), offline, with no database.

Contract (other tools rely on it exactly)::

    c3s locate --method qr [--anchors FILE] [--json] IMAGE...
    c3s locate --method blink [--fps F] [--json] VIDEO_OR_FOLDER

With ``--json`` one JSON object goes to stdout::

    {"method": "qr", "elapsed_ms": 123.4,
     "detections": [{"input": "photo.jpg", "code": "<payload>", "x_img": 812.5, "y_img": 1033.0,
                     "x_scene": 41.9, "y_scene": 12.1}],
     "homography": {"anchors_found": 8, "inliers": 8, "rms_scene": 0.03}}

``x_scene``/``y_scene`` and ``homography`` are null when no mapping could be fitted. Each image is
mapped on the anchors it shows itself; with several images ``homography`` sums ``anchors_found``
and ``inliers`` over the images that could be mapped and pools their ``rms_scene``.
``input`` is the path as given on the command line. ``elapsed_ms`` is the time spent decoding
and mapping, after the images are read (for blink, the clip is read while it is decoded).
"""

from __future__ import annotations

import json
import math
import os
import time

import click

MAX_PHOTO_PIXELS = 200_000_000  # far above any phone camera, well below what would exhaust memory


def _read_anchors(path: str | None) -> dict[str, tuple[float, float]]:
    if path is None:
        return {}
    try:
        with open(path, encoding="utf-8") as handle:
            raw = json.load(handle)
    except OSError as exc:
        raise click.UsageError(f"cannot read the anchors file {path!r}: {exc.strerror}") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise click.UsageError(f"the anchors file {path!r} is not valid JSON: {exc}") from None
    if not isinstance(raw, dict):
        raise click.UsageError(
            f'the anchors file {path!r} must hold one JSON object {{"<payload>": [x, y], ...}}')
    anchors = {}
    for payload, xy in raw.items():
        ok = (isinstance(xy, list | tuple) and len(xy) == 2
              and all(isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v)
                      for v in xy))
        if not ok:
            raise click.UsageError(
                f"anchor {payload!r} in {path!r} must map to [x_scene, y_scene] (two finite "
                f"numbers), got {json.dumps(xy)}")
        anchors[payload] = (float(xy[0]), float(xy[1]))
    return anchors


def _read_images(paths: tuple[str, ...]):
    from c3s.vision.qr import load_photo

    images = []
    for path in paths:
        try:
            with open(path, "rb") as handle:
                data = handle.read()
        except OSError as exc:
            raise click.UsageError(f"cannot read {path!r}: {exc.strerror}") from None
        try:
            images.append((path, load_photo(data, max_pixels=MAX_PHOTO_PIXELS)))
        except ValueError as exc:
            raise click.UsageError(f"{path!r}: {exc}") from None
    return images


def _locate_qr(images, anchors: dict[str, tuple[float, float]]) -> tuple[list[dict], dict | None]:
    import numpy as np

    from c3s.vision.homography import MappingError, fit_scene_mapping
    from c3s.vision.qr import decode_qr_codes

    detections: list[dict] = []
    fits = []
    for name, image in images:
        found = decode_qr_codes(image)
        rows = [{"input": name, "code": d.payload, "x_img": round(d.x_img, 2),
                 "y_img": round(d.y_img, 2), "x_scene": None, "y_scene": None} for d in found]
        known = [(d, anchors[d.payload]) for d in found if d.payload in anchors]
        if len(known) >= 4:
            img_pts = np.array([(d.x_img, d.y_img) for d, _ in known])
            scene_pts = np.array([xy for _, xy in known])
            try:
                mapping = fit_scene_mapping(img_pts, scene_pts)
            except MappingError:
                mapping = None
            if mapping is not None:
                fits.append(mapping)
                if found:
                    scene = mapping.apply(np.array([(d.x_img, d.y_img) for d in found]))
                    for row, (x, y) in zip(rows, scene, strict=True):
                        row["x_scene"], row["y_scene"] = round(float(x), 4), round(float(y), 4)
        detections.extend(rows)
    if not fits:
        return detections, None
    inliers = sum(m.inliers for m in fits)
    pooled = math.sqrt(sum(m.rms_scene**2 * m.inliers for m in fits) / max(inliers, 1))
    summary = {"anchors_found": sum(m.anchors_found for m in fits), "inliers": inliers,
               "rms_scene": round(pooled, 6)}
    return detections, summary


def _locate_blink(path: str, fps: float | None) -> list[dict]:
    from c3s.vision import blink

    try:
        found = blink.locate_clip(path, fps=fps)
        return [{"input": path, "code": str(d.code),
                 "x_img": round(float(d.x_img), 2), "y_img": round(float(d.y_img), 2),
                 "x_scene": None, "y_scene": None} for d in found]
    except ValueError as exc:
        raise click.UsageError(f"{path!r}: {exc}") from None


def _print_table(result: dict) -> None:
    detections = result["detections"]
    click.echo(f"{len(detections)} code(s) found by {result['method']} in "
               f"{result['elapsed_ms']:.1f} ms")
    if detections:
        width = max(len(d["code"]) for d in detections)
        click.echo(f"{'input':<24} {'code':<{width}} {'x_img':>9} {'y_img':>9} "
                   f"{'x_scene':>10} {'y_scene':>10}")
        for d in detections:
            xs = "-" if d["x_scene"] is None else f"{d['x_scene']:.3f}"
            ys = "-" if d["y_scene"] is None else f"{d['y_scene']:.3f}"
            click.echo(f"{d['input'][-24:]:<24} {d['code']:<{width}} {d['x_img']:>9.1f} "
                       f"{d['y_img']:>9.1f} {xs:>10} {ys:>10}")
    h = result["homography"]
    if h is None:
        click.echo("no mapping to the scene (fewer than 4 known anchors found, or they disagree)")
    else:
        click.echo(f"mapped to the scene on {h['inliers']} of {h['anchors_found']} anchors, "
                   f"rms {h['rms_scene']:.4g} scene units")


@click.command("locate")
@click.option("--method", type=click.Choice(["qr", "blink"]), required=True,
              help="qr: QR codes in photos; blink: blink patterns in a video or frame folder.")
@click.option("--anchors", "anchors_file", type=str, default=None, metavar="FILE",
              help='JSON {"<payload>": [x_scene, y_scene], ...}: codes whose scene position is '
                   "known (qr only).")
@click.option("--fps", type=float, default=None,
              help="Frame rate of a folder of frames (blink only).")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object on stdout.")
@click.argument("inputs", nargs=-1, required=True, metavar="IMAGE... | VIDEO_OR_FOLDER")
def locate_command(method: str, anchors_file: str | None, fps: float | None, as_json: bool,
                   inputs: tuple[str, ...]) -> None:
    """Decode pixel codes offline and report where they are, in image and scene coordinates."""
    if method == "qr":
        if fps is not None:
            raise click.UsageError("--fps applies to --method blink only")
        anchors = _read_anchors(anchors_file)
        images = _read_images(inputs)
        start = time.perf_counter()
        detections, homography = _locate_qr(images, anchors)
    else:
        if anchors_file is not None:
            raise click.UsageError("--anchors applies to --method qr only")
        if len(inputs) != 1:
            raise click.UsageError("--method blink takes exactly one VIDEO_OR_FOLDER")
        if fps is not None and not (math.isfinite(fps) and fps > 0):
            raise click.UsageError("--fps must be a positive number")
        if not os.path.exists(inputs[0]):
            raise click.UsageError(f"cannot read {inputs[0]!r}: no such file or folder")
        start = time.perf_counter()
        detections, homography = _locate_blink(inputs[0], fps), None
    elapsed_ms = (time.perf_counter() - start) * 1000.0
    result = {"method": method, "elapsed_ms": round(elapsed_ms, 1), "detections": detections,
              "homography": homography}
    if as_json:
        click.echo(json.dumps(result))
    else:
        _print_table(result)
