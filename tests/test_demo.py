"""`c3s demo` runs for real on the embedded default: a small stand joins, is located by the real
QR and blink jobs, plays a short show, and the table, summary and pictures say what happened."""

from __future__ import annotations

import json
import re

import cv2
import pytest
from click.testing import CliRunner

from c3s.cli import main

pytestmark = pytest.mark.slow

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="module")
def demo_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("demo-out")
    result = CliRunner().invoke(main, ["demo", "--phones", "150", "--frames", "3", "--seed", "1",
                                       "--out", str(out), "--quiet"])
    assert result.exit_code == 0, result.output + repr(result.exception)
    return out, result.output


def table_row(output: str, name: str) -> tuple[int, int, float, float]:
    match = re.search(rf"^{name}\s+(\d+)\s+(\d+)\s+([\d.]+) m\s+([\d.]+) m$", output, re.MULTILINE)
    assert match, f"no {name!r} row in the table:\n{output}"
    return int(match[1]), int(match[2]), float(match[3]), float(match[4])


def test_the_table_reports_most_phones_located_with_small_errors(demo_run):
    out, output = demo_run
    summary = json.loads((out / "summary.json").read_text())
    in_view, located, median, p95 = table_row(output, "fused")
    assert in_view == 150 and located >= 145
    assert median < 0.03 and p95 < 0.1  # metres; seats are 0.55 m apart
    assert (located, round(median, 3)) == (summary["location"]["fused"]["located"],
                                           round(summary["location"]["fused"]["error_median"], 3))
    qr_in_view, qr_located, qr_median, _ = table_row(output, "qr")
    blink_in_view, blink_located, blink_median, _ = table_row(output, "blink")
    assert qr_located >= 0.9 * qr_in_view and qr_median < 0.03
    assert blink_located >= 0.9 * blink_in_view and blink_median < 0.03
    assert summary["jobs"] == {"qr": ["done"], "blink": "done"}
    for stage in ("phones join", "locate by QR", "locate by blink", "sync clocks, fetch tracks", "total"):
        assert re.search(rf"^{stage}\s+\d+\.\d$", output, re.MULTILINE), stage


def test_every_located_phone_plays_the_show_in_time(demo_run):
    out, output = demo_run
    show = json.loads((out / "summary.json").read_text())["show"]
    assert show["tracks"] == json.loads((out / "summary.json").read_text())["location"]["fused"]["located"]
    assert show["right_frame_share"] == 1.0 and show["sync_error_p95_ms"] < 50
    assert show["live_agree"] == show["live_asked"] > 0
    assert show["maps_agree"] == show["maps_compared"] == 3 * show["tracks"]  # operator maps = tracks
    assert show["colour_error_median"] <= 8  # of 255: the crowd draws the frame
    assert "phones on the right frame   100.0 %" in output


def test_a_sync_check_brings_the_crowds_light_onto_the_server_clock(demo_run):
    out, output = demo_run
    sync = json.loads((out / "summary.json").read_text())["sync"]
    assert sync["before"]["p95_abs_ms"] > 30 and sync["true_p95_abs_ms"]["before"] > 30  # tens of ms late
    assert sync["after"]["p95_abs_ms"] <= 5.0 and sync["after"]["phones"] >= 0.9 * sync["phones"]
    assert sync["true_p95_abs_ms"]["after_corrected_phones"] <= 5.0
    assert sync["corrected"] >= 0.9 * sync["phones"]
    assert re.search(r"^  after\s+\d+\s+-?[\d.]+ ms\s+[\d.]+ ms\s+[\d.]+ ms$", output, re.MULTILINE), output


def test_the_pictures_are_there_and_are_pngs(demo_run):
    out, _ = demo_run
    names = ["observer-photo.png", "blink-clip.png", "positions.png", "operator-preview.png",
             "sync-before-after.png", "frame-01.png", "frame-02.png", "frame-03.png"]
    for name in names:
        data = (out / name).read_bytes()
        assert data.startswith(PNG_SIGNATURE), name
        image = cv2.imread(str(out / name))
        assert image is not None and image.shape[0] > 100 and image.shape[1] > 300, name
        assert image.std() > 10, f"{name} is blank"
    for name in names[3:]:  # the frame pictures: a black caption band with white words on top
        band = cv2.imread(str(out / name), cv2.IMREAD_GRAYSCALE)[:34]
        assert (band < 30).mean() > 0.8 and band.max() > 200, name
    # The demo kept its database inside the output folder.
    assert (out / "instance" / "c3s.sqlite3").exists()


def test_an_instance_folder_the_demo_did_not_make_is_left_alone(tmp_path):
    (tmp_path / "instance").mkdir()
    (tmp_path / "instance" / "precious.txt").write_text("user data")
    result = CliRunner().invoke(main, ["demo", "--phones", "5", "--out", str(tmp_path), "--quiet"])
    assert result.exit_code != 0 and "was not made by the demo" in result.output
    assert (tmp_path / "instance" / "precious.txt").read_text() == "user data"
