"""The show: the server clock, starting and stopping, the timeline, each pixel's track and
current colour, and the operator's preview (layout and per-frame colour maps).

The playback reads (clock, timeline, track, colour) are answered by the functions here, once for
both routes that reach them: the raw WSGI fast path in :mod:`c3s.web.fast`, which serves them in
front of Flask because a stadium polls them, and the Flask views below, which document them in
the OpenAPI spec (and answer HEAD). They take no token: the colour a phone shows is visible to
the whole stadium anyway (black before the show starts), and the timeline (frame ids and
durations, no images) is what every phone plays, so authenticating each of 100,000 phones on
every poll would buy no secrecy. A track, though, holds the pixel's colours of frames the show
has not played yet, so it goes only to the pixel's own token and to the scene's staff. Each answer costs one indexed read of the
scene row (the truth about the show and its version, so a stale map is never served) and reads
maps the process holds once per version.
"""

from __future__ import annotations

import json
import logging
import math
import struct
from collections.abc import Callable
from dataclasses import dataclass

from apiflask import APIBlueprint, Schema
from apiflask.fields import Boolean, Float, Integer, List, Nested, String
from apiflask.validators import Range
from flask import Flask, Response, current_app, request
from kombu.exceptions import OperationalError as BrokerError
from redis.exceptions import RedisError

from c3s import scenes, show
from c3s.accounts import hash_token
from c3s.permissions import require_read
from c3s.show import (
    BIGINT_MAX,
    INTEGER_MAX,
    SceneState,
    ShowMaps,
    ShowReader,
    Unavailable,
    moment_at,
    now_ms,
)
from c3s.web.auth import current_user, token_auth
from c3s.web.context import db_session

log = logging.getLogger(__name__)

bp = APIBlueprint("show", __name__, tag="Show")

# A colour whose next change is not known (show not scheduled, ended) may be cached this long.
UNKNOWN_CHANGE_MAX_AGE_S = 1
RETRY_AFTER_S = 1
TRACK_MAGIC = b"C3TK"
TRACK_FORMAT = 1
_TRACK_HEADER = struct.Struct("<4sBBHIId")
_JSON = "application/json"
_BLACK = "#000000"


@dataclass(frozen=True)
class Reply:
    """A finished HTTP answer, the same bytes whichever route served it."""

    status: int
    headers: list[tuple[str, str]]
    body: bytes


def _reply(status: int, body: bytes, content_type: str = _JSON, **headers: str) -> Reply:
    pairs = [("Content-Type", content_type), ("Content-Length", str(len(body)))]
    pairs += [(name.replace("_", "-"), value) for name, value in headers.items()]
    return Reply(status, pairs, body)


def _error(status: int, message: str, detail: dict | None = None, **headers: str) -> Reply:
    body = json.dumps({"message": message, "detail": detail or {}}).encode()
    return _reply(status, body, Cache_Control="no-store", **headers)


def reader_of(app: Flask) -> ShowReader:
    return app.extensions["c3s_show"]


def build_sender(app: Flask) -> Callable[[str, int], None]:
    """Queue a task on this app's Celery from anywhere (the fast path has no app context)."""

    def send(task_name: str, *args) -> None:
        from c3s.tasks import send as send_task

        with app.app_context():
            send_task(task_name, *args)

    return send


# ------------------------------------------------------------------ shared implementations


def time_reply(t0: str | None) -> Reply:
    """``{"t0": <echo>, "server_ms": <Unix ms>}`` for NTP-style offset estimation."""
    server_ms = now_ms()
    echo = None
    if t0 not in (None, ""):
        try:
            echo = float(t0)
        except ValueError:
            echo = math.nan
        if not math.isfinite(echo):
            return _error(422, "t0 must be the client's clock as a number of Unix milliseconds",
                          {"t0": t0})
        echo = int(echo) if echo.is_integer() else echo
    body = f'{{"t0":{json.dumps(echo)},"server_ms":{server_ms!r}}}'.encode()
    return _reply(200, body, Cache_Control="no-store")


def _not_ready(app: Flask, reader: ShowReader, state: SceneState) -> tuple[ShowMaps | None, Reply | None]:
    """The version's maps are missing: say why, and queue a build when one would help. On the
    embedded default the build runs right here, so the maps may be there after all."""
    reason, message = reader.why_not_ready(state)
    if reason == "building":
        try:
            if reader.queue_build(state, build_sender(app)):
                maps = reader.maps(state)
                if maps is not None:
                    return maps, None
        except (BrokerError, RedisError, ConnectionError, TimeoutError) as error:
            log.warning("scene %s: could not queue a colour map build: %s", state.scene_id, error)
    return None, _error(409, message, {"reason": reason, "maps_version": state.version},
                        Retry_After=str(RETRY_AFTER_S))


def _not_shown(reader: ShowReader, scene_id: int, number: int) -> Reply:
    status = reader.pixel_status(scene_id, number)
    if status is None:
        return _error(404, f"scene {scene_id} has no pixel number {number}", {"reason": "unknown"})
    if status == "excluded":
        return _error(404, f"pixel {number} was excluded from scene {scene_id}; it shows nothing",
                      {"reason": "excluded"})
    if status == "located":  # located after the maps' version was read: a newer build is coming
        return _error(409, f"pixel {number} was just located; its colours are being built",
                      {"reason": "building"}, Retry_After=str(RETRY_AFTER_S))
    return _error(404, f"pixel {number} of scene {scene_id} is not located, so it is not part of "
                       "the picture; calibrate it first", {"reason": "not_located", "status": status})


def _expired(state: SceneState) -> Reply:
    return _error(409, "the colour maps were replaced while being read; ask again",
                  {"reason": "building", "maps_version": state.version}, Retry_After=str(RETRY_AFTER_S))


def _current_maps(app: Flask, scene_id: int):
    """(reader, state, maps) for the scene's current version, or the error reply (no such
    scene; maps not built yet, a build queued)."""
    reader = reader_of(app)
    state = reader.state(scene_id)
    if state is None:
        return _error(404, f"scene {scene_id} does not exist")
    maps = reader.maps(state)
    if maps is None:
        maps, reply = _not_ready(app, reader, state)
        if reply is not None:
            return reply
    return reader, state, maps


def _pixel_maps(app: Flask, scene_id: int, number: int) -> tuple[SceneState, ShowMaps, int] | Reply:
    """The scene's state, its current maps and the pixel's row in them, or the error reply."""
    found = _current_maps(app, scene_id)
    if isinstance(found, Reply):
        return found
    reader, state, maps = found
    row = maps.row_of(number)
    if row < 0:
        return _not_shown(reader, scene_id, number)
    return state, maps, row


_OWNER_SQL = ("SELECT 1 FROM api_tokens t JOIN pixels p ON p.user_id = t.user_id"
              " WHERE t.token_hash = %s AND t.revoked_at IS NULL AND t.expires_at > CURRENT_TIMESTAMP"
              " AND p.scene_id = %s AND p.number = %s")


def owns_pixel(app: Flask, authorization: str | None, scene_id: int, number: int) -> bool:
    """Whether the bearer token in `authorization` is live and belongs to the pixel's user."""
    scheme, _, token = (authorization or "").partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not token:
        return False
    if not (0 < scene_id <= BIGINT_MAX and 0 <= number <= INTEGER_MAX):
        return False
    return reader_of(app).reads.query(_OWNER_SQL, (hash_token(token), scene_id, number)) is not None


def unavailable_reply() -> Reply:
    return _error(503, "the show's data is unavailable right now; try again in a moment", Retry_After="2")


def _guarded(function: Callable[..., Reply]) -> Callable[..., Reply]:
    def guarded(*args, **kwargs) -> Reply:
        try:
            return function(*args, **kwargs)
        except Unavailable as error:
            log.warning("show read failed: %s", error)
            return unavailable_reply()
    guarded.__name__ = function.__name__
    guarded.__doc__ = function.__doc__
    return guarded


@_guarded
def color_reply(app: Flask, scene_id: int, number: int) -> Reply:
    """The pixel's colour now, the frame, when it next changes and the show's phase."""
    found = _pixel_maps(app, scene_id, number)
    if isinstance(found, Reply):
        return found
    state, maps, row = found
    t_ms = now_ms()
    moment = moment_at(maps.timeline, state.status, state.start_ms, state.loop, t_ms)
    color = _BLACK
    if moment.frame >= 0:
        rgb = reader_of(app).color(maps, moment.frame, row)
        if rgb is None:  # the version expired from the cache between two reads
            return _not_ready(app, reader_of(app), state)[1] or _expired(state)
        color = "#" + rgb.hex()
    if moment.until_ms is None:
        until, max_age = "null", UNKNOWN_CHANGE_MAX_AGE_S
    else:
        until, max_age = str(moment.until_ms), max(0, int((moment.until_ms - t_ms) // 1000))
    body = (f'{{"color":"{color}","frame":{moment.frame},"until_ms":{until},'
            f'"status":"{moment.phase}"}}').encode()
    return _reply(200, body, Cache_Control=f"public, max-age={max_age}")


def pack_track(number: int, state: SceneState, maps: ShowMaps, rgb: bytes) -> bytes:
    """The binary track (see :func:`track`'s docstring for the layout)."""
    durations = maps.timeline.durations_ms
    version = maps.version.encode("ascii")
    flags = (1 if state.loop else 0) | (2 if state.start_ms is not None else 0)
    header = _TRACK_HEADER.pack(TRACK_MAGIC, TRACK_FORMAT, flags, len(version), number, len(durations),
                                float(state.start_ms or 0))
    return header + version + struct.pack(f"<{len(durations)}I", *durations) + rgb


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
    if len(rgb) != 3 * count:
        raise ValueError("the track is truncated")
    return {"number": number, "start_ms": start if flags & 2 else None, "loop": bool(flags & 1),
            "durations_ms": durations, "colors": ["#" + rgb[i : i + 3].hex() for i in range(0, len(rgb), 3)],
            "maps_version": version}


@_guarded
def track_reply(app: Flask, scene_id: int, number: int, accept: str | None) -> Reply:
    """The pixel's whole track: its colour in every frame, the durations and the start."""
    found = _pixel_maps(app, scene_id, number)
    if isinstance(found, Reply):
        return found
    state, maps, row = found
    rgb = reader_of(app).track(maps, row)
    if rgb is None:
        return _not_ready(app, reader_of(app), state)[1] or _expired(state)
    headers = {"Cache_Control": "no-cache", "X_C3S_Maps_Version": maps.version}
    if accept and "application/octet-stream" in accept:
        return _reply(200, pack_track(number, state, maps, rgb), "application/octet-stream", **headers)
    hexed = rgb.hex()
    colors = ",".join(f'"#{hexed[i : i + 6]}"' for i in range(0, len(hexed), 6))
    start = "null" if state.start_ms is None else str(state.start_ms)
    body = (f'{{"number":{number},"start_ms":{start},"loop":{"true" if state.loop else "false"},'
            f'"durations_ms":{json.dumps(list(maps.timeline.durations_ms), separators=(",", ":"))},'
            f'"colors":[{colors}],"maps_version":"{maps.version}","status":"{state.status}"}}').encode()
    return _reply(200, body, **headers)


@_guarded
def show_reply(app: Flask, scene_id: int, frames: str | None = None) -> Reply:
    """The show's timeline and state (a build is queued if its maps are missing); ``frames`` is
    the query parameter: "0" or "false" leaves the frame list out."""
    reader = reader_of(app)
    state = reader.state(scene_id)
    if state is None:
        return _error(404, f"scene {scene_id} does not exist")
    timeline = reader.timeline(state)
    ready = reader.maps(state) is not None
    if not ready and timeline.frame_ids:
        maps, _ = _not_ready(app, reader, state)
        ready = maps is not None
    moment = moment_at(timeline, state.status, state.start_ms, state.loop, now_ms())
    head = json.dumps({"status": state.status, "start_ms": state.start_ms, "loop": state.loop,
                       "total_ms": timeline.total_ms, "maps_version": state.version, "phase": moment.phase,
                       "maps_ready": ready}, separators=(",", ":")).encode()
    if (frames or "").lower() in ("0", "false", "no"):
        return _reply(200, head, Cache_Control="no-cache")
    # The frame list never changes under a version: serialised once, however long the show.
    body = head[:-1] + b',"frames":' + reader.frames_body(state) + b"}"
    return _reply(200, body, Cache_Control="no-cache")


def _flask(reply: Reply) -> Response:
    response = Response(reply.body, status=reply.status)
    for name, value in reply.headers:
        response.headers[name] = value
    return response


# -------------------------------------------------------------------------------- schemas


class ClockQuery(Schema):
    t0 = String(load_default=None, metadata={"description": "the client's clock, Unix ms (echoed)"})


class ClockOut(Schema):
    t0 = Float(allow_none=True, metadata={"description": "the t0 sent, echoed (null when none)"})
    server_ms = Float(metadata={"description": "the server clock when answering, Unix ms"})


class ShowQuery(Schema):
    frames = String(load_default=None, metadata={"description": "false or 0: leave the frame list out"})


class ShowStartIn(Schema):
    start_at_ms = Float(load_default=None, allow_none=True, allow_nan=False,
                        validate=Range(0, 4_102_444_800_000),
                        metadata={"description": "Unix ms on the server clock; null: 3 s from now"})
    loop = Boolean(load_default=False)


class ShowFrameOut(Schema):
    id = Integer()
    duration_ms = Integer()


class ShowOut(Schema):
    status = String(metadata={"description": "the scene's status: playing while the show is on"})
    start_ms = Integer(allow_none=True, metadata={"description": "Unix ms; null when not scheduled"})
    loop = Boolean()
    total_ms = Integer(metadata={"description": "one pass through every frame"})
    frames = List(Nested(ShowFrameOut), metadata={"description": "left out when asked with frames=false"})
    maps_version = String(metadata={"description": "changes whenever layout, frames or fit change"})
    phase = String(metadata={"description": "before, playing or ended, now"})
    maps_ready = Boolean(metadata={"description": "whether the colour maps of maps_version are built"})


class TrackOut(Schema):
    number = Integer()
    start_ms = Integer(allow_none=True)
    loop = Boolean()
    durations_ms = List(Integer())
    colors = List(String(), metadata={"description": "#rrggbb per frame, in show order"})
    maps_version = String()
    status = String(metadata={"description": "the scene's status"})


class ColorOut(Schema):
    color = String(metadata={"description": "#rrggbb to show now (black before and after the show)"})
    frame = Integer(metadata={"description": "index of the frame showing; -1 before and after"})
    until_ms = Integer(allow_none=True, metadata={"description": "Unix ms when this answer changes; "
                                                                 "null when not known"})
    status = String(metadata={"description": "before, playing or ended"})


class LayoutOut(Schema):
    layout_version = Integer()
    maps_version = String()
    numbers = List(Integer())
    x = List(Float())
    y = List(Float())
    width = Float()
    height = Float()


_CONFLICT = "the colour maps are being built (a build is queued; Retry-After says when to ask "\
            "again), the show has no frames, or no pixel is located"


# ---------------------------------------------------------------------------------- routes


@bp.get("/time")
@bp.input(ClockQuery, location="query", arg_name="query")
@bp.output(ClockOut)
@bp.doc(responses={422: "t0 is not a number"})
def server_time(query):
    """The server clock, for NTP-style sync: send `t0` (your clock), keep the sample with the
    lowest round trip and take `server_ms` as the server's time at its midpoint. Public,
    `Cache-Control: no-store`."""
    return _flask(time_reply(request.args.get("t0")))


@bp.get("/scenes/<int:scene_id>/show")
@bp.input(ShowQuery, location="query", arg_name="query")
@bp.output(ShowOut)
@bp.doc(responses={404: "no such scene"})
def get_show(scene_id: int, query):
    """The show's timeline: start on the server clock, loop, frames with durations, and the
    `maps_version` a track must match. Public, like the show itself; queues a colour map build
    when the maps of the current version are missing. A phone that only checks whether the show
    started or changed asks with `frames=false`: its answer then stays a few hundred bytes
    however long the show."""
    return _flask(show_reply(current_app, scene_id, request.args.get("frames")))


def _timeline_response(scene, timeline) -> Response:
    """The committed show's answer: the timeline was read before the commit, and a cache that
    does not answer now makes `maps_ready` false rather than the write look failed."""
    reader = reader_of(current_app)
    try:
        state = reader.state(scene.id)
        ready = state is not None and reader.maps(state) is not None
    except (Unavailable, RedisError) as error:
        log.warning("scene %s: the show changed, but its maps could not be checked: %s", scene.id, error)
        ready = False
    return show.show_json(scene, timeline, maps_ready=ready)


@bp.post("/scenes/<int:scene_id>/show")
@bp.auth_required(token_auth)
@bp.input(ShowStartIn, arg_name="body")
@bp.output(ShowOut)
@bp.doc(responses={409: "the show has no frames"})
def start(scene_id: int, body):
    """Start the show (needs `scene_admin`): at `start_at_ms` (Unix ms, server clock; null for
    3 s from now), looping or not. The scene's status becomes `playing`."""
    session = db_session()
    scene = show.start_show(session, current_user(), scenes.get_scene(session, scene_id),
                            start_at_ms=body["start_at_ms"], loop=body["loop"])
    timeline = show.timeline_of(session, scene.id)
    session.commit()
    show.request_build(scene.id)
    return _timeline_response(scene, timeline)


@bp.delete("/scenes/<int:scene_id>/show")
@bp.auth_required(token_auth)
@bp.output(ShowOut)
def stop(scene_id: int):
    """Stop the show (needs `scene_admin`): the scene is `ready` again, with no start time."""
    session = db_session()
    scene = show.stop_show(session, current_user(), scenes.get_scene(session, scene_id))
    timeline = show.timeline_of(session, scene.id)
    session.commit()
    return _timeline_response(scene, timeline)


@bp.get("/scenes/<int:scene_id>/pixels/<int:number>/track")
@bp.auth_required(token_auth)
@bp.output(TrackOut)
@bp.doc(responses={403: "not your pixel, and you are not the scene's staff",
                   404: "no such scene or pixel, or the pixel is excluded or not located",
                   409: _CONFLICT, 503: "the database or Redis does not answer"})
def track(scene_id: int, number: int):
    """The pixel's track: its colour in every frame, the durations and the start, fetched once
    per show; the phone then plays it on its synced clock. The pixel's own token, or the
    scene's staff (see the module docstring).

    With `Accept: application/octet-stream` the same track in binary, little-endian:

    | offset | size | field |
    | --- | --- | --- |
    | 0 | 4 | magic `C3TK` |
    | 4 | 1 | format version, 1 |
    | 5 | 1 | flags: bit 0 loop, bit 1 the show has a start time |
    | 6 | 2 | L, length of `maps_version` in bytes |
    | 8 | 4 | pixel number, uint32 |
    | 12 | 4 | F, frame count, uint32 |
    | 16 | 8 | start, Unix ms, float64 (0 without a start time) |
    | 24 | L | `maps_version`, ASCII |
    | 24 + L | 4 F | durations in ms, uint32 each |
    | 24 + L + 4 F | 3 F | colours, R G B per frame |

    Both forms carry `X-C3S-Maps-Version`. A 409 (maps being built) comes with `Retry-After`."""
    session = db_session()
    scene = scenes.get_scene(session, scene_id)
    pixel = scenes.pixel_of(session, scene, current_user())
    if pixel is None or pixel.number != number:
        require_read(session, current_user(), scene, "staff", "read another pixel's track")
    session.rollback()
    return _flask(track_reply(current_app, scene_id, number, request.headers.get("Accept")))


@bp.get("/scenes/<int:scene_id>/pixels/<int:number>/color")
@bp.output(ColorOut)
@bp.doc(responses={404: "no such scene or pixel, or the pixel is excluded or not located",
                   409: _CONFLICT, 503: "the database or Redis does not answer"})
def color(scene_id: int, number: int):
    """The pixel's colour now, for devices that cannot play a track: the frame showing, when
    the answer next changes (`until_ms`) and the show's phase. `Cache-Control: max-age` never
    outlasts the current frame. Public (see the module docstring)."""
    return _flask(color_reply(current_app, scene_id, number))


@bp.get("/scenes/<int:scene_id>/layout")
@bp.auth_required(token_auth)
@bp.output(LayoutOut)
def layout(scene_id: int):
    """The located pixels in ascending number, the order of every colour map, with their scene
    positions (the scene's staff and observers). Compare `maps_version` with a map's `X-C3S-Maps-Version`."""
    from sqlalchemy import select

    from c3s.models import Pixel

    session = db_session()
    scene = scenes.get_scene(session, scene_id)
    require_read(session, current_user(), scene, "calibration", "see where its pixels are")
    rows = session.execute(select(Pixel.number, Pixel.x, Pixel.y)
                           .where(Pixel.scene_id == scene.id, Pixel.status == "located")
                           .order_by(Pixel.number)).all()
    body = {"layout_version": scene.layout_version, "maps_version": show.scene_maps_version(scene),
            "numbers": [r[0] for r in rows], "x": [r[1] for r in rows], "y": [r[2] for r in rows],
            "width": scene.width, "height": scene.height}
    return _flask(_reply(200, json.dumps(body, separators=(",", ":")).encode(), Cache_Control="no-cache"))


@bp.get("/scenes/<int:scene_id>/frames/<int:frame_id>/map")
@bp.auth_required(token_auth)
@bp.doc(responses={200: {"description": "the packed colour map: `C3CM`, format version (1 byte), "
                                        "3 zero bytes, pixel count (uint32 LE), then R G B per "
                                        "located pixel in ascending number",
                         "content": {"application/octet-stream": {}}},
                   404: "no such scene or frame", 409: _CONFLICT})
def frame_map(scene_id: int, frame_id: int):
    """One frame's colours for every located pixel in ascending number, for the operator's
    preview (the scene's staff); the pixels' positions are in `GET .../layout`."""
    session = db_session()
    scene = scenes.get_scene(session, scene_id)
    require_read(session, current_user(), scene, "staff", "preview its frames")
    session.rollback()
    return _flask(_map_reply(current_app, scene_id, frame_id))


@_guarded
def _map_reply(app: Flask, scene_id: int, frame_id: int) -> Reply:
    found = _current_maps(app, scene_id)
    if isinstance(found, Reply):
        return found
    reader, state, maps = found
    if frame_id not in maps.timeline.frame_ids:
        return _error(404, f"scene {scene_id} has no frame {frame_id}")
    data = reader.frame_map(maps, maps.timeline.frame_ids.index(frame_id))
    if data is None:
        return _not_ready(app, reader, state)[1] or _expired(state)
    return _reply(200, data, "application/octet-stream", Cache_Control="private, no-cache",
                  X_C3S_Maps_Version=maps.version)


def init_app(app: Flask) -> None:
    """The per-process reader of the show's data, and the fast path in front of Flask."""
    from c3s.db import bounded_connect_args
    from c3s.web.fast import mount

    svc = app.extensions["c3s"]
    config = svc.config
    app.extensions["c3s_show"] = ShowReader(svc.database.engine, lambda: svc.redis, bounded_connect_args(
        config.db_connect_timeout_s, config.db_statement_timeout_s))
    mount(app)

