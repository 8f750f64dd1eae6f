"""An observer's upload that is not a photo or a clip is refused up front with a clear 415:
no file stored, no job queued."""

from __future__ import annotations

from sqlalchemy import func, select

from c3s.models import LocateJob
from tests.helpers.factories import auth, make_scene, make_user, multipart


def test_a_csv_uploaded_as_a_photo_is_refused_before_any_job(client, session):
    _, owner = make_user(session, "scene_admin")
    scene = make_scene(client, owner)
    csv = b"section,row,seat,x,y\nA,1,1,0.5,0.5\n"
    answer = client.post(f"/api/scenes/{scene['id']}/jobs", headers=auth(owner),
                         **multipart(file=(csv, "seats.csv")))
    assert answer.status_code == 415
    assert "seats.csv is not a photo or a video" in answer.json["message"]
    assert session.scalar(select(func.count()).select_from(LocateJob)) == 0
