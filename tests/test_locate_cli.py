"""`c3s locate`: the command-line contract of issue 3, on small rendered photos."""

from __future__ import annotations

import json
import subprocess
import sys

import cv2
import numpy as np
import pytest
from click.testing import CliRunner

from c3s.cli import main
from c3s.vision.crowd import render_crowd

KEYS = {"input", "code", "x_img", "y_img", "x_scene", "y_scene"}


@pytest.fixture(scope="module")
def photo():
    return render_crowd(seed=21, width=1200, height=900, cols=6, rows=5, module_px=(3.0, 4.0),
                        n_anchors=6, n_foreign=2)


@pytest.fixture()
def files(tmp_path, photo):
    image = tmp_path / "photo.jpg"
    cv2.imwrite(str(image), photo.image, [cv2.IMWRITE_JPEG_QUALITY, 95])
    anchors = tmp_path / "anchors.json"
    anchors.write_text(json.dumps({k: list(v) for k, v in photo.anchors.items()}))
    return image, anchors


def run(*args):
    return CliRunner().invoke(main, ["locate", *map(str, args)], catch_exceptions=False)


def test_json_contract_with_anchors(files, photo):
    image, anchors = files
    result = run("--method", "qr", "--anchors", anchors, "--json", image)
    assert result.exit_code == 0, result.output
    out = json.loads(result.output)
    assert set(out) == {"method", "elapsed_ms", "detections", "homography"}
    assert out["method"] == "qr" and out["elapsed_ms"] > 0
    assert set(out["homography"]) == {"anchors_found", "inliers", "rms_scene"}
    assert out["homography"]["anchors_found"] >= 4
    truth = {p.payload: p for p in photo.phones}
    assert len(out["detections"]) >= 0.9 * len(photo.visible_phones)
    for d in out["detections"]:
        assert set(d) == KEYS and d["input"] == str(image)
        phone = truth[d["code"]]
        assert abs(d["x_img"] - phone.x_img) < 2 and abs(d["y_img"] - phone.y_img) < 2
        assert abs(d["x_scene"] - phone.x_scene) < 0.05 and abs(d["y_scene"] - phone.y_scene) < 0.05
    # codes of another scene are reported too: every payload, whatever its format
    assert any(d["code"].startswith("C3P:2:") for d in out["detections"])


def test_without_anchors_scene_is_null(files):
    image, _ = files
    out = json.loads(run("--method", "qr", "--json", image).output)
    assert out["homography"] is None
    assert out["detections"] and all(d["x_scene"] is None and d["y_scene"] is None
                                     for d in out["detections"])


def test_several_images(files, tmp_path):
    image, anchors = files
    blank = tmp_path / "blank.png"
    cv2.imwrite(str(blank), np.full((300, 400, 3), 200, np.uint8))
    out = json.loads(run("--method", "qr", "--anchors", anchors, "--json", image, blank).output)
    assert {d["input"] for d in out["detections"]} == {str(image)}
    assert out["homography"]["anchors_found"] >= 4


def test_readable_table(files):
    image, anchors = files
    result = run("--method", "qr", "--anchors", anchors, image)
    assert result.exit_code == 0
    assert "code(s) found by qr" in result.output and "x_scene" in result.output
    assert "mapped to the scene on" in result.output


def test_photo_without_codes(tmp_path):
    blank = tmp_path / "blank.png"
    cv2.imwrite(str(blank), np.full((300, 400), 128, np.uint8))
    out = json.loads(run("--method", "qr", "--json", blank).output)
    assert out["detections"] == [] and out["homography"] is None


def truncated_jpeg(photo) -> bytes:
    data = cv2.imencode(".jpg", photo.image)[1].tobytes()
    return data[: len(data) // 3]


@pytest.mark.parametrize("make, message", [
    (lambda photo: b"not an image", "not an image"),
    (lambda photo: b"\xff\xd8\xff\xe0\x00\x10JFIF\x00\x01", "not an image"),
    (truncated_jpeg, "corrupt or truncated"),
])
def test_unreadable_images_are_usage_errors(tmp_path, photo, make, message):
    bad = tmp_path / "bad.jpg"
    bad.write_bytes(make(photo))
    result = run("--method", "qr", "--json", bad)
    assert result.exit_code == 2 and message in result.output


def test_missing_file_is_a_usage_error(tmp_path):
    result = run("--method", "qr", tmp_path / "nope.jpg")
    assert result.exit_code == 2 and "cannot read" in result.output


@pytest.mark.parametrize("content, message", [
    ("{not json", "not valid JSON"),
    ("[1, 2]", "one JSON object"),
    ('{"C3A:1:A1": [1]}', "two finite numbers"),
    ('{"C3A:1:A1": ["a", 2]}', "two finite numbers"),
])
def test_bad_anchor_files_are_usage_errors(files, tmp_path, content, message):
    image, _ = files
    anchors = tmp_path / "bad.json"
    anchors.write_text(content)
    result = run("--method", "qr", "--anchors", anchors, "--json", image)
    assert result.exit_code == 2 and message in result.output


def test_missing_anchor_file(files, tmp_path):
    image, _ = files
    result = run("--method", "qr", "--anchors", tmp_path / "none.json", image)
    assert result.exit_code == 2 and "cannot read the anchors file" in result.output


def test_method_is_required_and_checked(files):
    image, _ = files
    assert run(image).exit_code == 2
    assert run("--method", "sonar", image).exit_code == 2
    assert run("--method", "qr", "--fps", "30", image).exit_code == 2


def test_blink_branch_decodes_a_real_clip(tmp_path):
    from c3s.vision.blink_synth import make_clip

    clip = make_clip(40, width=640, height=360, fps=30.0, duration_ms=1500, seed=5)
    folder = tmp_path / "frames"
    folder.mkdir()
    for index, frame in enumerate(clip.frames()):
        cv2.imwrite(str(folder / f"frame_{index:03d}.png"), frame)
    anchors = tmp_path / "anchors.json"
    # Known scene positions of eight phones: scene = image / 10.
    anchors.write_text(json.dumps({str(n): [x / 10, y / 10] for n, (x, y) in
                                   zip(clip.numbers[:8].tolist(), clip.xy[:8].tolist(), strict=True)}))
    result = run("--method", "blink", "--fps", "30", "--anchors", anchors, "--json", folder)
    assert result.exit_code == 0, result.output
    out = json.loads(result.output)
    assert out["method"] == "blink"
    truth = dict(zip(map(str, clip.numbers.tolist()), clip.xy.tolist(), strict=True))
    found = {d["code"]: d for d in out["detections"]}
    assert len(found) >= 0.9 * len(truth) and set(found) <= set(truth)
    for code, d in found.items():
        assert abs(d["x_img"] - truth[code][0]) < 1.0 and abs(d["y_img"] - truth[code][1]) < 1.0
        assert abs(d["x_scene"] - truth[code][0] / 10) < 0.1
    assert out["homography"]["anchors_found"] >= 4


def test_blink_detections_carry_offset_ms(tmp_path):
    from c3s.vision.blink_synth import make_clip

    clip = make_clip(40, width=640, height=360, fps=30.0, duration_ms=1500, seed=6, jitter_ms=0.0,
                     clock_error_ms=20.0)
    path = tmp_path / "clip.avi"  # lossless: frame timing only, no codec lag
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"FFV1"), 30.0, (640, 360))
    for frame in clip.frames():
        writer.write(frame)
    writer.release()
    plain = json.loads(run("--method", "blink", "--json", path).output)
    assert plain["detections"] and all(d["offset_ms"] is None for d in plain["detections"])
    result = run("--method", "blink", "--json", "--start-ms", repr(clip.server_start_ms),
                 "--readout-ms", str(clip.readout_ms), path)
    assert result.exit_code == 0, result.output
    truth = dict(zip(map(str, clip.numbers.tolist()), clip.offset_ms.tolist(), strict=True))
    errors = [abs(d["offset_ms"] - truth[d["code"]]) for d in json.loads(result.output)["detections"]
              if d["offset_ms"] is not None]
    assert len(errors) >= 35 and float(np.median(errors)) < 3.0
    assert run("--method", "qr", "--start-ms", "5", path).exit_code == 2


def test_blink_usage_errors(tmp_path):
    assert run("--method", "blink", tmp_path / "missing").exit_code == 2
    (tmp_path / "a").mkdir()
    assert run("--method", "blink", "--fps", "-1", tmp_path / "a").exit_code == 2
    assert run("--method", "blink", tmp_path / "a", tmp_path / "a").exit_code == 2


def test_installed_command_prints_only_json(files):
    image, anchors = files
    proc = subprocess.run([sys.executable, "-m", "c3s.cli", "locate", "--method", "qr",
                           "--anchors", str(anchors), "--json", str(image)],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout)
    assert out["homography"]["inliers"] >= 4
