"""Seat maps through the API (import with line-numbered errors, atomic replacement), pixels claiming
seats (suggestions for typos, conflicts kept for the operator), and camera positions snapped to
seats by one global assignment after a locate job."""

from __future__ import annotations

import json

import cv2
import numpy as np
import pytest
from sqlalchemy import func, select, text

from c3s.locate.fusion import Sighting, commit_sightings
from c3s.locate.jobs import run_job
from c3s.locate.seat import needs_snap, snap_round
from c3s.models import LocateJob, Observation, Pixel, Scene, Seat, SeatClaim
from tests.helpers.factories import add_pixel, auth, make_scene, make_user, multipart


def grid_csv(sections=("A",), rows=4, seats=5, pitch=0.5, origin=(1.0, 1.0), skip=()) -> str:
    """A CSV map of `rows` x `seats` per section, a gap of one seat between sections; the
    (section, row, seat) labels in `skip` are left out."""
    lines = ["section,row,seat,x,y"]
    for s, section in enumerate(sections):
        for r in range(1, rows + 1):
            for n in range(1, seats + 1):
                if (section, str(r), str(n)) in skip:
                    continue
                x = origin[0] + (s * (seats + 1) + n - 1) * pitch
                lines.append(f"{section},{r},{n},{x:g},{origin[1] + (r - 1) * pitch:g}")
    return "\n".join(lines) + "\n"


def put_map(client, token, scene_id, body, content_type="text/csv"):
    return client.put(f"/api/scenes/{scene_id}/seatmap", data=body, content_type=content_type,
                      headers=auth(token))


@pytest.fixture()
def venue(client, session):
    """A seated scene with a 4 x 5 map of section A, its owner, and a pixel-joining helper."""
    _, owner = make_user(session, "scene_admin")
    scene = make_scene(client, owner, method="seat", width=20.0, height=10.0)
    response = put_map(client, owner, scene["id"], grid_csv())
    assert response.status_code == 200, response.json
    assert response.json["seats"] == 20 and response.json["added"] == 20

    def join():
        user, token = make_user(session, guest=True)
        joined = client.post(f"/api/scenes/{scene['id']}/join", headers=auth(token))
        assert joined.status_code == 201, joined.json
        return token, joined.json["number"], joined.json["calibration"]

    return scene["id"], owner, join


def claim(client, token, scene_id, number, section, row, seat):
    return client.post(f"/api/scenes/{scene_id}/pixels/{number}/seat",
                       json={"section": section, "row": row, "seat": seat}, headers=auth(token))


def test_import_get_and_atomic_replacement(client, session, venue):
    scene_id, owner, _ = venue
    seats = client.get(f"/api/scenes/{scene_id}/seatmap", headers=auth(owner)).json
    assert seats["count"] == 20
    first = next(s for s in seats["seats"] if (s["row"], s["seat"]) == ("1", "1"))
    assert (first["x"], first["y"]) == (1.0, 1.0) and first["spacing"] == pytest.approx(0.5)

    # A JSON map replaces it: seats that stay are updated, the rest removed.
    doc = {"seats": [{"section": "A", "row": 1, "seat": 1, "x": 2.0, "y": 2.0},
                     {"section": "B", "row": 1, "seat": 1, "x": 3.0, "y": 2.0}]}
    response = put_map(client, owner, scene_id, json.dumps(doc), "application/json")
    assert response.status_code == 200, response.json
    assert response.json == {"seats": 2, "added": 1, "kept": 0, "moved": 1, "removed": 19,
                             "claims_relocated": 0}

    # A malformed map, here as a multipart file, changes nothing and names every bad line.
    bad = "section,row,seat,x,y\nA,1,1,1,1\nA,1,2,one,1\nA,1,1,5,5\nA,2\n"
    response = client.put(f"/api/scenes/{scene_id}/seatmap", headers=auth(owner),
                          **multipart(file=(bad.encode(), "map.csv")))
    assert response.status_code == 422
    errors = response.json["detail"]["errors"]
    assert [e.split(":")[0] for e in errors] == ["line 3", "line 4", "line 5"]
    assert "not a number" in errors[0] and "already defined" in errors[1] and "fields" in errors[2]
    assert session.scalar(select(func.count()).select_from(Seat)) == 2

    bad_json = '{"seats": [\n {"section": "A", "row": 1, "seat": 1, "x": 1, "y": 1},\n {"section": "A"}\n]}'
    response = put_map(client, owner, scene_id, bad_json, "application/json")
    assert response.status_code == 422
    assert response.json["detail"]["errors"][0].startswith("line 3 (seat entry 2): missing row")

    outside = put_map(client, owner, scene_id, "section,row,seat,x,y\nA,1,1,25,1\n")
    assert outside.status_code == 422 and "outside" in outside.json["detail"]["errors"][0]
    assert put_map(client, owner, scene_id, "", "text/csv").status_code == 422
    assert put_map(client, owner, scene_id, "x", "image/png").status_code == 415

    _, stranger = make_user(session, "scene_admin")
    assert put_map(client, stranger, scene_id, grid_csv()).status_code == 403
    assert session.scalar(select(func.count()).select_from(Seat)) == 2


def test_claim_locates_the_pixel_at_its_seat(client, session, venue):
    scene_id, _, join = venue
    token, number, calibration = join()
    assert calibration["method"] == "seat" and calibration["seat_url"].endswith(f"/pixels/{number}/seat")
    response = claim(client, token, scene_id, number, "a", "03", " 2 ")  # normalised like the map
    assert response.status_code == 200, response.json
    body = response.json
    assert body["accepted"] and body["seat"]["label"] == "A-3-2"
    pixel = body["pixel"]
    assert pixel["status"] == "located" and pixel["located_by"] == "seat"
    assert (pixel["x"], pixel["y"]) == (1.5, 2.0) and pixel["sigma"] == pytest.approx(0.25)
    observation = session.scalar(select(Observation))
    assert observation.method == "seat" and session.get(LocateJob, observation.job_id).method == "seat"

    # The same claim again changes nothing; a corrected seat moves the pixel (no stale vote left).
    assert claim(client, token, scene_id, number, "A", "3", "2").status_code == 200
    moved = claim(client, token, scene_id, number, "A", "4", "5")
    assert moved.status_code == 200
    assert (moved.json["pixel"]["x"], moved.json["pixel"]["y"]) == (3.0, 2.5)
    assert session.scalar(select(func.count()).select_from(Observation)) == 1
    assert session.scalar(select(func.count()).select_from(LocateJob)) == 2


def test_unknown_seat_gets_suggestions(client, session, venue):
    scene_id, _, join = venue
    token, number, _ = join()
    response = claim(client, token, scene_id, number, "A", "2", "9")  # the row has seats 1..5
    assert response.status_code == 422
    suggestions = response.json["detail"]["suggestions"]
    assert suggestions[0]["label"] == "A-2-5" and {s["row"] for s in suggestions} == {"2"}
    assert "A-2-5" in response.json["message"]
    typo = claim(client, token, scene_id, number, "B", "2", "3").json["detail"]["suggestions"]
    assert typo[0]["label"] == "A-2-3"
    assert session.scalar(select(Pixel.status)) == "joined"
    empty = claim(client, token, scene_id, number, "", "2", "3")
    assert empty.status_code == 422


def test_two_claims_on_one_seat_are_a_conflict_the_operator_sees(client, session, venue):
    scene_id, owner, join = venue
    first, n1, _ = join()
    second, n2, _ = join()
    assert claim(client, first, scene_id, n1, "A", "1", "1").status_code == 200
    response = claim(client, second, scene_id, n2, "A", "1", "1")
    assert response.status_code == 409
    assert response.json["detail"]["recorded"] and response.json["detail"]["also_claimed_by"] == [n1]

    # Nothing was overwritten: the first pixel keeps its seat, the second is not located.
    pixels = {p.number: p for p in session.scalars(select(Pixel))}
    assert pixels[n1].status == "located" and (pixels[n1].x, pixels[n1].y) == (1.0, 1.0)
    assert pixels[n2].status == "joined" and pixels[n2].x is None
    claims = session.scalars(select(SeatClaim).order_by(SeatClaim.id)).all()
    assert [(c.accepted, c.conflict) for c in claims] == [(True, True), (False, True)]

    conflicts = client.get(f"/api/scenes/{scene_id}/seat-conflicts", headers=auth(owner))
    assert conflicts.status_code == 200
    [seat] = conflicts.json
    assert seat["label"] == "A-1-1"
    assert [(c["pixel_number"], c["accepted"]) for c in seat["claims"]] == [(n1, True), (n2, False)]
    assert client.get(f"/api/scenes/{scene_id}/seat-conflicts", headers=auth(second)).status_code == 403

    # The second person finds their real seat: the conflict disappears for the operator.
    assert claim(client, second, scene_id, n2, "A", "1", "2").status_code == 200
    assert client.get(f"/api/scenes/{scene_id}/seat-conflicts", headers=auth(owner)).json == []
    # Nobody claims a seat for someone else.
    assert claim(client, first, scene_id, n2, "A", "2", "2").status_code == 403


def test_reimport_moves_and_removes_claimed_seats(client, session, venue):
    scene_id, owner, join = venue
    token_a, a, _ = join()
    token_b, b, _ = join()
    assert claim(client, token_a, scene_id, a, "A", "1", "1").status_code == 200
    assert claim(client, token_b, scene_id, b, "A", "1", "2").status_code == 200
    moved = grid_csv(origin=(2.0, 1.0)).replace("\nA,1,2,", "\nA,9,9,")  # seat A-1-2 goes away
    response = put_map(client, owner, scene_id, moved)
    assert response.status_code == 200 and response.json["removed"] == 1
    assert response.json["claims_relocated"] == 2
    session.expire_all()
    pixels = {p.number: p for p in session.scalars(select(Pixel))}
    assert (pixels[a].x, pixels[a].y) == (2.0, 1.0)
    assert pixels[b].status == "joined" and pixels[b].x is None
    assert session.scalar(select(func.count()).select_from(SeatClaim)) == 1


def _grid_scene(client, session, cols=20, rows=10, pitch=0.5):
    _, owner = make_user(session, "scene_admin")
    scene = make_scene(client, owner, method="qr", width=cols * pitch + 1, height=rows * pitch + 1)
    csv = "section,row,seat,x,y\n" + "".join(
        f"S,{r},{c},{0.5 + c * pitch:g},{0.5 + r * pitch:g}\n" for r in range(rows) for c in range(cols))
    assert put_map(client, owner, scene["id"], csv).status_code == 200
    return scene["id"], owner


def test_noisy_camera_positions_snap_to_the_right_seats(app, client, session):
    """Two hundred pixels seen by the camera with sigma = 0.2 seat pitch, one claimed by seat; the
    QR job's hook assigns all of them at once."""
    scene_id, owner = _grid_scene(client, session)
    scene = session.get(Scene, scene_id)
    seats = {(s.row, s.seat): s for s in session.scalars(select(Seat))}
    rng = np.random.default_rng(3)
    truth, sightings = {}, []
    for number, seat in enumerate(seats.values()):
        pixel = add_pixel(session, scene_id, number, size=(scene.width, scene.height))
        truth[pixel.id] = seat
        x, y = np.array([seat.x, seat.y]) + rng.normal(0, 0.1, 2)  # 0.2 x the 0.5 pitch
        sightings.append(Sighting(pixel_id=pixel.id, x=float(x), y=float(y), sigma=0.1, confidence=1.0))
    photo = LocateJob(scene_id=scene_id, method="qr", file_id="earlier-photo", status="done")
    session.add(photo)
    session.flush()
    commit_sightings(session, photo, scene, sightings)
    session.commit()

    # A later photo that shows no codes still runs the hook over every located camera pixel.
    with app.app_context():
        store = app.extensions["c3s"].store
        ok, blank = cv2.imencode(".jpg", np.full((200, 200, 3), 90, np.uint8))
        file_id = store.put(blank.tobytes(), filename="blank.jpg", content_type="image/jpeg").file_id
    job = LocateJob(scene_id=scene_id, method="qr", file_id=file_id, content_type="image/jpeg")
    session.add(job)
    session.commit()
    with app.app_context():  # as in the worker, whose tasks run inside the app context
        finished = run_job(session, store, job.id, max_pixels=4_000_000,
                           request_build=app.extensions["c3s"].request_build)
    assert finished.status == "done", finished.reason
    assert finished.stats["snap_pixels"] == len(truth)

    session.expire_all()
    pixels = session.scalars(select(Pixel)).all()
    right = [p.seat_id == truth[p.id].id for p in pixels]
    assert np.mean(right) >= 0.99
    confident = [p for p in pixels if p.seat_confidence >= 0.9]
    assert len(confident) >= 0.9 * len(pixels)
    assert all((p.x, p.y) == (truth[p.id].x, truth[p.id].y) for p in confident if p.seat_id == truth[p.id].id)
    assert all(p.located_by == "qr" and p.status == "located" for p in pixels)
    assert finished.stats["snap_free_seats"] == len(seats)


def test_snap_leaves_claimed_seats_to_their_claimants(client, session):
    scene_id, _ = _grid_scene(client, session, cols=4, rows=1)
    scene = session.get(Scene, scene_id)
    seats = session.scalars(select(Seat).order_by(Seat.x)).all()
    pixels = [add_pixel(session, scene_id, number, size=(scene.width, scene.height)) for number in range(2)]
    # Pixel 0 sits in seat 0 by its own claim; pixel 1 is seen by the camera right between
    # seats 0 and 1, leaning to seat 0.
    session.add(SeatClaim(seat_id=seats[0].id, pixel_id=pixels[0].id, accepted=True))
    job = LocateJob(scene_id=scene_id, method="qr", file_id="photo", status="done")
    session.add(job)
    session.flush()
    middle = (seats[0].x + seats[1].x) / 2 - 0.05
    commit_sightings(session, job, scene, [Sighting(pixels[1].id, middle, seats[0].y, 0.1, 1.0)])
    stats = snap_round(session, scene)
    assert stats["snap_pixels"] == 1 and stats["snap_free_seats"] == 3
    session.expire_all()
    assert session.get(Pixel, pixels[1].id).seat_id == seats[1].id
    assert needs_snap(session, scene, "qr") and not needs_snap(session, scene, "gps")


def test_a_calibration_round_of_camera_jobs_is_snapped_once(app, client, session, monkeypatch):
    """Jobs finishing while a snap is queued ask for none of their own; the one snap covers them
    all and puts its counts on each; a job after the snap started asks for the next round's."""
    from c3s.tasks.locate import request_snap, snap_seats

    scene_id, _ = _grid_scene(client, session, cols=4, rows=1)
    scene = session.get(Scene, scene_id)
    user, _ = make_user(session, guest=True)
    pixel = Pixel(scene_id=scene_id, scene_width=scene.width, scene_height=scene.height, user_id=user.id, number=0)
    session.add(pixel)
    session.flush()
    jobs = [LocateJob(scene_id=scene_id, method="qr", file_id=f"photo-{i}", status="done", stats={"snap": "queued"})
            for i in range(5)]
    session.add_all(jobs)
    session.flush()
    commit_sightings(session, jobs[0], scene, [Sighting(pixel.id, 0.3, 0.3, 0.1, 1.0)])
    session.commit()
    sent = []
    monkeypatch.setattr(app.extensions["c3s"], "send", lambda name, *args: sent.append((name, *args)))
    with app.app_context():
        asked = [request_snap(scene_id) for _ in jobs]
        assert asked == [True, False, False, False, False] and sent == [("c3s.tasks.locate.snap_seats", scene_id)]
        counts = snap_seats.run(scene_id)
        assert counts["snap_pixels"] == 1
        assert ("c3s.tasks.show.build_color_maps", scene_id) in sent  # the snap moved pixels
        assert request_snap(scene_id) is True  # the next round
        assert [s for s in sent if s[0] == "c3s.tasks.locate.snap_seats"] == [("c3s.tasks.locate.snap_seats", scene_id)] * 2
    session.expire_all()
    assert all(session.get(LocateJob, j.id).stats["snap"] == "done" for j in jobs)
    assert all(session.get(LocateJob, j.id).stats["snap_pixels"] == 1 for j in jobs)


def test_a_large_import_updates_the_planner_statistics(client, session, venue):
    """Autovacuum may be off or minutes away: planned for the old map's size, a page of a stadium's
    new map would sort the whole scene."""
    scene_id, owner, _ = venue
    session.execute(text("ANALYZE seats"))  # the 20-seat map
    session.commit()
    client.patch(f"/api/scenes/{scene_id}", headers=auth(owner), json={"width": 200.0, "height": 100.0})
    answer = put_map(client, owner, scene_id, grid_csv(sections=("A", "B", "C"), rows=20, seats=50))
    assert answer.status_code == 200 and answer.json["added"] == 3_000 - 20, answer.json
    estimate = session.scalar(text("SELECT reltuples FROM pg_class WHERE oid = 'seats'::regclass"))
    assert estimate >= 2_900


def test_a_one_seat_map_in_a_subnormal_scene_gets_a_positive_spacing(client, session):
    """1 % of a scene 5e-324 wide rounds to 0, which the seats' spacing check refuses."""
    _, owner = make_user(session, "scene_admin")
    scene = make_scene(client, owner, method="seat", width=5e-324, height=5e-324)
    response = put_map(client, owner, scene["id"], "section,row,seat,x,y\nA,1,1,0,0\n")
    assert response.status_code == 200, response.json
    spacing = session.scalar(select(Seat.spacing).where(Seat.scene_id == scene["id"]))
    assert spacing > 0
