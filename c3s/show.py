"""The show: start and stop it, its timeline on the server clock, which frame shows at a given
time, and the colour maps of every frame for the current layout, built once by a task and cached
(Redis, or in process on the embedded default) under a version, so a stale map is never served.

Versions. A scene's colour maps depend on its layout (which pixels are located and where:
``layout_version``), its frames (``frames_version``, bumped by every upload, retime, reorder and
delete in :mod:`c3s.frames`), how frames sit on the scene (``fit``, width, height), and the scene
itself (its id and creation time, so a scene id that comes back after a database restore never
meets another scene's maps). :func:`maps_version` names all of that, every cached key carries it,
and readers compute the current version from the scene row *on every request*
(:meth:`ShowReader.state`), so once any of those changes is committed the older maps are simply
never asked for again. A new build is queued then (coalesced per scene) and the endpoints answer
409 until it is done.

Cache layout, for scene ``S`` and version ``V`` (every key expires after :data:`MAPS_TTL_S`; a
superseded version after :data:`SUPERSEDED_TTL_S`)::

    c3s:show:S:V:map:<i>      frame i's colour map (c3s.vision.colormap.pack_color_map): a 12-byte
                              header, then R, G, B of each located pixel in ascending number
    c3s:show:S:V:tracks:<k>   chunk k of the pixel-major track table: rows k*R .. k*R+R-1, each
                              row the pixel's F colours (3 * F bytes), so one pixel's track is one
                              GETRANGE
    c3s:show:S:V:index        int32 little-endian per pixel number: its row, or -1 if not shown
    c3s:show:S:V:meta         JSON (frames, durations, R, counts); written last, so its presence
                              means the build is complete
    c3s:show:S:V:error        why the last build of V failed (a corrupt frame file, ...)
    c3s:show:S:build-pending  set (NX, with an expiry) while a build is queued but not started
    c3s:show:S:latest         the newest version built, whose keys a newer build retires
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import threading
import time
from array import array
from bisect import bisect_right
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from c3s.errors import Conflict
from c3s.framestore import FileCorrupt, FileMissing, FrameStore
from c3s.models import Frame, Pixel, Scene, User, as_utc
from c3s.permissions import require

log = logging.getLogger(__name__)

BUILD_TASK = "c3s.tasks.show.build_color_maps"
# A show started without a time starts this far ahead, so phones have time to fetch their tracks.
DEFAULT_LEAD_MS = 3000
MAPS_TTL_S = 2 * 24 * 3600
# Phones still fetching an older version when a new one lands are told 409 then anyway; the keys
# only linger so a reader that looked the version up a moment ago can finish its read.
SUPERSEDED_TTL_S = 60
# A queued build that never started (broker restarted, worker lost) stops blocking new ones then.
PENDING_TTL_S = 120
ERROR_TTL_S = 3600
# A reader asks for a missing build at most this often per version (the pending flag coalesces
# across processes; this spares Redis the asking).
QUEUE_RETRY_S = 1.0
# Track table chunks stay well under Redis's 512 MB value limit and do not stall it while written.
TRACK_CHUNK_BYTES = 8 * 1024 * 1024
KEY_PREFIX = "c3s:show"
BIGINT_MAX, INTEGER_MAX = 2**63 - 1, 2**31 - 1
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def now_ms() -> float:
    """The server clock, Unix milliseconds (fractional)."""
    return time.time_ns() / 1e6


def ms_of(moment: datetime | None) -> int | None:
    """A stored time as whole Unix milliseconds (start times are stored to the millisecond)."""
    if moment is None:
        return None
    return (as_utc(moment) - _EPOCH) // timedelta(milliseconds=1)


def _us_of(moment: datetime) -> int:
    return (as_utc(moment) - _EPOCH) // timedelta(microseconds=1)


def maps_version(scene_id: int, created_us: int, layout_version: int, frames_version: int,
                 fit: str, width: float, height: float) -> str:
    """The version naming one set of colour maps: ``<layout>.<frames>.<geometry digest>``;
    ``created_us`` is the scene's creation time in Unix microseconds."""
    geometry = f"{scene_id}|{int(created_us)}|{fit}|{float(width)!r}|{float(height)!r}"
    digest = hashlib.blake2s(geometry.encode(), digest_size=4).hexdigest()
    return f"{layout_version}.{frames_version}.{digest}"


def scene_maps_version(scene: Scene) -> str:
    return maps_version(scene.id, _us_of(scene.created_at), scene.layout_version, scene.frames_version or 0,
                        scene.fit, scene.width, scene.height)


def _version_order(version: str) -> tuple[int, int]:
    layout, frames, _ = version.split(".")
    return int(layout), int(frames)


def _key(scene_id: int, version: str, part: str) -> str:
    return f"{KEY_PREFIX}:{scene_id}:{version}:{part}"


def pending_key(scene_id: int) -> str:
    return f"{KEY_PREFIX}:{scene_id}:build-pending"


def latest_key(scene_id: int) -> str:
    return f"{KEY_PREFIX}:{scene_id}:latest"


# ------------------------------------------------------------------------------ the timeline


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


def frames_of(session: Session, scene_id: int) -> Sequence[Frame]:
    return session.scalars(select(Frame).where(Frame.scene_id == scene_id).order_by(Frame.position)).all()


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


def show_json(scene: Scene, timeline: Timeline, *, maps_ready: bool, t_ms: float | None = None) -> dict:
    """The timeline as the API gives it (``phase`` and ``maps_ready`` extend the contract)."""
    start = ms_of(scene.show_start_at)
    moment = moment_at(timeline, scene.status, start, scene.show_loop, now_ms() if t_ms is None else t_ms)
    return {"status": scene.status, "start_ms": start, "loop": bool(scene.show_loop),
            "total_ms": timeline.total_ms, "frames": timeline.frames_json(),
            "maps_version": scene_maps_version(scene), "phase": moment.phase, "maps_ready": maps_ready}


# ---------------------------------------------------------------------------- the caches


class ShowCache(Protocol):
    """Bytes by key with expiry: Redis in production, :class:`MemoryCache` on the embedded default."""

    def get(self, key: str) -> bytes | None: ...

    def getrange(self, key: str, start: int, end: int) -> bytes:
        """Bytes ``start..end`` inclusive (Redis GETRANGE); b"" for a missing key."""
        ...

    def put_many(self, items: Mapping[str, bytes] | Iterable[tuple[str, bytes]], ttl_s: int) -> None:
        """Set every ``(key, value)``; an iterable is consumed as it goes (big builds stream)."""
        ...

    def expire(self, keys: Sequence[str], ttl_s: int) -> None: ...

    def add(self, key: str, value: bytes, ttl_s: int) -> bool:
        """Set only if absent (SET NX EX); True when this call set it."""
        ...

    def delete(self, *keys: str) -> None: ...


def _pairs(items) -> Iterable[tuple[str, bytes]]:
    return items.items() if isinstance(items, Mapping) else items


class RedisCache:
    """:class:`ShowCache` on a redis-py client."""

    BATCH_BYTES = 32 * 1024 * 1024

    def __init__(self, client):
        self.client = client

    def get(self, key: str) -> bytes | None:
        return self.client.get(key)

    def getrange(self, key: str, start: int, end: int) -> bytes:
        return self.client.getrange(key, start, end)

    def put_many(self, items: Mapping[str, bytes] | Iterable[tuple[str, bytes]], ttl_s: int) -> None:
        pipe, pending = self.client.pipeline(transaction=False), 0
        for key, value in _pairs(items):
            pipe.set(key, value, ex=ttl_s)
            pending += len(value)
            if pending >= self.BATCH_BYTES:
                pipe.execute()
                pending = 0
        pipe.execute()

    def expire(self, keys: Sequence[str], ttl_s: int) -> None:
        pipe = self.client.pipeline(transaction=False)
        for key in keys:
            pipe.expire(key, ttl_s)
        pipe.execute()

    def add(self, key: str, value: bytes, ttl_s: int) -> bool:
        return bool(self.client.set(key, value, ex=ttl_s, nx=True))

    def delete(self, *keys: str) -> None:
        if keys:
            self.client.delete(*keys)


class MemoryCache:
    """:class:`ShowCache` in this process's memory, for the embedded default (no Redis)."""

    def __init__(self):
        self._items: dict[str, tuple[bytes, float]] = {}
        self._lock = threading.Lock()

    def get(self, key: str) -> bytes | None:
        item = self._items.get(key)
        if item is None or item[1] < time.monotonic():
            return None
        return item[0]

    def getrange(self, key: str, start: int, end: int) -> bytes:
        value = self.get(key)
        return b"" if value is None else value[start : end + 1]

    def put_many(self, items: Mapping[str, bytes] | Iterable[tuple[str, bytes]], ttl_s: int) -> None:
        deadline = time.monotonic() + ttl_s
        pairs = [(k, (bytes(v), deadline)) for k, v in _pairs(items)]
        with self._lock:
            self._purge()
            self._items.update(pairs)

    def expire(self, keys: Sequence[str], ttl_s: int) -> None:
        deadline = time.monotonic() + ttl_s
        with self._lock:
            for key in keys:
                if key in self._items:
                    self._items[key] = (self._items[key][0], deadline)

    def add(self, key: str, value: bytes, ttl_s: int) -> bool:
        with self._lock:
            if self.get(key) is not None:
                return False
            self._items[key] = (bytes(value), time.monotonic() + ttl_s)
            return True

    def delete(self, *keys: str) -> None:
        with self._lock:
            for key in keys:
                self._items.pop(key, None)

    def _purge(self) -> None:
        now = time.monotonic()
        for key in [k for k, (_, deadline) in self._items.items() if deadline < now]:
            del self._items[key]


_memory_caches: dict[str, MemoryCache] = {}
_memory_lock = threading.Lock()


def cache_for(redis, database_url: Any) -> ShowCache:
    """Redis when there is a client; otherwise this process's in-memory cache for that database
    (keyed by its URL, so two embedded apps in one process never share maps)."""
    if redis is not None:
        return RedisCache(redis)
    with _memory_lock:
        return _memory_caches.setdefault(str(database_url), MemoryCache())


# --------------------------------------------------------------------------- map building


@dataclass(frozen=True)
class BuildResult:
    """What one build did: ``status`` is "built", "cached" (this version was complete already),
    "no_frames", "no_pixels", "failed" (reason in ``reason``) or "missing" (no such scene)."""

    scene_id: int
    version: str | None
    status: str
    pixels: int = 0
    frames: int = 0
    reused_frames: int = 0
    seconds: float = 0.0
    reason: str | None = None


def _meta_keys(scene_id: int, version: str, meta: dict) -> list[str]:
    return ([_key(scene_id, version, "meta"), _key(scene_id, version, "index")]
            + [_key(scene_id, version, f"map:{i}") for i in range(len(meta["frames"]))]
            + [_key(scene_id, version, f"tracks:{k}") for k in range(meta["chunks"])])


def _load_meta(cache: ShowCache, scene_id: int, version: str) -> dict | None:
    raw = cache.get(_key(scene_id, version, "meta"))
    return None if raw is None else json.loads(raw)


def _decode_frame(data: bytes, frame: Frame):
    import cv2
    import numpy as np

    image = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)
    if image is None:
        raise ValueError(f"frame {frame.id}'s stored image cannot be decoded; upload it again")
    if image.shape[:2] != (frame.height, frame.width):
        raise ValueError(f"frame {frame.id}'s stored image is {image.shape[1]}x{image.shape[0]}, "
                         f"not the {frame.width}x{frame.height} recorded; upload it again")
    return cv2.cvtColor(image, cv2.COLOR_BGR2RGB)


def _read_frame(store: FrameStore, frame: Frame) -> bytes:
    try:
        return store.get(frame.file_id)
    except FileMissing:
        raise ValueError(f"frame {frame.id}'s image is missing from the file store; delete the frame "
                         "and upload it again") from None
    except FileCorrupt:
        raise ValueError(f"frame {frame.id}'s stored image is damaged; delete the frame and upload it "
                         "again") from None


def _reusable_maps(cache: ShowCache, scene_id: int, layout_geometry: str) -> dict[str, str]:
    """Frame file id -> map key of the newest earlier build of the same layout and geometry, so a
    retime or a reorder (which changes the version but no colour) recomputes nothing."""
    latest = cache.get(latest_key(scene_id))
    if latest is None:
        return {}
    previous = latest.decode()
    meta = _load_meta(cache, scene_id, previous)
    if meta is None or meta.get("layout_geometry") != layout_geometry:
        return {}
    return {f["file_id"]: _key(scene_id, previous, f"map:{i}") for i, f in enumerate(meta["frames"])}


def _frame_colors(frames, store: FrameStore, positions, scene: Scene, cache: ShowCache,
                  reusable: dict[str, str]):
    """(F, N, 3) uint8: every frame's colours, one mapper per frame size, each file read once."""
    import numpy as np

    from c3s.vision.colormap import ColorMapper, unpack_color_map

    table = np.empty((len(frames), len(positions), 3), np.uint8)
    mappers: dict[tuple[int, int], ColorMapper] = {}
    reused = 0
    for i, frame in enumerate(frames):
        old = cache.get(reusable[frame.file_id]) if frame.file_id in reusable else None
        if old is not None:
            table[i] = unpack_color_map(old, len(positions))
            reused += 1
            continue
        image = _decode_frame(_read_frame(store, frame), frame)
        shape = image.shape[:2]
        if shape not in mappers:
            mappers[shape] = ColorMapper.build(positions, (scene.width, scene.height), shape, fit=scene.fit)
        table[i] = mappers[shape].colors(image)
    return table, reused


def _located(session: Session, scene_id: int):
    import numpy as np

    rows = session.execute(select(Pixel.number, Pixel.x, Pixel.y)
                           .where(Pixel.scene_id == scene_id, Pixel.status == "located")
                           .order_by(Pixel.number)).all()
    numbers = np.array([r[0] for r in rows], np.int64)
    positions = np.array([(r[1], r[2]) for r in rows], np.float64).reshape(len(rows), 2)
    return numbers, positions


def _encode_build(scene_id: int, version: str, numbers, table, rows_per_chunk: int) -> Iterator[tuple[str, bytes]]:
    """Every value of one build but its meta, one at a time: maps, track chunks, number index."""
    import numpy as np

    from c3s.vision.colormap import pack_color_map

    n_frames, n_pixels = table.shape[:2]
    for i in range(n_frames):
        yield _key(scene_id, version, f"map:{i}"), pack_color_map(table[i])
    for k in range(-(-n_pixels // rows_per_chunk)):
        rows = table[:, k * rows_per_chunk : (k + 1) * rows_per_chunk]
        yield _key(scene_id, version, f"tracks:{k}"), np.ascontiguousarray(rows.transpose(1, 0, 2)).tobytes()
    index = np.full(int(numbers.max()) + 1, -1, "<i4")
    index[numbers] = np.arange(n_pixels, dtype="<i4")
    yield _key(scene_id, version, "index"), index.tobytes()


def build_color_maps(session: Session, store: FrameStore, redis, scene_id: int, *,
                     cache: ShowCache | None = None) -> BuildResult:
    """Compute and cache every frame's colour map and the track table for the scene's current
    layout and frames. Idempotent: a version already complete is only given a fresh expiry.

    The scene row is read before the pixels and frames, so data read later is at least as new as
    the version it is stored under; when it is newer, that version is already superseded and no
    reader asks for it.

    Known bad input (a frame file missing, corrupt or undecodable) is recorded under the version's
    ``error`` key (the endpoints show it) and returned as status "failed"; database, store and
    Redis outages propagate so the task retries."""
    started = time.perf_counter()
    cache = cache or cache_for(redis, session.get_bind().url)
    scene = session.get(Scene, scene_id)
    if scene is None:
        return BuildResult(scene_id, None, "missing")
    version = scene_maps_version(scene)
    meta = _load_meta(cache, scene_id, version)
    if meta is not None:
        cache.expire(_meta_keys(scene_id, version, meta), MAPS_TTL_S)
        return BuildResult(scene_id, version, "cached", meta["pixels"], len(meta["frames"]))
    frames = frames_of(session, scene_id)
    numbers, positions = _located(session, scene_id)
    session.rollback()  # nothing more to read; do not hold a transaction open while computing
    if not frames:
        return BuildResult(scene_id, version, "no_frames", pixels=len(numbers))
    if len(numbers) == 0:
        return BuildResult(scene_id, version, "no_pixels", frames=len(frames))
    layout_geometry = f"{scene.layout_version}.{version.rsplit('.', 1)[1]}"
    try:
        table, reused = _frame_colors(frames, store, positions, scene, cache,
                                      _reusable_maps(cache, scene_id, layout_geometry))
    except ValueError as error:
        reason = f"the colour maps could not be built: {error}"
        cache.put_many({_key(scene_id, version, "error"): reason.encode()}, ERROR_TTL_S)
        log.warning("scene %s version %s: %s", scene_id, version, reason)
        return BuildResult(scene_id, version, "failed", len(numbers), len(frames), reason=reason)
    rows_per_chunk = max(1, TRACK_CHUNK_BYTES // (3 * len(frames)))
    cache.put_many(_encode_build(scene_id, version, numbers, table, rows_per_chunk), MAPS_TTL_S)
    meta = {"version": version, "scene_id": scene_id, "layout_version": scene.layout_version,
            "layout_geometry": layout_geometry, "pixels": len(numbers), "rows_per_chunk": rows_per_chunk,
            "chunks": -(-len(numbers) // rows_per_chunk), "index_len": int(numbers.max()) + 1,
            "frames": [{"id": f.id, "duration_ms": f.duration_ms, "file_id": f.file_id} for f in frames],
            "built_ms": round(now_ms()), "build_s": round(time.perf_counter() - started, 3)}
    # Written last: a reader that finds the meta finds every other key of the version.
    cache.put_many({_key(scene_id, version, "meta"): json.dumps(meta).encode()}, MAPS_TTL_S)
    cache.delete(_key(scene_id, version, "error"))
    _retire_older(cache, scene_id, version)
    return BuildResult(scene_id, version, "built", len(numbers), len(frames), reused,
                       round(time.perf_counter() - started, 3))


def _retire_older(cache: ShowCache, scene_id: int, version: str) -> None:
    """Make this the latest version and let the one it replaces expire soon. A slower build of an
    older version finishing after a newer one neither retires it nor takes its place."""
    latest = cache.get(latest_key(scene_id))
    previous = latest.decode() if latest else None
    if previous == version:
        return
    if previous is not None and _version_order(previous) > _version_order(version):
        return
    cache.put_many({latest_key(scene_id): version.encode()}, MAPS_TTL_S)
    if previous is not None:
        meta = _load_meta(cache, scene_id, previous)
        if meta is not None:
            cache.expire(_meta_keys(scene_id, previous, meta), SUPERSEDED_TTL_S)


def queue_build(cache: ShowCache, scene_id: int, send: Callable[[str, int], None]) -> bool:
    """Queue a build of the scene's maps unless one is queued and not started yet (a calibration
    rush locates pixels many times a second; one build catches up with all of them). True when
    this call queued it."""
    if not cache.add(pending_key(scene_id), b"1", PENDING_TTL_S):
        return False
    try:
        send(BUILD_TASK, scene_id)
    except BaseException:
        cache.delete(pending_key(scene_id))
        raise
    return True


def request_build(scene_id: int) -> bool:
    """:func:`queue_build` from inside the app (a request or a task). An unreachable broker is
    logged, not raised: the data is committed, and the next poll or track asks again."""
    from kombu.exceptions import OperationalError as BrokerError
    from redis.exceptions import RedisError

    from c3s.tasks import send
    from c3s.web.context import services

    svc = services()
    try:
        return queue_build(cache_for(svc.redis, svc.database.engine.url), scene_id, send)
    except (BrokerError, RedisError, Unavailable, ConnectionError, TimeoutError) as error:
        log.warning("could not queue the colour maps of scene %s (%s); the next poll asks again",
                    scene_id, error)
        return False


# ------------------------------------------------------------------------------- reading


class Unavailable(Exception):
    """A service the show needs (database, Redis) does not answer; the API says 503."""


@dataclass(frozen=True)
class SceneState:
    """What the scene row says about the show right now."""

    scene_id: int
    status: str
    start_ms: int | None
    loop: bool
    version: str


@dataclass(frozen=True)
class ShowMaps:
    """One complete build as a reader holds it: the timeline, pixel number -> row, and where
    each pixel's track lies."""

    scene_id: int
    version: str
    timeline: Timeline
    index: array
    pixels: int
    rows_per_chunk: int

    def row_of(self, number: int) -> int:
        if 0 <= number < len(self.index):
            return self.index[number]
        return -1


# The scene row as the hot path needs it: times as whole Unix ms (start) and µs (creation).
_STATE_SQL = ("SELECT status, (extract(epoch FROM show_start_at) * 1000)::bigint, show_loop, layout_version,"
              " frames_version, fit, width, height, (extract(epoch FROM created_at) * 1000000)::bigint"
              " FROM scenes WHERE id = $1")
_FRAMES_SQL = "SELECT id, duration_ms FROM frames WHERE scene_id = %s ORDER BY position"
_PIXEL_SQL = "SELECT status FROM pixels WHERE scene_id = %s AND number = %s"
_CONTENT_SQL = ("SELECT EXISTS (SELECT 1 FROM frames WHERE scene_id = %s),"
                " EXISTS (SELECT 1 FROM pixels WHERE scene_id = %s AND status = 'located')")


class _PostgresReads:
    """Plain SQL on one psycopg2 connection per thread (autocommit, so no transaction stays
    open), the scene's state as a prepared statement: the hot path's one round trip costs no
    ORM, no pool checkout, no ping and no planning."""

    def __init__(self, url, connect_args: dict | None = None):
        self.dsn = url.set(drivername="postgresql").render_as_string(hide_password=False)
        self.connect_args = connect_args or {"connect_timeout": 5, "options": "-c statement_timeout=5000"}
        self.local = threading.local()

    def _cursor(self):
        import psycopg2

        cursor = getattr(self.local, "cursor", None)
        if cursor is None or cursor.closed or cursor.connection.closed:
            connection = psycopg2.connect(self.dsn, application_name="c3s-show", **self.connect_args)
            connection.autocommit = True
            cursor = connection.cursor()
            cursor.execute(f"PREPARE c3s_scene_state (bigint) AS {_STATE_SQL}")
            self.local.cursor = cursor
        return cursor

    def query(self, sql: str, params: tuple, *, many: bool = False):
        import psycopg2

        from c3s import db

        for attempt in (1, 2):
            try:
                cursor = self._cursor()
                cursor.execute(sql, params)
                return cursor.fetchall() if many else cursor.fetchone()
            except (psycopg2.OperationalError, psycopg2.InterfaceError) as error:
                # A connection dropped since the last request (database restart, failover):
                # reconnect once, then give up.
                self._drop()
                if attempt == 2 or isinstance(error, db.DatabaseTimeout):  # a stalled server: no retry
                    raise Unavailable(f"the database does not answer: {error}".strip()) from error
        raise AssertionError("unreachable")

    def state_row(self, scene_id: int):
        return self.query("EXECUTE c3s_scene_state (%s)", (scene_id,))

    def _drop(self) -> None:
        cursor = getattr(self.local, "cursor", None)
        self.local.cursor = None
        if cursor is not None:
            try:
                cursor.connection.close()
            except Exception as error:  # noqa: BLE001 - closing a broken connection may fail too
                log.debug("closing a dropped connection failed too: %s", error)


class _EngineReads:
    """The same reads through SQLAlchemy, for SQLite (the embedded default)."""

    def __init__(self, engine):
        self.engine = engine

    def query(self, sql: str, params: tuple, *, many: bool = False):
        from sqlalchemy import text

        names = [f"p{i}" for i in range(len(params))]
        statement = sql
        for name in names:
            statement = statement.replace("%s", f":{name}", 1)
        with self.engine.connect() as connection:
            result = connection.execute(text(statement), dict(zip(names, params, strict=True)))
            return result.fetchall() if many else result.fetchone()

    def state_row(self, scene_id: int):
        table = Scene.__table__
        columns = [table.c[name] for name in ("status", "show_start_at", "show_loop", "layout_version",
                                              "frames_version", "fit", "width", "height", "created_at")]
        with self.engine.connect() as connection:
            row = connection.execute(select(*columns).where(table.c.id == scene_id)).fetchone()
        if row is None:
            return None
        return (row[0], ms_of(row[1]), *row[2:8], _us_of(row[8]))


class ShowReader:
    """Everything the playback endpoints read, per process: the scene's state from the database
    on every request (the truth, one indexed row), complete builds and frame maps from the cache,
    held in process once read since they never change under their version."""

    MAX_BUILDS = 16
    MAX_FRAME_MAPS = 32
    TRACK_CACHE_BYTES = 128 * 1024 * 1024

    def __init__(self, engine, redis_factory: Callable[[], Any], connect_args: dict | None = None):
        self.engine = engine
        self._redis_factory = redis_factory
        self._cache: ShowCache | None = None
        self.reads = (_PostgresReads(engine.url, connect_args) if engine.dialect.name == "postgresql"
                      else _EngineReads(engine))
        self._states: dict[tuple, SceneState] = {}
        self._builds: dict[tuple[int, str], ShowMaps] = {}
        self._timelines: dict[tuple[int, str], Timeline] = {}
        self._frame_maps: dict[tuple[int, str, int], bytes] = {}
        self._chunks: dict[tuple[int, str, int], bytes] = {}
        self._frames_bodies: dict[tuple[int, str], bytes] = {}
        self._reasons: dict[tuple[int, str], tuple[str, str]] = {}
        self._queued: dict[tuple[int, str], float] = {}
        self._chunk_bytes = 0
        self._lock = threading.Lock()

    @property
    def cache(self) -> ShowCache:
        if self._cache is None:
            self._cache = cache_for(self._redis_factory(), self.engine.url)
        return self._cache

    def state(self, scene_id: int) -> SceneState | None:
        if not 0 < scene_id <= BIGINT_MAX:  # no such id can exist (and PostgreSQL would refuse it)
            return None
        row = self.reads.state_row(scene_id)
        if row is None:
            return None
        key = (scene_id, *row)
        state = self._states.get(key)
        if state is None:
            status, start_ms, loop, layout, frames, fit, width, height, created_us = row
            state = SceneState(scene_id, status, start_ms, bool(loop),
                               maps_version(scene_id, created_us, layout, frames, fit, width, height))
            with self._lock:
                if len(self._states) > 4096:
                    self._states.clear()
                self._states[key] = state
        return state

    def maps(self, state: SceneState) -> ShowMaps | None:
        """The complete build of the state's version, or None when it is not (yet) built."""
        key = (state.scene_id, state.version)
        maps = self._builds.get(key)
        if maps is not None:
            return maps
        meta = self._cached(lambda: _load_meta(self.cache, state.scene_id, state.version))
        if meta is None:
            return None
        index_bytes = self._cached(lambda: self.cache.get(_key(state.scene_id, state.version, "index")))
        if index_bytes is None:
            return None
        index = array("i")
        index.frombytes(index_bytes)
        if index.itemsize != 4:
            raise RuntimeError("C3S needs a 4-byte C int for the pixel index")
        import sys

        if sys.byteorder != "little":
            index.byteswap()
        timeline = Timeline.of((f["id"], f["duration_ms"]) for f in meta["frames"])
        maps = ShowMaps(state.scene_id, state.version, timeline, index, meta["pixels"], meta["rows_per_chunk"])
        self._remember(self._builds, key, maps, self.MAX_BUILDS)
        return maps

    def timeline(self, state: SceneState) -> Timeline:
        """The timeline of the state's version, built or not (frames read once per version)."""
        key = (state.scene_id, state.version)
        timeline = self._timelines.get(key)
        if timeline is None:
            rows = self.reads.query(_FRAMES_SQL, (state.scene_id,), many=True)
            timeline = Timeline.of((r[0], r[1]) for r in rows)
            self._remember(self._timelines, key, timeline, self.MAX_BUILDS)
        return timeline

    def frames_body(self, state: SceneState) -> bytes:
        """The timeline's frame list as JSON, serialised once per version."""
        key = (state.scene_id, state.version)
        body = self._frames_bodies.get(key)
        if body is None:
            body = json.dumps(self.timeline(state).frames_json(), separators=(",", ":")).encode()
            self._remember(self._frames_bodies, key, body, self.MAX_BUILDS)
        return body

    def frame_map(self, maps: ShowMaps, frame: int) -> bytes | None:
        key = (maps.scene_id, maps.version, frame)
        data = self._frame_maps.get(key)
        if data is None:
            data = self._cached(lambda: self.cache.get(_key(maps.scene_id, maps.version, f"map:{frame}")))
            if data is None:
                return None
            self._remember(self._frame_maps, key, data, self.MAX_FRAME_MAPS)
        return data

    def color(self, maps: ShowMaps, frame: int, row: int) -> bytes | None:
        """R, G, B of one pixel in one frame (3 bytes)."""
        data = self.frame_map(maps, frame)
        if data is None:
            return None
        return data[12 + 3 * row : 15 + 3 * row]

    def track(self, maps: ShowMaps, row: int) -> bytes | None:
        """One pixel's colours for every frame, R, G, B each (3 * F bytes). The chunk holding it
        is read whole once and kept (at most :data:`TRACK_CACHE_BYTES` per process): when a show
        starts every phone asks for its track within seconds."""
        width = 3 * len(maps.timeline.durations_ms)
        chunk, offset = divmod(row, maps.rows_per_chunk)
        if self.TRACK_CACHE_BYTES <= 0:  # keep nothing: one GETRANGE per track
            piece = self._cached(lambda: self.cache.getrange(
                _key(maps.scene_id, maps.version, f"tracks:{chunk}"), offset * width, (offset + 1) * width - 1))
            return piece if len(piece) == width else None
        key = (maps.scene_id, maps.version, chunk)
        data = self._chunks.get(key)
        if data is None:
            data = self._cached(lambda: self.cache.get(_key(maps.scene_id, maps.version, f"tracks:{chunk}")))
            if data is None:
                return None
            with self._lock:
                while self._chunks and self._chunk_bytes + len(data) > self.TRACK_CACHE_BYTES:
                    self._chunk_bytes -= len(self._chunks.pop(next(iter(self._chunks))))
                self._chunks[key] = data
                self._chunk_bytes += len(data)
        piece = data[offset * width : (offset + 1) * width]
        return piece if len(piece) == width else None

    def why_not_ready(self, state: SceneState) -> tuple[str, str]:
        """Why this version has no maps: ("no_frames" | "no_pixels" | "failed" | "building", message).
        Every reason but "building" holds for the version's whole life, so it is asked once: a
        stadium polling through a rebuild costs no more than polling a built show."""
        key = (state.scene_id, state.version)
        known = self._reasons.get(key)
        if known is not None:
            return known
        frames, located = self.reads.query(_CONTENT_SQL, (state.scene_id, state.scene_id))
        error = None if not (frames and located) else self._cached(
            lambda: self.cache.get(_key(state.scene_id, state.version, "error")))
        if not frames:
            reason = "no_frames", (f"scene {state.scene_id} has no frames to show: upload an image, a GIF "
                                   "or a video first")
        elif not located:
            reason = "no_pixels", f"no pixel of scene {state.scene_id} is located yet, so nothing can show"
        elif error is not None:
            reason = "failed", error.decode()
        else:
            return "building", (f"the colour maps of scene {state.scene_id} for its current layout and "
                                "frames are being built; ask again in a moment")
        self._remember(self._reasons, key, reason, 4 * self.MAX_BUILDS)
        return reason

    def pixel_status(self, scene_id: int, number: int) -> str | None:
        if not 0 <= number <= INTEGER_MAX:
            return None
        row = self.reads.query(_PIXEL_SQL, (scene_id, number))
        return None if row is None else row[0]

    def queue_build(self, state: SceneState, send: Callable[[str, int], None]) -> bool:
        """:func:`queue_build`, tried at most once a second per version by this process."""
        key, now = (state.scene_id, state.version), time.monotonic()
        if now - self._queued.get(key, -math.inf) < QUEUE_RETRY_S:
            return False
        self._remember(self._queued, key, now, 4 * self.MAX_BUILDS)
        return self._cached(lambda: queue_build(self.cache, state.scene_id, send))

    def forget(self) -> None:
        """Drop what this process holds (tests; a Redis flush)."""
        with self._lock:
            self._states.clear()
            self._builds.clear()
            self._timelines.clear()
            self._frame_maps.clear()
            self._chunks.clear()
            self._frames_bodies.clear()
            self._reasons.clear()
            self._queued.clear()
            self._chunk_bytes = 0

    def _remember(self, store: dict, key, value, limit: int) -> None:
        with self._lock:
            while len(store) >= limit:
                store.pop(next(iter(store)))
            store[key] = value

    @staticmethod
    def _cached(read):
        from redis.exceptions import ConnectionError as RedisConnectionError
        from redis.exceptions import TimeoutError as RedisTimeoutError

        try:
            return read()
        except (RedisConnectionError, RedisTimeoutError) as error:
            raise Unavailable(f"Redis does not answer: {error}") from error


def bump_frames(session: Session, scene_id: int) -> None:
    """The scene's frames changed (added, retimed, reordered, deleted): older maps must not be
    served. Called by :mod:`c3s.frames` in the same transaction as the change."""
    session.execute(update(Scene).where(Scene.id == scene_id).values(frames_version=Scene.frames_version + 1))

