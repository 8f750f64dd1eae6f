"""Keyset pages of the lists that grow with the crowd, on PostgreSQL: the seat map, the sync
report's phones, the seat conflicts and the jobs. Pages cover a list exactly once in order, a
cursor keeps its place while rows are added and removed, `next` and the `Link` header agree,
and a bad `limit` or `after` is a 422 that says what is wrong."""

from __future__ import annotations

import re
from urllib.parse import parse_qs, urlsplit

import pytest
from sqlalchemy import select

from c3s.keyset import encode_cursor
from c3s.models import LocateJob, Pixel, Seat
from tests.helpers.factories import auth, make_scene, make_user
from tests.web.test_seats import claim, grid_csv, put_map
from tests.web.test_show import add_pixels
from tests.web.test_sync import SIZE, blink_job

# Labels whose text order differs from their number order ("10" before "2"), so the pages must
# follow the database's order of the key, not a guess at it.
SECTIONS, ROWS, SEATS = ("A", "B", "C"), 12, 11


def seat_csv(sections=SECTIONS, skip=()) -> str:
    return grid_csv(sections, ROWS, SEATS, skip=skip)


def link_of(response) -> str | None:
    found = re.fullmatch(r'<([^>]+)>; rel="next"', response.headers.get("Link", ""))
    return found.group(1) if found else None


def read_pages(client, token, url):
    """Every page of a listing, following `next`; checks that `Link` says the same each time."""
    pages = []
    while url:
        response = client.get(url, headers=auth(token))
        assert response.status_code == 200, response.json
        body = response.json
        following = body.get("next") if isinstance(body, dict) else link_of(response)
        assert link_of(response) == following
        pages.append(body)
        url = following
    return pages


@pytest.fixture()
def seated(client, session):
    _, owner = make_user(session, "scene_admin")
    scene = make_scene(client, owner, method="seat", width=80.0, height=10.0)
    response = put_map(client, owner, scene["id"], seat_csv())
    assert response.status_code == 200, response.json
    return scene["id"], owner


def stored_order(session, scene_id):
    return [tuple(r) for r in session.execute(select(Seat.section, Seat.row, Seat.seat)
                                              .where(Seat.scene_id == scene_id)
                                              .order_by(Seat.section, Seat.row, Seat.seat))]


def labels(page):
    return [(s["section"], s["row"], s["seat"]) for s in page["seats"]]


def test_seat_map_pages_cover_the_map_once_in_order(client, session, seated):
    scene_id, owner = seated
    total = len(SECTIONS) * ROWS * SEATS
    pages = read_pages(client, owner, f"/api/scenes/{scene_id}/seatmap?limit=50")
    assert [len(p["seats"]) for p in pages] == [50] * (total // 50) + [total % 50]
    assert {p["count"] for p in pages} == {total}
    listed = [label for page in pages for label in labels(page)]
    assert listed == stored_order(session, scene_id) and len(set(listed)) == total
    assert ("A", "10", "1") < ("A", "2", "1") and listed.index(("A", "10", "1")) < listed.index(("A", "2", "1"))
    assert pages[-1]["next"] is None
    # Every link keeps the page size; the default page holds the whole of this small map.
    assert parse_qs(urlsplit(pages[0]["next"]).query)["limit"] == ["50"]
    whole = client.get(f"/api/scenes/{scene_id}/seatmap", headers=auth(owner))
    assert whole.json["next"] is None and "Link" not in whole.headers
    assert labels(whole.json) == listed
    seat = whole.json["seats"][0]
    assert set(seat) == {"section", "row", "seat", "x", "y", "spacing"} and seat["spacing"] == pytest.approx(0.5)


def test_a_cursor_keeps_its_place_while_the_map_changes(client, session, seated):
    scene_id, owner = seated
    first = client.get(f"/api/scenes/{scene_id}/seatmap?limit=100", headers=auth(owner)).json
    cursor_seat = labels(first)[-1]
    assert cursor_seat == stored_order(session, scene_id)[99]
    # Meanwhile the map is imported again: a section before the cursor and one after it are
    # added, and the seat the cursor points at is removed.
    response = put_map(client, owner, scene_id, seat_csv(sections=("0", *SECTIONS, "D"), skip={cursor_seat}))
    assert response.status_code == 200, response.json
    rest = read_pages(client, owner, first["next"])
    after = [label for page in rest for label in labels(page)]
    # The rest starts right after the cursor's key and holds every seat past it, new ones too,
    # and nothing the first page gave.
    assert after == [label for label in stored_order(session, scene_id) if label > cursor_seat]
    assert after[0][0] == "A" and after[-1] == ("D", "9", "9") and not set(after) & set(labels(first))
    assert {p["count"] for p in rest} == {5 * ROWS * SEATS - 1}


def test_bad_page_parameters_are_refused_with_a_reason(client, session, seated):
    scene_id, owner = seated
    path = f"/api/scenes/{scene_id}/seatmap"
    for query, field in (("limit=0", "limit"), ("limit=10001", "limit"), ("limit=ten", "limit"),
                         ("after=%%%", "after"), ("after=bm90IGpzb24", "after"), ("after=", "after"),
                         (f"after={encode_cursor('jobs', [5])}", "after"),
                         (f"after={encode_cursor('seats', ['A', '1'])}", "after"),
                         (f"after={encode_cursor('seats', ['A', '1', 2])}", "after")):
        response = client.get(f"{path}?{query}", headers=auth(owner))
        assert response.status_code == 422, query
        reasons = response.json["detail"]["query"][field]
        assert reasons and all(isinstance(r, str) and r for r in reasons), query
    other_list = client.get(f"{path}?after={encode_cursor('jobs', [5])}", headers=auth(owner)).json
    assert "not a cursor of this list" in other_list["detail"]["query"]["after"][0]
    # A cursor made by the API from a label the map no longer has is still a place in the order.
    gone = client.get(f"{path}?after={encode_cursor('seats', ['Z', '1', '1'])}", headers=auth(owner))
    assert gone.status_code == 200 and gone.json["seats"] == [] and gone.json["next"] is None


def test_reading_a_page_needs_the_same_rights_as_before(client, session, seated):
    scene_id, owner = seated
    first = client.get(f"/api/scenes/{scene_id}/seatmap?limit=10", headers=auth(owner)).json
    _, stranger = make_user(session, guest=True)
    assert client.get(first["next"], headers=auth(stranger)).status_code == 403
    assert client.get(first["next"]).status_code == 401


def test_sync_report_pages_stay_on_the_check_they_started(client, session):
    _, owner = make_user(session, "scene_admin")
    scene = make_scene(client, owner, width=SIZE[0], height=SIZE[1], fit="stretch", method="blink")["id"]
    add_pixels(session, scene, [(5.0 + 10 * i, 5.0 + 10 * j) for j in range(4) for i in range(10)])
    ids = [p.id for p in session.query(Pixel).filter(Pixel.scene_id == scene).order_by(Pixel.number)]
    job = blink_job(session, scene, {pixel: 40.0 + k for k, pixel in enumerate(ids)})
    path = f"/api/scenes/{scene}/sync"
    first = client.get(f"{path}?limit=7", headers=auth(owner))
    assert first.json["check"]["pixels"]["numbers"] == list(range(7)) and first.json["check"]["phones"] == 40
    # A newer check lands while the operator pages: the listing goes on with the first one.
    newer = blink_job(session, scene, {pixel: 1.0 for pixel in ids[:20]})
    rest = read_pages(client, owner, link_of(first))
    assert {p["check"]["job_id"] for p in rest} == {job.id}
    numbers = first.json["check"]["pixels"]["numbers"] + [n for p in rest for n in p["check"]["pixels"]["numbers"]]
    offsets = first.json["check"]["pixels"]["offset_ms"] + [o for p in rest for o in p["check"]["pixels"]["offset_ms"]]
    assert numbers == list(range(40)) and offsets == [40.0 + k for k in range(40)]
    assert [len(p["check"]["pixels"]["x"]) for p in rest] == [7, 7, 7, 7, 5]
    # A fresh first page reports the newest check; a cursor of no check of this scene is a 422.
    assert client.get(path, headers=auth(owner)).json["check"]["job_id"] == newer.id
    wrong = client.get(f"{path}?after={encode_cursor('sync', [newer.id + 100, 3])}", headers=auth(owner))
    assert wrong.status_code == 422 and "no sync check" in wrong.json["message"]


def test_seat_conflicts_come_in_pages_of_seats(client, session, seated):
    scene_id, owner = seated
    tokens = []
    for _ in range(6):
        _, token = make_user(session, guest=True)
        joined = client.post(f"/api/scenes/{scene_id}/join", headers=auth(token))
        assert joined.status_code == 201, joined.json
        tokens.append((token, joined.json["number"]))
    for k, (token, number) in enumerate(tokens):  # two claims on each of three seats
        claim(client, token, scene_id, number, "B", "3", str(1 + k // 2))
    pages = read_pages(client, owner, f"/api/scenes/{scene_id}/seat-conflicts?limit=2")
    assert [[c["label"] for c in page] for page in pages] == [["B-3-1", "B-3-2"], ["B-3-3"]]
    assert all(len(c["claims"]) == 2 for page in pages for c in page)
    assert client.get(f"/api/scenes/{scene_id}/seat-conflicts?limit=0", headers=auth(owner)).status_code == 422


def test_jobs_come_newest_first_in_pages(client, session, seated):
    scene_id, owner = seated
    for k in range(25):
        session.add(LocateJob(scene_id=scene_id, method="qr", file_id=f"photo-{k}", status="done"))
    session.commit()
    pages = read_pages(client, owner, f"/api/scenes/{scene_id}/jobs?limit=10")
    ids = [job["id"] for page in pages for job in page]
    assert [len(page) for page in pages] == [10, 10, 5] and ids == sorted(ids, reverse=True) and len(set(ids)) == 25
    assert len(client.get(f"/api/scenes/{scene_id}/jobs", headers=auth(owner)).json) == 25  # the default: 200


def test_the_openapi_document_describes_the_pages(app):
    spec = app.spec
    for path, most in (("/seatmap", 10_000), ("/sync", 10_000), ("/seat-conflicts", 2000), ("/jobs", 1000)):
        operation = spec["paths"]["/api/scenes/{scene_id}" + path]["get"]
        query = {p["name"]: p for p in operation["parameters"] if p["in"] == "query"}
        assert query["limit"]["schema"]["maximum"] == most and "after" in query, path
        assert "Link" in operation["responses"]["200"]["headers"], path
    for name in ("SeatMapPageOut", "SyncPageOut"):
        assert "next" in spec["components"]["schemas"][name]["properties"]
