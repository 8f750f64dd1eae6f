"""Reading the show per process: the scene's state from the database on every request (plain SQL,
one indexed row), complete builds and frame maps from the show cache, held in bounded LRUs once
read since they never change under their version."""

from __future__ import annotations

import logging
import math
import sys
import time
from array import array
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select

from c3s.errors import Unavailable
from c3s.models import Scene
from c3s.show.build import load_meta, queue_build
from c3s.show.cache import LRU, ShowCache, cache_for
from c3s.show.timeline import Timeline, ms_of, us_of
from c3s.show.versions import cache_key, maps_version
from c3s.show.wire import frames_body

log = logging.getLogger(__name__)

BIGINT_MAX, INTEGER_MAX = 2**63 - 1, 2**31 - 1
# A reader asks for a missing build at most this often per version (the pending flag coalesces
# across processes; this spares Redis the asking).
QUEUE_RETRY_S = 1.0


# What a reader says when the database or Redis does not answer (the cause goes to the log).
UNAVAILABLE = "the show's data is unavailable right now; try again in a moment"


@dataclass(frozen=True)
class SceneState:
    """What the scene row says about the show right now."""

    scene_id: int
    status: str
    start_ms: int | None
    loop: bool
    version: str
    burst_start_ms: int | None = None  # a sync burst: phones blink then (c3s/sync.py)
    burst_ms: int | None = None


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
              " frames_version, fit, width, height, (extract(epoch FROM created_at) * 1000000)::bigint,"
              " (extract(epoch FROM sync_burst_at) * 1000)::bigint, sync_burst_ms FROM scenes WHERE id = $1")
_FRAMES_SQL = "SELECT id, duration_ms FROM frames WHERE scene_id = %s ORDER BY position"
_PIXEL_SQL = "SELECT status FROM pixels WHERE scene_id = %s AND number = %s"
_CONTENT_SQL = ("SELECT EXISTS (SELECT 1 FROM frames WHERE scene_id = %s),"
                " EXISTS (SELECT 1 FROM pixels WHERE scene_id = %s AND status = 'located')")


class _PostgresReads:
    """Plain SQL on one psycopg2 connection per thread (autocommit, so no transaction stays
    open), the scene's state as a prepared statement: the hot path's one round trip costs no
    ORM, no pool checkout, no ping and no planning."""

    def __init__(self, url, connect_args: dict | None = None):
        from c3s.db import ThreadConnections

        self.connections = ThreadConnections(url, application_name="c3s-show", connect_args=connect_args,
                                             prepared={"c3s_scene_state": ("bigint", _STATE_SQL)})

    def query(self, sql: str, params: tuple, *, many: bool = False):
        import psycopg2

        from c3s import db

        for attempt in (1, 2):
            try:
                cursor = self.connections.cursor()
                cursor.execute(sql, params)
                return cursor.fetchall() if many else cursor.fetchone()
            except (psycopg2.OperationalError, psycopg2.InterfaceError) as error:
                # A connection dropped since the last request (database restart, failover):
                # reconnect once, then give up.
                self.connections.drop()
                if attempt == 2 or isinstance(error, db.DatabaseTimeout):  # a stalled server: no retry
                    log.warning("show read failed: the database does not answer: %s", error)
                    raise Unavailable(UNAVAILABLE) from error
        raise AssertionError("unreachable")

    def state_row(self, scene_id: int):
        return self.query("EXECUTE c3s_scene_state (%s)", (scene_id,))


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
                                              "frames_version", "fit", "width", "height", "created_at",
                                              "sync_burst_at", "sync_burst_ms")]
        with self.engine.connect() as connection:
            row = connection.execute(select(*columns).where(table.c.id == scene_id)).fetchone()
        if row is None:
            return None
        return (row[0], ms_of(row[1]), *row[2:8], us_of(row[8]), ms_of(row[9]), row[10])


class ShowReader:
    """Everything the playback endpoints read, per process: the scene's state from the database
    on every request (the truth, one indexed row), complete builds and frame maps from the cache,
    held in process once read since they never change under their version."""

    MAX_STATES = 4096
    MAX_BUILDS = 16
    MAX_FRAME_MAPS = 32
    TRACK_CACHE_BYTES = 128 * 1024 * 1024

    def __init__(self, engine, redis_factory: Callable[[], Any], connect_args: dict | None = None):
        self.engine = engine
        self._redis_factory = redis_factory
        self._cache: ShowCache | None = None
        self.reads = (_PostgresReads(engine.url, connect_args) if engine.dialect.name == "postgresql"
                      else _EngineReads(engine))
        self._states: LRU[SceneState] = LRU(self.MAX_STATES)
        self._builds: LRU[ShowMaps] = LRU(self.MAX_BUILDS)
        self._timelines: LRU[Timeline] = LRU(self.MAX_BUILDS)
        self._frame_maps: LRU[bytes] = LRU(self.MAX_FRAME_MAPS)
        self._chunks: LRU[bytes] = LRU(1 << 20, max_bytes=self.TRACK_CACHE_BYTES)
        self._frames_bodies: LRU[bytes] = LRU(self.MAX_BUILDS)
        self._reasons: LRU[tuple[str, str]] = LRU(4 * self.MAX_BUILDS)
        self._queued: LRU[float] = LRU(4 * self.MAX_BUILDS)

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
            status, start_ms, loop, layout, frames, fit, width, height, created_us, burst_ms, burst_len = row
            state = SceneState(scene_id, status, start_ms, bool(loop),
                               maps_version(scene_id, created_us, layout, frames, fit, width, height),
                               burst_ms, burst_len)
            self._states.put(key, state)
        return state

    def maps(self, state: SceneState) -> ShowMaps | None:
        """The complete build of the state's version, or None when it is not (yet) built."""
        key = (state.scene_id, state.version)
        maps = self._builds.get(key)
        if maps is not None:
            return maps
        meta = self._cached(lambda: load_meta(self.cache, state.scene_id, state.version))
        if meta is None:
            return None
        index_bytes = self._cached(lambda: self.cache.get(cache_key(state.scene_id, state.version, "index")))
        if index_bytes is None:
            return None
        index = array("i")
        index.frombytes(index_bytes)
        if index.itemsize != 4:
            raise RuntimeError("C3S needs a 4-byte C int for the pixel index")
        if sys.byteorder != "little":
            index.byteswap()
        timeline = Timeline.of((f["id"], f["duration_ms"]) for f in meta["frames"])
        maps = ShowMaps(state.scene_id, state.version, timeline, index, meta["pixels"], meta["rows_per_chunk"])
        self._builds.put(key, maps)
        return maps

    def timeline(self, state: SceneState) -> Timeline:
        """The timeline of the state's version, built or not (frames read once per version)."""
        def read() -> Timeline:
            rows = self.reads.query(_FRAMES_SQL, (state.scene_id,), many=True)
            return Timeline.of((r[0], r[1]) for r in rows)

        return self._timelines.get_or((state.scene_id, state.version), read)

    def frames_body(self, state: SceneState) -> bytes:
        """The timeline's frame list as JSON, serialised once per version."""
        return self._frames_bodies.get_or((state.scene_id, state.version),
                                          lambda: frames_body(self.timeline(state)))

    def frame_map(self, maps: ShowMaps, frame: int) -> bytes | None:
        name = cache_key(maps.scene_id, maps.version, f"map:{frame}")
        return self._frame_maps.get_or((maps.scene_id, maps.version, frame),
                                       lambda: self._cached(lambda: self.cache.get(name)))

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
        name = cache_key(maps.scene_id, maps.version, f"tracks:{chunk}")
        if self.TRACK_CACHE_BYTES <= 0:  # keep nothing: one GETRANGE per track
            piece = self._cached(lambda: self.cache.getrange(name, offset * width, (offset + 1) * width - 1))
            return piece if len(piece) == width else None
        data = self._chunks.get_or((maps.scene_id, maps.version, chunk),
                                   lambda: self._cached(lambda: self.cache.get(name)))
        if data is None:
            return None
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
            lambda: self.cache.get(cache_key(state.scene_id, state.version, "error")))
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
        self._reasons.put(key, reason)
        return reason

    def pixel_status(self, scene_id: int, number: int) -> str | None:
        if not 0 <= number <= INTEGER_MAX:
            return None
        row = self.reads.query(_PIXEL_SQL, (scene_id, number))
        return None if row is None else row[0]

    def queue_build(self, state: SceneState, send: Callable[[str, int], None]) -> bool:
        """:func:`c3s.show.build.queue_build`, tried at most once a second per version by this
        process."""
        key, now = (state.scene_id, state.version), time.monotonic()
        last = self._queued.get(key)
        if now - (-math.inf if last is None else last) < QUEUE_RETRY_S:
            return False
        self._queued.put(key, now)
        return self._cached(lambda: queue_build(self.cache, state.scene_id, send))

    def forget(self) -> None:
        """Drop what this process holds (tests; a Redis flush)."""
        for held in (self._states, self._builds, self._timelines, self._frame_maps, self._chunks,
                     self._frames_bodies, self._reasons, self._queued):
            held.clear()

    @staticmethod
    def _cached(read):
        from redis.exceptions import ConnectionError as RedisConnectionError
        from redis.exceptions import TimeoutError as RedisTimeoutError

        try:
            return read()
        except (RedisConnectionError, RedisTimeoutError) as error:
            log.warning("show read failed: Redis does not answer: %s", error)
            raise Unavailable(UNAVAILABLE) from error
