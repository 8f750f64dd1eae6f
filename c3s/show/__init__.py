"""The show: start and stop it, its timeline on the server clock, which frame shows at a given
time, and the colour maps of every frame for the current layout, built once by a task and cached
(Redis, or in process on the embedded default) under a version, so a stale map is never served.

One topic a module:

- :mod:`~c3s.show.timeline`: the server clock, the timeline, which frame shows when, start/stop.
- :mod:`~c3s.show.versions`: what names a set of colour maps, and their cache keys.
- :mod:`~c3s.show.cache`: the bytes cache (Redis or memory) and the reader's bounded LRU.
- :mod:`~c3s.show.build`: computing and caching the maps; queueing a build.
- :mod:`~c3s.show.reader`: what the playback endpoints read, per process.
- :mod:`~c3s.show.wire`: the show's JSON and the binary track.
"""

from c3s.frames import bump_frames, frames_of
from c3s.show.build import (
    BUILD_TASK,
    ERROR_TTL_S,
    MAPS_TTL_S,
    PENDING_TTL_S,
    SUPERSEDED_TTL_S,
    TRACK_CHUNK_BYTES,
    BuildResult,
    build_color_maps,
    load_meta,
    located_pixels,
    queue_build,
    request_build,
)
from c3s.show.cache import LRU, MemoryCache, RedisCache, ShowCache, cache_for
from c3s.show.reader import (
    BIGINT_MAX,
    INTEGER_MAX,
    QUEUE_RETRY_S,
    SceneState,
    ShowMaps,
    ShowReader,
    Unavailable,
)
from c3s.show.timeline import (
    DEFAULT_LEAD_MS,
    Moment,
    Timeline,
    moment_at,
    ms_of,
    now_ms,
    start_show,
    stop_show,
    timeline_of,
    us_of,
)
from c3s.show.versions import (
    KEY_PREFIX,
    bump_layout,
    cache_key,
    latest_key,
    maps_version,
    pending_key,
    scene_maps_version,
    version_order,
)
from c3s.show.wire import (
    TRACK_FORMAT,
    TRACK_MAGIC,
    color_body,
    frames_body,
    pack_track,
    show_body,
    track_body,
    unpack_track,
)

__all__ = [
    "BIGINT_MAX", "BUILD_TASK", "DEFAULT_LEAD_MS", "ERROR_TTL_S", "INTEGER_MAX", "KEY_PREFIX", "LRU",
    "MAPS_TTL_S", "PENDING_TTL_S", "QUEUE_RETRY_S", "SUPERSEDED_TTL_S", "TRACK_CHUNK_BYTES", "TRACK_FORMAT",
    "TRACK_MAGIC", "UNAVAILABLE", "BuildResult", "MemoryCache", "Moment", "RedisCache", "SceneState", "ShowCache",
    "ShowMaps", "ShowReader", "Timeline", "Unavailable", "build_color_maps", "bump_frames", "bump_layout", "located_pixels", "cache_for",
    "cache_key", "color_body", "frames_body", "frames_of", "latest_key", "load_meta", "maps_version",
    "moment_at", "ms_of", "now_ms", "pack_track", "pending_key", "queue_build", "request_build",
    "scene_maps_version", "show_body", "start_show", "stop_show", "timeline_of", "track_body",
    "unpack_track", "us_of", "version_order",
]
