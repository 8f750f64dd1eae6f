"""Seats: a scene's seat map, pixels claiming the seat they sit in, and camera-found positions
snapped to seats.

A claim is the person's own statement, so it replaces that pixel's previous claim: each claim is
a `seat` locate job of its own (its time and its history stay on record) and the pixel's earlier
seat observation is withdrawn before the new one is written through `commit_sightings`. A seat
is held by one pixel; a second claimant is recorded and both claims are flagged as a conflict for
the operator; the holder keeps the seat and the claimant is not located by it.

Snapping is one global assignment (`snap_to_seats`) of all camera-located pixels of the scene
to the seats nobody has claimed, about a second per 10,000 pixels. It runs once per calibration
round, not once per camera job: a finished camera job (qr, blink) asks for a snap
(`c3s.tasks.locate.request_snap`), requests are coalesced while one is queued and not started,
so the dozens of photos of a round that finish together cost one snap (`snap_round`).
"""

from __future__ import annotations

import csv
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from scipy.spatial import cKDTree
from sqlalchemy import delete, func, select, text, update
from sqlalchemy.orm import Session, aliased

from c3s.errors import Conflict, Invalid
from c3s.keyset import JsonPage, keyset_json_page, keyset_page
from c3s.locate.fusion import (
    LOCATABLE_STATUSES,
    Sighting,
    commit_sightings,
    direct_job,
    fuse,
    require_locatable,
    withdraw_observations,
)
from c3s.models import LocateJob, Observation, Pixel, Scene, Seat, SeatClaim, User, utcnow
from c3s.permissions import require
from c3s.positioning.seats import (
    MAX_SEATS,
    SeatLabel,
    SeatMap,
    SeatMapError,
    parse_seat_map,
    seat_label,
    snap_to_seats,
)
from c3s.show import bump_layout

# A typed seat is the person's word: sure enough to anchor blink clips (mapping.ANCHOR_MIN_CONFIDENCE
# is 0.8), not as sure as a code seen in a photo.
CLAIM_CONFIDENCE = 0.9
# The phone is somewhere in the seat: half the distance to the neighbouring seat, one sigma.
SEAT_SIGMA_FRACTION = 0.5
CAMERA_METHODS = ("qr", "blink")
# A snap this sure moves the pixel onto the seat; below it the measured position stays.
SNAP_MIN_CONFIDENCE = 0.9
INSERT_CHUNK = 5000
# An import that adds or removes this many seats updates the table's planner statistics.
ANALYZE_AFTER_ROWS = 1_000


# ------------------------------------------------------------------------------- seat maps


def _spacing(positions: np.ndarray, scene: Scene) -> np.ndarray:
    """Distance from every seat to its nearest neighbour (one-seat maps: 1 % of the scene), never
    0: in a scene a few subnormal doubles wide, 1 % of it rounds to 0."""
    if len(positions) < 2:
        distance = np.full(len(positions), 0.01 * max(scene.width, scene.height))
    else:
        distance = cKDTree(positions).query(positions, k=2)[0][:, 1]
    return np.maximum(distance, np.nextafter(0.0, 1.0))


def _check_inside(seat_map: SeatMap, scene: Scene) -> None:
    pos = seat_map.positions
    outside = np.flatnonzero((pos[:, 0] < 0) | (pos[:, 0] > scene.width)
                             | (pos[:, 1] < 0) | (pos[:, 1] > scene.height))
    if outside.size:
        errors = [f"seat {seat_map.labels[i]} at ({pos[i, 0]:g}, {pos[i, 1]:g}) lies outside the "
                  f"{scene.width:g} x {scene.height:g} scene" for i in outside]
        raise Invalid(f"{len(errors)} seat(s) lie outside the scene", detail={"errors": errors[:50]})


def parse_upload(data: bytes, fmt: str | None) -> SeatMap:
    """A seat map from an uploaded body; `Invalid` lists every bad line."""
    try:
        return parse_seat_map(data, fmt=fmt)
    except SeatMapError as error:
        raise Invalid(f"the seat map has {len(error.errors)} error(s); nothing was imported",
                      detail={"errors": error.errors}) from None
    except (ValueError, csv.Error) as error:  # a document the parser's checks did not foresee
        raise Invalid(f"the seat map cannot be read: {error}; nothing was imported",
                      detail={"errors": [str(error)]}) from None


def import_seat_map(session: Session, user: User, scene: Scene, seat_map: SeatMap) -> dict:
    """Replace the scene's seat map (the caller commits, so it is all or nothing).

    Seats are upserted by label, so claims on seats that stay keep their seat; claims on removed
    seats go with them and the claimants lose that seat observation; claimants whose seat moved
    are re-located at its new place."""
    require(session, user, "scene_admin", scene)
    _check_inside(seat_map, scene)
    # One import at a time per scene.
    session.execute(select(Scene.id).where(Scene.id == scene.id).with_for_update())
    existing = {(r.section, r.row, r.seat): r for r in session.execute(
        select(Seat.id, Seat.section, Seat.row, Seat.seat, Seat.x, Seat.y, Seat.spacing, Seat.z)
        .where(Seat.scene_id == scene.id))}
    spacing = _spacing(seat_map.positions, scene)
    heights = seat_map.heights if seat_map.heights is not None else np.full(len(seat_map), np.nan)
    new_rows, changed_rows, moved_ids, kept = [], [], [], 0
    for label, (x, y), gap, z in zip(seat_map.labels, seat_map.positions, spacing, heights, strict=True):
        row = {"x": float(x), "y": float(y), "spacing": float(gap), "z": float(z) if np.isfinite(z) else None}
        old = existing.pop(tuple(label), None)
        if old is None:
            new_rows.append({"scene_id": scene.id, "section": label.section, "row": label.row,
                             "seat": label.seat, **row})
        elif (old.x, old.y, old.spacing, old.z) == (row["x"], row["y"], row["spacing"], row["z"]):
            kept += 1
        else:
            changed_rows.append({"id": old.id, **row})
            if (old.x, old.y) != (row["x"], row["y"]):
                moved_ids.append(old.id)
    affected = _claimants(session, moved_ids + [r.id for r in existing.values()])
    removed = [r.id for r in existing.values()]
    for start in range(0, len(removed), INSERT_CHUNK):
        session.execute(delete(Seat).where(Seat.id.in_(removed[start:start + INSERT_CHUNK])))
    if changed_rows:
        session.execute(update(Seat), changed_rows)
    for start in range(0, len(new_rows), INSERT_CHUNK):
        session.execute(Seat.__table__.insert(), new_rows[start:start + INSERT_CHUNK])
    session.flush()
    if len(new_rows) + len(removed) >= ANALYZE_AFTER_ROWS and session.get_bind().dialect.name == "postgresql":
        # The planner's row estimate for seats would otherwise stay what it was before the import
        # until autovacuum gets to it: a page of a stadium's map, planned for a few hundred rows,
        # sorts the whole scene on disk (5x slower a page).
        session.execute(text("ANALYZE seats"))
    for pixel_id in affected:
        _sync_claim_observation(session, user, scene, pixel_id)
    return {"seats": len(seat_map), "added": len(new_rows), "kept": kept + len(changed_rows) - len(moved_ids),
            "moved": len(moved_ids), "removed": len(removed), "claims_relocated": len(affected)}


def _claimants(session: Session, seat_ids: Sequence[int]) -> list[int]:
    if not seat_ids:
        return []
    return list(session.scalars(select(SeatClaim.pixel_id).where(
        SeatClaim.seat_id.in_(seat_ids), SeatClaim.accepted)))


SEAT_KEY = (Seat.section, Seat.row, Seat.seat)


def seat_count(session: Session, scene: Scene) -> int:
    return session.scalar(select(func.count()).select_from(Seat).where(Seat.scene_id == scene.id))


def seat_page(session: Session, scene: Scene, *, after: tuple[str, str, str] | None, limit: int) -> JsonPage:
    """A page of the scene's seats by (section, row, seat) as JSON objects of the columns a
    client reads (`section`, `row`, `seat`, `x`, `y`, `spacing`): a stadium's map is read in
    pages, and no Python object is built per seat."""
    return keyset_json_page(session, select(Seat.section, Seat.row, Seat.seat, Seat.x, Seat.y, Seat.spacing)
                            .where(Seat.scene_id == scene.id), SEAT_KEY, after=after, limit=limit)


def load_seat_map(session: Session, scene: Scene, *, free_only: bool = False) -> tuple[SeatMap, np.ndarray] | None:
    """The scene's seats as a `SeatMap` with their row ids (N,), or None without a seat map.
    `free_only` leaves out seats held by a claim."""
    statement = select(Seat.id, Seat.section, Seat.row, Seat.seat, Seat.x, Seat.y).where(
        Seat.scene_id == scene.id)
    if free_only:
        held = select(SeatClaim.seat_id).where(SeatClaim.accepted)
        statement = statement.where(Seat.id.not_in(held))
    rows = session.execute(statement.order_by(Seat.id)).all()
    if not rows:
        return None
    labels = tuple(SeatLabel(r.section, r.row, r.seat) for r in rows)
    return SeatMap(labels, np.array([(r.x, r.y) for r in rows], float)), np.array([r.id for r in rows])


# ---------------------------------------------------------------------------------- claims


@dataclass(frozen=True)
class ClaimOutcome:
    claim: SeatClaim
    seat: Seat
    accepted: bool
    held_by: list[int]  # numbers of the other pixels claiming this seat


def find_seat(session: Session, scene: Scene, section: str, row: str, seat: str) -> Seat:
    """The seat, locked for the claim; `Invalid` with close matches when there is no such seat."""
    label = seat_label(section, row, seat)
    found = session.scalar(select(Seat).where(
        Seat.scene_id == scene.id, Seat.section == label.section, Seat.row == label.row,
        Seat.seat == label.seat).with_for_update())
    if found is not None:
        return found
    loaded = load_seat_map(session, scene)
    if loaded is None:
        raise Conflict(f"scene {scene.id} has no seat map yet; ask the operator to import it")
    suggestions = loaded[0].suggest(label.section, label.row, label.seat)
    raise Invalid(f"there is no seat {label} in this scene" + (
        f"; did you mean {', '.join(str(s) for s in suggestions[:3])}?" if suggestions else ""),
        detail={"suggestions": [{"section": s.section, "row": s.row, "seat": s.seat, "label": str(s)}
                                for s in suggestions]})


def _claimant_pixel(session: Session, user: User, pixel: Pixel) -> Pixel:
    require_locatable(user, pixel, to="say which seat it sits in")
    return session.scalar(select(Pixel).where(Pixel.id == pixel.id).with_for_update())


def claim_seat(session: Session, user: User, scene: Scene, pixel: Pixel, *, section: str, row: str,
               seat: str) -> ClaimOutcome:
    """Record that `pixel` sits in the seat (the caller commits, whatever the outcome).

    Accepted when nobody active holds the seat: the pixel is located there through
    `commit_sightings`. Otherwise the claim is kept with `accepted` false and every claim on the
    seat is flagged as a conflict; the holder keeps the seat."""
    pixel = _claimant_pixel(session, user, pixel)
    target = find_seat(session, scene, section, row, seat)
    claims = session.scalars(select(SeatClaim).where(SeatClaim.seat_id == target.id)
                             .with_for_update()).all()
    holder = next((c for c in claims if c.accepted and c.pixel_id != pixel.id), None)
    if holder is not None and holder.pixel.status not in LOCATABLE_STATUSES:
        holder.accepted = False  # a departed or excluded pixel no longer holds its seat
        session.flush()
        holder = None
    mine = session.scalar(select(SeatClaim).where(SeatClaim.pixel_id == pixel.id))
    if mine is not None and mine.seat_id == target.id and mine.accepted:
        return ClaimOutcome(mine, target, True, _others(session, target, pixel))
    old_seat_id = mine.seat_id if mine is not None else None
    if mine is None:
        mine = SeatClaim(seat_id=target.id, pixel_id=pixel.id)
        session.add(mine)
    mine.seat_id, mine.claimed_at, mine.accepted = target.id, utcnow(), holder is None
    session.flush()
    _refresh_conflicts(session, [s for s in (target.id, old_seat_id) if s is not None])
    _sync_claim_observation(session, user, scene, pixel.id)
    return ClaimOutcome(mine, target, mine.accepted, _others(session, target, pixel))


def _others(session: Session, seat: Seat, pixel: Pixel) -> list[int]:
    return list(session.scalars(select(Pixel.number).join(SeatClaim, SeatClaim.pixel_id == Pixel.id)
                                .where(SeatClaim.seat_id == seat.id, Pixel.id != pixel.id)
                                .order_by(Pixel.number)))


def _refresh_conflicts(session: Session, seat_ids: Sequence[int]) -> None:
    """A claim is in conflict exactly when another claim names the same seat."""
    other = aliased(SeatClaim)
    count = (select(func.count()).select_from(other).where(other.seat_id == SeatClaim.seat_id)
             .scalar_subquery())
    session.execute(update(SeatClaim).where(SeatClaim.seat_id.in_(seat_ids))
                    .values(conflict=count > 1).execution_options(synchronize_session=False))
    session.expire_all()


def _sync_claim_observation(session: Session, user: User, scene: Scene, pixel_id: int) -> None:
    """Make the pixel's seat observation match its accepted claim (or withdraw it)."""
    claim = session.scalar(select(SeatClaim).where(SeatClaim.pixel_id == pixel_id))
    if claim is None or not claim.accepted:
        withdraw_observations(session, scene, pixel_id, "seat")
        return
    seat = session.get(Seat, claim.seat_id)
    withdraw_observations(session, scene, pixel_id, "seat", refuse=False)
    job = direct_job(session, scene, user, "seat", {"seat": str(SeatLabel(seat.section, seat.row, seat.seat)),
                                                     "pixel_id": pixel_id})
    commit_sightings(session, job, scene, [Sighting(
        pixel_id=pixel_id, x=seat.x, y=seat.y, sigma=SEAT_SIGMA_FRACTION * seat.spacing,
        confidence=CLAIM_CONFIDENCE)])


def seat_conflicts(session: Session, scene: Scene, *, after: tuple[str, str, str] | None = None,
                   limit: int | None = None) -> tuple[list[dict], tuple | None]:
    """Seats claimed by more than one pixel by (section, row, seat), each with every claim
    (oldest first): at most `limit` seats past `after`, and the key of the last one when more
    follow."""
    conflicted = select(Seat.id, *SEAT_KEY).where(Seat.scene_id == scene.id, Seat.id.in_(
        select(SeatClaim.seat_id).where(SeatClaim.conflict)))
    page = keyset_page(session, conflicted, SEAT_KEY, after=after, limit=limit or MAX_SEATS)
    rows = session.execute(
        select(Seat, SeatClaim, Pixel.number, Pixel.status)
        .join(SeatClaim, SeatClaim.seat_id == Seat.id).join(Pixel, Pixel.id == SeatClaim.pixel_id)
        .where(Seat.id.in_([r.id for r in page.rows]), SeatClaim.conflict)
        .order_by(Seat.section, Seat.row, Seat.seat, SeatClaim.claimed_at)).all()
    out: dict[int, dict] = {}
    for seat, claim, number, status in rows:
        entry = out.setdefault(seat.id, {"section": seat.section, "row": seat.row, "seat": seat.seat,
                                         "label": str(SeatLabel(seat.section, seat.row, seat.seat)),
                                         "x": seat.x, "y": seat.y, "claims": []})
        entry["claims"].append({"pixel_number": number, "pixel_status": status,
                                "accepted": claim.accepted, "claimed_at": claim.claimed_at})
    return list(out.values()), page.next_key


# -------------------------------------------------------------------------------- snapping


def _camera_positions(session: Session, scene: Scene) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Pixel ids (P,), robustly fused camera positions (P, 2) and sigmas (P,) of the scene's
    located pixels that hold no seat by their own claim."""
    claimed = select(SeatClaim.pixel_id).where(SeatClaim.accepted)
    rows = session.execute(
        select(Observation.id, Observation.pixel_id, Observation.x, Observation.y, Observation.sigma,
               Observation.confidence, Observation.method, Observation.observed_at)
        .join(Pixel, Pixel.id == Observation.pixel_id)
        .where(Pixel.scene_id == scene.id, Pixel.status == "located",
               Observation.method.in_(CAMERA_METHODS), Pixel.id.not_in(claimed))
        .order_by(Observation.pixel_id)).all()
    grouped: dict[int, list] = {}
    for row in rows:
        grouped.setdefault(row.pixel_id, []).append(row)
    ids = np.fromiter(grouped, dtype=np.int64, count=len(grouped))
    xy = np.zeros((len(ids), 2))
    sigma = np.zeros(len(ids))
    for i, observations in enumerate(grouped.values()):
        if len(observations) == 1:  # most pixels: no clustering to do
            o = observations[0]
            xy[i], sigma[i] = (o.x, o.y), o.sigma
        else:
            fused = fuse(observations)
            xy[i], sigma[i] = (fused.x, fused.y), fused.sigma
    return ids, xy, sigma


def needs_snap(session: Session, scene: Scene, method: str) -> bool:
    """Whether a job of ``method`` leaves the scene's seats to snap: a camera job in a seated scene."""
    return method in CAMERA_METHODS and session.scalar(
        select(Seat.id).where(Seat.scene_id == scene.id).limit(1)) is not None


def snap_round(session: Session, scene: Scene) -> dict:
    """Snap every camera-located pixel of a seated scene to a seat with one global assignment;
    confident snaps move the pixel onto its seat. The counts go onto the stats of the camera
    jobs this round covers (those finished since the last snap) and are returned."""
    if not needs_snap(session, scene, CAMERA_METHODS[0]):
        return {}
    ids, xy, sigma = _camera_positions(session, scene)
    loaded = load_seat_map(session, scene, free_only=True)
    if not len(ids) or loaded is None:
        return _record_round(session, scene, {"snap_pixels": 0})
    seat_map, seat_ids = loaded
    result = snap_to_seats(seat_map, xy, sigma=sigma)
    confident = (result.seat_index >= 0) & (result.confidence >= SNAP_MIN_CONFIDENCE)
    seat_xy = seat_map.positions[np.maximum(result.seat_index, 0)]
    target = np.where(confident[:, None], seat_xy, xy)
    target = np.clip(target, 0, (scene.width, scene.height))
    rows = [{"id": int(pid), "x": float(x), "y": float(y),
             "seat_id": int(seat_ids[k]) if k >= 0 else None, "seat_confidence": round(float(c), 4)}
            for pid, (x, y), k, c in zip(ids, target, result.seat_index, result.confidence, strict=True)]
    _write_snaps(session, scene, rows)
    # Pixels that stopped being snapping candidates (a claim now holds their seat) lose the snap.
    claimed = select(SeatClaim.pixel_id).where(SeatClaim.accepted)
    session.execute(update(Pixel).where(Pixel.scene_id == scene.id, Pixel.seat_id.is_not(None),
                                        Pixel.id.in_(claimed) | (Pixel.status != "located"))
                    .values(seat_id=None, seat_confidence=None).execution_options(synchronize_session=False))
    bump_layout(session, scene.id)
    session.expire_all()
    return _record_round(session, scene, {
        "snap_pixels": len(ids), "snap_confident": int(confident.sum()),
        "snap_unmatched": int((result.seat_index < 0).sum()), "snap_free_seats": len(seat_map)})


def _record_round(session: Session, scene: Scene, counts: dict) -> dict:
    """Put the round's counts on the camera jobs it covers: done, and not snapped yet."""
    jobs = session.scalars(select(LocateJob).where(
        LocateJob.scene_id == scene.id, LocateJob.status == "done", LocateJob.method.in_(CAMERA_METHODS)))
    for job in jobs:
        if job.stats.get("snap") == "queued":
            job.stats = {**job.stats, **counts, "snap": "done"}
    return counts


def _write_snaps(session: Session, scene: Scene, rows: list[dict]) -> None:
    """Write the rows that differ from what is stored: after the first snap of a stadium most
    pixels keep their seat, and 100,000 single-row updates would dominate a camera job."""
    stored = {r.id: (r.x, r.y, r.seat_id, r.seat_confidence) for r in session.execute(
        select(Pixel.id, Pixel.x, Pixel.y, Pixel.seat_id, Pixel.seat_confidence)
        .where(Pixel.scene_id == scene.id, Pixel.status == "located"))}
    changed = [r for r in rows
               if stored.get(r["id"]) != (r["x"], r["y"], r["seat_id"], r["seat_confidence"])]
    if not changed:
        return
    if session.get_bind().dialect.name != "postgresql":
        session.execute(update(Pixel), changed)
        return
    # One statement over arrays instead of one round trip per pixel.
    session.execute(text(
        "UPDATE pixels AS p SET x = v.x, y = v.y, seat_id = v.seat_id, seat_confidence = v.conf "
        "FROM unnest(CAST(:ids AS bigint[]), CAST(:xs AS float8[]), CAST(:ys AS float8[]), "
        "CAST(:seats AS bigint[]), CAST(:confs AS float8[])) AS v(id, x, y, seat_id, conf) "
        "WHERE p.id = v.id"),
        {"ids": [r["id"] for r in changed], "xs": [r["x"] for r in changed], "ys": [r["y"] for r in changed],
         "seats": [r["seat_id"] for r in changed], "confs": [r["seat_confidence"] for r in changed]})
