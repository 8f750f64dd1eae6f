"""The show on the wire: the timeline's JSON (one serializer for every route that answers with
it), a pixel's track as JSON and in binary, and a pixel's colour now. Bytes are built by hand
because a stadium polls them; :mod:`c3s.web.schemas` documents the same shapes."""

from __future__ import annotations

import json
import struct
from typing import TYPE_CHECKING

from c3s.show.timeline import Moment, Timeline, moment_at

if TYPE_CHECKING:
    from c3s.show.reader import SceneState, ShowMaps

TRACK_MAGIC = b"C3TK"
TRACK_FORMAT = 1
_TRACK_HEADER = struct.Struct("<4sBBHIId")
_COMPACT = (",", ":")


def frames_body(timeline: Timeline) -> bytes:
    """The timeline's frame list, ``[{"id": ..., "duration_ms": ...}, ...]``."""
    return json.dumps(timeline.frames_json(), separators=_COMPACT).encode()


def show_body(state: SceneState, timeline: Timeline, *, maps_ready: bool, t_ms: float,
              frames: bytes | None) -> bytes:
    """The show's timeline and state at server time ``t_ms``; ``frames`` is the frame list
    (:func:`frames_body`), or None to leave it out. ``phase`` and ``maps_ready`` extend the
    contract."""
    moment = moment_at(timeline, state.status, state.start_ms, state.loop, t_ms)
    burst = (None if state.burst_start_ms is None
             else {"start_ms": state.burst_start_ms, "duration_ms": state.burst_ms})
    head = json.dumps({"status": state.status, "start_ms": state.start_ms, "loop": state.loop,
                       "total_ms": timeline.total_ms, "maps_version": state.version, "phase": moment.phase,
                       "maps_ready": maps_ready, "sync_burst": burst}, separators=_COMPACT).encode()
    if frames is None:
        return head
    return head[:-1] + b',"frames":' + frames + b"}"


def color_body(color: str, moment: Moment) -> bytes:
    """``{"color": "#rrggbb", "frame", "until_ms", "status"}`` of a pixel at one moment."""
    until = "null" if moment.until_ms is None else str(moment.until_ms)
    return (f'{{"color":"{color}","frame":{moment.frame},"until_ms":{until},'
            f'"status":"{moment.phase}"}}').encode()


def track_body(number: int, state: SceneState, maps: ShowMaps, rgb: bytes,
               offset_ms: float | None = None) -> bytes:
    """The track as JSON: start, loop, durations, one ``#rrggbb`` per frame, version, status,
    and the pixel's measured light-output offset (null until measured)."""
    hexed = rgb.hex()
    colors = ",".join(f'"#{hexed[i : i + 6]}"' for i in range(0, len(hexed), 6))
    start = "null" if state.start_ms is None else str(state.start_ms)
    return (f'{{"number":{number},"start_ms":{start},"loop":{"true" if state.loop else "false"},'
            f'"durations_ms":{json.dumps(list(maps.timeline.durations_ms), separators=_COMPACT)},'
            f'"colors":[{colors}],"maps_version":"{maps.version}","status":"{state.status}",'
            f'"offset_ms":{json.dumps(offset_ms)}}}').encode()


def pack_track(number: int, state: SceneState, maps: ShowMaps, rgb: bytes,
               offset_ms: float | None = None) -> bytes:
    """The binary track (the layout is in the track route's docstring, :mod:`c3s.web.api.show`);
    the pixel's ``offset_ms``, when measured, follows the colours (flag bit 2), so a reader of
    the first layout reads the same track."""
    durations = maps.timeline.durations_ms
    version = maps.version.encode("ascii")
    flags = (1 if state.loop else 0) | (2 if state.start_ms is not None else 0) | (4 if offset_ms is not None else 0)
    header = _TRACK_HEADER.pack(TRACK_MAGIC, TRACK_FORMAT, flags, len(version), number, len(durations),
                                float(state.start_ms or 0))
    trailer = b"" if offset_ms is None else struct.pack("<d", offset_ms)
    return header + version + struct.pack(f"<{len(durations)}I", *durations) + rgb + trailer


def unpack_track(data: bytes) -> dict:
    """Inverse of :func:`pack_track`, as the JSON form's dict (for tests and tools)."""
    magic, fmt, flags, length, number, count, start = _TRACK_HEADER.unpack_from(data)
    if magic != TRACK_MAGIC or fmt != TRACK_FORMAT:
        raise ValueError("not a C3S track of format 1")
    offset = _TRACK_HEADER.size
    version = data[offset : offset + length].decode("ascii")
    offset += length
    durations = list(struct.unpack_from(f"<{count}I", data, offset))
    rgb = data[offset + 4 * count : offset + 7 * count]
    trailer = data[offset + 7 * count : offset + 7 * count + 8]
    if len(rgb) != 3 * count or (flags & 4 and len(trailer) != 8):
        raise ValueError("the track is truncated")
    return {"number": number, "start_ms": start if flags & 2 else None, "loop": bool(flags & 1),
            "durations_ms": durations, "colors": ["#" + rgb[i : i + 3].hex() for i in range(0, len(rgb), 3)],
            "maps_version": version, "offset_ms": struct.unpack("<d", trailer)[0] if flags & 4 else None}
