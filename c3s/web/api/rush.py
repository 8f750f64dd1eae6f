"""The join rush over HTTP: a phone becomes a guest and a pixel of the scene in one request, and
checks in with one (its pixel, and with ``show=1`` the show's timeline head as well).

Like the show's playback reads, both are answered by the functions here for two routes: the raw
WSGI fast path in :mod:`c3s.web.fast`, which serves them in front of Flask because a whole
stadium makes them within minutes, and the Flask views below, which document them in the
OpenAPI spec (and answer HEAD). ``POST /api/guests`` followed by ``POST …/join`` keeps working.
"""

from __future__ import annotations

import json

from apiflask import APIBlueprint, Schema
from apiflask.fields import Boolean, DateTime, Dict, Integer, Nested, String
from flask import Flask, current_app, request
from marshmallow import ValidationError

from c3s.errors import C3SError
from c3s.rush import Rush
from c3s.web.api.show import Reply, show_reply
from c3s.web.schemas import GuestIn, UserOut

bp = APIBlueprint("rush", __name__, tag="Scenes")

MAX_JOIN_BODY_BYTES = 4096
BIGINT_MAX = 2**63 - 1
_LOG_IN_FIRST = "log in first: send 'Authorization: Bearer <token>'"
_TRUE = ("1", "true", "yes")


def rush_of(app: Flask) -> Rush:
    return app.extensions["c3s_rush"]


def _json(status: int, body: dict | bytes, **headers: str) -> Reply:
    data = body if isinstance(body, bytes) else json.dumps(body, separators=(",", ":")).encode()
    pairs = [("Content-Type", "application/json"), ("Content-Length", str(len(data))),
             ("Cache-Control", "no-store")]
    return Reply(status, pairs + [(name.replace("_", "-"), value) for name, value in headers.items()], data)


def _failure(error: C3SError) -> Reply:
    headers = {"WWW_Authenticate": 'Bearer realm="c3s"'} if error.status == 401 else {}
    if error.status == 503:
        headers["Retry_After"] = "2"
    return _json(error.status, {"message": error.message, "detail": error.detail}, **headers)


def parse_guest_body(raw: bytes) -> dict | Reply:
    """The join's JSON body checked by the same schema as ``POST /api/guests``; empty is ``{}``."""
    if len(raw) > MAX_JOIN_BODY_BYTES:
        return _json(413, {"message": f"the body is larger than {MAX_JOIN_BODY_BYTES} bytes",
                           "detail": {"max_bytes": MAX_JOIN_BODY_BYTES}})
    try:
        data = json.loads(raw) if raw.strip() else {}
    except (ValueError, UnicodeDecodeError):
        return _json(400, {"message": "the body must be JSON", "detail": {}})
    try:
        return GuestIn().load(data if isinstance(data, dict) else {"_": data})
    except ValidationError as error:
        return _json(422, {"message": "Validation error", "detail": {"json": error.messages}})


def guest_join_reply(app: Flask, scene_id: int, body: dict) -> Reply:
    """201 with the new guest's device token and its pixel in the scene."""
    if scene_id > BIGINT_MAX:
        return _json(404, {"message": f"scene {scene_id} does not exist", "detail": {}})
    try:
        joined = rush_of(app).join_as_guest(scene_id, body.get("display_name", ""))
    except C3SError as error:
        return _failure(error)
    return _json(201, joined.json())


def bearer_token(authorization: str | None) -> str | None:
    scheme, _, token = (authorization or "").partition(" ")
    return token.strip() if scheme.lower() == "bearer" and token.strip() else None


def me_reply(app: Flask, scene_id: int, authorization: str | None, show: str | None = None) -> Reply:
    """The caller's pixel in the scene; with ``show`` true, the show's timeline head too."""
    token = bearer_token(authorization)
    if token is None:
        return _json(401, {"message": _LOG_IN_FIRST, "detail": {}}, WWW_Authenticate='Bearer realm="c3s"')
    if scene_id > BIGINT_MAX:
        return _json(404, {"message": f"scene {scene_id} does not exist", "detail": {}})
    try:
        body = json.dumps(rush_of(app).my_pixel(scene_id, token).json(), separators=(",", ":")).encode()
    except C3SError as error:
        return _failure(error)
    if (show or "").lower() in _TRUE:
        timeline = show_reply(app, scene_id, "false")
        if timeline.status != 200:
            return timeline
        body = body[:-1] + b',"show":' + timeline.body + b"}"
    return _json(200, body)


# -------------------------------------------------------------------------------- schemas


class GuestJoinOut(Schema):
    token = String(metadata={"description": "shown once; send as 'Authorization: Bearer <token>'"})
    kind = String(metadata={"description": "device"})
    expires_at = DateTime()
    user = Nested(UserOut)
    scene_id = Integer()
    number = Integer(metadata={"description": "the pixel's number in the scene"})
    status = String()
    calibration = Dict(metadata={"description": "what the phone must display to be located"})


class MeQuery(Schema):
    show = Boolean(load_default=False, metadata={
        "description": "true: add the show's timeline head (as GET …/show?frames=false answers it)"})


class MeOut(Schema):
    scene_id = Integer()
    number = Integer()
    status = String(metadata={"description": "joined, located, excluded or left"})
    excluded_reason = String(allow_none=True, metadata={"description": "why a moderator excluded the pixel"})
    calibration = Dict(metadata={"description": "what the phone must display to be located"})
    show = Dict(metadata={"description": "with show=true only: the show's timeline head, as "
                                         "GET …/show?frames=false answers it (ShowOut without frames)"})


# ---------------------------------------------------------------------------------- routes


def _flask(reply: Reply):
    from flask import Response

    response = Response(reply.body, status=reply.status)
    for name, value in reply.headers:
        response.headers[name] = value
    return response


@bp.post("/scenes/<int:scene_id>/guests")
@bp.input(GuestIn, arg_name="body")
@bp.output(GuestJoinOut, status_code=201)
@bp.doc(responses={404: "no such scene", 409: "the show in the scene has ended",
                   503: "the database does not answer"})
def join_as_guest(scene_id: int, body):
    """Join as a new guest in one request: creates a guest user with the `pixel` right, its
    device token (shown once) and its pixel in the scene, as `POST /api/guests` and then
    `POST …/join` would. What a phone scanning a poster calls."""
    return _flask(guest_join_reply(current_app, scene_id, body))


@bp.get("/scenes/<int:scene_id>/me")
@bp.input(MeQuery, location="query", arg_name="query")
@bp.output(MeOut)
@bp.doc(security="BearerAuth", responses={401: "no token, or an unknown, revoked or expired one",
                                          404: "no such scene, or you have not joined it"})
def my_pixel(scene_id: int, query):
    """Your pixel in this scene (after a reload the phone finds itself again), with
    `excluded_reason` once a moderator excluded it; with `show=true` also the show's timeline
    head, so a playing phone checks in with one request."""
    return _flask(me_reply(current_app, scene_id, request.headers.get("Authorization"),
                           request.args.get("show")))


def init_app(app: Flask) -> None:
    svc = app.extensions["c3s"]
    app.extensions["c3s_rush"] = Rush(svc.database.engine, key_source=lambda: svc.token_key,
                                      device_token_ttl_s=svc.config.device_token_ttl_s)
