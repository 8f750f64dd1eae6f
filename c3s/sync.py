"""Camera-closed sync: how far the crowd's light output lands from the server clock, as blink
clips measure it, and the corrections the phones play with.

A blink clip measures, for every phone it decodes, when that phone's light changed relative to
the server clock (``offset_ms``, positive = late: display latency plus clock error). Each located
phone plays the show (and its blink pattern) that much earlier, its fused offset
(:func:`c3s.locate.fusion.fuse_offset`), so its light lands on the server clock whatever its
network path or display. Any later clip of the blinking crowd is a *sync check*: it measures what
is left (the residual) and updates the corrections through the same locate path.

:func:`summarise` is the report of one clip (the job's ``stats["sync"]``); :func:`scene_report`
is what the dashboard shows (the newest check, per pixel, plus the history of checks);
:class:`OffsetTable` gives the track route each pixel's correction without a query per phone.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Sequence

import numpy as np
from sqlalchemy import select
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session

from c3s.errors import Conflict, Invalid, Unavailable
from c3s.keyset import keyset_page
from c3s.models import LocateJob, Observation, Pixel, Scene, User, as_utc
from c3s.permissions import require
from c3s.vision.blink import N_SLOTS, SLOT_MS

SECTION_GRID = (4, 3)  # columns x rows of the scene sections the report ranks
WORST_SECTIONS = 3
MAX_HISTOGRAM_BINS = 60
HISTORY = 10
# Phones of a check listed when no page size is asked for: every phone of a stadium.
MAX_PHONES = 1_000_000
# The track route reads a scene's corrections at most this often per process.
OFFSETS_REFRESH_S = 5.0
# A sync burst: two blink periods (the decoder wants more than one), announced early enough that
# every phone has polled the show (every 10 s) before it starts.
BURST_MS = 2 * N_SLOTS * SLOT_MS
BURST_LEAD_MS = 15_000


def _bin_width(span_ms: float) -> float:
    for width in (1.0, 2.0, 5.0, 10.0, 20.0, 50.0):
        if span_ms / width <= MAX_HISTOGRAM_BINS:
            return width
    return 100.0


def histogram(offset_ms: np.ndarray) -> dict:
    """Counts of offsets in bins of a round width (1, 2, 5, ... ms), at most 60 bins."""
    if len(offset_ms) == 0:
        return {"bin_ms": 1.0, "edges_ms": [], "counts": []}
    lo, hi = float(np.min(offset_ms)), float(np.max(offset_ms))
    width = _bin_width(hi - lo)
    start, stop = math.floor(lo / width) * width, (math.floor(hi / width) + 1) * width
    edges = np.arange(start, stop + width / 2, width)
    counts, _ = np.histogram(offset_ms, bins=edges)
    return {"bin_ms": width, "edges_ms": [round(float(e), 3) for e in edges], "counts": counts.tolist()}


def _sections(offset_ms, x, y, size: tuple[float, float]) -> list[dict]:
    """The scene cut into a grid; each cell with phones, its median and p95 |offset|, worst first."""
    cols, rows = SECTION_GRID
    width, height = size
    col = np.clip((np.asarray(x) / width * cols).astype(int), 0, cols - 1)
    row = np.clip((np.asarray(y) / height * rows).astype(int), 0, rows - 1)
    cells = []
    for r in range(rows):
        for c in range(cols):
            inside = (col == c) & (row == r)
            if not inside.any():
                continue
            here = offset_ms[inside]
            cells.append({"section": f"{chr(ord('A') + r)}{c + 1}", "x0": c * width / cols,
                          "x1": (c + 1) * width / cols, "y0": r * height / rows, "y1": (r + 1) * height / rows,
                          "phones": int(inside.sum()), "median_ms": round(float(np.median(here)), 2),
                          "p95_abs_ms": round(float(np.percentile(np.abs(here), 95)), 2)})
    cells.sort(key=lambda cell: -cell["p95_abs_ms"])
    return cells


def summarise(offset_ms: Sequence[float], x: Sequence[float], y: Sequence[float],
              size: tuple[float, float]) -> dict:
    """The light-output offsets one clip measured (ms, positive = late) at scene positions
    ``x``, ``y`` (scene units) on a scene of ``size`` (width, height).

    Returns ``phones``, ``median_ms``, ``p95_abs_ms`` (95 % of the crowd lands within this of
    the server clock), ``max_abs_ms``, ``spread_p95_ms`` (95 % within this of the crowd's median:
    what a viewer sees as smear), ``histogram`` and the ``worst_sections`` of the scene.
    """
    offsets = np.asarray(offset_ms, dtype=float)
    if len(offsets) == 0:
        return {"phones": 0, "median_ms": None, "p95_abs_ms": None, "max_abs_ms": None,
                "spread_p95_ms": None, "histogram": histogram(offsets), "worst_sections": []}
    median = float(np.median(offsets))
    return {"phones": int(len(offsets)), "median_ms": round(median, 2),
            "p95_abs_ms": round(float(np.percentile(np.abs(offsets), 95)), 2),
            "max_abs_ms": round(float(np.max(np.abs(offsets))), 2),
            "spread_p95_ms": round(float(np.percentile(np.abs(offsets - median), 95)), 2),
            "histogram": histogram(offsets),
            "worst_sections": _sections(offsets, x, y, size)[:WORST_SECTIONS]}


def _recent_checks(session: Session, scene_id: int) -> list[LocateJob]:
    """The scene's newest finished blink jobs that timed at least one phone, newest first."""
    jobs = session.scalars(select(LocateJob).where(LocateJob.scene_id == scene_id, LocateJob.method == "blink",
                                                   LocateJob.status == "done")
                           .order_by(LocateJob.id.desc()).limit(HISTORY)).all()
    return [job for job in jobs if ((job.stats or {}).get("sync") or {}).get("phones")]


def _summary_row(job: LocateJob) -> dict:
    summary = job.stats["sync"]
    return {"job_id": job.id, "filmed_at": as_utc(job.created_at).isoformat(),
            **{k: summary[k] for k in ("phones", "median_ms", "p95_abs_ms", "spread_p95_ms")}}


def _check_job(session: Session, scene: Scene, job_id: int) -> LocateJob:
    job = session.get(LocateJob, job_id)
    if job is None or job.scene_id != scene.id or job.method != "blink" or job.status != "done" or \
            not ((job.stats or {}).get("sync") or {}).get("phones"):
        raise Invalid(f"scene {scene.id} has no sync check {job_id}: read the report again from its first page")
    return job


def scene_report(session: Session, scene: Scene, *, after: tuple[int, int] | None = None,
                 limit: int | None = None) -> tuple[dict, tuple[int, int] | None]:
    """The newest sync check of the scene (summary and the phones it measured, by number, with
    their scene positions), the corrections phones play with now, and the recent checks; and the
    key to pass as `after` for the next phones when there are more than `limit`.

    `after` (check job id, pixel number) continues the listing of that check, so the pages of
    one listing never mix two checks, even when a newer one lands meanwhile."""
    checks = _recent_checks(session, scene.id)
    job = checks[0] if checks else None
    if after is not None:
        job = _check_job(session, scene, after[0])
    corrections = np.array(session.scalars(select(Pixel.offset_ms).where(
        Pixel.scene_id == scene.id, Pixel.status == "located", Pixel.offset_ms.is_not(None))).all(), float)
    report = {"scene_id": scene.id, "width": scene.width, "height": scene.height, "check": None,
              "corrections": {"pixels": int(len(corrections)),
                              "median_ms": round(float(np.median(corrections)), 2) if len(corrections) else None,
                              "p95_abs_ms": (round(float(np.percentile(np.abs(corrections), 95)), 2)
                                             if len(corrections) else None)},
              "history": [_summary_row(check) for check in checks]}
    if job is None:
        return report, None
    page = keyset_page(session, select(Pixel.number, Observation.x, Observation.y, Observation.offset_ms,
                                       Observation.correction_ms)
                       .join(Pixel, Pixel.id == Observation.pixel_id)
                       .where(Observation.job_id == job.id, Observation.offset_ms.is_not(None)),
                       (Pixel.number,), after=None if after is None else after[1:], limit=limit or MAX_PHONES,
                       key_of=lambda row: (job.id, row[0]))
    rows = page.rows
    report["check"] = {"job_id": job.id, "filmed_at": as_utc(job.created_at).isoformat(),
                       **job.stats["sync"],
                       "pixels": {"numbers": [r[0] for r in rows], "x": [round(r[1], 4) for r in rows],
                                  "y": [round(r[2], 4) for r in rows],
                                  "offset_ms": [round(r[3], 2) for r in rows],
                                  "correction_ms": [None if r[4] is None else round(r[4], 2) for r in rows]}}
    return report, page.next_key


def schedule_burst(session: Session, user: User, scene: Scene, *, start_at_ms: float | None = None,
                   duration_ms: float = BURST_MS) -> dict:
    """Have every phone of the playing show blink its pattern from ``start_at_ms`` (Unix ms on
    the server clock; None: :data:`BURST_LEAD_MS` from now) for ``duration_ms``, each with its
    correction, then go on with the show: film the crowd meanwhile and upload the clip with its
    start time, and the job is a sync check. Needs ``scene_admin``; the caller commits."""
    from datetime import UTC, datetime, timedelta

    require(session, user, "scene_admin", scene)
    if scene.status != "playing":
        raise Conflict(f"scene {scene.id} is not playing: before the show its phones blink anyway, so "
                       "film them then; a burst interrupts a show that is on")
    start = round(time.time() * 1000 + BURST_LEAD_MS if start_at_ms is None else start_at_ms)
    scene.sync_burst_at = datetime(1970, 1, 1, tzinfo=UTC) + timedelta(milliseconds=start)
    scene.sync_burst_ms = int(round(duration_ms))
    session.flush()
    return {"start_ms": start, "duration_ms": scene.sync_burst_ms}


class OffsetTable:
    """Each scene's corrections by pixel number, read from the database at most every
    :data:`OFFSETS_REFRESH_S` per process (one query for the whole scene), so the track route
    adds no query per phone. A correction changed by a sync check reaches the tracks fetched
    after the next refresh; phones already playing pick it up at their next check-in."""

    def __init__(self, engine):
        self.engine = engine
        self._tables: dict[int, tuple[float, dict[int, float]]] = {}
        self._lock = threading.Lock()

    def offset(self, scene_id: int, number: int) -> float | None:
        found = self._tables.get(scene_id)
        if found is None:
            with self._lock:  # the first read of a scene: the others wait for it
                found = self._tables.get(scene_id) or self._read(scene_id)
        elif time.monotonic() - found[0] > OFFSETS_REFRESH_S and self._lock.acquire(blocking=False):
            try:  # one thread refreshes; the others answer from the table they have meanwhile
                found = self._read(scene_id)
            finally:
                self._lock.release()
        return found[1].get(number)

    def _read(self, scene_id: int) -> tuple[float, dict[int, float]]:
        try:
            with self.engine.connect() as connection:
                rows = connection.execute(select(Pixel.number, Pixel.offset_ms).where(
                    Pixel.scene_id == scene_id, Pixel.status == "located", Pixel.offset_ms.is_not(None)))
                table = {int(number): float(offset) for number, offset in rows}
        except OperationalError as error:
            raise Unavailable(f"the database does not answer: {error}") from error
        if len(self._tables) > 256:
            self._tables.clear()
        found = self._tables[scene_id] = (time.monotonic(), table)
        return found
