"""Bounded and checked inputs, on PostgreSQL (which refuses NUL in text; SQLite stores it): control
characters in stored strings, deep JSON, seat labels and seat-map size, form parts, clips too
large or too long (from their header), failure reasons without server paths."""

from __future__ import annotations

import json
import time

import cv2
import numpy as np
import pytest

from c3s.locate.blink import MAX_CLIP_S, _check_header
from c3s.locate.jobs import public_reason
from c3s.locate.mapping import LocateFailed
from c3s.positioning.seats import MAX_LABEL_CHARS, MAX_SEATS
from tests.helpers.factories import auth, make_scene, make_user, multipart, png


@pytest.fixture()
def owner_scene(client, session):
    _, owner = make_user(session, "scene_admin", "observer", guest=True)
    return owner, make_scene(client, owner)["id"]


def _image() -> bytes:
    return png(np.zeros((8, 8, 3), np.uint8))


@pytest.mark.parametrize("route", ["frames", "jobs"])
@pytest.mark.parametrize("name", ["a\x00b.png", "line\nbreak.png"])
def test_a_control_character_in_a_file_name_is_422(client, owner_scene, route, name):
    owner, scene = owner_scene
    answer = client.post(f"/api/scenes/{scene}/{route}", headers=auth(owner), **multipart(file=(_image(), name)))
    assert answer.status_code == 422, answer.get_data()
    # A line break ends the part's header, so werkzeug reads that part as a plain field: refused too.
    assert "control characters" in answer.json["message"]
    assert "file name" in answer.json["message"] or "form file" in answer.json["message"]


def test_a_nul_in_a_content_type_is_422(client, owner_scene):
    owner, scene = owner_scene
    boundary = "x1x"
    body = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"p.png\"\r\n"
            f"Content-Type: image/png\x00evil\r\n\r\n").encode() + _image() + f"\r\n--{boundary}--\r\n".encode()
    answer = client.post(f"/api/scenes/{scene}/jobs", headers=auth(owner), data=body,
                         content_type=f"multipart/form-data; boundary={boundary}")
    assert answer.status_code == 422, answer.get_data()
    assert "content type" in answer.json["message"]


def test_a_nul_in_json_or_a_query_is_422(client, owner_scene):
    owner, scene = owner_scene
    renamed = client.patch(f"/api/scenes/{scene}", headers=auth(owner), json={"name": "North\x00"})
    assert renamed.status_code == 422 and "json.name" in renamed.json["detail"]["fields"]
    assert client.get(f"/api/scenes/{scene}/show?frames=%00").status_code in (422, 200)
    listed = client.get(f"/api/scenes/{scene}/pixels?status=%00", headers=auth(owner))
    assert listed.status_code == 422 and "query status" in listed.json["detail"]["fields"]
    assert client.get(f"/api/scenes/{scene}", headers=auth(owner)).json["name"] == "Stand A"


def test_deep_json_is_a_clear_400(client, owner_scene):
    owner, scene = owner_scene
    deep = "[" * 100_000 + "]" * 100_000
    for url in (f"/api/scenes/{scene}/seatmap", f"/api/scenes/{scene}"):
        method = "PUT" if url.endswith("seatmap") else "PATCH"
        answer = client.open(url, method=method, headers=auth(owner), data=deep, content_type="application/json")
        assert answer.status_code == 400, (url, answer.get_data()[:200])
        assert "nested" in answer.json["message"]


def test_seat_labels_are_capped_and_checked(client, owner_scene):
    owner, scene = owner_scene
    long_label = "A" * 100_000
    csv = f"section,row,seat,x,y\n{long_label},1,1,1,1\nB,1,\x01,2,2\nC,1,1,3,3\n"
    answer = client.put(f"/api/scenes/{scene}/seatmap", headers=auth(owner), data=csv, content_type="text/csv")
    assert answer.status_code == 422, answer.get_data()[:300]
    errors = answer.json["detail"]["errors"]
    assert any(f"at most {MAX_LABEL_CHARS}" in e for e in errors) and any("control character" in e for e in errors)
    assert client.get(f"/api/scenes/{scene}/seatmap", headers=auth(owner)).json["count"] == 0


@pytest.mark.parametrize("fmt", ["csv", "json"])
def test_a_seat_map_past_the_cap_is_refused(client, owner_scene, fmt):
    owner, scene = owner_scene
    client.patch(f"/api/scenes/{scene}", headers=auth(owner), json={"width": 1000, "height": 1000})
    seats = [("S", str(i // 1000), str(i % 1000), round((i % 1000) * 0.9, 1), round((i // 1000) * 0.9 + 0.5, 1))
             for i in range(MAX_SEATS + 1)]
    if fmt == "csv":
        body, content_type = "section,row,seat,x,y\n" + "\n".join(",".join(map(str, s)) for s in seats), "text/csv"
    else:  # on one line, as json.dumps writes it: reading it must stay one pass over the text
        body = json.dumps([{"section": "S", "row": row, "seat": seat, "x": int(seat), "y": int(row)}
                           for _, row, seat, _, _ in seats], separators=(",", ":"))  # within the test's 8 MiB
        content_type = "application/json"
    started = time.monotonic()
    answer = client.put(f"/api/scenes/{scene}/seatmap", headers=auth(owner), data=body, content_type=content_type)
    assert answer.status_code == 422
    assert f"more than {MAX_SEATS:,} seats" in answer.json["detail"]["errors"][0]
    assert time.monotonic() - started < 30  # the JSON's line numbers once took minutes (quadratic)


def test_too_many_form_parts_say_so(client, owner_scene):
    owner, scene = owner_scene
    fields = {f"f{i}": "x" for i in range(5000)}
    answer = client.post(f"/api/scenes/{scene}/frames", headers=auth(owner), **multipart(**fields))
    assert answer.status_code == 413
    assert "too many parts" in answer.json["message"] and "MiB" not in answer.json["message"]


def _video(path, size, frames, fps):
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), fps, size)
    assert writer.isOpened()
    frame = np.zeros((size[1], size[0], 3), np.uint8)
    for _ in range(frames):
        writer.write(frame)
    writer.release()


def test_clips_too_large_or_too_long_are_refused_from_their_header(tmp_path):
    huge = tmp_path / "huge.avi"
    _video(huge, (4000, 2800), 1, 30)
    with pytest.raises(LocateFailed, match="at most 8,294,400 pixels"):
        _check_header(huge, None)
    long = tmp_path / "long.avi"
    _video(long, (16, 16), int(MAX_CLIP_S) + 5, 1)
    with pytest.raises(LocateFailed, match="at most 120 s"):
        _check_header(long, None)
    _check_header(long, 30.0)  # the same frames at 30 fps last seconds


def test_reasons_name_no_server_path():
    reason = public_reason("cannot open /tmp/c3s-blink-x81/clip.mp4 as a video; see https://x.org/a/b")
    assert "/tmp" not in reason and "the uploaded file" in reason and "https://x.org/a/b" in reason


def test_the_recording_job_refusal_speaks_of_recordings(client, session):
    _, owner = make_user(session, "scene_admin", guest=True)
    scene = make_scene(client, owner)["id"]
    pixel = client.post("/api/guests", json={}).json["token"]
    number = client.post(f"/api/scenes/{scene}/join", headers=auth(pixel)).json["number"]
    other = client.post("/api/guests", json={}).json["token"]
    refused = client.get(f"/api/scenes/{scene}/pixels/{number}/sound/1", headers=auth(other))
    assert refused.status_code == 403 and "recordings" in refused.json["message"]
