"""The show's timeline on the server clock: which frame shows at a given time, and starting and
stopping a show."""

from __future__ import annotations

import time
from bisect import bisect_right
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from c3s.checkin import MIN_LEAD_MS
from c3s.errors import Conflict
from c3s.frames import frames_of
from c3s.models import Frame, Scene, User, as_utc
from c3s.permissions import require

# A show started without a time starts this far ahead: one whole check-in of every phone and
# the fetch of its track (see c3s/checkin.py).
DEFAULT_LEAD_MS = MIN_LEAD_MS
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)

def now_ms() -> float:
    """The server clock, Unix milliseconds (fractional)."""
    return time.time_ns() / 1e6


def ms_of(moment: datetime | None) -> int | None:
    """A stored time as whole Unix milliseconds (start times are stored to the millisecond)."""
    if moment is None:
        return None
    return (as_utc(moment) - _EPOCH) // timedelta(milliseconds=1)




def us_of(moment: datetime) -> int:
    return (as_utc(moment) - _EPOCH) // timedelta(microseconds=1)


@dataclass(frozen=True)
class Timeline:
    """The frames of one show in order, with durations; ``ends_ms[i]`` is when frame i ends,
    counted from the start of a cycle."""

    frame_ids: tuple[int, ...]
    durations_ms: tuple[int, ...]
    ends_ms: tuple[int, ...]

    @classmethod
    def of(cls, frames: Iterable[tuple[int, int]]) -> Timeline:
        """From ``(frame id, duration ms)`` pairs in show order."""
        ids, durations, ends, total = [], [], [], 0
        for frame_id, duration in frames:
            total += int(duration)
            ids.append(int(frame_id))
            durations.append(int(duration))
            ends.append(total)
        return cls(tuple(ids), tuple(durations), tuple(ends))

    @property
    def total_ms(self) -> int:
        return self.ends_ms[-1] if self.ends_ms else 0

    def frames_json(self) -> list[dict[str, int]]:
        return [{"id": i, "duration_ms": d} for i, d in zip(self.frame_ids, self.durations_ms, strict=True)]


@dataclass(frozen=True)
class Moment:
    """What a pixel shows at one time: ``phase`` is "before", "playing" or "ended"; ``frame`` the
    frame index (-1 when none shows); ``until_ms`` when that next changes (None: not known)."""

    phase: str
    frame: int
    until_ms: int | None


def moment_at(timeline: Timeline, status: str, start_ms: int | None, loop: bool, t_ms: float) -> Moment:
    """Which frame shows at server time ``t_ms`` (Unix ms) for a scene in ``status``.

    A show that is not playing (never started, stopped) is "before" with no known change; a
    playing show is "before" until its start, then frame after frame, then "ended" (or, with
    ``loop``, round again from the first frame)."""
    if status == "ended":
        return Moment("ended", -1, None)
    total = timeline.total_ms
    if status != "playing" or start_ms is None or total <= 0:
        return Moment("before", -1, None)
    elapsed = t_ms - start_ms
    if elapsed < 0:
        return Moment("before", -1, start_ms)
    cycle_start = start_ms
    if elapsed >= total:
        if not loop:
            return Moment("ended", -1, None)
        cycles = int(elapsed // total)
        cycle_start += cycles * total
        elapsed -= cycles * total
    index = bisect_right(timeline.ends_ms, elapsed)
    if index >= len(timeline.ends_ms):  # float rounding at the very end of a cycle
        index, cycle_start = 0, cycle_start + total
    return Moment("playing", index, cycle_start + timeline.ends_ms[index])


# ---------------------------------------------------------------------- start and stop


def timeline_of(session: Session, scene_id: int) -> Timeline:
    return Timeline.of((f.id, f.duration_ms) for f in frames_of(session, scene_id))


def start_show(session: Session, user: User, scene: Scene, *, start_at_ms: float | None = None,
               loop: bool = False) -> Scene:
    """Play the show from ``start_at_ms`` (Unix ms on the server clock; None: in
    :data:`DEFAULT_LEAD_MS`), looping or once. Needs ``scene_admin``; the caller commits."""
    require(session, user, "scene_admin", scene)
    count = session.scalar(select(func.count()).select_from(Frame).where(Frame.scene_id == scene.id))
    if not count:
        raise Conflict(f"scene {scene.id} has no frames to show: upload an image, a GIF or a video first")
    start = round(now_ms() + DEFAULT_LEAD_MS if start_at_ms is None else start_at_ms)
    scene.show_start_at = _EPOCH + timedelta(milliseconds=start)
    scene.show_loop = bool(loop)
    scene.status = "playing"
    session.flush()
    return scene


def stop_show(session: Session, user: User, scene: Scene) -> Scene:
    """Stop the show (the scene is ``ready`` again, with no start time). Needs ``scene_admin``."""
    require(session, user, "scene_admin", scene)
    if scene.status == "playing":
        scene.status = "ready"
    scene.show_start_at = None
    session.flush()
    return scene

