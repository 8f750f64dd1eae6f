"""The show's routes: the server clock, starting and stopping, the timeline, each pixel's track
and current colour, and the operator's preview (layout and per-frame colour maps).

The playback reads (clock, timeline, track, colour) are answered by :mod:`c3s.web.playback`,
once for both routes that reach them: the raw WSGI fast path in :mod:`c3s.web.fast` and the
Flask views below, which document them in the OpenAPI spec (and answer HEAD). The clock, the
timeline and the colour take no token: the colour a phone shows is visible to the whole stadium
anyway (black until the show plays), and the timeline (frame ids and durations, no images) is
what every phone plays, so authenticating each of 100,000 phones on every poll would buy no
secrecy. A track, though, holds the pixel's colours of frames the show has not played yet: it
goes only to the pixel's own token (checked by the fast path in one query) and to the scene's
owner, administrators and moderators. Each answer costs one indexed read of the
scene row (the truth about the show and its version, so a stale map is never served) and reads
maps the process holds once per version.
"""

from __future__ import annotations

import logging

from apiflask import APIBlueprint
from flask import Flask, current_app, request

from c3s import scenes, show
from c3s.show import (
    ShowReader,
)
from c3s.web.auth import current_user, require_read, require_staff, token_auth
from c3s.web.context import db_session, services
from c3s.web.playback import (
    as_response,
    color_reply,
    json_reply,
    map_reply,
    show_reply,
    time_reply,
    timeline_reply,
    track_reply,
)
from c3s.web.schemas import (
    ClockOut,
    ClockQuery,
    ColorOut,
    LayoutOut,
    ShowOut,
    ShowQuery,
    ShowStartIn,
    TrackOut,
)

log = logging.getLogger(__name__)

bp = APIBlueprint("show", __name__, tag="Show")

# A colour whose next change is not known (show not scheduled, ended) may be cached this long.
UNKNOWN_CHANGE_MAX_AGE_S = 1
RETRY_AFTER_S = 1
_JSON = "application/json"
_BLACK = "#000000"


_CONFLICT = "the colour maps are being built (a build is queued; Retry-After says when to ask "\
            "again), the show has no frames, or no pixel is located"


# ---------------------------------------------------------------------------------- routes


@bp.get("/time")
@bp.input(ClockQuery, location="query", arg_name="query")
@bp.output(ClockOut)
@bp.doc(responses={422: "t0 is not a number"})
def server_time(query):
    """The server clock, for NTP-style sync: send `t0` (your clock); `received_ms` is when the
    request arrived and `server_ms` when the answer left, so the server's own time drops out of
    the round trip. Public, `Cache-Control: no-store`, over keep-alive connections."""
    return as_response(time_reply(request.args.get("t0")))


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
    return as_response(show_reply(current_app, scene_id, request.args.get("frames")))


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
    session.commit()
    services().request_build(scene.id)
    return as_response(timeline_reply(current_app, scene.id))


@bp.delete("/scenes/<int:scene_id>/show")
@bp.auth_required(token_auth)
@bp.output(ShowOut)
def stop(scene_id: int):
    """Stop the show (needs `scene_admin`): the scene is `ready` again, with no start time."""
    session = db_session()
    scene = show.stop_show(session, current_user(), scenes.get_scene(session, scene_id))
    session.commit()
    return as_response(timeline_reply(current_app, scene.id))


@bp.get("/scenes/<int:scene_id>/pixels/<int:number>/track")
@bp.auth_required(token_auth)
@bp.output(TrackOut)
@bp.doc(responses={403: "not your pixel, and you are not the scene's owner, administrator or moderator",
                   404: "no such scene or pixel, or the pixel is excluded or not located",
                   409: _CONFLICT, 503: "the database or Redis does not answer"})
def track(scene_id: int, number: int):
    """The pixel's track: its colour in every frame, the durations and the start, fetched once
    per show; the phone then plays it on its synced clock, every change `offset_ms` earlier
    (its light output, measured by blink clips, then lands on the server clock). For the pixel's
    own token and the scene's owner, administrators and moderators (see the module docstring).

    With `Accept: application/octet-stream` the same track in binary, little-endian:

    | offset | size | field |
    | --- | --- | --- |
    | 0 | 4 | magic `C3TK` |
    | 4 | 1 | format version, 1 |
    | 5 | 1 | flags: bit 0 loop, bit 1 the show has a start time, bit 2 an offset follows the colours |
    | 6 | 2 | L, length of `maps_version` in bytes |
    | 8 | 4 | pixel number, uint32 |
    | 12 | 4 | F, frame count, uint32 |
    | 16 | 8 | start, Unix ms, float64 (0 without a start time) |
    | 24 | L | `maps_version`, ASCII |
    | 24 + L | 4 F | durations in ms, uint32 each |
    | 24 + L + 4 F | 3 F | colours, R G B per frame |
    | 24 + L + 7 F | 8 | with flag bit 2 only: `offset_ms`, float64 (readers of the first layout ignore it) |

    Both forms carry `X-C3S-Maps-Version`. A 409 (maps being built) comes with `Retry-After`."""
    session = db_session()
    scene = scenes.get_scene(session, scene_id)
    pixel = scenes.pixel_of(session, scene, current_user())
    if pixel is None or pixel.number != number:
        require_read(scene, "show", to="read another pixel's track")
    session.rollback()
    return as_response(track_reply(current_app, scene_id, number, request.headers.get("Accept")))


@bp.get("/scenes/<int:scene_id>/pixels/<int:number>/color")
@bp.output(ColorOut)
@bp.doc(responses={404: "no such scene or pixel, or the pixel is excluded or not located",
                   409: _CONFLICT, 503: "the database or Redis does not answer"})
def color(scene_id: int, number: int):
    """The pixel's colour now, for devices that cannot play a track: the frame showing, when
    the answer next changes (`until_ms`) and the show's phase. `Cache-Control: max-age` never
    outlasts the current frame. Public (see the module docstring)."""
    return as_response(color_reply(current_app, scene_id, number))


@bp.get("/scenes/<int:scene_id>/layout")
@bp.auth_required(token_auth)
@bp.output(LayoutOut)
def layout(scene_id: int):
    """The located pixels in ascending number, the order of every colour map, with their scene
    positions (the scene's staff). Compare `maps_version` with a map's `X-C3S-Maps-Version`."""
    session = db_session()
    scene = scenes.get_scene(session, scene_id)
    require_staff(scene, to="see where its pixels are")
    rows = show.located_pixels(session, scene.id)
    body = {"layout_version": scene.layout_version, "maps_version": show.scene_maps_version(scene),
            "numbers": [r[0] for r in rows], "x": [r[1] for r in rows], "y": [r[2] for r in rows],
            "width": scene.width, "height": scene.height}
    return as_response(json_reply(body, Cache_Control="no-cache"))


@bp.get("/scenes/<int:scene_id>/frames/<int:frame_id>/map")
@bp.auth_required(token_auth)
@bp.doc(responses={200: {"description": "the packed colour map: `C3CM`, format version (1 byte), "
                                        "3 zero bytes, pixel count (uint32 LE), then R G B per "
                                        "located pixel in ascending number",
                         "content": {"application/octet-stream": {}}},
                   404: "no such scene or frame", 409: _CONFLICT})
def frame_map(scene_id: int, frame_id: int):
    """One frame's colours for every located pixel in ascending number, for the operator's
    preview (the scene's owner, administrators and moderators); the pixels' positions are in `GET .../layout`."""
    session = db_session()
    scene = scenes.get_scene(session, scene_id)
    require_read(scene, "show", to="preview its frames")
    session.rollback()
    return as_response(map_reply(current_app, scene_id, frame_id))


def init_app(app: Flask) -> None:
    """The per-process reader of the show's data, and the fast path in front of Flask."""
    from c3s.db import bounded_connect_args
    from c3s.sync import OffsetTable
    from c3s.web.fast import mount

    svc = app.extensions["c3s"]
    config = svc.config
    app.extensions["c3s_show"] = ShowReader(svc.database.engine, lambda: svc.redis, bounded_connect_args(
        config.db_connect_timeout_s, config.db_statement_timeout_s))
    app.extensions["c3s_offsets"] = OffsetTable(svc.database.engine)
    mount(app)

