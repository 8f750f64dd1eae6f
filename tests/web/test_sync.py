"""Camera-closed sync through the API on PostgreSQL and Redis: offsets a blink job recorded reach
the pixel's track (JSON and binary) and its check-in, a sync check updates them, and the scene's
staff (only) read the report."""

from __future__ import annotations

import pytest

from c3s.locate.fusion import Sighting, commit_sightings
from c3s.models import LocateJob, Pixel, Scene
from c3s.show import unpack_track
from c3s.sync import summarise
from tests.helpers.factories import auth, make_scene, make_user, multipart, png, quadrant_frame
from tests.web.test_show import add_pixels

SIZE = (100.0, 50.0)


def blink_job(session, scene_id: int, measured: dict[int, float]) -> LocateJob:
    """A finished blink job that timed these pixels (by id), recorded through the locate path."""
    scene = session.get(Scene, scene_id)
    job = LocateJob(scene_id=scene_id, method="blink", file_id=f"clip-{len(measured)}-{id(measured)}",
                    status="running")
    session.add(job)
    session.flush()
    rows = {p.id: p for p in session.query(Pixel).filter(Pixel.id.in_(measured))}
    sightings = [Sighting(pixel_id=i, x=rows[i].x, y=rows[i].y, sigma=0.05, confidence=1.0, offset_ms=off)
                 for i, off in measured.items()]
    commit_sightings(session, job, scene, sightings)
    job.stats = {"sync": summarise([s.offset_ms for s in sightings], [s.x for s in sightings],
                                   [s.y for s in sightings], SIZE)}
    job.status = "done"
    session.commit()
    return job


@pytest.fixture()
def playing(app, client, session):
    _, owner = make_user(session, "scene_admin")
    scene = make_scene(client, owner, width=SIZE[0], height=SIZE[1], fit="stretch", method="blink")
    numbers = add_pixels(session, scene["id"], [(5.0 + 10 * i, 5.0 + 10 * j) for j in range(4) for i in range(10)])
    frame = quadrant_frame([(255, 0, 0), (0, 255, 0), (0, 0, 255), (255, 255, 255)], 200, 100)
    response = client.post(f"/api/scenes/{scene['id']}/frames", headers=auth(owner),
                           **multipart(file=(png(frame), "frame.png"), duration_ms="60000"))
    assert response.status_code == 201, response.json
    client.post(f"/api/scenes/{scene['id']}/show", headers=auth(owner), json={"loop": True})
    ids = {p.number: p.id for p in session.query(Pixel).filter(Pixel.scene_id == scene["id"])}
    return {"client": client, "owner": owner, "scene": scene["id"], "numbers": numbers, "ids": ids, "app": app}


def _track(stage, number, **headers):
    stage["app"].extensions["c3s_offsets"]._tables.clear()  # as after the refresh interval
    return stage["client"].get(f"/api/scenes/{stage['scene']}/pixels/{number}/track",
                               headers={**auth(stage["owner"]), **headers})  # the scene's staff


def test_measured_offsets_reach_the_track_and_a_check_updates_them(playing, session):
    ids = playing["ids"]
    assert _track(playing, 3).json["offset_ms"] is None
    blink_job(session, playing["scene"], {ids[3]: 61.5, ids[4]: 48.0})
    body = _track(playing, 3).json
    assert body["offset_ms"] == 61.5
    binary = _track(playing, 3, Accept="application/octet-stream").data
    assert unpack_track(binary)["offset_ms"] == 61.5
    assert unpack_track(_track(playing, 5, Accept="application/octet-stream").data)["offset_ms"] is None

    # Played 61.5 ms early, the light was still 2.5 ms late: 64 ms, which agrees with 61.5.
    blink_job(session, playing["scene"], {ids[3]: 2.5})
    session.expire_all()
    assert session.get(Pixel, ids[3]).offset_ms == pytest.approx(62.75)  # their median
    assert _track(playing, 3).json["offset_ms"] == pytest.approx(62.75)


def test_the_binary_track_keeps_its_first_layout(playing, session):
    blink_job(session, playing["scene"], {playing["ids"][7]: 40.0})
    data = _track(playing, 7, Accept="application/octet-stream").data
    with_offset = unpack_track(data)
    assert with_offset["offset_ms"] == 40.0
    # Everything a reader of the first layout knew sits where it was: clear the flag, cut the
    # trailer, and the same track remains.
    first_layout = data[:5] + bytes([data[5] & ~4]) + data[6:-8]
    assert unpack_track(first_layout) == {**with_offset, "offset_ms": None}
    with pytest.raises(ValueError, match="truncated"):
        unpack_track(data[:-3])


def test_check_in_carries_the_offset(playing, session):
    user, token = make_user(session, guest=True)
    joined = playing["client"].post(f"/api/scenes/{playing['scene']}/join", headers=auth(token)).json
    assert joined["offset_ms"] is None
    pixel = session.query(Pixel).filter(Pixel.user_id == user.id).one()
    pixel.x, pixel.y, pixel.located_by, pixel.status = 50.0, 25.0, "blink", "located"
    pixel.located_at, pixel.confidence, pixel.sigma = pixel.joined_at, 1.0, 0.05
    session.commit()
    blink_job(session, playing["scene"], {pixel.id: 55.25})
    me = playing["client"].get(f"/api/scenes/{playing['scene']}/me", headers=auth(token)).json
    assert me["offset_ms"] == 55.25


def test_the_report_is_for_the_scene_staff_only(playing, session):
    client, scene, ids = playing["client"], playing["scene"], playing["ids"]
    path = f"/api/scenes/{scene}/sync"
    empty = client.get(path, headers=auth(playing["owner"])).json
    assert empty["check"] is None and empty["history"] == [] and empty["corrections"]["pixels"] == 0
    blink_job(session, scene, {ids[n]: 50.0 + n for n in range(40)})
    blink_job(session, scene, {ids[n]: (-1.0) ** n * 0.5 for n in range(40)})
    _, observer = make_user(session, ("observer", scene))
    report = client.get(path, headers=auth(observer)).json
    check = report["check"]
    assert check["phones"] == 40 and check["p95_abs_ms"] == 0.5
    assert check["pixels"]["numbers"] == list(range(40))
    assert check["pixels"]["correction_ms"][:2] == [50.0, 51.0]
    assert [h["p95_abs_ms"] for h in report["history"]] == [0.5, pytest.approx(87.05, abs=0.1)]
    assert report["corrections"]["pixels"] == 40
    assert len(check["worst_sections"]) == 3 and sum(check["histogram"]["counts"]) == 40

    _, pixel_user = make_user(session, guest=True)
    assert client.get(path, headers=auth(pixel_user)).status_code == 403
    other = make_scene(client, playing["owner"], name="Stand B")
    _, other_admin = make_user(session, ("scene_admin", other["id"]))
    assert client.get(path, headers=auth(other_admin)).status_code == 403
    assert client.get(path).status_code == 401
    assert client.get("/api/scenes/999/sync", headers=auth(playing["owner"])).status_code == 404


def test_a_job_run_again_keeps_its_first_correction(playing, session):
    from c3s.models import Observation

    ids = playing["ids"]
    blink_job(session, playing["scene"], {ids[9]: 50.0})
    check = blink_job(session, playing["scene"], {ids[9]: 4.0})  # played 50 early, 4 late still
    scene = session.get(Scene, playing["scene"])
    again = [Sighting(pixel_id=ids[9], x=95.0, y=5.0, sigma=0.05, confidence=1.0, offset_ms=4.0)]
    commit_sightings(session, check, scene, again)  # a retried task: the pixel's offset is 52 now
    session.commit()
    observation = session.query(Observation).filter(Observation.job_id == check.id).one()
    assert (observation.offset_ms, observation.correction_ms) == (4.0, 50.0)
    assert session.get(Pixel, ids[9]).offset_ms == pytest.approx(52.0)


def test_a_sync_burst_inside_the_show_reaches_every_phone(playing, session):
    client, scene, owner = playing["client"], playing["scene"], playing["owner"]
    path = f"/api/scenes/{scene}/sync/burst"
    assert client.get(f"/api/scenes/{scene}/show?frames=false").json["sync_burst"] is None
    _, observer = make_user(session, ("observer", scene))
    assert client.post(path, headers=auth(observer), json={}).status_code == 403
    assert client.post(path, headers=auth(owner), json={"duration_ms": 500}).status_code == 422
    import time

    before = time.time() * 1000
    burst = client.post(path, headers=auth(owner), json={}).json
    assert burst["duration_ms"] == 2400 and before + 14_000 <= burst["start_ms"] <= before + 16_000
    for frames in ("false", "true"):
        shown = client.get(f"/api/scenes/{scene}/show?frames={frames}").json
        assert shown["sync_burst"] == burst
    chosen = client.post(path, headers=auth(owner), json={"start_at_ms": 1.8e12, "duration_ms": 3600}).json
    assert chosen == {"start_ms": 1_800_000_000_000, "duration_ms": 3600}
    assert client.get(f"/api/scenes/{scene}/show").json["sync_burst"] == chosen

    client.delete(f"/api/scenes/{scene}/show", headers=auth(owner))
    refused = client.post(path, headers=auth(owner), json={})
    assert refused.status_code == 409 and "not playing" in refused.json["message"]


def test_tracks_pick_up_a_new_correction_after_the_refresh(playing, session, monkeypatch):
    import c3s.sync

    ids, client = playing["ids"], playing["client"]
    path = f"/api/scenes/{playing['scene']}/pixels/11/track"
    blink_job(session, playing["scene"], {ids[11]: 30.0})
    playing["app"].extensions["c3s_offsets"]._tables.clear()
    assert client.get(path, headers=auth(playing["owner"])).json["offset_ms"] == 30.0
    blink_job(session, playing["scene"], {ids[11]: 2.0})  # a sync check: 32 ms now
    assert client.get(path, headers=auth(playing["owner"])).json["offset_ms"] == 30.0  # within the refresh interval: one query saved
    monkeypatch.setattr(c3s.sync, "OFFSETS_REFRESH_S", 0.0)
    assert client.get(path, headers=auth(playing["owner"])).json["offset_ms"] == pytest.approx(31.0)  # median of 30 and 32
