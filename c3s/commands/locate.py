"""`c3s locate`: find pixel codes in photos (QR) or a clip (blink), offline, with no database.

Contract (other tools rely on it exactly)::

    c3s locate --method qr [--anchors FILE] [--json] IMAGE...
    c3s locate --method blink [--fps F] [--anchors FILE] [--json] VIDEO_OR_FOLDER
        [--start-ms T] [--readout-ms R] [--exposure-ms E]
    c3s locate --method sound --venue VENUE.json --start-ms MS [--json] RECORDING.wav...

With ``--json`` one JSON object goes to stdout::

    {"method": "qr", "elapsed_ms": 123.4,
     "detections": [{"input": "photo.jpg", "code": "<payload>", "x_img": 812.5, "y_img": 1033.0,
                     "x_scene": 41.9, "y_scene": 12.1}],
     "homography": {"anchors_found": 8, "inliers": 8, "rms_scene": 0.03}}

Blink detections also carry ``offset_ms``: when that phone's light changed relative to the server
clock (ms, positive = late; display latency plus clock error, rolling-shutter row time removed),
or null when it cannot be measured (a video without ``--start-ms``, whose frames have no server
time). A folder's timestamps are server-clock times of each frame's top-row exposure start.

``x_scene``/``y_scene`` and ``homography`` are null when no mapping could be fitted. Each image is
mapped on the anchors it shows itself; with several images ``homography`` sums ``anchors_found``
and ``inliers`` over the images that could be mapped and pools their ``rms_scene``.
``input`` is the path as given on the command line. ``elapsed_ms`` is the time spent decoding
and mapping, after the images are read (for blink, the clip is read while it is decoded).
For sound, MS is the recordings' start in server time as the phone believes it, and each
detection is described in `c3s.commands.locate_sound`.
"""

from __future__ import annotations

import json
import math
import os
import time

import click

MAX_PHOTO_PIXELS = 200_000_000  # far above any phone camera, well below what would exhaust memory


def read_json(path: str, what: str):
    """The JSON value in `path`, or a `click.UsageError` naming `what` file could not be read."""
    try:
        with open(path, encoding="utf-8") as handle:
            return json.load(handle)
    except OSError as exc:
        raise click.UsageError(f"cannot read the {what} file {path!r}: {exc.strerror}") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise click.UsageError(f"the {what} file {path!r} is not valid JSON: {exc}") from None


def read_bytes(path: str) -> bytes:
    try:
        with open(path, "rb") as handle:
            return handle.read()
    except OSError as exc:
        raise click.UsageError(f"cannot read {path!r}: {exc.strerror}") from None


def _read_anchors(path: str | None) -> dict[str, tuple[float, float]]:
    if path is None:
        return {}
    raw = read_json(path, "anchors")
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
        data = read_bytes(path)
        try:
            images.append((path, load_photo(data, max_pixels=MAX_PHOTO_PIXELS)))
        except ValueError as exc:
            raise click.UsageError(f"{path!r}: {exc}") from None
    return images


def _map_rows(rows: list[dict], anchors: dict[str, tuple[float, float]]):
    """Fit the rows' image to the scene on the known anchors among them and fill in their scene
    coordinates; returns the mapping, or None when fewer than 4 anchors agree."""
    import numpy as np

    from c3s.vision.homography import MappingError, fit_scene_mapping

    known = [(row, anchors[row["code"]]) for row in rows if row["code"] in anchors]
    if len(known) < 4:
        return None
    try:
        mapping = fit_scene_mapping(np.array([(r["x_img"], r["y_img"]) for r, _ in known], float),
                                    np.array([xy for _, xy in known], float))
    except MappingError:
        return None
    scene = mapping.apply(np.array([(r["x_img"], r["y_img"]) for r in rows], float))
    for row, (x, y) in zip(rows, scene, strict=True):
        row["x_scene"], row["y_scene"] = round(float(x), 4), round(float(y), 4)
    return mapping


def _summary(fits) -> dict | None:
    if not fits:
        return None
    inliers = sum(m.inliers for m in fits)
    pooled = math.sqrt(sum(m.rms_scene**2 * m.inliers for m in fits) / max(inliers, 1))
    return {"anchors_found": sum(m.anchors_found for m in fits), "inliers": inliers,
            "rms_scene": round(pooled, 6)}


def _row(name: str, code: str, x_img: float, y_img: float) -> dict:
    return {"input": name, "code": code, "x_img": round(float(x_img), 2), "y_img": round(float(y_img), 2),
            "x_scene": None, "y_scene": None}


def _locate_qr(images, anchors: dict[str, tuple[float, float]]) -> tuple[list[dict], dict | None]:
    from c3s.vision.qr import decode_qr_codes

    detections: list[dict] = []
    fits = []
    for name, image in images:
        rows = [_row(name, d.payload, d.x_img, d.y_img) for d in decode_qr_codes(image)]
        mapping = _map_rows(rows, anchors)
        if mapping is not None:
            fits.append(mapping)
        detections.extend(rows)
    return detections, _summary(fits)


def _locate_blink(path: str, fps: float | None, anchors: dict[str, tuple[float, float]],
                  timing: dict) -> tuple[list[dict], dict | None]:
    from c3s.vision import blink

    try:
        found = blink.locate_clip(path, fps=fps, **timing)
    except ValueError as exc:
        raise click.UsageError(f"{path!r}: {exc}") from None
    rows = [{**_row(path, str(d.code), d.x_img, d.y_img), "offset_ms": d.offset_ms} for d in found]
    mapping = _map_rows(rows, anchors)
    return rows, _summary([mapping] if mapping is not None else [])


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
@click.option("--method", type=click.Choice(["qr", "blink", "sound"]), required=True,
              help="qr: QR codes in photos; blink: blink patterns in a video or frame folder; "
                   "sound: speaker chirps in WAV recordings.")
@click.option("--anchors", "anchors_file", type=str, default=None, metavar="FILE",
              help='JSON {"<payload>": [x_scene, y_scene], ...}: codes whose scene position is '
                   "known (qr only).")
@click.option("--fps", type=float, default=None,
              help="Frame rate of a folder of frames (blink only).")
@click.option("--venue", "venue_file", type=str, default=None, metavar="VENUE.json",
              help="Speakers [[x, y, z], ...], schedule_start_ms, temperature_c (sound only).")
@click.option("--start-ms", type=float, default=None, metavar="MS",
              help="Server time (Unix ms), as the device believes it, of the recordings' first "
                   "sample (sound; required) or of the video's first frame, top row (blink: gives "
                   "each detection its offset_ms).")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object on stdout.")
@click.option("--readout-ms", type=click.FloatRange(0, 1000), default=None,
              help="Camera rolling-shutter readout, top to bottom row (blink only; default: "
                   "estimated from the crowd).")
@click.option("--exposure-ms", type=click.FloatRange(0, 1000, min_open=True), default=None,
              help="Camera exposure time (blink only; default: estimated from the crowd).")
@click.argument("inputs", nargs=-1, required=True, metavar="IMAGE... | VIDEO_OR_FOLDER | RECORDING.wav...")
def locate_command(method: str, anchors_file: str | None, fps: float | None, venue_file: str | None,
                   start_ms: float | None, as_json: bool, readout_ms: float | None,
                   exposure_ms: float | None, inputs: tuple[str, ...]) -> None:
    """Decode pixel codes offline and report where they are, in image and scene coordinates;
    with --method sound, locate phones in 3-D from recordings of the venue's chirps."""
    if method != "sound" and venue_file is not None:
        raise click.UsageError("--venue applies to --method sound only")
    if method == "sound":
        if readout_ms is not None or exposure_ms is not None:
            raise click.UsageError("--readout-ms and --exposure-ms apply to --method blink only")
        _locate_sound_command(venue_file, start_ms, anchors_file, fps, as_json, inputs)
        return
    timing = {"start_ms": start_ms, "readout_ms": readout_ms, "exposure_ms": exposure_ms}
    if method == "qr":
        if fps is not None or any(v is not None for v in timing.values()):
            raise click.UsageError("--fps, --readout-ms and --exposure-ms apply to --method blink "
                                   "only, --start-ms to blink and sound")
        anchors = _read_anchors(anchors_file)
        images = _read_images(inputs)
        start = time.perf_counter()
        detections, homography = _locate_qr(images, anchors)
    else:
        if len(inputs) != 1:
            raise click.UsageError("--method blink takes exactly one VIDEO_OR_FOLDER")
        if fps is not None and not (math.isfinite(fps) and fps > 0):
            raise click.UsageError("--fps must be a positive number")
        if not os.path.exists(inputs[0]):
            raise click.UsageError(f"cannot read {inputs[0]!r}: no such file or folder")
        anchors = _read_anchors(anchors_file)
        start = time.perf_counter()
        detections, homography = _locate_blink(inputs[0], fps, anchors, timing)
    elapsed_ms = (time.perf_counter() - start) * 1000.0
    result = {"method": method, "elapsed_ms": round(elapsed_ms, 1), "detections": detections,
              "homography": homography}
    if as_json:
        click.echo(json.dumps(result))
    else:
        _print_table(result)


def _locate_sound_command(venue_file, start_ms, anchors_file, fps, as_json, inputs) -> None:
    from c3s.commands.locate_sound import locate_sound, print_sound_table, read_recordings
    from c3s.commands.sound_tracks import read_venue

    if anchors_file is not None or fps is not None:
        raise click.UsageError("--anchors and --fps do not apply to --method sound")
    if venue_file is None or start_ms is None or not math.isfinite(start_ms):
        raise click.UsageError("--method sound needs --venue VENUE.json and --start-ms MS")
    venue, schedule_start_ms, metres_per_unit = read_venue(venue_file)
    recordings = read_recordings(inputs, start_ms)
    start = time.perf_counter()
    detections = locate_sound(recordings, venue, schedule_start_ms, metres_per_unit)
    result = {"method": "sound", "elapsed_ms": round((time.perf_counter() - start) * 1000.0, 1),
              "detections": detections, "homography": None}
    if as_json:
        click.echo(json.dumps(result))
    else:
        print_sound_table(result)
