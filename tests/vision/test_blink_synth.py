"""The seeded synthetic blink video: deterministic, lazy, and its ground truth matches its pixels."""

from __future__ import annotations

import inspect

import numpy as np
import pytest

from c3s.vision.blink import pattern_bits
from c3s.vision.blink_synth import make_clip


def test_same_seed_same_clip_and_other_seed_other_clip():
    a = make_clip(50, width=320, height=240, seed=4)
    b = make_clip(50, width=320, height=240, seed=4)
    c = make_clip(50, width=320, height=240, seed=5)
    np.testing.assert_array_equal(a.numbers, b.numbers)
    np.testing.assert_array_equal(next(a.frames()), next(b.frames()))
    assert not np.array_equal(a.numbers, c.numbers)
    assert len(set(a.numbers.tolist())) == 50


def test_frames_are_rendered_lazily_as_bgr_uint8():
    clip = make_clip(30, width=320, height=240, fps=24.0, duration_ms=1000.0, seed=1)
    frames = clip.frames()
    assert inspect.isgenerator(frames)
    rendered = list(frames)
    assert len(rendered) == len(clip.timestamps_ms) == 24
    assert all(f.shape == (240, 320, 3) and f.dtype == np.uint8 for f in rendered)
    gaps = np.diff(clip.timestamps_ms)
    assert (gaps > 0).all() and abs(np.median(gaps) - 1000 / 24) < 3


def test_truth_positions_light_up_and_follow_the_pattern():
    clip = make_clip(40, width=640, height=360, seed=2, occluded_fraction=0.0, n_distractors=0)
    frames = np.stack(list(clip.frames()))  # small: 45 x 360 x 640 x 3
    x = np.rint(clip.xy[:, 0]).astype(int)
    y = np.rint(clip.xy[:, 1]).astype(int)
    peak = frames[:, y, x].max(axis=(0, 2))  # brightest channel over the clip at each phone
    assert (peak > 60).all()
    background = np.median(frames[0])
    assert background < 25
    # the white slot is the brightest moment of every phone (BGR -> sum of channels)
    bits = pattern_bits(clip.numbers)
    assert (bits[:, 0] == 1).all()
    lum = frames[:, y, x].astype(int).sum(axis=2)  # (frames, phones)
    assert (lum.max(axis=0) > 3 * background).all()


def test_occlusions_and_distractors_are_reported():
    clip = make_clip(2000, width=1280, height=720, seed=3, duration_ms=300.0)
    assert 0.03 < clip.occluded.mean() < 0.07
    assert np.isfinite(clip.occlusion_ms[clip.occluded]).all()
    assert np.isinf(clip.occlusion_ms[~clip.occluded]).all()
    assert len(clip.distractor_xy) == len(clip.distractor_kind) == 48


def test_ten_thousand_phones_at_4k():
    clip = make_clip(10_000, width=3840, height=2160, seed=6, duration_ms=100.0)
    frame = next(clip.frames())
    assert frame.shape == (2160, 3840, 3)
    inside = (
        (clip.xy[:, 0] > 0) & (clip.xy[:, 0] < 3840) & (clip.xy[:, 1] > 0) & (clip.xy[:, 1] < 2160)
    )
    assert inside.all()


@pytest.mark.parametrize(
    "kwargs", [{"n_phones": 0}, {"width": 10}, {"fps": 0.0}, {"n_phones": 200_000}]
)
def test_bad_parameters(kwargs):
    with pytest.raises(ValueError):
        make_clip(**{"n_phones": 10, **kwargs})


def test_each_phone_lights_up_on_its_own_timing_and_row():
    """White (slot 0) and black (slot 1) fall where the phone's light-output offset and the
    rolling shutter put them: server time + row delay - offset, modulo the 1.2 s cycle."""
    clip = make_clip(60, width=640, height=360, fps=60.0, duration_ms=2500.0, seed=9,
                     occluded_fraction=0.0, n_distractors=0, exposure_ms=1.0, readout_ms=15.0,
                     drift_px_per_s=0.0,
                     clock_error_ms=40.0, latency_ms=(40.0, 70.0), rise_fall_ms=15.0)
    assert np.ptp(clip.offset_ms) > 60
    x = np.rint(clip.xy[:, 0]).astype(int)
    y = np.rint(clip.xy[:, 1]).astype(int)
    frames = np.stack(list(clip.frames()))[:, y, x].astype(int)  # (frames, phones, 3) BGR
    row_ms = clip.readout_ms * clip.xy[:, 1] / clip.height
    u = np.mod(clip.server_timestamps_ms[:, None] + row_ms[None, :] - clip.offset_ms[None, :], 1200)
    white = (u > 12) & (u < 62)  # inside slot 0, clear of the rise/fall lags (at most 7.5 ms)
    black = (u > 87) & (u < 137)
    assert white.sum() > 100 and black.sum() > 100
    lit, dark = frames.min(axis=2), frames.max(axis=2)
    for i in range(len(clip.numbers)):  # every white frame brighter than any black one
        assert lit[white[:, i], i].min() > dark[black[:, i], i].max() + 10
    # the latest white frames are later than the earliest, by the offsets' spread
    assert np.ptp(clip.server_timestamps_ms[white.argmax(axis=0)]) > 50


def test_timing_parameters_are_checked():
    for kwargs in ({"readout_ms": 40.0}, {"exposure_ms": 0.0}, {"latency_ms": (70.0, 40.0)},
                   {"rise_fall_ms": 40.0}, {"clock_error_ms": -1.0}):
        with pytest.raises(ValueError):
            make_clip(10, **kwargs)
