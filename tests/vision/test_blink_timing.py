"""The blink decoder on real phone timing: clock errors, display latency, rolling shutter."""

from __future__ import annotations

import numpy as np
import pytest

from c3s.vision import blink
from c3s.vision.blink_synth import make_clip

MATCH_PX = 2.0


def _match(clip, result):
    """Identified phone indices with their detections, and the wrong detections."""
    index = {int(n): i for i, n in enumerate(clip.numbers)}
    right, wrong = [], []
    for d in result.detections:
        i = index.get(d.number)
        if i is not None and np.hypot(d.x_img - clip.xy[i, 0], d.y_img - clip.xy[i, 1]) <= MATCH_PX:
            right.append((i, d))
        else:
            wrong.append(d)
    return right, wrong


def _offset_errors(clip, right):
    rows = [(i, d.offset_ms) for i, d in right if d.offset_ms is not None]
    idx = np.array([i for i, _ in rows])
    measured = np.array([m for _, m in rows])
    return idx, measured - clip.offset_ms[idx]


def test_phones_off_the_server_clock_by_up_to_150_ms_are_read_on_their_own_timing():
    clip = make_clip(200, width=960, height=540, seed=51, clock_error_ms=60.0, latency_ms=(0.0, 0.0))
    assert np.abs(clip.offset_ms).max() > 120 and (np.abs(clip.offset_ms) > 100).sum() >= 5
    # offsets this spread hide the rolling shutter's drift down the frame from 250 phones: the
    # camera's readout is given, as Android reports it
    result = blink.decode_frames(clip.frames(), clip.server_timestamps_ms, readout_ms=clip.readout_ms)
    right, wrong = _match(clip, result)
    assert wrong == []
    assert len(right) >= 0.97 * len(clip.numbers)
    found = {i for i, _ in right}
    far = np.flatnonzero(np.abs(clip.offset_ms) > 75)  # beyond a whole slot
    assert sum(i in found for i in far) >= 0.9 * len(far)
    idx, err = _offset_errors(clip, right)
    assert len(idx) >= 0.95 * len(right)
    assert np.median(np.abs(err)) < 3.0 and np.percentile(np.abs(err), 95) < 6.0
    # the crowd-timing decoder (one slot grid) loses most of this crowd
    crowd = blink.decode_frames(clip.frames(), clip.server_timestamps_ms, timing="crowd")
    crowd_right, crowd_wrong = _match(clip, crowd)
    assert crowd_wrong == [] and len(crowd_right) < 0.8 * len(right)
    assert all(d.offset_ms is None for d in crowd.detections)


def test_offsets_under_latency_asymmetry_and_a_rolling_shutter_estimated_from_the_crowd():
    clip = make_clip(300, width=960, height=540, seed=52, clock_error_ms=20.0,
                     latency_ms=(40.0, 70.0), rise_fall_ms=15.0, readout_ms=30.0)
    result = blink.decode_frames(clip.frames(), clip.server_timestamps_ms)
    right, wrong = _match(clip, result)
    assert wrong == []
    assert len(right) >= 0.97 * len(clip.numbers)
    assert result.extra["readout_estimated"] and result.extra["exposure_estimated"]
    assert abs(result.extra["exposure_ms"] - clip.exposure_ms) < 3.0
    # the readout is the drift of offsets down the frame: 300 phones with offsets spread by
    # about 22 ms pin it down to about +-4.5 ms (one sigma)
    readout_error = result.extra["readout_ms"] - clip.readout_ms
    assert abs(readout_error) < 10.0
    idx, err = _offset_errors(clip, right)
    assert len(idx) >= 0.95 * len(right)
    row = clip.xy[idx, 1] / clip.height
    assert np.median(np.abs(err - readout_error * row)) < 3.0
    assert np.percentile(np.abs(err - readout_error * row), 95) < 6.0
    # with the readout removed, errors do not grow down the frame (30 ms top to bottom)
    assert abs(np.polyfit(row, err - readout_error * row, 1)[0]) < 3.0


def test_offsets_need_a_server_clock():
    clip = make_clip(60, width=640, height=360, seed=53, jitter_ms=0.0, clock_error_ms=20.0)
    no_clock = blink.decode_frames(clip.frames(), fps=30.0)
    assert len(no_clock.detections) >= 55
    assert all(d.offset_ms is None for d in no_clock.detections)
    started = blink.decode_frames(clip.frames(), fps=30.0, start_ms=clip.server_start_ms,
                                  readout_ms=clip.readout_ms)
    right, wrong = _match(clip, started)
    assert wrong == [] and len(right) >= 55
    idx, err = _offset_errors(clip, right)
    assert len(idx) >= 50 and np.median(np.abs(err)) < 3.0
    assert all(-600 < d.offset_ms <= 600 for _, d in right if d.offset_ms is not None)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"timing": "global"}, "timing"),
        ({"readout_ms": -1.0}, "readout_ms"),
        ({"exposure_ms": 0.0}, "exposure_ms"),
        ({"start_ms": 1.0, "timestamps_ms": [0.0, 33.0, 66.0]}, "start_ms"),
    ],
)
def test_bad_timing_options(kwargs, message):
    frame = np.zeros((64, 64, 3), np.uint8)
    kwargs = {"fps": 30.0, **kwargs}
    with pytest.raises(ValueError, match=message):
        blink.decode_frames([frame] * 3, **kwargs)
