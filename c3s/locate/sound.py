"""Sound: the scene's speakers, the chirp schedule the operator plays, and a pixel's recording
located by a worker.

The schedule is periodic on the server clock: speaker k chirps at every ``n * period_ms +
k * slot_ms`` (ms since the epoch). The operator's WAV starts on a period boundary and loops, so
nothing about a particular playback has to be stored: the worker rebuilds the schedule around any
recording from its timestamp alone.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
from sqlalchemy import delete, select
from sqlalchemy.orm import Session, object_session

from c3s.errors import Conflict, Invalid, UnsupportedMedia
from c3s.frames import PendingFiles
from c3s.locate.fusion import LOCATABLE_STATUSES, Sighting, require_locatable
from c3s.locate.mapping import LocateFailed
from c3s.models import LocateJob, Pixel, Scene, Seat, Speaker, User
from c3s.permissions import require
from c3s.positioning.sound import (
    MIN_SPEAKERS,
    ChirpSchedule,
    Recording,
    SoundError,
    parse_wav,
    recording_wav,
    speaker_track,
)
from c3s.positioning.venue_sound import (
    DEFAULT_SEAT_WIDTH_M,
    Venue,
    locate_in_venue,
    venue_schedule,
)
from c3s.positioning.venue_sound import schedule_around as venue_schedule_around

MAX_SPEAKERS = 32
SAMPLE_RATE_HZ = 48000
MAX_RECORDING_S = 30.0
CHIRP_MS = 50.0
MIN_SLOT_MS = 600.0
# Largest |phone clock - server clock| plus sound-system latency the solver searches.
MAX_CLOCK_OFFSET_MS = 250.0
REPEATS_IN_WAV = 2
FEET_IN_METRES = 0.3048


def metres_per_unit(scene: Scene) -> float:
    if scene.units == "m":
        return 1.0
    if scene.units == "ft":
        return FEET_IN_METRES
    if scene.geo_metres_per_unit:
        return scene.geo_metres_per_unit
    raise Conflict(f"scene {scene.id} is measured in seats; set geo_metres_per_unit so that sound "
                   "travel times can be turned into scene units")


# -------------------------------------------------------------------------------- speakers


def speaker_positions(session: Session, scene: Scene) -> np.ndarray:
    """Speaker positions (K, 3) in scene units, in schedule order."""
    rows = session.execute(select(Speaker.x, Speaker.y, Speaker.z).where(Speaker.scene_id == scene.id)
                           .order_by(Speaker.index)).all()
    return np.array([(r.x, r.y, r.z) for r in rows], float).reshape(-1, 3)


def scene_venue(session: Session, scene: Scene) -> Venue:
    """What the solver knows of the scene, in metres: speakers with heights and delays, the air's
    temperature range and humidity, and the seats' phone heights where the seat map has them."""
    rows = session.execute(select(Speaker.x, Speaker.y, Speaker.z, Speaker.delay_ms)
                           .where(Speaker.scene_id == scene.id).order_by(Speaker.index)).all()
    if len(rows) < MIN_SPEAKERS:
        raise Conflict(f"scene {scene.id} has {len(rows)} speaker(s); the operator must place at "
                       f"least {MIN_SPEAKERS} (PUT /api/scenes/{scene.id}/speakers)")
    mpu = metres_per_unit(scene)
    seats = session.execute(select(Seat.x, Seat.y, Seat.z, Seat.spacing).where(
        Seat.scene_id == scene.id, Seat.z.is_not(None))).all()
    high = scene.temperature_max_c if scene.temperature_max_c is not None else scene.temperature_c
    humidity = (0.0, 100.0) if scene.humidity_pct is None else (scene.humidity_pct,) * 2
    try:
        return Venue(
            speakers=np.array([(r.x, r.y, r.z) for r in rows], float) * mpu,
            speaker_delay_ms=np.array([r.delay_ms for r in rows], float),
            temperature_c=(min(scene.temperature_c, high), max(scene.temperature_c, high)),
            humidity_pct=humidity,
            seats=np.array([(r.x, r.y, r.z) for r in seats], float) * mpu if seats else None,
            seat_width_m=float(np.median([r.spacing for r in seats])) * mpu if seats else DEFAULT_SEAT_WIDTH_M,
        )
    except ValueError as error:
        raise Conflict(f"scene {scene.id}'s sound setup cannot be used: {error}") from None


def set_speakers(session: Session, user: User, scene: Scene, speakers: list[dict[str, Any]]) -> list[Speaker]:
    """Replace the scene's speakers; their order is their slot in the schedule."""
    require(session, user, "scene_admin", scene)
    if not MIN_SPEAKERS <= len(speakers) <= MAX_SPEAKERS:
        raise Invalid(f"give {MIN_SPEAKERS} to {MAX_SPEAKERS} speakers (x, y and the clock offset need "
                      f"at least {MIN_SPEAKERS}); got {len(speakers)}")
    reach = max(scene.width, scene.height)
    errors = []
    for i, s in enumerate(speakers):
        # Speakers usually stand around the scene, not on it; further away than the scene is
        # large is a typing error.
        if not (-reach <= s["x"] <= scene.width + reach and -reach <= s["y"] <= scene.height + reach
                and -reach <= s.get("z", 0.0) <= reach):
            errors.append(f"speaker {i} at ({s['x']:g}, {s['y']:g}, {s.get('z', 0.0):g}) is farther "
                          "from the scene than its size")
    xyz = np.array([(s["x"], s["y"], s.get("z", 0.0)) for s in speakers], float)
    gaps = np.hypot.reduce(xyz[:, None] - xyz[None], axis=2)[np.triu_indices(len(xyz), 1)]
    if gaps.size and gaps.min() * metres_per_unit(scene) < 1.0:
        errors.append("two speakers are less than 1 m apart; their time differences would say nothing")
    if errors:
        raise Invalid("the speakers cannot be used", detail={"errors": errors})
    session.execute(delete(Speaker).where(Speaker.scene_id == scene.id))
    rows = [Speaker(scene_id=scene.id, index=i, x=float(s["x"]), y=float(s["y"]), z=float(s.get("z", 0.0)),
                    delay_ms=float(s.get("delay_ms", 0.0))) for i, s in enumerate(speakers)]
    session.add_all(rows)
    session.flush()
    return rows


# -------------------------------------------------------------------------------- schedule


def schedule_for(venue: Venue, start_ms: float, repeats: int = REPEATS_IN_WAV) -> ChirpSchedule:
    """The scene's chirp schedule from `start_ms`: each slot holds the chirp plus the longest
    travel time across the venue and the delays' spread, rounded up to 100 ms."""
    return venue_schedule(venue, start_ms, repeats)


def period_ms(venue: Venue) -> float:
    return schedule_for(venue, 0.0).period_ms


def playback_schedule(venue: Venue, start_ms: float) -> ChirpSchedule:
    """The schedule of the WAV that starts sounding at `start_ms`, which must lie on a period
    boundary of the server clock (the WAV then loops without breaking the schedule)."""
    period = period_ms(venue)
    if start_ms % period:
        after = math.ceil(start_ms / period) * period
        raise Invalid(f"start_ms must be a multiple of the schedule period ({period:g} ms); the next "
                      f"one is {after:.0f}", detail={"period_ms": period, "next_start_ms": after})
    return schedule_for(venue, start_ms)


def schedule_around(venue: Venue, start_ms: float, duration_ms: float) -> ChirpSchedule:
    """Every scheduled chirp that can be heard in a clip from `start_ms` lasting `duration_ms`
    (the schedule loops from server time 0 on, period after period)."""
    return venue_schedule_around(venue, 0.0, start_ms, duration_ms, MAX_CLOCK_OFFSET_MS)


def speaker_wav(schedule: ChirpSchedule, speaker: int) -> bytes:
    """One speaker's track of the schedule as a 16-bit WAV, aligned with the mixed one."""
    if not 0 <= speaker < schedule.n_speakers:
        raise Invalid(f"speaker must be within 0..{schedule.n_speakers - 1}, got {speaker}")
    track = speaker_track(schedule, speaker, SAMPLE_RATE_HZ) * 0.5
    return recording_wav(Recording(track.astype(np.float32), SAMPLE_RATE_HZ, schedule.start_ms))


def recording_instructions(scene: Scene) -> dict:
    """What the pixel page needs to record a usable clip (`c3s.web.calibration` adds where to
    send it)."""
    out: dict[str, Any] = {"method": "sound", "sample_rate_hz": SAMPLE_RATE_HZ,
                           "max_duration_ms": MAX_RECORDING_S * 1000}
    session = object_session(scene)
    speakers = speaker_positions(session, scene) if session is not None else np.zeros((0, 3))
    out["speakers"] = len(speakers)
    if len(speakers) >= MIN_SPEAKERS:
        schedule = schedule_for(scene_venue(session, scene), 0.0)
        # One whole period plus one slot: every speaker is heard, the first one twice (which
        # measures the microphone's rate error).
        out["min_duration_ms"] = schedule.period_ms + schedule.slot_ms + 300
    return out


# ----------------------------------------------------------------------------- recordings


def _checked_recording(data: bytes, start_ms: float):
    try:
        recording = parse_wav(data, start_ms=start_ms)
    except SoundError as error:
        raise UnsupportedMedia(str(error)) from None
    rate = recording.sample_rate
    if not 2.2 * ChirpSchedule(1).f_hi_hz <= rate <= 192000:
        raise Invalid(f"sample rate {rate} Hz cannot carry the chirps (2-8 kHz); record at 44100 or "
                      "48000 Hz", detail={"sample_rate_hz": rate})
    duration_s = len(recording.samples) / rate
    if duration_s > MAX_RECORDING_S:
        raise Invalid(f"the recording lasts {duration_s:.1f} s; at most {MAX_RECORDING_S:g} s is used")
    return recording


def create_sound_job(session: Session, pending: PendingFiles, user: User, scene: Scene, pixel: Pixel, *,
                     data: bytes, filename: str, start_ms: float) -> LocateJob:
    """Store a pixel's recording and queue its job (the caller commits, then enqueues). Obviously
    unusable files are refused here; everything else is the worker's to judge."""
    require_locatable(user, pixel, to="upload its recording")
    if not data:
        raise Invalid("the uploaded recording is empty")
    scene_venue(session, scene)  # refuses a scene without speakers
    _checked_recording(data, start_ms)
    options = {"pixel_id": pixel.id, "start_ms": start_ms}
    file_id = pending.put(data, filename=filename or "recording.wav", content_type="audio/wav",
                          metadata={"scene_id": scene.id, "kind": "recording", **options})
    job = LocateJob(scene_id=scene.id, observer_id=user.id, method="sound", file_id=file_id,
                    filename=filename or "", content_type="audio/wav", stats={"options": options})
    session.add(job)
    session.flush()
    return job


def sound_sightings(session: Session, scene: Scene, data: bytes, options: dict) -> tuple[list[Sighting], dict]:
    """The worker's half: locate the recording's pixel from the chirps it heard.

    Raises `LocateFailed` with the reason for bad audio or too few chirps heard."""
    pixel = session.get(Pixel, options["pixel_id"])
    if pixel is None or pixel.status not in LOCATABLE_STATUSES:
        return [], {"note": "the pixel left or was excluded before its recording was processed"}
    try:
        recording = parse_wav(data, start_ms=float(options["start_ms"]))
        venue = scene_venue(session, scene)
        duration_ms = len(recording.samples) / recording.sample_rate * 1000
        schedule = schedule_around(venue, recording.start_ms, duration_ms)
        fix = locate_in_venue(recording, venue, schedule, max_clock_offset_ms=MAX_CLOCK_OFFSET_MS)
    except (SoundError, Conflict) as error:
        raise LocateFailed(str(error)) from None
    mpu = metres_per_unit(scene)
    stats = {"pixel_number": pixel.number, "chirps_heard": fix.chirps_heard,
             "speakers_heard": fix.speakers_heard, "uncertainty_m": fix.uncertainty_m,
             "uncertainty_z_m": fix.uncertainty_z_m, "z": fix.z / mpu, "placed": fix.placed,
             "residual_ms": fix.residual_ms, "clock_offset_ms": fix.clock_offset_ms,
             "sample_rate_error_ppm": fix.sample_rate_error_ppm,
             "speed_of_sound_m_s": fix.speed_of_sound_m_s}
    if not fix.placed:
        # Above half a seat the fix would snap to a neighbour's seat as often as to its own.
        stats["note"] = (f"uncertain: {fix.uncertainty_m:.2f} m (1 sigma) is more than half a seat "
                         f"({venue.seat_width_m / 2:.2f} m); not placed, record again")
        return [], stats
    # Hearing every speaker is what the solver was built for; the rest of the confidence is how
    # far the uncertainty stays inside half a seat.
    share = fix.speakers_heard / len(venue.speakers)
    confidence = 0.7 * share * (1 - 0.8 * fix.uncertainty_m / (venue.seat_width_m / 2))
    return [Sighting(pixel_id=pixel.id, x=fix.x / mpu, y=fix.y / mpu, sigma=fix.uncertainty_m / mpu,
                     confidence=confidence)], stats
