"""A raw WSGI fast path in front of Flask for what a whole stadium asks: the clock, the show's
timeline, a pixel's track and its current colour, a phone's check-in (GET …/me) and the
one-request guest join (POST …/guests); HEAD and everything else go to Flask. Routing, request
objects, context pushes, response objects and schema serialisation cost more than the answer
itself at thousands of requests a second per core, so these routes are matched with regular
expressions and answered by the same functions the Flask views call (:mod:`c3s.web.playback`
and :mod:`c3s.web.rush`; :mod:`c3s.web.api.show` and :mod:`c3s.web.api.rush` document them in
the OpenAPI spec). A track is answered here only to the pixel's own token (one indexed query);
anyone else goes to Flask, which checks who it is. A login or a registration that finds this
process's password hash slot taken is shed here with a 503 before any work, or a 429 once its
address has used its allowance of attempts."""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Callable

from flask import Flask
from werkzeug.http import HTTP_STATUS_CODES

from c3s.accounts import BUSY_HASHING, hashing_busy
from c3s.errors import C3SError, Unavailable
from c3s.show import now_ms
from c3s.web.errors import INTERNAL_ERROR, error_parts
from c3s.web.inputs import refuse_control_characters
from c3s.web.playback import Reply, color_reply, owns_pixel, show_reply, time_reply, track_reply
from c3s.web.ratelimit import per_address_of
from c3s.web.rush import guest_join_reply, me_reply, parse_guest_body

log = logging.getLogger(__name__)

_ROUTE = re.compile(r"/api/(?:(time)|scenes/(\d{1,30})/(?:(show)|pixels/(\d{1,30})/(color|track)))")
# The join rush: GET …/me, the phone's check-in, and POST …/guests, the join.
_PHONE_ROUTE = re.compile(r"/api/scenes/(\d{1,30})/(me|guests)")
_PHONE_METHOD = {"me": "GET", "guests": "POST"}
# The routes that hash a password, with the per-address allowance each counts against (as in
# c3s.web.api.users): a shed attempt is still an attempt, so a storm from one address meets 429.
_HASHING_ROUTES = {"/api/tokens": ("logins", "rate_logins_per_address", "login attempts from your address"),
                   "/api/users": ("registrations", "rate_registrations_per_address",
                                  "registrations from your address")}
_STATUS_LINES = {code: f"{code} {reason.upper()}" for code, reason in HTTP_STATUS_CODES.items()}


class ShowFastPath:
    """WSGI middleware: serves the show's public GET routes itself, passes the rest to Flask."""

    def __init__(self, app: Flask, wsgi_app):
        self.app = app
        self.wsgi_app = wsgi_app

    def __call__(self, environ, start_response):
        received_ms = now_ms()
        method = environ.get("REQUEST_METHOD")
        if method == "POST" and environ.get("PATH_INFO") in _HASHING_ROUTES and hashing_busy():
            # A storm of logins then costs a counter each; the clock keeps threads and cores.
            return _respond(self._guarded(lambda: self._shed_hashing(environ)), start_response)
        if method == "GET":
            match = _ROUTE.fullmatch(environ.get("PATH_INFO", ""))
            if match is not None:
                reply = self._guarded(lambda: self._answer(match, environ, received_ms))
                if reply is None:  # a track asked for without the pixel's own token: Flask decides
                    return self.wsgi_app(environ, start_response)
                return _respond(reply, start_response)
        if method in ("GET", "POST"):
            match = _PHONE_ROUTE.fullmatch(environ.get("PATH_INFO", ""))
            if match is not None and _PHONE_METHOD[match[2]] == method:
                reply = self._guarded(lambda: self._answer_phone(match, environ))
                return _respond(reply, start_response)
        return self.wsgi_app(environ, start_response)

    def _answer(self, match: re.Match, environ, received_ms: float) -> Reply | None:
        is_time, scene, is_show, number, kind = match.groups()
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

    def _answer_phone(self, match: re.Match, environ) -> Reply:
        scene_id = int(match[1])
        if match[2] == "me":
            return me_reply(self.app, scene_id, environ.get("HTTP_AUTHORIZATION"),
                            _query_value(environ.get("QUERY_STRING", ""), "show"))
        per_address_of(self.app, environ, "guests", "rate_guests_per_address", "guests from your address")
        per_address_of(self.app, environ, "joins", "rate_joins_per_address", "joins from your address")
        body = parse_guest_body(_read_body(environ))
        refuse_control_characters(body.get("display_name", ""), "json.display_name")
        return guest_join_reply(self.app, scene_id, body)

    def _shed_hashing(self, environ) -> Reply:
        """Count the attempt against its address's allowance (429 past it), else 503 busy."""
        per_address_of(self.app, environ, *_HASHING_ROUTES[environ["PATH_INFO"]])
        raise Unavailable(BUSY_HASHING)

    def _guarded(self, answer: Callable[[], Reply | None]) -> Reply | None:
        try:
            return answer()
        except C3SError as error:
            status, body, headers = error_parts(error)
            return _json_reply(status, body, headers)
        except Exception:  # noqa: BLE001 - answered like Flask's handler in c3s.web.errors
            self.app.logger.exception("unhandled error in the fast path")
            return _json_reply(500, {"message": INTERNAL_ERROR, "detail": {}}, {"Cache-Control": "no-store"})


def _json_reply(status: int, body: dict, headers: dict[str, str]) -> Reply:
    data = json.dumps(body).encode()
    pairs = [("Content-Type", "application/json"), ("Content-Length", str(len(data))), *headers.items()]
    return Reply(status, pairs, data)


def _respond(reply: Reply, start_response):
    start_response(_STATUS_LINES[reply.status], reply.headers)
    if reply.restamp is not None:
        return _restamped(reply)
    return [reply.body]


def _restamped(reply):
    """The body, rendered when the server asks for its first bytes: the WSGI servers write the
    status line and headers with them, so the clock's stamp is as late as the answer can be."""
    body = reply.restamp()
    yield body if len(body) == len(reply.body) else reply.body


def _read_body(environ, limit: int = 65536) -> bytes:
    """The request body, at most ``limit`` bytes plus one (so an oversized body is seen)."""
    try:
        length = int(environ.get("CONTENT_LENGTH") or 0)
    except ValueError:
        length = 0
    if length <= 0:
        return b""
    return environ["wsgi.input"].read(min(length, limit + 1))


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
