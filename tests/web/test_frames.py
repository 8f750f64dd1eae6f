"""Frame upload, listing, download, reordering, retiming and deletion, with bad media refused
and nothing left behind."""

from __future__ import annotations

import io
import struct
import zlib

import numpy as np
from PIL import Image

from tests.helpers.factories import auth, make_scene, make_user, mp4_bytes, multipart


def png_bytes(color=(255, 0, 0), size=(64, 48)) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", size, color).save(buffer, format="PNG")
    return buffer.getvalue()


def gif_bytes() -> bytes:
    frames = [Image.new("RGB", (32, 32), c) for c in ((255, 0, 0), (0, 255, 0), (0, 0, 255))]
    buffer = io.BytesIO()
    frames[0].save(buffer, format="GIF", save_all=True, append_images=frames[1:], duration=[100, 200, 300], loop=0)
    return buffer.getvalue()


def bomb_png(width=100_000, height=100_000) -> bytes:
    """A valid PNG header that claims an enormous image (a decompression bomb)."""
    def chunk(kind, payload):
        return struct.pack(">I", len(payload)) + kind + payload + struct.pack(">I", zlib.crc32(kind + payload))
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(b"\0" * 100)) + chunk(b"IEND", b"")


def upload(client, token, scene_id, data, filename="f.png", **form):
    return client.post(f"/api/scenes/{scene_id}/frames", headers=auth(token),
                       **multipart(file=(data, filename), **form))


def stored_files(app) -> list:
    root = app.extensions["c3s"].config.files_path
    return [p for p in root.rglob("*") if p.is_file()] if root.exists() else []


def test_upload_list_download_and_delete(app, client, session):
    _, owner = make_user(session, "scene_admin")
    scene = make_scene(client, owner)
    first = upload(client, owner, scene["id"], png_bytes((255, 0, 0)), duration_ms="500")
    assert first.status_code == 201, first.json
    assert first.json[0]["duration_ms"] == 500 and first.json[0]["width"] == 64
    gif = upload(client, owner, scene["id"], gif_bytes(), filename="a.gif")
    assert gif.status_code == 201
    assert [f["duration_ms"] for f in gif.json] == [100, 200, 300]
    listed = client.get(f"/api/scenes/{scene['id']}/frames", headers=auth(owner)).json
    assert [f["position"] for f in listed] == [0, 1, 2, 3]
    image = client.get(listed[2]["image_url"], headers=auth(owner))
    pixels = np.asarray(Image.open(io.BytesIO(image.data)).convert("RGB"))
    assert tuple(pixels[16, 16]) == (0, 255, 0)
    files_before = len(stored_files(app))
    assert client.delete(f"/api/scenes/{scene['id']}/frames/{listed[0]['id']}", headers=auth(owner)).status_code == 204
    assert len(stored_files(app)) < files_before
    assert client.get(listed[0]["image_url"], headers=auth(owner)).status_code == 404


def test_reorder_and_retime(client, session):
    _, owner = make_user(session, "scene_admin")
    scene = make_scene(client, owner)
    ids = [f["id"] for f in upload(client, owner, scene["id"], gif_bytes(), filename="a.gif").json]
    url = f"/api/scenes/{scene['id']}/frames"
    reordered = client.put(f"{url}/order", json={"frame_ids": ids[::-1]}, headers=auth(owner))
    assert [f["id"] for f in reordered.json] == ids[::-1]
    incomplete = client.put(f"{url}/order", json={"frame_ids": ids[:2]}, headers=auth(owner))
    # Not this scene's frames: refused for what the scene holds (409); a frame twice is a bad list (422).
    assert incomplete.status_code == 409 and "every frame" in incomplete.json["message"]
    twice = client.put(f"{url}/order", json={"frame_ids": [ids[0], *ids]}, headers=auth(owner))
    assert twice.status_code == 422
    retimed = client.patch(f"{url}/{ids[0]}", json={"duration_ms": 40}, headers=auth(owner))
    assert retimed.json["duration_ms"] == 40
    assert client.patch(f"{url}/{ids[0]}", json={"duration_ms": 0}, headers=auth(owner)).status_code == 422


def test_bad_media_is_refused_and_nothing_is_stored(app, client, session):
    _, owner = make_user(session, "scene_admin")
    _, stranger = make_user(session, "scene_admin")
    scene = make_scene(client, owner)
    cases = [
        (b"just some text, not an image", "notes.txt", 415),
        (png_bytes()[:60], "cut.png", 422),
        (bomb_png(), "bomb.png", 413),
        (b"", "empty.png", 422),
    ]
    for data, name, status in cases:
        response = upload(client, owner, scene["id"], data, filename=name)
        assert response.status_code == status, (name, response.json)
        assert response.json["message"]
    # Over the request size limit: refused from the Content-Length, before anything is read.
    huge = client.post(f"/api/scenes/{scene['id']}/frames", headers=auth(owner), data=b"\0" * (9 * 1024 * 1024),
                       content_type="multipart/form-data; boundary=x")
    assert huge.status_code == 413 and "MiB" in huge.json["message"]
    assert upload(client, stranger, scene["id"], png_bytes()).status_code == 403
    assert stored_files(app) == []
    assert client.get(f"/api/scenes/{scene['id']}/frames", headers=auth(owner)).json == []


def test_a_video_is_a_job_that_reports_progress_and_appends_its_frames(app, client, session, tmp_path):
    _, owner = make_user(session, "scene_admin")
    _, other_admin = make_user(session, "scene_admin")
    scene = make_scene(client, owner)
    assert upload(client, owner, scene["id"], png_bytes()).status_code == 201
    answer = upload(client, owner, scene["id"], mp4_bytes(tmp_path / "show.mp4"), filename="show.mp4",
                    duration_ms="250")
    assert answer.status_code == 202, answer.json
    job_url = f"/api/scenes/{scene['id']}/frame-jobs/{answer.json['id']}"
    assert answer.headers["Location"].endswith(job_url)
    # The embedded default decodes in process: the job is done by the time the upload answers.
    job = client.get(job_url, headers=auth(owner)).json
    assert (job["status"], job["progress"], job["reason"]) == ("done", 1.0, None)
    listed = client.get(f"/api/scenes/{scene['id']}/frames", headers=auth(owner)).json
    assert [f["id"] for f in listed[1:]] == job["frame_ids"] and len(job["frame_ids"]) == 12
    assert {f["duration_ms"] for f in listed[1:]} == {250}
    # The frames hold the pixels: the video itself is not kept.
    assert len([f for f in stored_files(app) if f.suffix != ".json"]) == 13
    assert client.get(job_url, headers=auth(other_admin)).status_code == 403
    assert client.get(f"/api/scenes/{scene['id']}/frame-jobs/999", headers=auth(owner)).status_code == 404


def test_a_broken_video_fails_its_job_with_a_reason_and_leaves_nothing(app, client, session):
    _, owner = make_user(session, "scene_admin")
    scene = make_scene(client, owner)
    answer = upload(client, owner, scene["id"], b"\x00\x00\x00\x18ftypmp42 broken", filename="clip.mp4")
    assert answer.status_code == 202, answer.json
    job = client.get(f"/api/scenes/{scene['id']}/frame-jobs/{answer.json['id']}", headers=auth(owner)).json
    assert job["status"] == "failed" and "video cannot be opened" in job["reason"], job
    assert job["frame_ids"] == [] and stored_files(app) == []
    assert client.get(f"/api/scenes/{scene['id']}/frames", headers=auth(owner)).json == []


def test_decoding_reports_progress_as_it_goes(app, client, session, tmp_path):
    from c3s import frame_jobs
    from c3s.frames import pending_files
    from c3s.models import Scene, User

    user, owner = make_user(session, "scene_admin")
    scene = session.get(Scene, make_scene(client, owner)["id"])
    store = app.extensions["c3s"].store
    with pending_files(store) as pending:
        job = frame_jobs.create_frame_job(session, pending, session.get(User, user.id), scene,
                                          data=mp4_bytes(tmp_path / "long.mp4", frames=100),
                                          content_type="video/mp4", filename="long.mp4", duration_ms=None)
        session.commit()
    heard = []
    done = frame_jobs.run_frame_job(session, store, job.id, max_pixels=4_000_000,
                                    report=lambda job_id, fraction: heard.append((job_id, fraction)),
                                    request_build=lambda scene_id: None)
    assert done.status == "done" and len(done.frame_ids) == 100
    assert [f for _, f in heard] == sorted(f for _, f in heard) and {j for j, _ in heard} == {job.id}
    assert len(heard) >= 4 and heard[0][1] == 0.0 and 0.5 < heard[-1][1] < frame_jobs.DECODE_SHARE
