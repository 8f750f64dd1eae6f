"""The show on the wire: the binary track round-trips to the JSON track, and the show's JSON
leaves the frame list out on request."""

import json
from array import array

import pytest

from c3s.show import (
    SceneState,
    ShowMaps,
    Timeline,
    frames_body,
    pack_track,
    show_body,
    track_body,
    unpack_track,
)


def _maps(durations) -> ShowMaps:
    timeline = Timeline.of((100 + i, d) for i, d in enumerate(durations))
    return ShowMaps(scene_id=7, version="3.2.abcd1234", timeline=timeline, index=array("i", [0]), pixels=1,
                    rows_per_chunk=1)


@pytest.mark.parametrize("start_ms", [None, 1_700_000_000_123])
@pytest.mark.parametrize("loop", [False, True])
def test_the_binary_track_says_what_the_json_track_says(start_ms, loop):
    state = SceneState(7, "playing", start_ms, loop, "3.2.abcd1234")
    maps = _maps([500, 250, 1000])
    rgb = bytes([255, 0, 0, 0, 128, 255, 1, 2, 3])
    as_json = json.loads(track_body(42, state, maps, rgb))
    assert as_json.pop("status") == "playing"
    assert unpack_track(pack_track(42, state, maps, rgb)) == as_json
    assert as_json["colors"] == ["#ff0000", "#0080ff", "#010203"]


def test_a_truncated_or_foreign_track_is_refused():
    state = SceneState(7, "playing", 0, False, "3.2.abcd1234")
    data = pack_track(1, state, _maps([100, 100]), bytes(6))
    with pytest.raises(ValueError, match="truncated"):
        unpack_track(data[:-1])
    with pytest.raises(ValueError, match="format 1"):
        unpack_track(b"XXXX" + data[4:])


def test_the_show_json_with_and_without_its_frames():
    state = SceneState(7, "playing", 1000, True, "3.2.abcd1234", burst_start_ms=900, burst_ms=50)
    timeline = Timeline.of([(10, 100), (11, 200)])
    full = json.loads(show_body(state, timeline, maps_ready=True, t_ms=1150, frames=frames_body(timeline)))
    light = json.loads(show_body(state, timeline, maps_ready=True, t_ms=1150, frames=None))
    assert full == {**light, "frames": [{"id": 10, "duration_ms": 100}, {"id": 11, "duration_ms": 200}]}
    assert light == {"status": "playing", "start_ms": 1000, "loop": True, "total_ms": 300,
                     "maps_version": "3.2.abcd1234", "phase": "playing", "maps_ready": True,
                     "sync_burst": {"start_ms": 900, "duration_ms": 50}}
