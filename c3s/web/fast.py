"""A raw WSGI fast path in front of Flask for the reads a whole stadium makes: the clock, the
show's timeline, a pixel's track and its current colour (GET only; HEAD and everything else go
to Flask). A track is answered here only to the pixel's own token (one indexed query); anyone
else (the scene's staff, no token, another pixel's) goes to Flask, which checks who it is. Routing, request objects, context pushes, response objects and schema serialisation
cost more than the answer itself at thousands of polls a second per core, so these four routes
are matched with one regular expression and answered by the same functions the Flask views call
(:mod:`c3s.web.playback`; :mod:`c3s.web.api.show` documents them in the OpenAPI spec)."""

from __future__ import annotations

import json
import logging
import re

from flask import Flask
from werkzeug.http import HTTP_STATUS_CODES

from c3s.accounts import BUSY_HASHING, hashing_busy
from c3s.errors import C3SError, Unavailable
from c3s.show import now_ms
from c3s.web.errors import INTERNAL_ERROR, error_parts
from c3s.web.playback import Reply, color_reply, owns_pixel, show_reply, time_reply, track_reply

log = logging.getLogger(__name__)

_ROUTE = re.compile(r"/api/(?:(time)|scenes/(\d{1,30})/(?:(show)|pixels/(\d{1,30})/(color|track)))")
_HASHING_ROUTES = frozenset({"/api/tokens", "/api/users"})
_STATUS_LINES = {code: f"{code} {reason.upper()}" for code, reason in HTTP_STATUS_CODES.items()}


class ShowFastPath:
    """WSGI middleware: serves the show's public GET routes itself, passes the rest to Flask."""

    def __init__(self, app: Flask, wsgi_app):
        self.app = app
        self.wsgi_app = wsgi_app

    def __call__(self, environ, start_response):
        if environ.get("REQUEST_METHOD") == "POST" and environ.get("PATH_INFO") in _HASHING_ROUTES \
                and hashing_busy():
            # Shed a login before any work while the process's hash slot is taken: a storm of
            # them then costs microseconds each, and the clock keeps its threads and cores.
            reply = _json_reply(*error_parts(Unavailable(BUSY_HASHING)))
            start_response(_STATUS_LINES[reply.status], reply.headers)
            return [reply.body]
        if environ.get("REQUEST_METHOD") == "GET":
            match = _ROUTE.fullmatch(environ.get("PATH_INFO", ""))
            if match is not None:
                reply = self._answer(match, environ, now_ms())
                if reply is None:  # a track for someone who may not be its pixel: Flask decides
                    return self.wsgi_app(environ, start_response)
                start_response(_STATUS_LINES[reply.status], reply.headers)
                if reply.restamp is not None:
                    return _restamped(reply)
                return [reply.body]
        return self.wsgi_app(environ, start_response)

    def _answer(self, match: re.Match, environ, received_ms: float) -> Reply | None:
        is_time, scene, is_show, number, kind = match.groups()
        try:
            if is_time:
                return time_reply(_query_value(environ.get("QUERY_STRING", ""), "t0"), received_ms)
            scene_id = int(scene)
            if is_show:
                return show_reply(self.app, scene_id, _query_value(environ.get("QUERY_STRING", ""), "frames"))
            if kind == "color":
                return color_reply(self.app, scene_id, int(number))
            if not owns_pixel(self.app, environ.get("HTTP_AUTHORIZATION"), scene_id, int(number)):
                return None
            return track_reply(self.app, scene_id, int(number), environ.get("HTTP_ACCEPT"))
        except C3SError as error:
            status, body, headers = error_parts(error)
            return _json_reply(status, body, headers)
        except Exception:  # noqa: BLE001 - answered like Flask's handler in c3s.web.errors
            self.app.logger.exception("unhandled error in the show's fast path")
            return _json_reply(500, {"message": INTERNAL_ERROR, "detail": {}}, {"Cache-Control": "no-store"})


def _json_reply(status: int, body: dict, headers: dict[str, str]) -> Reply:
    data = json.dumps(body).encode()
    pairs = [("Content-Type", "application/json"), ("Content-Length", str(len(data))), *headers.items()]
    return Reply(status, pairs, data)


def _restamped(reply):
    """The body, rendered when the server asks for its first bytes: the WSGI servers write the
    status line and headers with them, so the clock's stamp is as late as the answer can be."""
    body = reply.restamp()
    yield body if len(body) == len(reply.body) else reply.body


def _query_value(query: str, name: str) -> str | None:
    if not query:
        return None
    from urllib.parse import parse_qs

    values = parse_qs(query, keep_blank_values=True).get(name)
    return values[0] if values else None


def mount(app: Flask) -> None:
    """Put the fast path in front of the app (once)."""
    if not isinstance(app.wsgi_app, ShowFastPath):
        app.wsgi_app = ShowFastPath(app, app.wsgi_app)
