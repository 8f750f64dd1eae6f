"""Frames of a scene's show: upload, list, download, retime, reorder, delete."""

from __future__ import annotations

from apiflask import APIBlueprint
from flask import Response, jsonify, url_for
from kombu.exceptions import OperationalError as BrokerError

from c3s import frame_jobs, frames, scenes
from c3s.errors import Invalid, Unavailable
from c3s.models import Scene, as_utc, utcnow
from c3s.permissions import can_read, require_read
from c3s.tasks import send
from c3s.web.auth import current_user, token_auth
from c3s.web.context import config, db_session, services
from c3s.web.ratelimit import TOO_MANY, per_user
from c3s.web.schemas import FrameJobOut, FrameOrderIn, FrameOut, FramePatch, FrameUploadIn

bp = APIBlueprint("frames", __name__, tag="Frames")
DECODE_TASK = "c3s.tasks.show.decode_frame_video"


def _out(frame) -> dict:
    return {**{k: getattr(frame, k) for k in ("id", "position", "duration_ms", "width", "height",
                                               "created_at")},
            "image_url": url_for("frames.frame_image", scene_id=frame.scene_id, frame_id=frame.id)}


@bp.post("/scenes/<int:scene_id>/frames")
@bp.auth_required(token_auth)
@bp.input(FrameUploadIn, location="form_and_files", arg_name="form")
@bp.output(FrameOut(many=True), status_code=201, description="an image or GIF: its frames, appended")
@bp.doc(responses={
    202: {"description": "a video: the job decoding it (poll its job route, the `Location` header, until done)",
          "content": {"application/json": {"schema": FrameJobOut}},
          "headers": {"Location": {"description": "the job's route", "required": True,
                                   "schema": {"type": "string", "format": "uri-reference"}}}},
    413: "the upload or a frame is too large", 415: "not an image, GIF or video",
    422: "corrupt or unreadable media", 429: TOO_MANY})
def upload(scene_id: int, form):
    """Append frames from an image or an animated GIF (201, the frames), or from a video (202, a
    job: the show worker decodes it, see `GET /api/scenes/{scene_id}/frame-jobs/{job_id}`);
    needs `scene_admin`."""
    per_user("uploads", current_user().id, "rate_uploads_per_user", "uploads from you")
    session = db_session()
    scene = scenes.get_scene(session, scene_id)
    upload = form["file"]
    data = upload.read()
    if not data:
        raise Invalid("the uploaded file is empty")
    if frame_jobs.is_video(data, upload.mimetype):
        return _queue_video(session, scene, upload, data, form["duration_ms"])
    with frames.pending_files(services().store) as pending:
        added = frames.add_frames(session, pending, current_user(), scene, data=data,
                                  content_type=upload.mimetype, filename=upload.filename or "",
                                  duration_ms=form["duration_ms"], max_pixels=config().max_image_pixels)
        session.commit()
    services().request_build(scene.id)
    return [_out(f) for f in added]


def _require_frames_readable(scene: Scene) -> None:
    """Frames are the staff's until the show plays them; then the scene's pixels see them too."""
    session, user = db_session(), current_user()
    playing = scene.status == "playing" and scene.show_start_at is not None \
        and as_utc(scene.show_start_at) <= utcnow()
    if playing and can_read(session, user, scene, "member"):
        return
    require_read(session, user, scene, "show", to="see its frames before the show plays them")


def _queue_video(session, scene, upload, data: bytes, duration_ms):
    with frames.pending_files(services().store) as pending:
        job = frame_jobs.create_frame_job(session, pending, current_user(), scene, data=data,
                                          content_type=upload.mimetype or "",
                                          filename=upload.filename or "", duration_ms=duration_ms)
        session.commit()
    try:
        send(DECODE_TASK, job.id)  # runs here and now on the embedded default
    except BrokerError as error:
        frame_jobs.fail_unqueued(session, job, "the workers' queue did not answer; upload the video again")
        services().store.delete(job.file_id)
        raise Unavailable("the workers' queue does not answer; upload the video again shortly") from error
    session.refresh(job)
    response = jsonify(FrameJobOut().dump(job))
    response.status_code = 202
    response.headers["Location"] = url_for("frames.frame_job", scene_id=scene.id, job_id=job.id)
    return response


@bp.get("/scenes/<int:scene_id>/frame-jobs/<int:job_id>")
@bp.auth_required(token_auth)
@bp.output(FrameJobOut)
def frame_job(scene_id: int, job_id: int):
    """A frame video's decoding: status, progress (0 to 1), the reason when it failed, and the
    ids of the frames it appended once done (needs `scene_admin`)."""
    session = db_session()
    scene = scenes.get_scene(session, scene_id)
    return frame_jobs.get_frame_job(session, current_user(), scene, job_id)


@bp.get("/scenes/<int:scene_id>/frames")
@bp.auth_required(token_auth)
@bp.output(FrameOut(many=True))
def list_frames(scene_id: int):
    """The show's frames in order (the scene's staff; its pixels too once the show plays)."""
    scene = scenes.get_scene(db_session(), scene_id)
    _require_frames_readable(scene)
    return [_out(f) for f in frames.frames_of(db_session(), scene.id)]


@bp.get("/scenes/<int:scene_id>/frames/<int:frame_id>/image")
@bp.auth_required(token_auth)
@bp.doc(responses={200: {"description": "the frame as PNG", "content": {"image/png": {}}}})
def frame_image(scene_id: int, frame_id: int):
    """The frame's image (PNG; who may see it as for the frame list)."""
    scene = scenes.get_scene(db_session(), scene_id)
    _require_frames_readable(scene)
    frame = frames.get_frame(db_session(), scene, frame_id)
    return Response(services().store.get(frame.file_id), mimetype="image/png",
                    headers={"Cache-Control": "private, max-age=3600"})


@bp.patch("/scenes/<int:scene_id>/frames/<int:frame_id>")
@bp.auth_required(token_auth)
@bp.input(FramePatch, arg_name="body")
@bp.output(FrameOut)
def retime(scene_id: int, frame_id: int, body):
    """Change how long a frame is shown."""
    session = db_session()
    scene = scenes.get_scene(session, scene_id)
    frame = frames.retime(session, current_user(), scene, frames.get_frame(session, scene, frame_id),
                          body["duration_ms"])
    session.commit()
    services().request_build(scene.id)
    return _out(frame)


@bp.put("/scenes/<int:scene_id>/frames/order")
@bp.auth_required(token_auth)
@bp.input(FrameOrderIn, arg_name="body")
@bp.output(FrameOut(many=True))
@bp.doc(responses={409: "the list is not the scene's frames (`detail.frame_ids` are)"})
def reorder(scene_id: int, body):
    """Reorder the show: `frame_ids` lists every frame once, in the new order."""
    session = db_session()
    scene = scenes.get_scene(session, scene_id)
    ordered = frames.reorder(session, current_user(), scene, body["frame_ids"])
    session.commit()
    services().request_build(scene.id)
    return [_out(f) for f in ordered]


@bp.delete("/scenes/<int:scene_id>/frames/<int:frame_id>")
@bp.auth_required(token_auth)
@bp.output({}, status_code=204)
def delete(scene_id: int, frame_id: int):
    """Delete a frame and its image."""
    session = db_session()
    scene = scenes.get_scene(session, scene_id)
    file_id = frames.remove(session, current_user(), scene, frames.get_frame(session, scene, frame_id))
    session.commit()
    frames.delete_files(services().store, [file_id])
    services().request_build(scene.id)
    return ""
