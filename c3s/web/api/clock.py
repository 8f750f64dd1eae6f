"""The phones' clocks as the operator sees them: each phone reports how uncertain its estimate
of the server clock is (``clock.js``'s ``uncertaintyMs``) with its check-in, and the staff read
the scene's distribution. The clock itself is ``GET /api/time`` (:mod:`c3s.web.api.show`)."""

from __future__ import annotations

import statistics

from apiflask import APIBlueprint, Schema
from apiflask.fields import Float, Integer, List, Nested
from apiflask.validators import Range
from sqlalchemy import select, update

from c3s import scenes
from c3s.errors import NotFound
from c3s.models import Pixel
from c3s.web.auth import current_user, require_staff, token_auth
from c3s.web.context import db_session, read_db_session

bp = APIBlueprint("clock", __name__, tag="Show")

MAX_UNCERTAINTY_MS = 60_000.0
WORST_SHOWN = 10


class ClockReportIn(Schema):
    uncertainty_ms = Float(required=True, allow_nan=False, validate=Range(0, MAX_UNCERTAINTY_MS),
                           metadata={"description": "the phone's clock offset uncertainty, ms"})


class ClockWorstOut(Schema):
    number = Integer()
    uncertainty_ms = Float()


class ClockSummaryOut(Schema):
    reporting = Integer(metadata={"description": "pixels (not left) that reported their clock"})
    pixels = Integer(metadata={"description": "pixels in the scene that have not left"})
    median_uncertainty_ms = Float(allow_none=True)
    p95_uncertainty_ms = Float(allow_none=True)
    worst = List(Nested(ClockWorstOut), metadata={"description": f"the {WORST_SHOWN} least certain clocks"})


@bp.put("/scenes/<int:scene_id>/me/clock")
@bp.auth_required(token_auth)
@bp.input(ClockReportIn, arg_name="body")
@bp.output({}, status_code=204)
@bp.doc(responses={404: "you have not joined this scene"})
def report_clock(scene_id: int, body):
    """Your phone's clock: how uncertain its offset from the server clock is, after its last sync."""
    session = db_session()
    scene = scenes.get_scene(session, scene_id)
    done = session.execute(update(Pixel).where(Pixel.scene_id == scene.id, Pixel.user_id == current_user().id)
                           .values(clock_uncertainty_ms=body["uncertainty_ms"]))
    if done.rowcount == 0:
        raise NotFound("you have not joined this scene")
    session.commit()
    return ""


@bp.get("/scenes/<int:scene_id>/clock")
@bp.auth_required(token_auth)
@bp.output(ClockSummaryOut)
def clock_summary(scene_id: int):
    """How well the scene's phones know the server clock (staff): the distribution of their
    reported uncertainties and the least certain phones."""
    session = read_db_session()
    scene = scenes.get_scene(session, scene_id)
    require_staff(scene, to="read its phones' clocks")
    rows = session.execute(select(Pixel.number, Pixel.clock_uncertainty_ms)
                           .where(Pixel.scene_id == scene.id, Pixel.status != "left")).all()
    reported = sorted(((value, number) for number, value in rows if value is not None), reverse=True)
    values = sorted(value for value, _ in reported)
    return {
        "reporting": len(values),
        "pixels": len(rows),
        "median_uncertainty_ms": statistics.median(values) if values else None,
        "p95_uncertainty_ms": values[min(len(values) - 1, round(0.95 * (len(values) - 1)))] if values else None,
        "worst": [{"number": number, "uncertainty_ms": value} for value, number in reported[:WORST_SHOWN]],
    }
