"""The one path every location method writes through: observations are recorded per job
(idempotently), and each pixel's position is the robust fusion of all its observations.

Fusion: observations of a pixel are grouped into clusters of mutually consistent positions
(within `CONSISTENT_SIGMAS` of their combined uncertainty). The position is the inverse-variance
mean of the chosen cluster. The chosen cluster is the best supported one; a newer cluster replaces
it only once `MOVE_CONFIRMATIONS` observations agree, so one false sighting never moves a pixel
but a person who really changed seats is followed rather than averaged into the gap between.

Offsets (blink only): each observation's offset is the light output it saw, measured while the
pixel played early by its correction then, so the pixel's own offset is the two added. The
newest observation wins, averaged (median) with the older ones that agree within
`OFFSET_AGREE_MS`: a phone whose clock re-synced or that changed hands is followed at once."""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime

import numpy as np
from sqlalchemy import delete, func, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session

from c3s.errors import Conflict, Forbidden
from c3s.models import LocateJob, Observation, Pixel, Scene, User, as_utc, utcnow
from c3s.show import bump_layout

CONSISTENT_SIGMAS = 3.0
MOVE_CONFIRMATIONS = 2
# Observations this far outside the scene (as a fraction of its size) are mistakes, not noise.
OUTSIDE_TOLERANCE = 0.05
LOCATABLE_STATUSES = ("joined", "located")
OFFSET_AGREE_MS = 8.0
# Offsets are unambiguous within half a blink period (1.2 s); beyond this they are mistakes.
MAX_OFFSET_MS = 500.0


@dataclass(frozen=True)
class Sighting:
    """Where one job saw one pixel, in scene units (`sigma` is the 1-σ uncertainty)."""

    pixel_id: int
    x: float
    y: float
    sigma: float
    confidence: float
    x_img: float | None = None
    y_img: float | None = None
    offset_ms: float | None = None


@dataclass(frozen=True)
class FusedPosition:
    x: float
    y: float
    sigma: float
    confidence: float
    method: str
    observations_used: int
    observations_total: int


@dataclass(frozen=True)
class CommitResult:
    recorded: int
    outside_scene: int
    located: int
    moved: int


def _insert(session: Session):
    return pg_insert if session.get_bind().dialect.name == "postgresql" else sqlite_insert


def record_observations(session: Session, job: LocateJob, sightings: Iterable[Sighting],
                        scene: Scene) -> tuple[list[int], int]:
    """Upsert one observation per (job, pixel); returns the pixel ids written and how many
    sightings were refused for lying outside the scene."""
    margin_x, margin_y = scene.width * OUTSIDE_TOLERANCE, scene.height * OUTSIDE_TOLERANCE
    sightings = list(sightings)
    kept = [s for s in sightings
            if -margin_x <= s.x <= scene.width + margin_x and -margin_y <= s.y <= scene.height + margin_y]
    rows, outside = [], len(sightings) - len(kept)
    corrections = _corrections(session, [s.pixel_id for s in kept if s.offset_ms is not None])
    for s in kept:
        offset = None if s.offset_ms is None else min(max(float(s.offset_ms), -MAX_OFFSET_MS), MAX_OFFSET_MS)
        rows.append({"job_id": job.id, "pixel_id": s.pixel_id, "method": job.method, "x": s.x, "y": s.y,
                     "sigma": max(s.sigma, 1e-6), "confidence": min(max(s.confidence, 0.0), 1.0),
                     "x_img": s.x_img, "y_img": s.y_img, "observed_at": job.created_at, "offset_ms": offset,
                     "correction_ms": None if offset is None else corrections.get(s.pixel_id)})
    if rows:
        insert = _insert(session)(Observation)
        excluded = insert.excluded
        # Parameters as a list: SQLAlchemy batches them into multi-row statements itself. A job
        # run again keeps the correction of its first run (the pixel's offset has moved on since).
        session.execute(insert.on_conflict_do_update(
            index_elements=["job_id", "pixel_id"],
            set_={k: getattr(excluded, k)
                  for k in ("x", "y", "sigma", "confidence", "x_img", "y_img", "offset_ms")},
        ), rows)
    return [r["pixel_id"] for r in rows], outside


def _corrections(session: Session, pixel_ids: list[int]) -> dict[int, float]:
    """The offset each pixel plays early by now (the correction a clip filmed it with)."""
    if not pixel_ids:
        return {}
    rows = session.execute(select(Pixel.id, Pixel.offset_ms)
                           .where(Pixel.id.in_(pixel_ids), Pixel.offset_ms.is_not(None)))
    return {row.id: float(row.offset_ms) for row in rows}


def fuse_offset(observations: Sequence) -> float | None:
    """The pixel's light-output offset (ms) from its timed observations (see the module
    docstring), or None when no observation measured one."""
    timed = sorted((o for o in observations if o.offset_ms is not None),
                   key=lambda o: (as_utc(o.observed_at), o.id or 0))
    if not timed:
        return None
    own = np.array([o.offset_ms + (o.correction_ms or 0.0) for o in timed], dtype=float)
    agreeing = own[np.abs(own - own[-1]) <= OFFSET_AGREE_MS]
    return float(np.clip(np.median(agreeing), -MAX_OFFSET_MS, MAX_OFFSET_MS))


def _clusters(points: np.ndarray, sigmas: np.ndarray) -> list[np.ndarray]:
    """Single-linkage groups of observations whose distance is within the combined uncertainty."""
    n = len(points)
    labels = np.arange(n)
    distance = np.linalg.norm(points[:, None, :] - points[None, :, :], axis=2)
    tolerance = CONSISTENT_SIGMAS * np.hypot(sigmas[:, None], sigmas[None, :])
    linked = distance <= tolerance
    for i in range(n):  # n is the number of sightings of one pixel: a handful
        for j in np.flatnonzero(linked[i]):
            labels[labels == labels[j]] = labels[i]
    return [np.flatnonzero(labels == label) for label in np.unique(labels)]


def fuse(observations: Sequence[Observation]) -> FusedPosition:
    """The robust position of one pixel from all its observations (see the module docstring).

    Anything with the observation's attributes will do (ORM objects or plain rows)."""
    if not observations:
        raise ValueError("a pixel with no observations has no position")
    if len(observations) == 1:  # most pixels of a first calibration pass
        (only,) = observations
        return FusedPosition(x=float(only.x), y=float(only.y), sigma=float(only.sigma),
                             confidence=float(only.confidence), method=only.method,
                             observations_used=1, observations_total=1)
    order = sorted(observations, key=lambda o: (as_utc(o.observed_at), o.id or 0))
    points = np.array([(o.x, o.y) for o in order], dtype=float)
    sigmas = np.array([o.sigma for o in order], dtype=float)
    clusters = _clusters(points, sigmas)
    # Best supported cluster (most observations, then most recent); a newer cluster takes over
    # once it is confirmed.
    by_support = max(clusters, key=lambda c: (len(c), c.max()))
    newest = max(clusters, key=lambda c: c.max())
    chosen = newest if len(newest) >= MOVE_CONFIRMATIONS else by_support
    weights = 1.0 / sigmas[chosen] ** 2
    x, y = (points[chosen] * weights[:, None]).sum(axis=0) / weights.sum()
    confidence = float(np.mean([order[i].confidence for i in chosen]))
    # More agreeing sightings and fewer contradicting ones make a position surer.
    confidence *= len(chosen) / len(order) if len(order) > 1 else 1.0
    best = max(chosen, key=lambda i: order[i].confidence / order[i].sigma)
    return FusedPosition(x=float(x), y=float(y), sigma=float(1.0 / np.sqrt(weights.sum())),
                         confidence=confidence, method=order[best].method,
                         observations_used=len(chosen), observations_total=len(order))


_OBSERVATION_COLUMNS = (Observation.id, Observation.pixel_id, Observation.x, Observation.y, Observation.sigma,
                        Observation.confidence, Observation.method, Observation.observed_at,
                        Observation.offset_ms, Observation.correction_ms)


def fuse_pixels(session: Session, scene: Scene, pixel_ids: Sequence[int],
                  now: datetime | None = None) -> tuple[int, int]:
    """Recompute the fused position of each pixel; returns (pixels located, pixels moved).
    Excluded and departed pixels keep their status."""
    if not pixel_ids:
        return 0, 0
    now = now or utcnow()
    # Plain rows, not ORM objects: a blink clip can touch 10,000 pixels at once.
    pixels = session.execute(select(Pixel.id, Pixel.status, Pixel.x, Pixel.y, Pixel.offset_ms)
                             .where(Pixel.id.in_(pixel_ids)).with_for_update()).all()
    observations: dict[int, list] = {}
    for o in session.execute(select(*_OBSERVATION_COLUMNS).where(Observation.pixel_id.in_(pixel_ids))):
        observations.setdefault(o.pixel_id, []).append(o)
    changes, moved = [], 0
    for pixel in pixels:
        if pixel.status not in LOCATABLE_STATUSES or pixel.id not in observations:
            continue
        fused = fuse(observations[pixel.id])
        offset = fuse_offset(observations[pixel.id])
        x = min(max(fused.x, 0.0), scene.width)
        y = min(max(fused.y, 0.0), scene.height)
        if pixel.x is not None and (pixel.x, pixel.y) != (x, y):
            moved += 1
        changes.append({"id": pixel.id, "x": x, "y": y, "sigma": fused.sigma, "confidence": fused.confidence,
                        "located_by": fused.method, "located_at": now, "status": "located",
                        "offset_ms": pixel.offset_ms if offset is None else round(offset, 2)})
    if changes:
        session.execute(update(Pixel), changes)
    located = len(changes)
    if located:
        bump_layout(session, scene.id)
    return located, moved


def commit_sightings(session: Session, job: LocateJob, scene: Scene,
                     sightings: Sequence[Sighting]) -> CommitResult:
    """Record a job's sightings and re-fuse the pixels they touch (the caller commits)."""
    pixel_ids, outside = record_observations(session, job, sightings, scene)
    session.flush()
    located, moved = fuse_pixels(session, scene, pixel_ids)
    return CommitResult(recorded=len(pixel_ids), outside_scene=outside, located=located, moved=moved)


# ------------------------------------------------------------------ what phones report themselves


def require_locatable(user: User, pixel: Pixel, *, to: str) -> None:
    """Only the pixel itself may ``to`` ("report its GPS position", ...), and only while it can
    be located: Forbidden for another user or an excluded pixel, Conflict for one that left."""
    if pixel.user_id != user.id:
        raise Forbidden(f"only the pixel itself may {to}")
    if pixel.status == "excluded":
        raise Forbidden("you were excluded from this scene by a moderator")
    if pixel.status not in LOCATABLE_STATUSES:
        raise Conflict(f"pixel {pixel.number} is {pixel.status} and cannot be located; join the scene "
                       "again first")


def direct_job(session: Session, scene: Scene, user: User, method: str, stats: dict) -> LocateJob:
    """A finished job for a sighting the phone reported itself (seat, GPS): no file, no worker.
    `file_id` is unique but names no stored file (the store ignores unknown ids on delete)."""
    now = utcnow()
    job = LocateJob(scene_id=scene.id, observer_id=user.id, method=method,
                    file_id=f"{method}:{uuid.uuid4().hex}", status="done", stats=stats,
                    attempts=1, created_at=now, started_at=now, finished_at=now)
    session.add(job)
    session.flush()
    return job


def withdraw_observations(session: Session, scene: Scene, pixel_id: int, method: str, *,
                          refuse: bool = True) -> None:
    """Delete the pixel's observations of one method (a statement the phone replaced). With
    `refuse` the pixel is re-fused at once from what remains, or loses its position when nothing
    remains; without it the caller writes a replacement through `commit_sightings`."""
    gone = session.execute(delete(Observation).where(
        Observation.pixel_id == pixel_id, Observation.method == method)).rowcount
    if not (gone and refuse):
        return
    session.flush()
    remaining = session.scalar(select(func.count()).select_from(Observation)
                               .where(Observation.pixel_id == pixel_id))
    if remaining:
        fuse_pixels(session, scene, [pixel_id])
        return
    session.execute(update(Pixel).where(Pixel.id == pixel_id, Pixel.status == "located").values(
        status="joined", x=None, y=None, sigma=None, located_by=None, confidence=None, located_at=None))
    bump_layout(session, scene.id)
    session.expire_all()
