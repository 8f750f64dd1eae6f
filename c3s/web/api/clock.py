"""The phones' clocks as the operator sees them: each phone reports how uncertain its estimate
of the server clock is (``clock.js``'s ``uncertaintyMs``) with its check-in, and the staff read
the scene's distribution. The clock itself is ``GET /api/time`` (:mod:`c3s.web.api.show`)."""

from __future__ import annotations

import statistics

from apiflask import APIBlueprint
from sqlalchemy import select, update

from c3s import scenes
from c3s.errors import NotFound
from c3s.models import Pixel
from c3s.permissions import require_staff
from c3s.web.auth import current_user, token_auth
from c3s.web.context import db_session, read_db_session
from c3s.web.schemas import ClockReportIn, ClockSummaryOut

bp = APIBlueprint("clock", __name__, tag="Show")

WORST_SHOWN = 10  # the least certain clocks the summary lists (ClockSummaryOut.worst)


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
    require_staff(session, current_user(), scene, to="read its phones' clocks")
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
