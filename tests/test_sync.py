"""Camera-closed sync, the arithmetic: a pixel's offset is what it showed plus the correction it
played with then, the newest measurement wins, and a clip's report (median, p95, histogram,
worst sections) says how far the crowd's light lands from the server clock."""

from __future__ import annotations

from datetime import timedelta

import numpy as np
import pytest

from c3s.locate.fusion import MAX_OFFSET_MS, fuse_offset
from c3s.models import Observation, utcnow
from c3s.sync import histogram, summarise


def timed(offset, correction=None, *, minutes=0, id_=None):
    return Observation(id=id_, x=1.0, y=1.0, sigma=0.05, confidence=1.0, method="blink",
                       observed_at=utcnow() + timedelta(minutes=minutes), offset_ms=offset,
                       correction_ms=correction)


def test_no_timed_observation_gives_no_offset():
    untimed = Observation(x=1.0, y=1.0, sigma=0.05, confidence=1.0, method="qr", observed_at=utcnow())
    assert fuse_offset([untimed]) is None
    assert fuse_offset([]) is None


def test_offset_is_the_light_seen_plus_the_correction_played():
    assert fuse_offset([timed(62.0)]) == 62.0
    # Filmed again while playing 62 ms early, the light was still 3 ms late: the phone is 65 ms late.
    assert fuse_offset([timed(62.0, minutes=0), timed(3.0, 62.0, minutes=5)]) == pytest.approx(63.5)


def test_the_newest_measurement_wins_over_older_ones_that_disagree():
    # The phone re-synced its clock: 40 ms later than it used to be.
    history = [timed(60.0, minutes=0), timed(1.0, 60.0, minutes=5), timed(41.0, 60.0, minutes=10)]
    assert fuse_offset(history) == pytest.approx(101.0)


def test_an_absurd_offset_is_bounded():
    assert fuse_offset([timed(900.0)]) == MAX_OFFSET_MS


def test_histogram_bins_are_round_and_count_everything():
    rng = np.random.default_rng(0)
    offsets = rng.uniform(40, 110, 500)
    hist = histogram(offsets)
    assert hist["bin_ms"] == 2.0 and len(hist["edges_ms"]) == len(hist["counts"]) + 1
    assert sum(hist["counts"]) == 500
    assert hist["edges_ms"][0] <= offsets.min() and hist["edges_ms"][-1] > offsets.max()
    tight = histogram(rng.normal(0, 1.5, 200))
    assert tight["bin_ms"] == 1.0


def test_summary_ranks_the_worst_section_first():
    rng = np.random.default_rng(1)
    x, y = rng.uniform(0, 100, 400), rng.uniform(0, 60, 400)
    offsets = rng.normal(0, 1.0, 400)
    late = (x > 75) & (y < 20)  # one corner of the stand still plays 30 ms late
    offsets[late] += 30.0
    report = summarise(offsets, x, y, (100.0, 60.0))
    assert report["phones"] == 400
    assert abs(report["median_ms"]) < 1.0
    assert report["p95_abs_ms"] > 25.0 and report["spread_p95_ms"] > 25.0
    worst = report["worst_sections"][0]
    assert worst["section"] == "A4" and worst["phones"] == int(late.sum())
    assert worst["median_ms"] == pytest.approx(30.0, abs=1.0)
    assert report["worst_sections"][1]["p95_abs_ms"] < 5.0


def test_summary_of_no_phones():
    report = summarise([], [], [], (10.0, 10.0))
    assert report["phones"] == 0 and report["p95_abs_ms"] is None and report["worst_sections"] == []
