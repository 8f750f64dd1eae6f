"""Frames of a show: uploaded images, GIFs and videos become ordered frames whose images live in
the file store. Files are written first and rows second; if the rows cannot be committed the
files are removed again, so a failed upload leaves neither a half-written row nor an orphan file."""

from __future__ import annotations

import logging
from collections.abc import Iterator, Sequence
from contextlib import contextmanager

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from c3s.errors import C3SError, Conflict, Invalid, NotFound, TooLarge, UnsupportedMedia
from c3s.framestore import FrameStore
from c3s.models import Frame, LocateJob, Scene, User
from c3s.permissions import require

log = logging.getLogger(__name__)

# Positions are moved out of the way first so the (scene, position) key never collides mid-update.
REORDER_OFFSET = 1_000_000_000


class PendingFiles:
    """File ids written during one operation, deleted again unless the operation succeeds."""

    def __init__(self, store: FrameStore):
        self.store = store
        self.file_ids: list[str] = []

    def put(self, data: bytes, **kwargs) -> str:
        stored = self.store.put(data, **kwargs)
        self.file_ids.append(stored.file_id)
        return stored.file_id


@contextmanager
def pending_files(store: FrameStore) -> Iterator[PendingFiles]:
    pending = PendingFiles(store)
    try:
        yield pending
    except BaseException:
        for file_id in pending.file_ids:
            store.delete(file_id)
        raise


def media_limits(max_pixels: int):
    from c3s.vision.media import MediaLimits

    # A crowd of 100,000 phones is a few hundred pixels across: frames are stored at most 1280 px
    # on their long side, which loses nothing a crowd can show and bounds an upload's memory.
    return MediaLimits(max_frames=3600, max_pixels=max_pixels, max_total_duration_ms=30 * 60 * 1000,
                       max_fps=30.0, max_side_px=1280, max_total_bytes=1024**3)


def add_frames(session: Session, pending: PendingFiles, user: User, scene: Scene, *, data: bytes,
               content_type: str | None, filename: str, duration_ms: int | None,
               max_pixels: int, progress=None) -> list[Frame]:
    """Decode an image, GIF or video into frames appended to the scene's show.

    `duration_ms` overrides every frame's own duration (a still image has none: 1000 ms);
    `progress(fraction)` hears how far a video's decoding is."""
    require(session, user, "scene_admin", scene)
    from c3s.vision.media import MediaError, decode_media, encode_png

    try:
        decoded = decode_media(data, content_type=content_type, limits=media_limits(max_pixels),
                               progress=progress)
    except MediaError as error:
        raise _media_error(error) from None
    # Lock the scene so concurrent uploads append one after the other instead of colliding.
    session.execute(select(Scene.id).where(Scene.id == scene.id).with_for_update())
    start = session.scalar(
        select(func.coalesce(func.max(Frame.position) + 1, 0)).where(Frame.scene_id == scene.id))
    frames = []
    for offset, item in enumerate(decoded):
        file_id = pending.put(encode_png(item.image), filename=f"{filename or 'frame'}#{offset}.png",
                              content_type="image/png",
                              metadata={"scene_id": scene.id, "kind": "frame"})
        height, width = item.image.shape[:2]
        frames.append(Frame(scene_id=scene.id, position=start + offset, file_id=file_id,
                            duration_ms=duration_ms or item.duration_ms or 1000,
                            width=width, height=height))
    session.add_all(frames)
    bump_frames(session, scene.id)
    session.flush()
    return frames


def _media_error(error) -> C3SError:
    from c3s.vision.media import MediaTooLarge, UnsupportedMediaType

    if isinstance(error, MediaTooLarge):
        return TooLarge(str(error))
    if isinstance(error, UnsupportedMediaType):
        return UnsupportedMedia(str(error))
    return Invalid(str(error))


def get_frame(session: Session, scene: Scene, frame_id: int) -> Frame:
    frame = session.scalar(select(Frame).where(Frame.id == frame_id, Frame.scene_id == scene.id))
    if frame is None:
        raise NotFound(f"scene {scene.id} has no frame {frame_id}")
    return frame


def frames_of(session: Session, scene_id: int) -> Sequence[Frame]:
    """The scene's frames in show order."""
    return session.scalars(select(Frame).where(Frame.scene_id == scene_id).order_by(Frame.position)).all()


def bump_frames(session: Session, scene_id: int) -> None:
    """The scene's frames changed (added, retimed, reordered, deleted): older colour maps must not
    be served (:mod:`c3s.show.versions`). Called in the same transaction as the change."""
    session.execute(update(Scene).where(Scene.id == scene_id).values(frames_version=Scene.frames_version + 1))


def retime(session: Session, user: User, scene: Scene, frame: Frame, duration_ms: int) -> Frame:
    require(session, user, "scene_admin", scene)
    frame.duration_ms = duration_ms
    bump_frames(session, scene.id)
    session.flush()
    return frame


def reorder(session: Session, user: User, scene: Scene, frame_ids: list[int]) -> Sequence[Frame]:
    """Put the scene's frames in the given order; the list must name every frame once."""
    require(session, user, "scene_admin", scene)
    frames = {f.id: f for f in frames_of(session, scene.id)}
    if sorted(frame_ids) != sorted(frames):
        raise Conflict("the new order must list every frame of the scene exactly once",
                      detail={"frame_ids": sorted(frames)})
    session.execute(update(Frame).where(Frame.scene_id == scene.id)
                    .values(position=Frame.position + REORDER_OFFSET))
    for position, frame_id in enumerate(frame_ids):
        session.execute(update(Frame).where(Frame.id == frame_id).values(position=position))
    bump_frames(session, scene.id)
    session.expire_all()
    return frames_of(session, scene.id)


def remove(session: Session, user: User, scene: Scene, frame: Frame) -> str:
    """Delete the frame's row; returns its file id for the caller to delete after commit."""
    require(session, user, "scene_admin", scene)
    session.delete(frame)
    bump_frames(session, scene.id)
    session.flush()
    return frame.file_id


def scene_file_ids(session: Session, scene: Scene) -> list[str]:
    """Every stored file that belongs to the scene (frames and calibration uploads)."""
    frames = session.scalars(select(Frame.file_id).where(Frame.scene_id == scene.id)).all()
    jobs = session.scalars(select(LocateJob.file_id).where(LocateJob.scene_id == scene.id)).all()
    return [*frames, *jobs]


def delete_files(store: FrameStore, file_ids: Sequence[str]) -> None:
    """Remove stored files after their rows were deleted and committed. A store that fails now
    leaves the files orphaned (logged), never the committed delete reported as failed."""
    for file_id in file_ids:
        try:
            store.delete(file_id)
        except Exception as error:  # noqa: BLE001 - the rows are gone; an orphan file is harmless
            log.warning("could not delete stored file %s after its row: %s", file_id, error)
