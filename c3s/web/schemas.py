"""Request and response shapes of the JSON API (they also make the OpenAPI document)."""

from __future__ import annotations

from apiflask import Schema as _ApiSchema
from apiflask.fields import Boolean, DateTime, Dict, File, Float, Integer, List, Nested, String
from apiflask.validators import Length, OneOf, Range, Regexp
from marshmallow import ValidationError, pre_load, validates_schema

from c3s import posters
from c3s.accounts import MIN_PASSWORD_LENGTH
from c3s.keyset import decode_cursor
from c3s.locate.sound import MAX_SPEAKERS, MIN_SPEAKERS
from c3s.models import FIT_MODES, METHOD_CODES, PERMISSIONS, PIXEL_STATUSES, SCENE_UNITS
from c3s.scenes import GEO_FIELDS
from c3s.web.playback import QUERY_FLAGS, T0_PATTERN


def _has_nul(value) -> bool:
    if isinstance(value, str):
        return "\x00" in value
    if isinstance(value, dict):
        return any(_has_nul(k) or _has_nul(v) for k, v in value.items())
    if isinstance(value, list | tuple):
        return any(_has_nul(v) for v in value)
    return False


class JsonBoolean(Boolean):
    """true or false, as JSON has them: not 0, 1 or "yes" (which the document would call invalid)."""

    def _deserialize(self, value, attr, data, **kwargs):
        if not isinstance(value, bool):
            raise self.make_error("invalid")
        return value


class Whole(Nested):
    """A nested object that a partial change (PATCH) still gives whole: an anchor needs its key, x
    and y, whichever scene fields change."""

    def _deserialize(self, value, attr, data, partial=None, **kwargs):
        return super()._deserialize(value, attr, data, partial=None, **kwargs)


class Schema(_ApiSchema):
    """Input text may not hold NUL characters: no database stores them, and they are never
    part of a name, an email or a label a person typed."""

    @pre_load
    def _refuse_nul(self, data, **_kwargs):
        if _has_nul(data if isinstance(data, dict) else {}):
            raise ValidationError("text fields must not contain NUL (\\x00) characters")
        return data


# What c3s.accounts.normalise_email takes, without spaces, control characters or a second "@".
_EMAIL_PART = "[^\\s@\\x00-\\x1f\\x7f]+"
EMAIL_PATTERN = f"^{_EMAIL_PART}@{_EMAIL_PART}\\.{_EMAIL_PART}$"


class RegisterIn(Schema):
    email = String(required=True, validate=[Length(3, 254), Regexp(EMAIL_PATTERN, error="not an email address")])
    password = String(required=True, validate=Length(
        MIN_PASSWORD_LENGTH, 1024, error="the password must have at least {min} characters (and at most {max})"))
    display_name = String(load_default="", validate=Length(0, 100))


class RegisteredOut(Schema):
    email = String(metadata={"description": "the address, normalised"})
    message = String()


class LoginIn(Schema):
    email = String(required=True, validate=Length(1, 254))
    password = String(required=True, validate=Length(1, 1024))


class GuestIn(Schema):
    display_name = String(load_default="", validate=Length(0, 100))


class UserOut(Schema):
    id = Integer()
    email = String(allow_none=True)
    display_name = String()
    is_guest = Boolean()
    created_at = DateTime()


class TokenOut(Schema):
    token = String(metadata={"description": "shown once; send as 'Authorization: Bearer <token>'"})
    kind = String()
    expires_at = DateTime()
    user = Nested(UserOut)


class GrantIn(Schema):
    permission = String(required=True, validate=OneOf(PERMISSIONS))
    scene_id = Integer(load_default=None, allow_none=True, validate=Range(min=1))


class GrantOut(Schema):
    permission = String()
    scene_id = Integer(allow_none=True)


class GrantChangeOut(Schema):
    changed = Boolean()
    permission = String()
    scene_id = Integer(allow_none=True)


class GrantQuery(Schema):
    scene_id = Integer(load_default=None, allow_none=True, validate=Range(min=1))


class MethodOut(Schema):
    code = String()
    name = String()
    description = String()


class AnchorIO(Schema):
    key = String(required=True, validate=Regexp(r"^[A-Z0-9]{1,6}$", error="anchor keys are 1-6 of A-Z, 0-9"))
    x = Float(required=True, allow_nan=False, validate=Range(0, 1e6),
              metadata={"description": "from the scene's left edge, at most its width"})
    y = Float(required=True, allow_nan=False, validate=Range(0, 1e6),
              metadata={"description": "from the scene's top edge, at most its height"})


_SIZE = Range(min=0, min_inclusive=False, max=1e6)


class SceneIn(Schema):
    name = String(required=True, validate=Length(1, 200))
    method = String(required=True, validate=OneOf(METHOD_CODES))
    width = Float(required=True, validate=_SIZE, allow_nan=False)
    height = Float(required=True, validate=_SIZE, allow_nan=False)
    units = String(validate=OneOf(SCENE_UNITS))
    fit = String(validate=OneOf(FIT_MODES))
    show_loop = JsonBoolean()
    anchors = List(Whole(AnchorIO), validate=Length(max=1000))
    geo_lat = Float(allow_none=True, validate=Range(-90, 90), allow_nan=False)
    geo_lon = Float(allow_none=True, validate=Range(-180, 180), allow_nan=False)
    geo_bearing_deg = Float(allow_none=True, validate=Range(-360, 360), allow_nan=False)
    geo_metres_per_unit = Float(allow_none=True, validate=_SIZE, allow_nan=False)
    max_gps_accuracy_m = Float(validate=_SIZE, allow_nan=False)
    temperature_c = Float(validate=Range(-40, 60), allow_nan=False)
    temperature_max_c = Float(allow_none=True, validate=Range(-40, 60), allow_nan=False,
                              metadata={"description": "with temperature_c, the air's range; null: "
                                                       "temperature_c is a single reading"})
    humidity_pct = Float(allow_none=True, validate=Range(0, 100), allow_nan=False,
                         metadata={"description": "relative humidity; null: unknown (0-100 %)"})

    @validates_schema
    def _whole_geo_reference(self, data, **_kwargs):
        """A geo-reference is all of GEO_FIELDS or none; a change (partial) sets all or clears all."""
        given = [f for f in GEO_FIELDS if f in data]
        numbers = [f for f in given if data[f] is not None]
        whole = len(numbers) in (0, len(GEO_FIELDS))
        if self.partial:
            whole = not given or (len(given) == len(GEO_FIELDS) and len(numbers) in (0, len(GEO_FIELDS)))
        if not whole:
            missing = [f for f in GEO_FIELDS if f not in numbers]
            raise ValidationError(f"a geo-reference needs all of {', '.join(GEO_FIELDS)}"
                                  + (" (or all null, to clear it)" if self.partial else "")
                                  + f"; missing: {', '.join(missing)}", field_name="geo")

    def openapi_rules(self) -> dict:
        """The geo-reference rule above, for the OpenAPI document (c3s.web.contract)."""
        def each(kind: str) -> dict:
            return {f: {"type": kind} for f in GEO_FIELDS}
        whole = {"required": list(GEO_FIELDS), "properties": each("number")}
        if self.partial:
            untouched = {"not": {"anyOf": [{"required": [f]} for f in GEO_FIELDS]}}
            cleared = {"required": list(GEO_FIELDS), "properties": each("null")}
            return {"anyOf": [untouched, whole, cleared]}
        return {"anyOf": [{"properties": each("null")}, whole]}


class SceneOut(Schema):
    id = Integer()
    name = String()
    method = String(attribute="method.code")
    owner_id = Integer()
    width = Float()
    height = Float()
    units = String()
    status = String()
    fit = String()
    show_start_at = DateTime(allow_none=True)
    show_loop = Boolean()
    anchors = List(Nested(AnchorIO))
    geo_lat = Float(allow_none=True)
    geo_lon = Float(allow_none=True)
    geo_bearing_deg = Float(allow_none=True)
    geo_metres_per_unit = Float(allow_none=True)
    max_gps_accuracy_m = Float()
    temperature_c = Float()
    temperature_max_c = Float(allow_none=True)
    humidity_pct = Float(allow_none=True)
    layout_version = Integer()
    created_at = DateTime()
    updated_at = DateTime()


class PixelOut(Schema):
    number = Integer()
    status = String()
    x = Float(allow_none=True)
    y = Float(allow_none=True)
    sigma = Float(allow_none=True)
    located_by = String(allow_none=True)
    confidence = Float(allow_none=True)
    located_at = DateTime(allow_none=True)
    excluded_reason = String(allow_none=True)
    joined_at = DateTime()
    clock_uncertainty_ms = Float(allow_none=True, metadata={"description": "the phone's clock uncertainty, ms"})


class JoinOut(Schema):
    scene_id = Integer()
    number = Integer()
    status = String()
    excluded_reason = String(allow_none=True, metadata={"description": "why a moderator excluded this pixel"})
    calibration = Dict(metadata={"description": "what the phone must display to be located"})
    offset_ms = Float(allow_none=True, metadata={
        "description": "the light-output offset blink clips measured (ms, positive = late): play "
                       "the show and the blink pattern this much earlier; null until measured"})


class PixelPageQuery(Schema):
    page = Integer(load_default=1, validate=Range(1, 10**9))  # (page - 1) × per_page fits an SQL OFFSET
    per_page = Integer(load_default=100, validate=Range(1, 1000))
    status = String(load_default=None, validate=OneOf(PIXEL_STATUSES))


class PixelPageOut(Schema):
    pixels = List(Nested(PixelOut))
    page = Integer()
    per_page = Integer()
    total = Integer()


class ExcludeIn(Schema):
    reason = String(load_default="", validate=Length(0, 500))


class HealthOut(Schema):
    ok = Boolean()
    checks = Dict(keys=String(), values=Dict())


class FrameOut(Schema):
    id = Integer()
    position = Integer()
    duration_ms = Integer()
    width = Integer()
    height = Integer()
    image_url = String()
    created_at = DateTime()


WORKER_LOSSES = ("how often the worker running the job was lost (killed, out of memory): after the first "
                 "loss the job runs once more, after the second it fails")


class FrameJobOut(Schema):
    id = Integer()
    scene_id = Integer()
    status = String(metadata={"description": "queued, running, done or failed"})
    progress = Float(metadata={"description": "how much of the video is decoded, 0 to 1"})
    reason = String(allow_none=True, metadata={"description": "why it failed"})
    frame_ids = List(Integer(), metadata={"description": "the frames it appended, once done"})
    filename = String()
    attempts = Integer()
    worker_losses = Integer(metadata={"description": WORKER_LOSSES})
    created_at = DateTime()
    started_at = DateTime(allow_none=True)
    finished_at = DateTime(allow_none=True)


class FrameUploadIn(Schema):
    file = File(required=True, metadata={"description": "an image, an animated GIF or a video", "minLength": 1,
                                         "x-content-type": "image/png, image/jpeg, image/gif, image/webp, "
                                                           "image/bmp, video/*"})
    duration_ms = Integer(load_default=None, allow_none=True, validate=Range(1, 600_000))


class FramePatch(Schema):
    duration_ms = Integer(required=True, validate=Range(1, 600_000))


def _unique(values: list) -> None:
    if len(set(values)) != len(values):
        raise ValidationError("lists a frame more than once")


class FrameOrderIn(Schema):
    frame_ids = List(Integer(), required=True, validate=[Length(max=10_000), _unique],
                     metadata={"uniqueItems": True, "description": "every frame of the scene, once each"})


class JobUploadIn(Schema):
    file = File(required=True, metadata={"description": "a crowd photo (QR) or a clip (blink)", "minLength": 1,
                                         "x-content-type": "image/jpeg, image/png, image/webp, video/*"})
    method = String(load_default=None, allow_none=True, validate=OneOf(("qr", "blink")))
    fps = Float(load_default=None, allow_none=True, validate=Range(1, 240), allow_nan=False)
    start_ms = Float(load_default=None, allow_none=True, validate=Range(0, 4_102_444_800_000), allow_nan=False,
                     metadata={"description": "a clip's first frame on the server clock (Unix ms): with it, "
                                              "a blink clip also times each phone's light (a sync check)"})
    readout_ms = Float(load_default=None, allow_none=True, validate=Range(0, 100), allow_nan=False,
                       metadata={"description": "the filming camera's rolling-shutter readout (top to bottom "
                                                "row, ms), if known; otherwise estimated from the crowd"})
    exposure_ms = Float(load_default=None, allow_none=True, validate=Range(0.1, 1000), allow_nan=False,
                        metadata={"description": "the clip's exposure per frame (ms), if known"})


class JobOut(Schema):
    id = Integer()
    scene_id = Integer()
    method = String()
    status = String()
    reason = String(allow_none=True)
    stats = Dict()
    attempts = Integer()
    worker_losses = Integer(metadata={"description": WORKER_LOSSES})
    filename = String()
    created_at = DateTime()
    started_at = DateTime(allow_none=True)
    finished_at = DateTime(allow_none=True)


class PixelSeatOut(PixelOut):
    seat_id = Integer(allow_none=True, metadata={"description": "the seat a camera position snapped to"})
    seat_confidence = Float(allow_none=True)


class SeatOut(Schema):
    section = String()
    row = String()
    seat = String()
    x = Float()
    y = Float()
    spacing = Float(metadata={"description": "distance to the nearest other seat, scene units"})


class SeatMapOut(Schema):
    count = Integer()
    seats = List(Nested(SeatOut))


class SeatMapImportOut(Schema):
    seats = Integer()
    added = Integer()
    kept = Integer()
    moved = Integer()
    removed = Integer()
    claims_relocated = Integer()


class SeatClaimIn(Schema):
    section = String(required=True, validate=Length(1, 50))
    row = String(required=True, validate=Length(1, 50))
    seat = String(required=True, validate=Length(1, 50))


class SeatLabelOut(Schema):
    section = String()
    row = String()
    seat = String()
    label = String()
    x = Float()
    y = Float()


class SeatClaimOut(Schema):
    accepted = Boolean()
    seat = Nested(SeatLabelOut)
    also_claimed_by = List(Integer(), metadata={"description": "numbers of other pixels claiming it"})
    pixel = Nested(PixelSeatOut)


class SeatClaimEntry(Schema):
    pixel_number = Integer()
    pixel_status = String()
    accepted = Boolean()
    claimed_at = DateTime()


class SeatConflictOut(SeatLabelOut):
    claims = List(Nested(SeatClaimEntry))


class GpsFixIn(Schema):
    lat = Float(required=True, allow_nan=False, metadata={"description": "WGS84 degrees"})
    lon = Float(required=True, allow_nan=False, metadata={"description": "WGS84 degrees"})
    accuracy_m = Float(required=True, allow_nan=False,
                       metadata={"description": "the browser's reported accuracy, metres"})


class PositionOut(Schema):
    job_id = Integer()
    x = Float()
    y = Float()
    sigma = Float()
    pixel = Nested(PixelSeatOut)


class SpeakerIn(Schema):
    x = Float(required=True, allow_nan=False)
    y = Float(required=True, allow_nan=False)
    z = Float(load_default=0.0, allow_nan=False, metadata={"description": "height, scene units"})
    delay_ms = Float(load_default=0.0, allow_nan=False, validate=Range(-2000, 2000),
                     metadata={"description": "the speaker's playback delay (PA delay alignment)"})


class SpeakersIn(Schema):
    speakers = List(Nested(SpeakerIn), required=True,
                    validate=Length(MIN_SPEAKERS, MAX_SPEAKERS, error="place {min} to {max} speakers"),
                    metadata={"description": "in schedule order: speaker i chirps in slot i"})


class SpeakerOut(Schema):
    index = Integer()
    x = Float()
    y = Float()
    z = Float()
    delay_ms = Float()


class SpeakersOut(Schema):
    speakers = List(Nested(SpeakerOut))
    period_ms = Float(allow_none=True)
    slot_ms = Float(allow_none=True)


class ScheduleQuery(Schema):
    start_ms = Float(load_default=None, allow_none=True, allow_nan=False, validate=Range(min=0),
                     metadata={"description": "server-clock ms of the first sample, on a period "
                                              "boundary; default: the next boundary 30 s from now"})
    speaker = Integer(load_default=None, allow_none=True, validate=Range(min=0),
                      metadata={"description": "only this speaker's chirps (a track for its own "
                                               "output); default: every speaker's, mixed"})


class SoundUploadIn(Schema):
    file = File(required=True, metadata={"description": "a mono PCM WAV from the microphone", "minLength": 1,
                                         "x-content-type": "audio/wav"})
    start_ms = Float(required=True, allow_nan=False, validate=Range(min=0),
                     metadata={"description": "synced-clock ms of the first sample"})


# The show (c3s.web.api.show): bodies built by c3s.show.wire, documented here.


class ClockQuery(_ApiSchema):  # the fast path answers GET without the NUL check; HEAD matches it
    t0 = String(load_default=None, metadata={"description": "the client's clock, Unix ms (echoed)",
                                             "pattern": f"^({T0_PATTERN.pattern})?$"})


class ClockOut(Schema):
    t0 = Float(allow_none=True, metadata={"description": "the t0 sent, echoed (null when none)"})
    server_ms = Float(metadata={"description": "the server clock as the answer's bytes were written, Unix ms"})
    received_ms = Float(metadata={"description": "the server clock when the request reached it, Unix ms"})


class ShowQuery(_ApiSchema):  # as ClockQuery
    frames = String(load_default=None, validate=OneOf(QUERY_FLAGS),
                    metadata={"description": "false, 0 or no: leave the frame list out"})


class ShowStartIn(Schema):
    start_at_ms = Float(load_default=None, allow_none=True, allow_nan=False,
                        validate=Range(0, 4_102_444_800_000),
                        metadata={"description": "Unix ms on the server clock; null: 3 s from now"})
    loop = JsonBoolean(load_default=False)


class ShowFrameOut(Schema):
    id = Integer()
    duration_ms = Integer()


class ShowOut(Schema):
    status = String(metadata={"description": "the scene's status: playing while the show is on"})
    start_ms = Integer(allow_none=True, metadata={"description": "Unix ms; null when not scheduled"})
    loop = Boolean()
    total_ms = Integer(metadata={"description": "one pass through every frame"})
    frames = List(Nested(ShowFrameOut), metadata={"description": "left out when asked with frames=false"})
    maps_version = String(metadata={"description": "changes whenever layout, frames or fit change"})
    phase = String(metadata={"description": "before, playing or ended, now"})
    maps_ready = Boolean(metadata={"description": "whether the colour maps of maps_version are built"})
    sync_burst = Dict(allow_none=True, metadata={
        "description": "a sync check inside the show: from `start_ms` for `duration_ms` every phone blinks "
                       "its pattern (its correction applied) instead of the show; null when none is set"})


class TrackOut(Schema):
    number = Integer()
    start_ms = Integer(allow_none=True)
    loop = Boolean()
    durations_ms = List(Integer())
    colors = List(String(), metadata={"description": "#rrggbb per frame, in show order"})
    maps_version = String()
    status = String(metadata={"description": "the scene's status"})
    offset_ms = Float(allow_none=True, metadata={
        "description": "the pixel's measured light-output offset (ms, positive = late): play every "
                       "colour change this much earlier; null until a blink clip measured it"})


class ColorOut(Schema):
    color = String(metadata={"description": "#rrggbb to show now (black before and after the show)"})
    frame = Integer(metadata={"description": "index of the frame showing; -1 before and after"})
    until_ms = Integer(allow_none=True, metadata={"description": "Unix ms when this answer changes; "
                                                                 "null when not known"})
    status = String(metadata={"description": "before, playing or ended"})


class LayoutOut(Schema):
    layout_version = Integer()
    maps_version = String()
    numbers = List(Integer())
    x = List(Float())
    y = List(Float())
    width = Float()
    height = Float()


class CheckSummaryOut(Schema):
    job_id = Integer()
    filmed_at = String(metadata={"description": "when the clip was uploaded (ISO 8601)"})
    phones = Integer(metadata={"description": "phones whose light the clip timed"})
    median_ms = Float(allow_none=True, metadata={"description": "the crowd's median offset (ms, positive = late)"})
    p95_abs_ms = Float(allow_none=True, metadata={"description": "95 % of phones land within this of the server clock"})
    spread_p95_ms = Float(allow_none=True, metadata={"description": "95 % of phones within this of the median"})


class CheckOut(CheckSummaryOut):
    max_abs_ms = Float(allow_none=True)
    histogram = Dict(metadata={"description": "`bin_ms`, `edges_ms` (one more than counts), `counts`"})
    worst_sections = List(Dict(), metadata={
        "description": "scene grid cells (`section`, `x0`..`y1`, `phones`, `median_ms`, `p95_abs_ms`), worst first"})
    pixels = Dict(metadata={"description": "per phone timed: `numbers`, `x`, `y` (scene units, as the clip saw "
                                           "them), `offset_ms` (measured) and `correction_ms` (played with then)"})


class CorrectionsOut(Schema):
    pixels = Integer(metadata={"description": "located pixels that play with a correction"})
    median_ms = Float(allow_none=True)
    p95_abs_ms = Float(allow_none=True)


class SyncOut(Schema):
    scene_id = Integer()
    width = Float()
    height = Float()
    check = Nested(CheckOut, allow_none=True, metadata={"description": "the newest sync check; null before any"})
    corrections = Nested(CorrectionsOut)
    history = List(Nested(CheckSummaryOut), metadata={"description": "recent checks, newest first"})


class SyncBurstIn(Schema):
    start_at_ms = Float(load_default=None, allow_none=True, allow_nan=False, validate=Range(0, 4_102_444_800_000),
                        metadata={"description": "Unix ms on the server clock; null: 15 s from now"})
    duration_ms = Float(load_default=2400.0, allow_nan=False, validate=Range(1200, 60_000),
                        metadata={"description": "at least one blink period (1.2 s); two by default"})


class SyncBurstOut(Schema):
    start_ms = Integer()
    duration_ms = Integer()


class GuestJoinOut(Schema):
    token = String(metadata={"description": "shown once; send as 'Authorization: Bearer <token>'"})
    kind = String(metadata={"description": "device"})
    expires_at = DateTime()
    user = Nested(UserOut)
    scene_id = Integer()
    number = Integer(metadata={"description": "the pixel's number in the scene"})
    status = String()
    offset_ms = Float(allow_none=True, metadata={"description": "null: not measured yet"})
    calibration = Dict(metadata={"description": "what the phone must display to be located"})


class MeQuery(Schema):
    show = String(load_default=None, validate=OneOf(QUERY_FLAGS), metadata={
        "description": "1, true or yes: add the show's timeline head (as GET …/show?frames=false answers it)"})


class MeOut(Schema):
    scene_id = Integer()
    number = Integer()
    status = String(metadata={"description": "joined, located, excluded or left"})
    excluded_reason = String(allow_none=True, metadata={"description": "why a moderator excluded the pixel"})
    offset_ms = Float(allow_none=True, metadata={
        "description": "this phone's measured light-output offset (ms, positive = late); it plays that much earlier"})
    calibration = Dict(metadata={"description": "what the phone must display to be located"})
    show = Dict(metadata={"description": "with show=true only: the show's timeline head, as "
                                         "GET …/show?frames=false answers it (ShowOut without frames)"})


# The phones' clocks (c3s.web.api.clock).


class ClockReportIn(Schema):
    uncertainty_ms = Float(required=True, allow_nan=False, validate=Range(0, 60_000.0),
                           metadata={"description": "the phone's clock offset uncertainty, ms"})


class ClockWorstOut(Schema):
    number = Integer()
    uncertainty_ms = Float()


class ClockSummaryOut(Schema):
    reporting = Integer(metadata={"description": "pixels (not left) that reported their clock"})
    pixels = Integer(metadata={"description": "pixels in the scene that have not left"})
    median_uncertainty_ms = Float(allow_none=True)
    p95_uncertainty_ms = Float(allow_none=True)
    worst = List(Nested(ClockWorstOut), metadata={"description": "the 10 least certain clocks"})


# The live count of the show (c3s.web.api.live).


class ShowPhonesOut(Schema):
    located = Integer(metadata={"description": "placed phones (each has a track)"})
    tracks_fetched = Integer(metadata={"description": "phones that fetched their track for this start, clock synced"})
    playing = Integer(metadata={"description": "phones with their track while the show runs"})
    phase = String(metadata={"description": "before, playing, ended or idle"})
    start_ms = Integer(allow_none=True)


# Posters (c3s.web.api.posters).

POSTER_TYPES = {"pdf": "application/pdf", "svg": "image/svg+xml"}


class PosterQuery(Schema):
    format = String(load_default="pdf", validate=OneOf(list(POSTER_TYPES)))
    size = String(load_default=None, validate=OneOf(list(posters.PAGE_SIZES_MM)))


class JoinPosterQuery(PosterQuery):
    size = String(load_default=None, validate=OneOf(posters.JOIN_SIZES))


class AnchorPosterQuery(PosterQuery):
    key = String(load_default=None, validate=Regexp(r"^[A-Za-z0-9]{1,6}$"),
                 metadata={"description": "print only this anchor (needed for SVG when there are more)"})
    distance_m = Float(load_default=None, validate=Range(
        min=0.1, max=posters.max_readable_distance_m(),
        error="from {min} to {max} m: farther than that no poster's code is read; zoom in, or photograph from closer"),
        metadata={
        "description": "the observers' distance: picks the smallest page whose code they can read"})


# Keyset pages of the lists that grow with the crowd (c3s.web.paging).

NEXT_DESCRIPTION = ("the URL of the next page (also in the `Link: <...>; rel=\"next\"` header); null on the "
                    "last page")


class Cursor(String):
    """The `after` cursor of a list: opaque to clients, decoded to the key of the row it follows."""

    def __init__(self, list_name: str, types: tuple[type, ...], **kwargs):
        kwargs.setdefault("load_default", None)
        kwargs.setdefault("validate", Length(1, 1000))
        kwargs.setdefault("metadata", {"description": "where the page starts: the cursor in the previous page's "
                                                      "`next` link (leave it out for the first page)"})
        super().__init__(**kwargs)
        self.list_name, self.types = list_name, types

    def _deserialize(self, value, attr, data, **kwargs):
        text = super()._deserialize(value, attr, data, **kwargs)
        try:
            return decode_cursor(text, self.list_name, self.types)
        except ValueError as error:
            raise ValidationError(str(error)) from None


class PageHeaders(Schema):
    link = String(data_key="Link", metadata={"description": 'RFC 8288: `<URL of the next page>; rel="next"`, '
                                                           "left out on the last page"})


def _limit(default: int, most: int, what: str) -> Integer:
    return Integer(load_default=default, validate=Range(1, most),
                   metadata={"description": f"{what} per page, at most {most:,}"})


class SeatMapQuery(Schema):
    limit = _limit(5000, 10_000, "seats")
    after = Cursor("seats", (str, str, str))


class SeatMapPageOut(SeatMapOut):
    count = Integer(metadata={"description": "seats in the whole map"})
    seats = List(Nested(SeatOut), metadata={"description": "this page's seats, by section, row and seat"})
    next = String(allow_none=True, metadata={"description": NEXT_DESCRIPTION})


class SeatConflictQuery(Schema):
    limit = _limit(500, 2000, "seats in conflict")
    after = Cursor("seat-conflicts", (str, str, str))


class JobQuery(Schema):
    limit = _limit(200, 1000, "jobs")
    after = Cursor("jobs", (int,))


class SyncQuery(Schema):
    limit = _limit(5000, 10_000, "phones of the check")
    after = Cursor("sync", (int, int))


class SyncPageOut(SyncOut):
    next = String(allow_none=True, metadata={"description": NEXT_DESCRIPTION + "; every page is of the check "
                                                            "the first page reported"})
