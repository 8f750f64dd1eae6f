"""`c3s bench join`: the join rush and the phones' check-in under load, served by gunicorn on the
real PostgreSQL and Redis, loaded from a separate process on 127.0.0.1, with the machinery of
:mod:`c3s.bench.http` (the same server plan, CPU pinning, closed-loop load generator and CPU
accounting of the server, the bench database's backends and Redis).

Set-up, from scratch each run: a fresh PostgreSQL database, a QR-located scene whose show is
playing (:data:`N_FRAMES` frames, colour maps built into Redis), :data:`N_PHONES` phones already
joined and located (for the check-ins) and :data:`N_BASELINE_GUESTS` guests with device tokens
who have not joined yet (for the baseline's join step), all bulk inserted with their tokens
hashed under the server's token key. Phones joining during the run are not located, so the
show's maps stay current throughout, as they do while latecomers join a playing show.

Phases:

- ``join``: ``POST /api/scenes/S/guests``, a guest and its pixel in one request (one pair).
- ``baseline_guest`` and ``baseline_join``: today's two requests, ``POST /api/guests`` and
  ``POST /api/scenes/S/join`` (through Flask and the ORM), each join with a fresh guest's
  token. A pair costs the sum of their server time, so the baseline's pairs per second are
  ``1 / (1 / guests per s + 1 / joins per s)``, and its PostgreSQL CPU per pair the sum.
- ``me``: ``GET /api/scenes/S/me`` with a joined phone's token (the fast path);
  ``me_show``: the same with ``?show=1``, the pixel page's one request per check-in;
  ``baseline_me``: the Flask and ORM view ``GET …/me`` was (token check, scene, pixel).

``stadium`` turns the figures into cores: 100,000 phones joining within 2 minutes, and all of
them checking in every :data:`CHECK_IN_S` seconds while the show plays.
"""

from __future__ import annotations

import json
import sys
import tempfile
from pathlib import Path

import click

from c3s.bench import http as machinery
from c3s.bench.api import build_maps

N_PHONES = 4096
N_FRAMES = 10
SCENE = (160.0, 90.0)
N_BASELINE_GUESTS = 20_000
STADIUM_PHONES = 100_000
RUSH_S = 120
CHECK_IN_S = 10  # the pixel page's POLL_MS (c3s/web/static/js/pixel.js)
TARGETS = {"join_pairs_per_s_per_core": 1000, "join_ratio": 8, "me_per_s_per_core": 3000,
           "rush_api_cores": 2, "rush_postgres_cores": 1}


def baseline_blueprint():
    """``GET /api/bench/orm-me/<scene_id>``: the check-in as a Flask and ORM view did it."""
    from apiflask import APIBlueprint

    from c3s import scenes
    from c3s.errors import NotFound
    from c3s.web.auth import current_user, token_auth
    from c3s.web.calibration import calibration
    from c3s.web.context import db_session

    bp = APIBlueprint("bench_join", __name__)

    @bp.get("/bench/orm-me/<int:scene_id>")
    @bp.auth_required(token_auth)
    def orm_me(scene_id: int):
        session = db_session()
        scene = scenes.get_scene(session, scene_id)
        pixel = scenes.pixel_of(session, scene, current_user())
        if pixel is None:
            raise NotFound("you have not joined this scene")
        return {"scene_id": scene.id, "number": pixel.number, "status": pixel.status,
                "excluded_reason": pixel.excluded_reason, "calibration": calibration(scene, pixel)}

    return bp


def _populate(url: str, store) -> tuple[int, list[str], list[str]]:
    """The scene and its show, the joined phones' tokens and the not-yet-joined guests' tokens."""
    import psycopg2
    from psycopg2.extras import execute_values

    from c3s.accounts import hash_token, new_token
    from c3s.bench.colormap import natural_frame, stand_positions
    from c3s.vision.media import encode_png

    key = machinery.BENCH_TOKEN_KEY.encode()
    connection = psycopg2.connect(url)
    with connection, connection.cursor() as cursor:
        cursor.execute("INSERT INTO users (email, password_hash) VALUES ('operator@bench.invalid', 'x') "
                       "RETURNING id")
        owner = cursor.fetchone()[0]
        cursor.execute("INSERT INTO scenes (name, owner_id, method_id, width, height, next_pixel_number)"
                       " SELECT 'Bench rush', %s, id, %s, %s, %s FROM methods WHERE code = 'qr' RETURNING id",
                       (owner, *SCENE, N_PHONES))
        scene_id = cursor.fetchone()[0]
        cursor.execute("INSERT INTO users (is_guest) SELECT true FROM generate_series(1, %s) RETURNING id",
                       (N_PHONES + N_BASELINE_GUESTS,))
        users = sorted(r[0] for r in cursor.fetchall())
        cursor.execute("INSERT INTO user_permissions (user_id, permission_id) SELECT u, p.id FROM unnest(%s) u,"
                       " permissions p WHERE p.name = 'pixel'", (users,))
        tokens = [new_token() for _ in users]
        # Used a moment ago, as a playing phone's token is: a check-in then writes nothing.
        execute_values(cursor, "INSERT INTO api_tokens (user_id, token_hash, kind, expires_at, last_used_at)"
                       " VALUES %s", [(u, hash_token(t, key), "device") for u, t in zip(users, tokens, strict=True)],
                       template="(%s, %s, %s, now() + interval '1 day', now())", page_size=2000)
        positions = stand_positions(N_PHONES, SCENE).clip(0, SCENE)
        execute_values(cursor, "INSERT INTO pixels (scene_id, scene_width, scene_height, user_id, number, status,"
                       " x, y, sigma, located_by, confidence, located_at) VALUES %s",
                       [(scene_id, *SCENE, u, n, float(x), float(y)) for n, (u, (x, y))
                        in enumerate(zip(users[:N_PHONES], positions, strict=True))],
                       template="(%s, %s, %s, %s, %s, 'located', %s, %s, 0.1, 'qr', 0.9, now())", page_size=2000)
        for position in range(N_FRAMES):
            stored = store.put(encode_png(natural_frame(180, 320, seed=position)), filename=f"bench-{position}.png",
                               content_type="image/png", metadata={"scene_id": scene_id, "kind": "frame"})
            cursor.execute("INSERT INTO frames (scene_id, position, duration_ms, file_id, width, height)"
                           " VALUES (%s, %s, 500, %s, 320, 180)", (scene_id, position, stored.file_id))
        cursor.execute("UPDATE scenes SET frames_version = 1, layout_version = 1, status = 'playing',"
                       " show_loop = true, show_start_at = now() WHERE id = %s", (scene_id,))
    connection.close()
    return scene_id, tokens[:N_PHONES], tokens[N_PHONES:]


def _phase_requests(scene_id: int, phones: list[str], guests: list[str]) -> dict[str, tuple[list[str], bool]]:
    """Each phase's raw HTTP/1.1 requests, and whether they must be sent once each, in order."""
    base = f"/api/scenes/{scene_id}"

    def request(method: str, path: str, token: str | None = None, body: str | None = None) -> str:
        headers = f"Authorization: Bearer {token}\r\n" if token else ""
        if body is not None:
            headers += f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n"
        return f"{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n{headers}\r\n{body or ''}"

    return {
        "join": ([request("POST", f"{base}/guests", body="{}")], False),
        "baseline_guest": ([request("POST", "/api/guests", body="{}")], False),
        "baseline_join": ([request("POST", f"{base}/join", t) for t in guests], True),
        "me": ([request("GET", f"{base}/me", t) for t in phones], False),
        "me_show": ([request("GET", f"{base}/me?show=1", t) for t in phones], False),
        "baseline_me": ([request("GET", f"/api/bench/orm-me/{scene_id}", t) for t in phones], False),
    }


def _pair(guest: dict, join: dict) -> dict:
    """Today's guest + join pair from its two measured requests (their costs add up)."""
    def added(key: str) -> float:
        return guest[key] + join[key]

    def combined(key: str) -> float:
        if not (guest[key] and join[key]):
            raise click.ClickException(f"the baseline answered no request well: {guest['statuses']}, "
                                       f"{join['statuses']}")
        return round(1 / (1 / guest[key] + 1 / join[key]), 1)

    return {"per_s_per_core": combined("per_s_per_core"), "requests_per_api_cpu_s": combined("requests_per_api_cpu_s"),
            "p50_ms": round(added("p50_ms"), 3), "p99_ms": round(added("p99_ms"), 3),
            "postgres_cpu_ms_per_1000": round(added("postgres_cpu_ms_per_1000"), 1),
            "errors": guest["errors"] + join["errors"]}


def per_core(phase: dict) -> float:
    """Requests per second of one API core: per second of the CPU time gunicorn's processes got.
    On a machine shared with other work the server's pinned core is not all its own, so
    requests per wall-clock second per pinned core (``per_s_per_core`` in ``phases``) says
    more about the neighbours than about the server."""
    return phase["requests_per_api_cpu_s"] or 0.0


def stadium(join: dict, check_in: dict) -> dict:
    """Cores for 100,000 phones joining within :data:`RUSH_S` and checking in while playing."""
    def cores(rate: float, measured: dict) -> dict:
        return {"api_cores": round(rate / per_core(measured), 2),
                "postgres_cores": round(rate * measured["postgres_cpu_ms_per_1000"] / 1e6, 2)}

    rush_rate = STADIUM_PHONES / RUSH_S
    check_in_rate = STADIUM_PHONES / CHECK_IN_S
    return {"phones": STADIUM_PHONES, "rush_s": RUSH_S, "check_in_s": CHECK_IN_S,
            "rush": {"joins_per_s": round(rush_rate, 1), **cores(rush_rate, join)},
            "check_in": {"requests_per_s": round(check_in_rate), **cores(check_in_rate, check_in)}}


def run(*, quick: bool, seconds: float | None, plan: machinery.ServerPlan | None = None) -> dict:
    import redis

    from c3s.framestore import FileSystemStore

    plan = plan or machinery.ServerPlan()
    seconds = seconds or (3.0 if quick else 8.0)
    warmup_s = 1.0 if quick else 2.0
    machine = machinery.Machine.split()
    redis_client = redis.Redis.from_url(machinery.REDIS_URL)
    redis_client.ping()
    print(f"creating the database, {N_PHONES:,} joined phones and {N_BASELINE_GUESTS:,} guests", file=sys.stderr)
    url = machinery.create_database()
    process = scene_id = None
    try:
        with tempfile.TemporaryDirectory(prefix="c3s-bench-join-") as instance:
            store = FileSystemStore(Path(instance) / "files")
            scene_id, phones, guests = _populate(url, store)
            build_maps(url, store, redis_client, scene_id)
            port = machinery.free_port()
            process = machinery.start_server(machinery.server_env(url, instance), port, machine.server_cpus,
                                              Path(instance) / "gunicorn.log", plan)
            cpu = machinery.Cpu(process.pid, url, redis_client)
            phases = {}
            for name, (requests, sequential) in _phase_requests(scene_id, phones, guests).items():
                print(f"loading {name} for {seconds:g} s", file=sys.stderr)
                phases[name] = machinery.run_phase(name, port, requests, machine.loader_cpus, cpu, seconds,
                                                    warmup_s, machine.server_cores, plan.connections,
                                                    sequential=sequential)
    finally:
        if process is not None:
            machinery.stop_server(process)
        machinery.drop_database(url)
        if scene_id is not None:
            for key in redis_client.scan_iter(f"c3s:show:{scene_id}:*", count=1000):
                redis_client.delete(key)
    return {**_result(phases), **machine.describe(plan, seconds, warmup_s, quick)}


def _result(phases: dict) -> dict:
    for name, phase in phases.items():
        if not phase["requests"] or not phase["requests_per_api_cpu_s"]:
            raise click.ClickException(f"phase {name} answered no request well: {phase['statuses']}")
    join, me = phases["join"], phases["me"]
    baseline = _pair(phases["baseline_guest"], phases["baseline_join"])
    ratio = round(per_core(join) / per_core(baseline), 1)
    arithmetic = stadium(join, phases["me_show"])
    baseline_arithmetic = stadium(baseline, phases["baseline_me"])
    errors = sum(p["errors"] for p in phases.values())
    meets = {
        "join_pairs_per_s_per_core": per_core(join) >= TARGETS["join_pairs_per_s_per_core"],
        "join_ratio": ratio >= TARGETS["join_ratio"],
        "me_per_s_per_core": per_core(me) >= TARGETS["me_per_s_per_core"],
        "rush_api_cores": arithmetic["rush"]["api_cores"] <= TARGETS["rush_api_cores"],
        "rush_postgres_cores": arithmetic["rush"]["postgres_cores"] <= TARGETS["rush_postgres_cores"],
        "errors": errors == 0,
    }
    return {
        "benchmark": "join",
        "join_pairs_per_s_per_core": per_core(join),
        "baseline_join_pairs_per_s_per_core": per_core(baseline),
        "join_ratio": ratio,
        "me_per_s_per_core": per_core(me),
        "errors": errors,
        "join_p50_ms": join["p50_ms"],
        "join_p99_ms": join["p99_ms"],
        "join_postgres_cpu_ms_per_join": round(join["postgres_cpu_ms_per_1000"] / 1000, 3),
        "baseline_join_p50_ms": baseline["p50_ms"],
        "baseline_join_p99_ms": baseline["p99_ms"],
        "baseline_postgres_cpu_ms_per_join": round(baseline["postgres_cpu_ms_per_1000"] / 1000, 3),
        "me_p50_ms": me["p50_ms"],
        "me_p99_ms": me["p99_ms"],
        "me_postgres_cpu_ms_per_1000": me["postgres_cpu_ms_per_1000"],
        "me_show_per_s_per_core": per_core(phases["me_show"]),
        "baseline_me_per_s_per_core": per_core(phases["baseline_me"]),
        "me_ratio": round(per_core(me) / per_core(phases["baseline_me"]), 1),
        "wall_clock_per_s_per_pinned_core": {"join": join["per_s_per_core"], "baseline_join": baseline["per_s_per_core"],
                                             "me": me["per_s_per_core"]},
        "stadium": arithmetic,
        "baseline_stadium": baseline_arithmetic,
        "targets": TARGETS,
        "meets_targets": meets,
        "baseline_pair": baseline,
        "phases": phases,
        "note": ("closed loop at saturation; per-core figures are requests per second of CPU time gunicorn's "
                 "processes got (wall_clock_per_s_per_pinned_core divides by wall time and the pinned cores "
                 "instead, which on a shared machine measures the neighbours, see load_average_1m); the "
                 "baseline pair adds the costs of its two requests"),
    }


@click.command("join")
@machinery.load_options
def command(as_json: bool, quick: bool, seconds: float | None, workers: int, threads: int,
            connections: int) -> None:
    """Guest + join pairs and check-ins under load (gunicorn, PostgreSQL, Redis) vs today's ORM routes.

    Needs PostgreSQL (C3S_BENCH_ADMIN_URL, default the local server) and Redis
    (C3S_BENCH_REDIS_URL); creates and drops its own database."""
    result = run(quick=quick, seconds=seconds, plan=machinery.ServerPlan("gthread", workers, threads, connections))
    if as_json:
        click.echo(json.dumps(result, indent=2))
        return
    rush = result["stadium"]["rush"]
    click.echo(
        f"join: {result['join_pairs_per_s_per_core']:,.0f} pairs/s per core, p50 {result['join_p50_ms']} ms, "
        f"p99 {result['join_p99_ms']} ms, {result['join_postgres_cpu_ms_per_join']} ms PostgreSQL CPU each; "
        f"today's two requests: {result['baseline_join_pairs_per_s_per_core']:,.0f} pairs/s per core "
        f"({result['join_ratio']}x); /me: {result['me_per_s_per_core']:,.0f}/s per core; 100,000 phones in "
        f"{RUSH_S} s: {rush['api_cores']} API cores, {rush['postgres_cores']} PostgreSQL cores; "
        f"{result['errors']} errors"
    )

