"""The one path every location method writes through: observations are recorded per job
(idempotently), and each pixel's position is the robust fusion of all its observations.

Fusion: observations of a pixel are grouped into clusters of mutually consistent positions
(within `CONSISTENT_SIGMAS` of their combined uncertainty). The position is the inverse-variance
mean of the chosen cluster. The chosen cluster is the best supported one; a newer cluster replaces
it only once `MOVE_CONFIRMATIONS` observations agree, so one false sighting never moves a pixel
but a person who really changed seats is followed rather than averaged into the gap between."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime

import numpy as np
from sqlalchemy import select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session

from c3s.models import LocateJob, Observation, Pixel, Scene, as_utc, utcnow
from c3s.show import bump_layout

CONSISTENT_SIGMAS = 3.0
MOVE_CONFIRMATIONS = 2
# Observations this far outside the scene (as a fraction of its size) are mistakes, not noise.
OUTSIDE_TOLERANCE = 0.05
LOCATABLE_STATUSES = ("joined", "located")


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
    rows, outside = [], 0
    for s in sightings:
        if not (-margin_x <= s.x <= scene.width + margin_x and -margin_y <= s.y <= scene.height + margin_y):
            outside += 1
            continue
        rows.append({"job_id": job.id, "pixel_id": s.pixel_id, "method": job.method, "x": s.x, "y": s.y,
                     "sigma": max(s.sigma, 1e-6), "confidence": min(max(s.confidence, 0.0), 1.0),
                     "x_img": s.x_img, "y_img": s.y_img, "observed_at": job.created_at})
    if rows:
        insert = _insert(session)(Observation)
        excluded = insert.excluded
        # Parameters as a list: SQLAlchemy batches them into multi-row statements itself.
        session.execute(insert.on_conflict_do_update(
            index_elements=["job_id", "pixel_id"],
            set_={k: getattr(excluded, k) for k in ("x", "y", "sigma", "confidence", "x_img", "y_img")},
        ), rows)
    return [r["pixel_id"] for r in rows], outside


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
                        Observation.confidence, Observation.method, Observation.observed_at)


def fuse_pixels(session: Session, scene: Scene, pixel_ids: Sequence[int],
                  now: datetime | None = None) -> tuple[int, int]:
    """Recompute the fused position of each pixel; returns (pixels located, pixels moved).
    Excluded and departed pixels keep their status."""
    if not pixel_ids:
        return 0, 0
    now = now or utcnow()
    # Plain rows, not ORM objects: a blink clip can touch 10,000 pixels at once.
    pixels = session.execute(select(Pixel.id, Pixel.status, Pixel.x, Pixel.y)
                             .where(Pixel.id.in_(pixel_ids)).with_for_update()).all()
    observations: dict[int, list] = {}
    for o in session.execute(select(*_OBSERVATION_COLUMNS).where(Observation.pixel_id.in_(pixel_ids))):
        observations.setdefault(o.pixel_id, []).append(o)
    changes, moved = [], 0
    for pixel in pixels:
        if pixel.status not in LOCATABLE_STATUSES or pixel.id not in observations:
            continue
        fused = fuse(observations[pixel.id])
        x = min(max(fused.x, 0.0), scene.width)
        y = min(max(fused.y, 0.0), scene.height)
        if pixel.x is not None and (pixel.x, pixel.y) != (x, y):
            moved += 1
        changes.append({"id": pixel.id, "x": x, "y": y, "sigma": fused.sigma, "confidence": fused.confidence,
                        "located_by": fused.method, "located_at": now, "status": "located"})
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
