"""Who may read what: every route of the OpenAPI document × every role, on PostgreSQL.

The operations are read from the document itself, so a new route fails here until it is given
its readers (`READS`) or writers (`WRITES`). A role outside a route's set must get 401 (no token)
or 403, with nothing but the error in the answer; a role inside it must not be refused."""

from __future__ import annotations

import io
import wave

import numpy as np
import pytest

from c3s.models import FrameJob, LocateJob, Pixel
from tests.helpers.factories import auth, make_scene, make_user, multipart, png

ROLES = ("anon", "stranger", "pixel", "neighbour", "observer", "moderator", "owner", "operator", "admin")
ALL = frozenset(ROLES)
TOKEN = ALL - {"anon"}
# The levels of c3s.permissions.READ_LEVELS: show (unplayed frames, every track), staff, member.
SHOW = frozenset({"owner", "moderator", "admin"})
STAFF = SHOW | {"observer"}
MEMBER = STAFF | {"pixel", "neighbour"}
OWN_OR_STAFF = STAFF | {"pixel"}
OWN_OR_SHOW = SHOW | {"pixel"}
SCENE_ADMIN = frozenset({"owner", "admin"})

S = "/api/scenes/{scene_id}"
P = S + "/pixels/{number}"
# GET: who may read. "pixel" is the user behind {number}; "neighbour" another pixel of the scene.
READS = {
    "/api/time": ALL, "/api/health": ALL, "/api/methods": ALL,
    "/api/scenes": TOKEN,  # answered by everyone, filtered: test_scene_list_shows_only_readable_scenes
    "/api/users/me": TOKEN,
    "/api/users/{user_id}/permissions": frozenset({"pixel", "admin"}),  # {user_id}: the pixel's user
    S: MEMBER,
    S + "/me": TOKEN,  # your own pixel (404 when you have none)
    S + "/show": ALL,  # the public timeline: frame ids and durations, no images
    S + "/jobs": STAFF, S + "/jobs/{job_id}": STAFF,
    S + "/pixels": STAFF, S + "/layout": STAFF, S + "/seat-conflicts": STAFF,
    S + "/sound/schedule.wav": STAFF,
    S + "/seatmap": MEMBER, S + "/speakers": MEMBER,
    S + "/frames": SHOW, S + "/frames/{frame_id}/image": SHOW, S + "/frames/{frame_id}/map": SHOW,
    S + "/frame-jobs/{job_id}": SHOW,
    P: OWN_OR_STAFF, P + "/pattern": OWN_OR_STAFF, P + "/code.png": OWN_OR_STAFF,
    P + "/code.svg": OWN_OR_STAFF, P + "/sound/{job_id}": OWN_OR_STAFF,
    P + "/track": OWN_OR_SHOW,  # holds colours of frames not played yet
    P + "/color": ALL,  # the colour showing now: black until the show plays
    S + "/clock": STAFF, S + "/sync": STAFF, S + "/show/phones": STAFF,
    S + "/posters/join": STAFF, S + "/posters/anchors": STAFF,
}
# Other methods: who may write. Refused roles are sent a valid request (see `_write_request`).
WRITES = {
    ("POST", "/api/users"): ALL, ("POST", "/api/tokens"): ALL, ("POST", "/api/guests"): ALL,
    ("DELETE", "/api/tokens/current"): TOKEN,
    ("POST", "/api/scenes"): frozenset({"owner", "operator", "admin"}),
    ("PATCH", S): SCENE_ADMIN, ("DELETE", S): SCENE_ADMIN,
    ("POST", S + "/join"): TOKEN, ("DELETE", S + "/join"): TOKEN,
    ("POST", S + "/jobs"): frozenset({"owner", "observer", "admin"}),
    ("POST", S + "/show"): SCENE_ADMIN, ("DELETE", S + "/show"): SCENE_ADMIN,
    ("POST", S + "/frames"): SCENE_ADMIN, ("PUT", S + "/frames/order"): SCENE_ADMIN,
    ("PATCH", S + "/frames/{frame_id}"): SCENE_ADMIN, ("DELETE", S + "/frames/{frame_id}"): SCENE_ADMIN,
    ("PUT", S + "/seatmap"): SCENE_ADMIN, ("PUT", S + "/speakers"): SCENE_ADMIN,
    ("POST", "/api/users/{user_id}/permissions"): frozenset({"admin"}),
    ("DELETE", "/api/users/{user_id}/permissions/{permission}"): frozenset({"admin"}),
    ("POST", P + "/gps"): frozenset({"pixel"}), ("POST", P + "/seat"): frozenset({"pixel"}),
    ("POST", P + "/sound"): frozenset({"pixel"}),
    ("POST", P + "/exclude"): SHOW,
    ("PUT", S + "/me/clock"): TOKEN,  # your own pixel's clock (404 when you have none)
    ("POST", S + "/sync/burst"): SCENE_ADMIN,
    ("POST", S + "/guests"): ALL,  # the one-request join from the poster: a new guest and its pixel
}


def _operations() -> list[tuple[str, str]]:
    from c3s.web import create_app

    spec = create_app({"testing": True}).spec
    return sorted((method.upper(), path) for path, ops in spec["paths"].items() for method in ops)


OPERATIONS = _operations()


def test_every_operation_has_its_readers_or_writers():
    documented = set(OPERATIONS)
    listed = {("GET", path) for path in READS} | set(WRITES)
    assert documented - listed == set(), "give these routes their readers (READS) or writers (WRITES)"
    assert listed - documented == set(), "these routes are listed here but not in the OpenAPI document"


def _wav() -> bytes:
    buffer = io.BytesIO()
    with wave.open(buffer, "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(48_000)
        out.writeframes(np.zeros(4800, dtype="<i2").tobytes())
    return buffer.getvalue()


@pytest.fixture()
def world(client, session):
    """One scene with a frame, two pixels, two jobs, and a user in every role."""
    tokens = {}
    # Guests holding the rights: the same grants as registered users, without password hashing.
    owner, tokens["owner"] = make_user(session, "scene_admin", guest=True)
    _, tokens["operator"] = make_user(session, "scene_admin", guest=True)
    scene = make_scene(client, tokens["owner"], width=10.0, height=10.0)
    make_scene(client, tokens["operator"], name="Other stand")
    sid = scene["id"]
    _, tokens["observer"] = make_user(session, ("observer", sid), guest=True)
    _, tokens["moderator"] = make_user(session, ("moderator", sid), guest=True)
    _, tokens["admin"] = make_user(session, "admin", guest=True)
    numbers = {}
    for role in ("pixel", "neighbour", "stranger"):
        tokens[role] = client.post("/api/guests", json={}).json["token"]
        if role != "stranger":
            joined = client.post(f"/api/scenes/{sid}/join", headers=auth(tokens[role]))
            numbers[role] = joined.json["number"]
    frame = client.post(f"/api/scenes/{sid}/frames", headers=auth(tokens["owner"]),
                        **multipart(file=(png(np.full((8, 8, 3), 200, np.uint8)), "f.png")))
    assert frame.status_code == 201, frame.json
    pixel = session.query(Pixel).filter_by(scene_id=sid, number=numbers["pixel"]).one()
    job = LocateJob(scene_id=sid, observer_id=owner.id, method="qr", file_id="matrix-photo")
    recording = LocateJob(scene_id=sid, method="sound", file_id="matrix-recording",
                          stats={"options": {"pixel_id": pixel.id}})
    frame_job = FrameJob(scene_id=sid, user_id=owner.id, file_id="matrix-video", status="done", progress=1.0)
    session.add_all([job, recording, frame_job])
    session.commit()
    values = {"scene_id": sid, "number": numbers["pixel"], "frame_id": frame.json[0]["id"],
              "user_id": pixel.user_id, "permission": "observer"}
    return {"client": client, "tokens": tokens, "values": values, "job": job.id, "recording": recording.id,
            "frame_job": frame_job.id}


def _url(world, path: str) -> str:
    values = dict(world["values"])
    values["job_id"] = world["recording"] if path.endswith("/sound/{job_id}") else world["job"]
    if "/frame-jobs/" in path:
        values["job_id"] = world["frame_job"]
    return path.format(**values)


def _headers(world, role: str) -> dict:
    return {} if role == "anon" else auth(world["tokens"][role])


def _refusal_problem(answer, role: str) -> str | None:
    expected = 401 if role == "anon" else 403
    if answer.status_code != expected:
        return f"answered {answer.status_code} {answer.get_data()[:160]!r}, not {expected}"
    if not answer.is_json or set(answer.json) != {"message", "detail"}:
        return f"the refusal carries more than the error: {answer.get_data()[:160]!r}"
    return None


def test_each_role_reads_only_what_it_may(world):
    """One world for every GET of the document (the list is the document's, so none is skipped)."""
    problems = []
    for path in (path for method, path in OPERATIONS if method == "GET"):
        readers = READS.get(path, frozenset())
        for role in ROLES:
            answer = world["client"].get(_url(world, path), headers=_headers(world, role))
            if role in readers:
                if answer.status_code in (401, 403):
                    problems.append(f"{role} refused GET {path}: {answer.get_data()[:160]!r}")
            elif (problem := _refusal_problem(answer, role)) is not None:
                problems.append(f"{role} GET {path} {problem}")
    assert problems == []


def _write_request(world, method: str, path: str) -> dict:
    """A request the route would carry out for a role that may write."""
    sid, frame_id = world["values"]["scene_id"], world["values"]["frame_id"]
    bodies = {
        ("POST", "/api/scenes"): {"name": "X", "method": "qr", "width": 1, "height": 1},
        ("PATCH", S): {"name": "Taken over"},
        ("POST", S + "/show"): {},
        ("PUT", S + "/frames/order"): {"frame_ids": [frame_id]},
        ("PATCH", S + "/frames/{frame_id}"): {"duration_ms": 1234},
        ("PUT", S + "/seatmap"): [{"section": "A", "row": "1", "seat": "1", "x": 1, "y": 1}],
        ("PUT", S + "/speakers"): {"speakers": [{"x": x, "y": y} for x in (0, 10) for y in (0, 10)]},
        ("POST", "/api/users/{user_id}/permissions"): {"permission": "observer", "scene_id": sid},
        ("POST", P + "/gps"): {"lat": 52.0, "lon": 13.0, "accuracy_m": 5},
        ("POST", P + "/seat"): {"section": "A", "row": "1", "seat": "1"},
        ("POST", P + "/exclude"): {"reason": "laser pointer"},
    }
    files = {
        ("POST", S + "/frames"): {"file": (png(np.zeros((8, 8, 3), np.uint8)), "f.png")},
        ("POST", S + "/jobs"): {"file": (png(np.zeros((8, 8, 3), np.uint8)), "photo.png")},
        ("POST", P + "/sound"): {"file": (_wav(), "clip.wav"), "start_ms": "1000"},
    }
    if (method, path) in files:
        return multipart(**files[(method, path)])
    if (method, path) in bodies:
        return {"json": bodies[(method, path)]}
    return {"query_string": {"scene_id": sid}} if path.endswith("{permission}") else {}


def test_roles_that_may_not_write_are_refused(world):
    """Every other method of the document, sent valid by each role that may not write."""
    problems = []
    for method, path in (op for op in OPERATIONS if op[0] != "GET"):
        for role in ROLES:
            if role in WRITES.get((method, path), ALL):
                continue
            answer = world["client"].open(_url(world, path), method=method, headers=_headers(world, role),
                                          **_write_request(world, method, path))
            if (problem := _refusal_problem(answer, role)) is not None:
                problems.append(f"{role} {method} {path} {problem}")
    assert problems == []


def test_scene_list_shows_only_readable_scenes(world):
    client, sid = world["client"], world["values"]["scene_id"]
    for role in TOKEN:
        listed = {s["id"] for s in client.get("/api/scenes", headers=_headers(world, role)).json}
        assert (sid in listed) == (role in MEMBER), role
        if role in ("admin", "operator"):
            assert len(listed) == (2 if role == "admin" else 1), role


def test_frames_are_the_pixels_once_the_show_plays(world):
    client, values, tokens = world["client"], world["values"], world["tokens"]
    frames_url = f"/api/scenes/{values['scene_id']}/frames"
    image_url = f"{frames_url}/{values['frame_id']}/image"
    # Started in the future: not played yet, so still private.
    import time

    later = client.post(f"/api/scenes/{values['scene_id']}/show", headers=auth(tokens["owner"]),
                        json={"start_at_ms": time.time() * 1000 + 600_000})
    assert later.status_code == 200, later.json
    assert client.get(image_url, headers=auth(tokens["pixel"])).status_code == 403
    now = client.post(f"/api/scenes/{values['scene_id']}/show", headers=auth(tokens["owner"]),
                      json={"start_at_ms": time.time() * 1000 - 1000})
    assert now.status_code == 200, now.json
    for role in ("pixel", "neighbour"):
        assert client.get(frames_url, headers=auth(tokens[role])).status_code == 200
        assert client.get(image_url, headers=auth(tokens[role])).mimetype == "image/png"
    for role in ("stranger", "operator"):
        assert client.get(image_url, headers=auth(tokens[role])).status_code == 403


def test_the_fast_path_serves_a_track_only_to_its_pixel(world):
    """Behind the fast path the Flask view decides: a neighbour's token is refused there too."""
    client, values, tokens = world["client"], world["values"], world["tokens"]
    url = f"/api/scenes/{values['scene_id']}/pixels/{values['number']}/track"
    own = client.get(url, headers=auth(tokens["pixel"]))
    assert own.status_code not in (401, 403)
    assert client.get(url, headers=auth(tokens["neighbour"])).status_code == 403
    assert client.get(url, headers={"Authorization": "Bearer not-a-token"}).status_code == 401
    client.delete("/api/tokens/current", headers=auth(tokens["pixel"]))
    assert client.get(url, headers=auth(tokens["pixel"])).status_code == 401


def test_every_route_documents_the_refusals_and_outages_it_can_answer():
    from c3s.web import create_app

    spec = create_app({"testing": True}).spec
    for path, operations in spec["paths"].items():
        for method, operation in operations.items():
            responses = operation["responses"]
            if (method, path) != ("get", "/api/time"):
                assert "503" in responses, (method, path)
            if operation.get("security"):
                assert {"401", "403"} <= set(responses), (method, path)
            if "{" in path:
                assert "404" in responses, (method, path)
