"""Versions and cache keys of a scene's colour maps.

A scene's colour maps depend on its layout (which pixels are located and where:
``layout_version``, bumped by :func:`bump_layout`), its frames (``frames_version``, bumped by
every upload, retime, reorder and delete: :func:`c3s.frames.bump_frames`), how frames sit on the
scene (``fit``, width, height), and the scene itself (its id and creation time, so a scene id
that comes back after a database restore never meets another scene's maps). :func:`maps_version` names all of that, every cached key carries it,
and readers compute the current version from the scene row *on every request*
(:meth:`c3s.show.reader.ShowReader.state`), so once any of those changes is committed the older
maps are simply never asked for again. A new build is queued then (coalesced per scene) and the
endpoints answer 409 until it is done.

Cache layout, for scene ``S`` and version ``V`` (every key expires after
:data:`c3s.show.build.MAPS_TTL_S`; a superseded version after
:data:`c3s.show.build.SUPERSEDED_TTL_S`)::

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

from sqlalchemy import update
from sqlalchemy.orm import Session

from c3s.models import Scene
from c3s.show.timeline import us_of

KEY_PREFIX = "c3s:show"


def maps_version(scene_id: int, created_us: int, layout_version: int, frames_version: int,
                 fit: str, width: float, height: float) -> str:
    """The version naming one set of colour maps: ``<layout>.<frames>.<geometry digest>``;
    ``created_us`` is the scene's creation time in Unix microseconds."""
    geometry = f"{scene_id}|{int(created_us)}|{fit}|{float(width)!r}|{float(height)!r}"
    digest = hashlib.blake2s(geometry.encode(), digest_size=4).hexdigest()
    return f"{layout_version}.{frames_version}.{digest}"



def scene_maps_version(scene: Scene) -> str:
    return maps_version(scene.id, us_of(scene.created_at), scene.layout_version, scene.frames_version or 0,
                        scene.fit, scene.width, scene.height)


def version_order(version: str) -> tuple[int, int]:
    layout, frames, _ = version.split(".")
    return int(layout), int(frames)


def cache_key(scene_id: int, version: str, part: str) -> str:
    return f"{KEY_PREFIX}:{scene_id}:{version}:{part}"


def pending_key(scene_id: int) -> str:
    return f"{KEY_PREFIX}:{scene_id}:build-pending"


def latest_key(scene_id: int) -> str:
    return f"{KEY_PREFIX}:{scene_id}:latest"


def bump_layout(session: Session, scene_id: int) -> None:
    """The set or positions of shown pixels changed (located, moved, left, excluded, snapped to
    a seat): older maps must not be served. Called in the same transaction as the change."""
    session.execute(update(Scene).where(Scene.id == scene_id).values(layout_version=Scene.layout_version + 1))
