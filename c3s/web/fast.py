"""A raw WSGI fast path in front of Flask for the reads a whole stadium makes: the clock, the
show's timeline, a pixel's track and its current colour (GET only; HEAD and everything else go
to Flask). A track is answered here only to the pixel's own token (one indexed query); any other
caller (the scene's staff, no token, someone else's) goes to Flask, which checks who it is. Routing, request objects, context pushes, response objects and schema serialisation
cost more than the answer itself at thousands of polls a second per core, so these four routes
are matched with one regular expression and answered by the same functions the Flask views call
(:mod:`c3s.web.api.show`, which also documents them in the OpenAPI spec)."""

from __future__ import annotations

import json
import logging
import re

from flask import Flask
from werkzeug.http import HTTP_STATUS_CODES

from c3s.show import Unavailable

log = logging.getLogger(__name__)

_ROUTE = re.compile(r"/api/(?:(time)|scenes/(\d{1,30})/(?:(show)|pixels/(\d{1,30})/(color|track)))")
_STATUS_LINES = {code: f"{code} {reason.upper()}" for code, reason in HTTP_STATUS_CODES.items()}


class ShowFastPath:
    """WSGI middleware: serves the show's public GET routes itself, passes the rest to Flask."""

    def __init__(self, app: Flask, wsgi_app):
        self.app = app
        self.wsgi_app = wsgi_app

    def __call__(self, environ, start_response):
        if environ.get("REQUEST_METHOD") == "GET":
            match = _ROUTE.fullmatch(environ.get("PATH_INFO", ""))
            if match is not None:
                reply = self._answer(match, environ)
                if reply is not None:
                    start_response(_STATUS_LINES[reply.status], reply.headers)
                    return [reply.body]
        return self.wsgi_app(environ, start_response)

    def _answer(self, match: re.Match, environ):
        """The reply, or None to let Flask answer."""
        from c3s.web.api.show import (
            Reply,
            color_reply,
            owns_pixel,
            show_reply,
            time_reply,
            track_reply,
            unavailable_reply,
        )

        is_time, scene, is_show, number, kind = match.groups()
        try:
            if is_time:
                return time_reply(_query_value(environ.get("QUERY_STRING", ""), "t0"))
            scene_id = int(scene)
            if is_show:
                return show_reply(self.app, scene_id, _query_value(environ.get("QUERY_STRING", ""), "frames"))
            if kind == "color":
                return color_reply(self.app, scene_id, int(number))
            if not owns_pixel(self.app, environ.get("HTTP_AUTHORIZATION"), scene_id, int(number)):
                return None
            return track_reply(self.app, scene_id, int(number), environ.get("HTTP_ACCEPT"))
        except Unavailable as error:
            self.app.logger.warning("the show's fast path could not answer: %s", error)
            return unavailable_reply()
        except Exception:  # noqa: BLE001 - answered like Flask's handler in c3s.web.errors
            self.app.logger.exception("unhandled error in the show's fast path")
            body = json.dumps({"message": "internal error; the operators have been told", "detail": {}})
            return Reply(500, [("Content-Type", "application/json"), ("Content-Length", str(len(body))),
                               ("Cache-Control", "no-store")], body.encode())


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
