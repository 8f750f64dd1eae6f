"""Which phones hold their track for the show's current start, for the operator's live count: a
Redis set of pixel numbers per scene and start (one SADD per track fetch, about 1 MB at 100,000
phones), or a set in process memory on the embedded default."""

from __future__ import annotations

import logging
import threading

from flask import Flask

log = logging.getLogger(__name__)
TTL_S = 2 * 24 * 3600
_local: dict[str, set[int]] = {}
_local_lock = threading.Lock()


def _key(scene_id: int, start_ms: int) -> str:
    return f"c3s:tracks:{scene_id}:{start_ms}"


def record_track(app: Flask, scene_id: int, start_ms: int | None, number: int) -> None:
    """Note that pixel `number` fetched its track for the show starting at `start_ms`. A count
    that cannot be written is logged, never a reason to refuse a phone its track."""
    if start_ms is None:
        return
    key = _key(scene_id, start_ms)
    redis = app.extensions["c3s"].redis
    if redis is None:
        with _local_lock:
            _local.setdefault(key, set()).add(number)
        return
    import redis as redis_errors

    try:
        pipe = redis.pipeline(transaction=False)
        pipe.sadd(key, number)
        pipe.expire(key, TTL_S)
        pipe.execute()
    except redis_errors.RedisError as error:
        log.warning("could not count the track fetch of pixel %s in scene %s: %s", number, scene_id, error)


def tracks_fetched(app: Flask, scene_id: int, start_ms: int | None) -> int:
    if start_ms is None:
        return 0
    key = _key(scene_id, start_ms)
    redis = app.extensions["c3s"].redis
    if redis is None:
        with _local_lock:
            return len(_local.get(key, ()))
    return int(redis.scard(key))
