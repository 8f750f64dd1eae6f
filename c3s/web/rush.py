"""The join rush's answers, the same bytes whichever route serves them: the raw WSGI fast path
(:mod:`c3s.web.fast`), which a whole stadium reaches within minutes, and the Flask views of
:mod:`c3s.web.api.rush`, which document them in the OpenAPI spec (and answer HEAD). Errors are
raised as :class:`c3s.errors.C3SError` and answered by the one mapping in :mod:`c3s.web.errors`."""

from __future__ import annotations

import json

from flask import Flask
from marshmallow import ValidationError
from sqlalchemy.orm import Session

from c3s.errors import C3SError, Invalid, NotFound, TooLarge, Unauthorized
from c3s.models import Pixel, Scene
from c3s.rush import Locating, Rush
from c3s.web.calibration import calibration, calibration_of
from c3s.web.errors import validation_message
from c3s.web.playback import QUERY_FLAGS, QUERY_TRUE, Reply, json_reply, show_reply
from c3s.web.schemas import GuestIn

MAX_JOIN_BODY_BYTES = 4096
BIGINT_MAX = 2**63 - 1
LOG_IN_FIRST = "log in first: send 'Authorization: Bearer <token>'"


class BadJson(C3SError):
    status = 400


def rush_of(app: Flask) -> Rush:
    return app.extensions["c3s_rush"]


def parse_guest_body(raw: bytes) -> dict:
    """The join's JSON body checked by the same schema as ``POST /api/guests``; empty is ``{}``."""
    if len(raw) > MAX_JOIN_BODY_BYTES:
        raise TooLarge(f"the body is larger than {MAX_JOIN_BODY_BYTES} bytes", detail={"max_bytes": MAX_JOIN_BODY_BYTES})
    try:
        data = json.loads(raw) if raw.strip() else {}
    except (ValueError, UnicodeDecodeError):
        raise BadJson("the body must be JSON") from None
    try:
        return GuestIn().load(data if isinstance(data, dict) else {"_": data})
    except ValidationError as error:
        raise Invalid(validation_message({"json": error.messages}), detail={"json": error.messages}) from None


def _calibration(app: Flask, scene_id: int, number: int, locating: Locating) -> dict:
    plain = calibration_of(scene_id, number, locating.method, max_gps_accuracy_m=locating.max_gps_accuracy_m,
                           georeferenced=locating.georeferenced)
    if plain is not None:
        return plain
    with Session(app.extensions["c3s"].database.engine) as session:  # sound: it depends on the speakers
        return calibration(session.get(Scene, scene_id), Pixel(number=number))


def _scene_id(scene_id: int) -> int:
    if scene_id > BIGINT_MAX:  # no such id can exist (and PostgreSQL would refuse it)
        raise NotFound(f"scene {scene_id} does not exist")
    return scene_id


def guest_join_reply(app: Flask, scene_id: int, body: dict) -> Reply:
    """201 with the new guest's device token and its pixel in the scene."""
    joined = rush_of(app).join_as_guest(_scene_id(scene_id), body.get("display_name", ""))
    answer = {**joined.json(), "calibration": _calibration(app, joined.scene_id, joined.number, joined.locating)}
    return json_reply(answer, 201, Cache_Control="no-store")


def bearer_token(authorization: str | None) -> str:
    scheme, _, token = (authorization or "").partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise Unauthorized(LOG_IN_FIRST)
    return token.strip()


def me_reply(app: Flask, scene_id: int, authorization: str | None, show: str | None = None) -> Reply:
    """The caller's pixel in the scene; with ``show`` true, the show's timeline head too."""
    token = bearer_token(authorization)
    mine = rush_of(app).my_pixel(_scene_id(scene_id), token)
    body = json.dumps({**mine.json(), "calibration": _calibration(app, scene_id, mine.number, mine.locating)},
                      separators=(",", ":")).encode()
    if (show or "") not in QUERY_FLAGS:
        raise Invalid("show must be true or false", detail={"show": show})
    if show in QUERY_TRUE:
        timeline = show_reply(app, scene_id, "false")
        if timeline.status != 200:
            return timeline
        body = body[:-1] + b',"show":' + timeline.body + b"}"
    return Reply(200, [("Content-Type", "application/json"), ("Content-Length", str(len(body))),
                       ("Cache-Control", "no-store")], body)


def init_app(app: Flask) -> None:
    """The per-process rush (prepared statements on PostgreSQL), for both routes."""
    svc = app.extensions["c3s"]
    app.extensions["c3s_rush"] = Rush(svc.database.engine, key_source=lambda: svc.token_key,
                                      device_token_ttl_s=svc.config.device_token_ttl_s)
