"""Building a scene's colour maps: every frame's colours at every located pixel, and the
pixel-major track table, computed once per version by a task and written to the show cache
(layout in :mod:`c3s.show.versions`); queueing that build, coalesced per scene."""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from c3s.framestore import FileCorrupt, FileMissing, FrameStore
from c3s.models import Frame, Pixel, Scene
from c3s.show.cache import ShowCache, cache_for
from c3s.show.timeline import frames_of, now_ms
from c3s.show.versions import cache_key, latest_key, pending_key, scene_maps_version, version_order

log = logging.getLogger(__name__)

BUILD_TASK = "c3s.tasks.show.build_color_maps"
MAPS_TTL_S = 2 * 24 * 3600
# Phones still fetching an older version when a new one lands are told 409 then anyway; the keys
# only linger so a reader that looked the version up a moment ago can finish its read.
SUPERSEDED_TTL_S = 60
# A queued build that never started (broker restarted, worker lost) stops blocking new ones then.
PENDING_TTL_S = 120
ERROR_TTL_S = 3600
# Track table chunks stay well under Redis's 512 MB value limit and do not stall it while written.
TRACK_CHUNK_BYTES = 8 * 1024 * 1024


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
    return ([cache_key(scene_id, version, "meta"), cache_key(scene_id, version, "index")]
            + [cache_key(scene_id, version, f"map:{i}") for i in range(len(meta["frames"]))]
            + [cache_key(scene_id, version, f"tracks:{k}") for k in range(meta["chunks"])])


def load_meta(cache: ShowCache, scene_id: int, version: str) -> dict | None:
    raw = cache.get(cache_key(scene_id, version, "meta"))
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
    meta = load_meta(cache, scene_id, previous)
    if meta is None or meta.get("layout_geometry") != layout_geometry:
        return {}
    return {f["file_id"]: cache_key(scene_id, previous, f"map:{i}") for i, f in enumerate(meta["frames"])}


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


def located_pixels(session: Session, scene_id: int) -> list[tuple[int, float, float]]:
    """``(number, x, y)`` of every located pixel, in ascending number: the order of every
    colour map."""
    rows = session.execute(select(Pixel.number, Pixel.x, Pixel.y)
                           .where(Pixel.scene_id == scene_id, Pixel.status == "located")
                           .order_by(Pixel.number)).all()
    return [(r[0], r[1], r[2]) for r in rows]


def _located(session: Session, scene_id: int):
    import numpy as np

    rows = located_pixels(session, scene_id)
    numbers = np.array([r[0] for r in rows], np.int64)
    positions = np.array([(r[1], r[2]) for r in rows], np.float64).reshape(len(rows), 2)
    return numbers, positions


def _encode_build(scene_id: int, version: str, numbers, table, rows_per_chunk: int) -> Iterator[tuple[str, bytes]]:
    """Every value of one build but its meta, one at a time: maps, track chunks, number index."""
    import numpy as np

    from c3s.vision.colormap import pack_color_map

    n_frames, n_pixels = table.shape[:2]
    for i in range(n_frames):
        yield cache_key(scene_id, version, f"map:{i}"), pack_color_map(table[i])
    for k in range(-(-n_pixels // rows_per_chunk)):
        rows = table[:, k * rows_per_chunk : (k + 1) * rows_per_chunk]
        yield cache_key(scene_id, version, f"tracks:{k}"), np.ascontiguousarray(rows.transpose(1, 0, 2)).tobytes()
    index = np.full(int(numbers.max()) + 1, -1, "<i4")
    index[numbers] = np.arange(n_pixels, dtype="<i4")
    yield cache_key(scene_id, version, "index"), index.tobytes()


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
    meta = load_meta(cache, scene_id, version)
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
        cache.put_many({cache_key(scene_id, version, "error"): reason.encode()}, ERROR_TTL_S)
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
    cache.put_many({cache_key(scene_id, version, "meta"): json.dumps(meta).encode()}, MAPS_TTL_S)
    cache.delete(cache_key(scene_id, version, "error"))
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
    if previous is not None and version_order(previous) > version_order(version):
        return
    cache.put_many({latest_key(scene_id): version.encode()}, MAPS_TTL_S)
    if previous is not None:
        meta = load_meta(cache, scene_id, previous)
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


def request_build(cache: ShowCache, scene_id: int, send: Callable[[str, int], None]) -> bool:
    """:func:`queue_build` after a change is committed (a request or a task). An unreachable
    broker or Redis is logged, not raised: the data is committed, and the next poll or track
    asks again."""
    from kombu.exceptions import OperationalError as BrokerError
    from redis.exceptions import RedisError

    from c3s.errors import Unavailable

    try:
        return queue_build(cache, scene_id, send)
    except (BrokerError, RedisError, Unavailable, ConnectionError, TimeoutError) as error:
        log.warning("could not queue the colour maps of scene %s (%s); the next poll asks again",
                    scene_id, error)
        return False
