"""Location without a camera: seat maps and seat claims, GPS fixes, speakers and sound recordings."""

from __future__ import annotations

import math
import time

from apiflask import APIBlueprint
from flask import Response, request
from sqlalchemy import select

from c3s import scenes
from c3s.errors import Conflict, Invalid, UnsupportedMedia
from c3s.frames import pending_files
from c3s.locate import gps, seat, sound
from c3s.models import Scene, Speaker
from c3s.permissions import require
from c3s.positioning.seats import MAX_LABEL_CHARS
from c3s.tasks import queue_locate_job
from c3s.web.auth import current_user, require_read, require_staff, token_auth
from c3s.web.context import db_session, services
from c3s.web.contract import request_body
from c3s.web.paging import json_page, link_headers, next_url
from c3s.web.ratelimit import TOO_MANY, per_user
from c3s.web.schemas import (
    GpsFixIn,
    JobOut,
    PageHeaders,
    PositionOut,
    ScheduleQuery,
    SeatClaimIn,
    SeatClaimOut,
    SeatConflictOut,
    SeatConflictQuery,
    SeatMapImportOut,
    SeatMapPageOut,
    SeatMapQuery,
    SoundUploadIn,
    SpeakersIn,
    SpeakersOut,
)

bp = APIBlueprint("positioning", __name__, tag="Positioning")

SCHEDULE_LEAD_MS = 30_000
# c3s.positioning.seats refuses a blank label and every control character in one.
_LABEL_PATTERN = "^[^\\u0000-\\u001f\\u007f]*[^\\s\\u0000-\\u001f\\u007f][^\\u0000-\\u001f\\u007f]*$"
_SEAT = {"type": "object", "required": ["section", "row", "seat", "x", "y"], "properties": {
    **{part: {"type": ["string", "integer"], "maxLength": MAX_LABEL_CHARS, "pattern": _LABEL_PATTERN}
       for part in ("section", "row", "seat")},
    **{axis: {"type": "number"} for axis in ("x", "y")}, "z": {"type": ["number", "null"]}}}
# What the body may be; which maps are valid (every line parses, no seat or position twice) is a
# parse of the whole file that a JSON Schema cannot state, so the schemas give the shapes.
SEAT_MAP_BODY = {"required": True, "content": {
    "text/csv": {"schema": {"type": "string", "minLength": 1, "description": "a header `section,row,seat,x,y` (z optional), "
                                                             "one seat a line"}},
    "application/json": {"schema": {"anyOf": [
        {"type": "array", "items": _SEAT, "minItems": 1},
        {"type": "object", "required": ["seats"], "properties": {"seats": {"type": "array", "items": _SEAT,
                                                                           "minItems": 1}}}]}},
    "multipart/form-data": {"schema": {"type": "object", "required": ["file"], "properties": {
        "file": {"type": "string", "format": "binary", "minLength": 1,
                 "description": "the CSV or JSON file (.csv, .json)"}}}}}}
_NO_METRES = "the scene is measured in seats and has no geo_metres_per_unit (its chirp schedule needs metres)"


# ------------------------------------------------------------------------------------ seats


def _seat_map_body() -> tuple[bytes, str | None]:
    """The uploaded map and its format, from a multipart file, a JSON body or a CSV body."""
    if request.mimetype == "multipart/form-data":
        upload = request.files.get("file")
        if upload is None:
            raise Invalid("send the seat map as the multipart field 'file'")
        name = (upload.filename or "").lower()
        fmt = "json" if name.endswith(".json") else "csv" if name.endswith(".csv") else None
        return upload.read(), fmt
    if request.mimetype in ("application/json", "text/json"):
        return request.get_data(), "json"
    if request.mimetype in ("text/csv", "text/plain", "application/csv", ""):
        return request.get_data(), "csv" if request.mimetype != "" else None
    raise UnsupportedMedia(f"a seat map is CSV (text/csv), JSON (application/json) or a multipart file, "
                           f"not {request.mimetype}")


@bp.put("/scenes/<int:scene_id>/seatmap")
@bp.auth_required(token_auth)
@bp.output(SeatMapImportOut)
@bp.doc(description="CSV with the header `section,row,seat,x,y` (text/csv), JSON (a list of such "
                    "objects, or {\"seats\": [...]}) or either as the multipart field `file`. Every bad "
                    "line is reported (422, `detail.errors`); the import replaces the whole map or "
                    "nothing. Claims on seats that stay keep their seat.",
        responses={409: "the map conflicts with the seats already stored", 429: TOO_MANY})
@request_body(SEAT_MAP_BODY)
def put_seat_map(scene_id: int):
    """Import (replace) the scene's seat map (needs `scene_admin`)."""
    per_user("uploads", current_user().id, "rate_uploads_per_user", "uploads from you")
    session = db_session()
    scene = scenes.get_scene(session, scene_id)
    require(session, current_user(), "scene_admin", scene)
    data, fmt = _seat_map_body()
    if not data.strip():
        raise Invalid("the seat map is empty")
    stats = seat.import_seat_map(session, current_user(), scene, seat.parse_upload(data, fmt))
    session.commit()
    return stats


@bp.get("/scenes/<int:scene_id>/seatmap")
@bp.auth_required(token_auth)
@bp.input(SeatMapQuery, location="query", arg_name="query")
@bp.output(SeatMapPageOut, headers=PageHeaders)
@bp.doc(description="A page of at most `limit` seats by section, row and seat; `count` is the whole "
                    "map's. Follow `next` (or the `Link` header) for the rest: a page costs the same "
                    "anywhere in a 150,000-seat map.")
def get_seat_map(scene_id: int, query):
    """The scene's seats (empty when it has no seat map; its staff, observers and pixels)."""
    session = db_session()
    scene = scenes.get_scene(session, scene_id)
    require_read(scene, "member", to="read its seat map")
    page = seat.seat_page(session, scene, after=query["after"], limit=query["limit"])
    count = seat.seat_count(session, scene)
    return json_page({"count": count, "seats": page.items}, next_url("seats", page.next_key, query["limit"]))


def _own_pixel(scene_id: int, number: int):
    session = db_session()
    scene = scenes.get_scene(session, scene_id)
    return session, scene, scenes.pixel_by_number(session, scene, number)


@bp.post("/scenes/<int:scene_id>/pixels/<int:number>/seat")
@bp.auth_required(token_auth)
@bp.input(SeatClaimIn, arg_name="body")
@bp.output(SeatClaimOut)
@bp.doc(responses={409: "the seat is held by another pixel: the claim is recorded and shown to the "
                        "operator as a conflict", 422: "no such seat; `detail.suggestions` lists close ones"})
def claim_seat(scene_id: int, number: int, body):
    """Say which seat this pixel sits in (the pixel itself); it is located at the seat."""
    session, scene, pixel = _own_pixel(scene_id, number)
    outcome = seat.claim_seat(session, current_user(), scene, pixel, **body)
    session.commit()
    target = outcome.seat
    label = {"section": target.section, "row": target.row, "seat": target.seat,
             "label": f"{target.section}-{target.row}-{target.seat}", "x": target.x, "y": target.y}
    if not outcome.accepted:
        raise Conflict(f"seat {label['label']} is already taken by another pixel; your claim is recorded "
                       "and the operator sees the conflict", detail={"seat": label, "recorded": True,
                                                                    "also_claimed_by": outcome.held_by})
    session.refresh(pixel)
    return {"accepted": True, "seat": label, "also_claimed_by": outcome.held_by, "pixel": pixel}


@bp.get("/scenes/<int:scene_id>/seat-conflicts")
@bp.auth_required(token_auth)
@bp.input(SeatConflictQuery, location="query", arg_name="query")
@bp.output(SeatConflictOut(many=True), headers=PageHeaders, description="a page of the seats in conflict; the "
           'next page\'s URL is in the `Link: <...>; rel="next"` header')
def seat_conflicts(scene_id: int, query):
    """Seats claimed by more than one pixel by section, row and seat, with every claim (the
    scene's staff)."""
    session = db_session()
    scene = scenes.get_scene(session, scene_id)
    require_staff(scene, to="see its seat conflicts")
    rows, last = seat.seat_conflicts(session, scene, after=query["after"], limit=query["limit"])
    return rows, 200, link_headers(next_url("seat-conflicts", last, query["limit"]))


# -------------------------------------------------------------------------------------- gps


@bp.post("/scenes/<int:scene_id>/pixels/<int:number>/gps")
@bp.auth_required(token_auth)
@bp.input(GpsFixIn, arg_name="body")
@bp.output(PositionOut)
@bp.doc(responses={409: "the scene has no geo-reference", 422: "impossible coordinates, a fix worse than "
                        "the scene's max_gps_accuracy_m, or a fix off the scene (the message says which)"})
def gps_fix(scene_id: int, number: int, body):
    """Report this pixel's GPS fix (the pixel itself); it replaces the pixel's previous fix."""
    session, scene, pixel = _own_pixel(scene_id, number)
    outcome = gps.locate_by_gps(session, current_user(), scene, pixel, **body)
    session.commit()
    session.refresh(pixel)
    return {"job_id": outcome.job.id, "x": outcome.x, "y": outcome.y, "sigma": outcome.sigma, "pixel": pixel}


# ------------------------------------------------------------------------------------ sound


def _speakers_body(scene: Scene) -> dict:
    session = db_session()
    rows = session.scalars(select(Speaker).where(Speaker.scene_id == scene.id).order_by(Speaker.index)).all()
    body = {"speakers": [{"index": r.index, "x": r.x, "y": r.y, "z": r.z, "delay_ms": r.delay_ms} for r in rows],
            "period_ms": None, "slot_ms": None}
    if len(rows) >= sound.MIN_SPEAKERS:
        schedule = sound.schedule_for(sound.scene_venue(session, scene), 0.0)
        body.update(period_ms=schedule.period_ms, slot_ms=schedule.slot_ms)
    return body


@bp.put("/scenes/<int:scene_id>/speakers")
@bp.auth_required(token_auth)
@bp.input(SpeakersIn, arg_name="body")
@bp.output(SpeakersOut)
@bp.doc(responses={409: _NO_METRES})
def put_speakers(scene_id: int, body):
    """Place the scene's speakers (needs `scene_admin`); their order is their chirp slot."""
    session = db_session()
    scene = scenes.get_scene(session, scene_id)
    sound.set_speakers(session, current_user(), scene, body["speakers"])
    session.commit()
    return _speakers_body(scene)


@bp.get("/scenes/<int:scene_id>/speakers")
@bp.auth_required(token_auth)
@bp.output(SpeakersOut)
@bp.doc(responses={409: _NO_METRES})
def get_speakers(scene_id: int):
    """The scene's speakers and the period of their chirp schedule (its staff, observers and
    pixels)."""
    session = db_session()
    scene = scenes.get_scene(session, scene_id)
    require_read(scene, "member", to="read its speakers")
    return _speakers_body(scene)


@bp.get("/scenes/<int:scene_id>/sound/schedule.wav")
@bp.auth_required(token_auth)
@bp.input(ScheduleQuery, location="query", arg_name="query")
@bp.doc(responses={200: {"description": "16-bit mono WAV, two schedule periods; loop it from start_ms",
                         "content": {"audio/wav": {}}},
                   409: "the scene has fewer than four speakers, or is measured in seats and has no "
                        "geo_metres_per_unit"})
def schedule_wav(scene_id: int, query):
    """The chirp WAV the operator plays through the venue's speakers (its staff and observers).

    Each speaker must play only its own chirps: play `?speaker=i` through speaker i, or route the
    mixed file so that each speaker sounds only in its slot."""
    from c3s.positioning.sound import render_schedule_wav

    session = db_session()
    scene = scenes.get_scene(session, scene_id)
    require_staff(scene, to="download its chirp schedule")
    venue = sound.scene_venue(session, scene)
    start_ms = query["start_ms"]
    if start_ms is None:
        period = sound.period_ms(venue)
        start_ms = math.ceil((time.time() * 1000 + SCHEDULE_LEAD_MS) / period) * period
    schedule = sound.playback_schedule(venue, start_ms)
    name = f"scene-{scene.id}-chirps-{start_ms:.0f}"
    if query["speaker"] is None:
        wav = render_schedule_wav(schedule, sample_rate=sound.SAMPLE_RATE_HZ)
    else:
        wav = sound.speaker_wav(schedule, query["speaker"])
        name += f"-speaker-{query['speaker']}"
    return Response(wav, mimetype="audio/wav", headers={
        "X-C3S-Start-Ms": f"{start_ms:.0f}", "X-C3S-Period-Ms": f"{schedule.period_ms:g}",
        "Content-Disposition": f'attachment; filename="{name}.wav"'})


@bp.post("/scenes/<int:scene_id>/pixels/<int:number>/sound")
@bp.auth_required(token_auth)
@bp.input(SoundUploadIn, location="form_and_files", arg_name="form")
@bp.output(JobOut, status_code=202)
@bp.doc(responses={415: "not a PCM WAV", 422: "a sample rate that cannot carry the chirps, or too long",
                   409: "the scene has fewer than four speakers", 429: TOO_MANY})
def upload_recording(scene_id: int, number: int, form):
    """Upload this pixel's microphone clip (the pixel itself); a worker locates it by the chirps."""
    per_user("uploads", current_user().id, "rate_uploads_per_user", "uploads from you")
    session, scene, pixel = _own_pixel(scene_id, number)
    upload = form["file"]
    with pending_files(services().store) as pending:
        job = sound.create_sound_job(session, pending, current_user(), scene, pixel, data=upload.read(),
                                     filename=upload.filename or "", start_ms=form["start_ms"])
        session.commit()
    queue_locate_job(job.id)
    session.refresh(job)
    return job


@bp.get("/scenes/<int:scene_id>/pixels/<int:number>/sound/<int:job_id>")
@bp.auth_required(token_auth)
@bp.output(JobOut)
def recording_job(scene_id: int, number: int, job_id: int):
    """The state of one of this pixel's recordings (the pixel itself or the scene's staff):
    `done`, or `failed` with the reason (silent, clipped, too few chirps heard, ...)."""
    from c3s.errors import NotFound
    from c3s.models import LocateJob

    session, scene, pixel = _own_pixel(scene_id, number)
    if pixel.user_id != current_user().id:
        require_staff(scene, to="read its pixels' recordings")
    job = session.get(LocateJob, job_id)
    if job is None or job.scene_id != scene.id or job.method != "sound" or \
            job.stats.get("options", {}).get("pixel_id") != pixel.id:
        raise NotFound(f"pixel {number} has no recording job {job_id}")
    return job
