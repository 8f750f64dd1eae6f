"""The show's playback answers (clock, timeline, a pixel's track and colour, a frame's map),
as finished bytes, once for both routes that reach them: the raw WSGI fast path in
:mod:`c3s.web.fast`, which serves the public reads in front of Flask because a stadium polls
them, and the Flask views in :mod:`c3s.web.api.show`, which document them in the OpenAPI spec
(and answer HEAD). Each answer costs one indexed read of the scene row (the truth about the show
and its version, so a stale map is never served) and reads maps the process holds once per
version. A service that does not answer raises :class:`c3s.errors.Unavailable`, mapped to 503 by
:mod:`c3s.web.errors`."""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Callable
from dataclasses import dataclass, replace

from flask import Flask, Response
from kombu.exceptions import OperationalError as BrokerError
from redis.exceptions import RedisError

from c3s.accounts import hash_token, legacy_hash_token
from c3s.errors import Unavailable
from c3s.show import (
    BIGINT_MAX,
    INTEGER_MAX,
    SceneState,
    ShowMaps,
    ShowReader,
    color_body,
    moment_at,
    now_ms,
    pack_track,
    show_body,
    track_body,
)
from c3s.web.playcount import record_track

log = logging.getLogger(__name__)

# A colour whose next change is not known (show not scheduled, ended) may be cached this long.
UNKNOWN_CHANGE_MAX_AGE_S = 1
RETRY_AFTER_S = 1
_JSON = "application/json"
_BLACK = "#000000"


@dataclass(frozen=True)
class Reply:
    """A finished HTTP answer, the same bytes whichever route served it."""

    status: int
    headers: list[tuple[str, str]]
    body: bytes
    # Renders the body again, the same length, at the moment it is written (the clock's stamp).
    restamp: Callable[[], bytes] | None = None


def _reply(status: int, body: bytes, content_type: str = _JSON, **headers: str) -> Reply:
    pairs = [("Content-Type", content_type), ("Content-Length", str(len(body)))]
    pairs += [(name.replace("_", "-"), value) for name, value in headers.items()]
    return Reply(status, pairs, body)


def json_reply(body: dict, status: int = 200, **headers: str) -> Reply:
    return _reply(status, json.dumps(body, separators=(",", ":")).encode(), **headers)


def _error(status: int, message: str, detail: dict | None = None, **headers: str) -> Reply:
    body = json.dumps({"message": message, "detail": detail or {}}).encode()
    return _reply(status, body, Cache_Control="no-store", **headers)


def reader_of(app: Flask) -> ShowReader:
    return app.extensions["c3s_show"]


def build_sender(app: Flask) -> Callable[..., None]:
    """The app's task sender (:mod:`c3s.services`), usable outside an app context."""
    return app.extensions["c3s"].send


# A client's clock as t0: Unix ms, digits with an optional fraction (what Date.now() and
# performance.timeOrigin + performance.now() print); the OpenAPI document gives the same pattern.
T0_PATTERN = re.compile(r"[0-9]{1,16}(\.[0-9]{1,9})?")
# A yes/no query parameter (?frames=false, ?show=1), spelt as the document's enum has it.
QUERY_TRUE = ("1", "true", "yes")
QUERY_FLAGS = (*QUERY_TRUE, "0", "false", "no", "")


def time_reply(t0: str | None, received_ms: float | None = None) -> Reply:
    """``{"t0": <echo>, "server_ms": <Unix ms>, "received_ms": <Unix ms>}`` for NTP-style offset
    estimation: ``received_ms`` is when the request reached the app, ``server_ms`` when the answer
    left (:attr:`Reply.restamp` stamps it again as the bytes are written). ``server_ms`` has a
    fixed width (3 decimals), so the restamped body keeps its Content-Length."""
    received_ms = now_ms() if received_ms is None else received_ms
    echo = None
    if t0 not in (None, ""):
        if not T0_PATTERN.fullmatch(t0):
            return _error(422, "t0 must be the client's clock as a number of Unix milliseconds",
                          {"t0": t0})
        echo = float(t0)
        echo = int(echo) if echo.is_integer() else echo
    head = f'{{"t0":{json.dumps(echo)},"received_ms":{received_ms:.3f},"server_ms":'.encode()

    def render() -> bytes:
        return head + f"{now_ms():.3f}}}".encode()

    body = render()
    # Timing-Allow-Origin lets a page on another origin read the fetch's Resource Timing.
    return replace(_reply(200, body, Cache_Control="no-store", Timing_Allow_Origin="*"), restamp=render)


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
        max_age = UNKNOWN_CHANGE_MAX_AGE_S
    else:
        max_age = max(0, int((moment.until_ms - t_ms) // 1000))
    return _reply(200, color_body(color, moment), Cache_Control=f"public, max-age={max_age}")


_OWNER_SQL = ("SELECT 1 FROM api_tokens t JOIN pixels p ON p.user_id = t.user_id"
              " WHERE t.token_hash IN (%s, %s) AND t.revoked_at IS NULL AND t.expires_at > CURRENT_TIMESTAMP"
              " AND p.scene_id = %s AND p.number = %s")


def owns_pixel(app: Flask, authorization: str | None, scene_id: int, number: int) -> bool:
    """Whether the bearer token in `authorization` is live and belongs to the pixel's user (one
    indexed query): the fast path serves a track to nobody else."""
    scheme, _, token = (authorization or "").partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not token:
        return False
    if not (0 < scene_id <= BIGINT_MAX and 0 <= number <= INTEGER_MAX):
        return False
    hashes = (hash_token(token, app.extensions["c3s"].token_key), legacy_hash_token(token))
    return reader_of(app).reads.query(_OWNER_SQL, (*hashes, scene_id, number)) is not None


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
    offset = app.extensions["c3s_offsets"].offset(scene_id, number)  # the phone plays this early
    record_track(app, scene_id, state.start_ms, number)  # the operator's live count
    if accept and "application/octet-stream" in accept:
        return _reply(200, pack_track(number, state, maps, rgb, offset), "application/octet-stream", **headers)
    return _reply(200, track_body(number, state, maps, rgb, offset), **headers)


def show_reply(app: Flask, scene_id: int, frames: str | None = None) -> Reply:
    """The show's timeline and state (a build is queued if its maps are missing); ``frames`` is
    the query parameter: "0" or "false" leaves the frame list out."""
    if (frames or "") not in QUERY_FLAGS:
        return _error(422, "frames must be true or false", {"frames": frames})
    reader = reader_of(app)
    state = reader.state(scene_id)
    if state is None:
        return _error(404, f"scene {scene_id} does not exist")
    timeline = reader.timeline(state)
    ready = reader.maps(state) is not None
    if not ready and timeline.frame_ids:
        maps, _ = _not_ready(app, reader, state)
        ready = maps is not None
    # The frame list never changes under a version: serialised once, however long the show.
    listed = None if (frames or "").lower() in ("0", "false", "no") else reader.frames_body(state)
    return _reply(200, show_body(state, timeline, maps_ready=ready, t_ms=now_ms(), frames=listed),
                  Cache_Control="no-cache")


def as_response(reply: Reply) -> Response:
    response = Response(reply.body, status=reply.status)
    for name, value in reply.headers:
        response.headers[name] = value
    return response


def timeline_reply(app: Flask, scene_id: int) -> Reply:
    """The show as GET gives it (one serializer: :func:`c3s.show.show_body`), right after a
    start or a stop, which queue no build here."""
    reader = reader_of(app)
    state = reader.state(scene_id)
    timeline = reader.timeline(state)
    try:
        ready = reader.maps(state) is not None
    except (Unavailable, RedisError) as error:  # the change is committed: say so, maps unknown
        log.warning("scene %s: the show changed, but its maps could not be checked: %s", scene_id, error)
        ready = False
    return _reply(200, show_body(state, timeline, maps_ready=ready, t_ms=now_ms(), frames=reader.frames_body(state)),
                  Cache_Control="no-cache")


def map_reply(app: Flask, scene_id: int, frame_id: int) -> Reply:
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
