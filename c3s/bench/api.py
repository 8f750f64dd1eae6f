"""`c3s bench api`: the show's poll and track endpoints under load, served by gunicorn on the real
PostgreSQL and Redis, loaded from a separate process on 127.0.0.1.

Set-up, each run from scratch: a fresh PostgreSQL database (created here, dropped at the end), a
160 x 90 m stand with 100,000 located phones (bulk inserted), 60 frames of 960 x 540 (10 distinct
pictures) in a filesystem frame store, colour maps built into Redis by
:func:`c3s.show.build_color_maps`, a looping show started.

The server is gunicorn (``gthread``, 2 workers x 4 threads) pinned to its own CPU cores (half the
machine's, at least one); the load generator, a small raw-socket HTTP/1.1 keep-alive client in
another process (:mod:`c3s.bench.http` run as a script), is pinned to the others. It keeps a
fixed number of connections each with one request in flight (closed loop, so throughput is the server's at
saturation and latency includes queueing), asks random located pixels, and measures for a
bounded time after a warm-up. PostgreSQL and Redis are not pinned; their CPU time per request is
reported beside the server's.

Phases: ``poll`` (GET .../color), ``track`` (GET .../track, JSON), ``track_binary`` (the same with
``Accept: application/octet-stream``), ``show`` (GET .../show, the timeline every phone checks
now and then), ``clock`` (GET /api/time), ``me`` (GET .../me with a device token, the page's
other check-in, not part of the show's code) and ``baseline``, a plain APIFlask route doing what a
straightforward poll would: ORM reads of the scene, the pixel and the frames per request, then
the colour from Redis. ``polls_per_s_per_core`` is poll requests per second divided by the
server's cores.
"""

from __future__ import annotations

import json
import random
import sys
import uuid
from pathlib import Path

import click

from c3s.bench.http import (
    BENCH_TOKEN_KEY,
    REDIS_URL,
    Cpu,
    Machine,
    ServerPlan,
    create_database,
    drop_database,
    free_port,
    load_options,
    run_phase,
    server_env,
    start_server,
    stop_server,
)

N_PIXELS = 100_000
N_FRAMES = 60
FRAME_MS = 500
FRAME_SIZE = (960, 540)
SCENE = (160.0, 90.0)
TARGET_POLLS_PER_S_PER_CORE = 3000
TARGET_P99_MS = 25.0
N_TOKENS = 4096


# ------------------------------------------------------------------------------ set-up


def _populate(url: str, store) -> tuple[int, list[str]]:
    """The stand, its 100,000 located phones and the frames; returns the scene id and device
    tokens of the first :data:`N_TOKENS` phones (numbers 0, 1, ...)."""
    import io

    import psycopg2

    from c3s.accounts import hash_token
    from c3s.bench.colormap import natural_frame, stand_positions
    from c3s.vision.media import encode_png

    positions = stand_positions(N_PIXELS, SCENE)
    connection = psycopg2.connect(url)
    with connection, connection.cursor() as cursor:
        cursor.execute("INSERT INTO users (email, password_hash) VALUES ('operator@bench.invalid', 'x') "
                       "RETURNING id")
        owner = cursor.fetchone()[0]
        cursor.execute("INSERT INTO scenes (name, owner_id, method_id, width, height, fit, next_pixel_number)"
                       " SELECT 'Bench stand', %s, id, %s, %s, 'contain', %s FROM methods WHERE code = 'qr'"
                       " RETURNING id", (owner, *SCENE, N_PIXELS))
        scene_id = cursor.fetchone()[0]
        cursor.execute("INSERT INTO users (is_guest) SELECT true FROM generate_series(1, %s) RETURNING id",
                       (N_PIXELS,))
        users = sorted(r[0] for r in cursor.fetchall())
        rows = io.StringIO()
        for number, (user, (x, y)) in enumerate(zip(users, positions, strict=True)):
            rows.write(f"{scene_id}\t{SCENE[0]}\t{SCENE[1]}\t{user}\t{number}\tlocated\t"
                       f"{float(min(max(x, 0), SCENE[0]))!r}\t{float(min(max(y, 0), SCENE[1]))!r}\t0.1\tqr\t0.9\tnow\n")
        rows.seek(0)
        cursor.copy_expert("COPY pixels (scene_id, scene_width, scene_height, user_id, number, status, x, y,"
                           " sigma, located_by, confidence, located_at) FROM STDIN", rows)
        pictures = [encode_png(natural_frame(FRAME_SIZE[1], FRAME_SIZE[0], seed=s)) for s in range(10)]
        for position in range(N_FRAMES):
            stored = store.put(pictures[position % len(pictures)], filename=f"bench-{position}.png",
                               content_type="image/png", metadata={"scene_id": scene_id, "kind": "frame"})
            cursor.execute("INSERT INTO frames (scene_id, position, duration_ms, file_id, width, height)"
                           " VALUES (%s, %s, %s, %s, %s, %s)",
                           (scene_id, position, FRAME_MS, stored.file_id, *FRAME_SIZE))
        tokens = [f"bench-{uuid.uuid4().hex}" for _ in range(N_TOKENS)]
        cursor.executemany("INSERT INTO api_tokens (user_id, token_hash, kind, expires_at, last_used_at)"
                           " VALUES (%s, %s, 'device', now() + interval '1 day', now())",
                           [(users[i], hash_token(t, BENCH_TOKEN_KEY.encode())) for i, t in enumerate(tokens)])
        cursor.execute("UPDATE scenes SET frames_version = frames_version + 1, layout_version = 1,"
                       " status = 'playing', show_loop = true, show_start_at = now() WHERE id = %s",
                       (scene_id,))
    connection.close()
    return scene_id, tokens


def build_maps(url: str, store, redis_client, scene_id: int):
    from sqlalchemy.orm import Session

    from c3s.db import make_engine
    from c3s.show import build_color_maps

    engine = make_engine(url)
    with Session(engine) as session:
        result = build_color_maps(session, store, redis_client, scene_id)
    engine.dispose()
    if result.status != "built":
        raise click.ClickException(f"the colour maps were not built: {result}")
    return result


# ------------------------------------------------------------------------------ the server


def bench_app():
    """The C3S app plus the baseline routes of `c3s bench api` and `c3s bench join` (gunicorn:
    ``c3s.bench.api:bench_app()``)."""
    from apiflask import APIBlueprint
    from flask import current_app
    from sqlalchemy import select

    from c3s.models import Pixel, Scene
    from c3s.show import Timeline, moment_at, ms_of, now_ms, scene_maps_version, timeline_of
    from c3s.web import create_app
    from c3s.web.context import db_session, services

    app = create_app()
    bp = APIBlueprint("bench", __name__)

    @bp.get("/bench/naive-color/<int:scene_id>/<int:number>")
    def naive_color(scene_id: int, number: int):
        """A straightforward poll: ORM reads per request, then one Redis read for the colour."""
        session = db_session()
        scene = session.get(Scene, scene_id)
        pixel = session.scalar(select(Pixel).where(Pixel.scene_id == scene_id, Pixel.number == number))
        if scene is None or pixel is None or pixel.status != "located":
            return {"message": "no such pixel", "detail": {}}, 404
        timeline: Timeline = timeline_of(session, scene_id)
        moment = moment_at(timeline, scene.status, ms_of(scene.show_start_at), scene.show_loop, now_ms())
        redis = services().redis
        prefix = f"c3s:show:{scene_id}:{scene_maps_version(scene)}"
        row = int.from_bytes(redis.getrange(f"{prefix}:index", 4 * number, 4 * number + 3), "little", signed=True)
        rgb = redis.getrange(f"{prefix}:map:{max(moment.frame, 0)}", 12 + 3 * row, 14 + 3 * row)
        current_app.logger.debug("naive poll of %s", number)
        return {"color": "#" + rgb.hex(), "frame": moment.frame, "until_ms": moment.until_ms,
                "status": moment.phase}

    app.register_blueprint(bp, url_prefix="/api")
    from c3s.bench.join import baseline_blueprint

    app.register_blueprint(baseline_blueprint(), url_prefix="/api")
    return app


# ------------------------------------------------------------------------------ the stadium

STADIUM_PHONES = 100_000
SHOW_S = 180
CHECK_IN_S = 8  # the pixel page's GET .../show and GET .../me (c3s/web/static/js/pixel.js POLL_MS)
# c3s/web/static/js/clock.js: round trips on joining (the median on the stadium profile of
# `c3s bench clock`; 6 on a LAN), then a short re-sync every minute.
CLOCK_JOIN_SAMPLES, CLOCK_RESYNC_SAMPLES, CLOCK_RESYNC_S = 35, 4, 60
BROWSER_REQUEST_BYTES = 500  # what a phone browser's GET carries (headers), assumed
TRACK_JSON_BYTES_PER_FRAME, TRACK_BINARY_BYTES_PER_FRAME = 14, 7  # '"#rrggbb",' + '500,'; 3 + 4
SHOW_JSON_BYTES_PER_FRAME = 30  # '{"id":123,"duration_ms":500},'


def stadium(phases: dict) -> dict:
    """Requests, bytes and cores for 100,000 phones and one 3-minute show, from the measured
    figures: a slideshow (a new frame every 500 ms) and an animation (30 frames per second)."""
    def cores(rate: float, phase: str) -> dict:
        measured = phases[phase]
        return {"api_cores": round(rate / measured["per_s_per_core"], 1),
                "postgres_cores": round(rate * measured["postgres_cpu_ms_per_1000"] / 1e6, 2)}

    def mb(n: float) -> float:
        return round(n / 1e6, 1)

    clock_rate = STADIUM_PHONES * CLOCK_RESYNC_SAMPLES / CLOCK_RESYNC_S
    clock_requests = STADIUM_PHONES * (CLOCK_JOIN_SAMPLES + CLOCK_RESYNC_SAMPLES * (SHOW_S // CLOCK_RESYNC_S))
    check_in_rate = STADIUM_PHONES / CHECK_IN_S
    common = {
        "clock": {"requests": clock_requests, "per_s": round(clock_rate), **cores(clock_rate, "clock"),
                  "mb_out": mb(clock_requests * phases["clock"]["response_bytes"])},
        "check_in_show_light": {"requests": round(check_in_rate * SHOW_S), "per_s": round(check_in_rate),
                                **cores(check_in_rate, "show_light"),
                                "mb_out": mb(check_in_rate * SHOW_S * phases["show_light"]["response_bytes"])},
        "check_in_me": {"requests": round(check_in_rate * SHOW_S), "per_s": round(check_in_rate),
                        **cores(check_in_rate, "me"),
                        "mb_out": mb(check_in_rate * SHOW_S * phases["me"]["response_bytes"])},
    }
    shows = {}
    for name, frame_ms in (("slideshow_500ms", 500), ("animation_30fps", 1000 / 30)):
        frames = round(SHOW_S * 1000 / frame_ms)
        extra = frames - N_FRAMES
        show_bytes = phases["show"]["response_bytes"] + SHOW_JSON_BYTES_PER_FRAME * extra
        poll_rate = STADIUM_PHONES * 1000 / frame_ms  # one poll per frame change per phone
        polls = poll_rate * SHOW_S
        binary = phases["track_binary"]["response_bytes"] + TRACK_BINARY_BYTES_PER_FRAME * extra
        json_track = phases["track"]["response_bytes"] + TRACK_JSON_BYTES_PER_FRAME * extra
        shows[name] = {
            "frames": frames,
            "check_in_show": {"requests": round(check_in_rate * SHOW_S), "per_s": round(check_in_rate),
                              **cores(check_in_rate, "show"), "mb_out": mb(check_in_rate * SHOW_S * show_bytes)},
            "with_tracks": {"requests": STADIUM_PHONES, "binary_bytes_each": round(binary),
                            "json_bytes_each": round(json_track), "mb_out_binary": mb(STADIUM_PHONES * binary),
                            "mb_out_json": mb(STADIUM_PHONES * json_track),
                            "api_core_seconds": round(STADIUM_PHONES / phases["track_binary"]["per_s_per_core"]),
                            "api_cores_if_fetched_within_60_s": round(
                                STADIUM_PHONES / 60 / phases["track_binary"]["per_s_per_core"], 1)},
            "without_tracks": {"requests": round(polls), "per_s": round(poll_rate), **cores(poll_rate, "poll"),
                               "mb_out": mb(polls * phases["poll"]["response_bytes"]),
                               "mb_in": mb(polls * BROWSER_REQUEST_BYTES)},
        }
    return {"phones": STADIUM_PHONES, "show_s": SHOW_S, "check_in_s": CHECK_IN_S,
            "browser_request_bytes_assumed": BROWSER_REQUEST_BYTES, "common": common, "shows": shows}


# ------------------------------------------------------------------------------ the run


def _phase_requests(scene_id: int, tokens: list[str]) -> dict[str, list[str]]:
    """The raw HTTP/1.1 requests of each phase, for random located pixels."""
    numbers = random.Random(2).sample(range(N_PIXELS), 4096)
    base = f"/api/scenes/{scene_id}"

    def get(path: str, headers: str = "") -> str:
        return f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n{headers}\r\n"

    binary = "Accept: application/octet-stream\r\n"
    # A track goes to its pixel's own token: phones 0, 1, ... hold the tokens.
    owned = [(n, f"Authorization: Bearer {t}\r\n") for n, t in enumerate(tokens)]
    return {
        "poll": [get(f"{base}/pixels/{n}/color") for n in numbers],
        "track": [get(f"{base}/pixels/{n}/track", token) for n, token in owned],
        "track_binary": [get(f"{base}/pixels/{n}/track", binary + token) for n, token in owned],
        "show": [get(f"{base}/show")],
        "show_light": [get(f"{base}/show?frames=false")],
        "clock": [get(f"/api/time?t0={1_800_000_000_000 + n}") for n in numbers],
        # The pixel page's check-in beside GET .../show: its own pixel, with its device token.
        "me": [get(f"{base}/me", f"Authorization: Bearer {t}\r\n") for t in tokens],
        "baseline": [get(f"/api/bench/naive-color/{scene_id}/{n}") for n in numbers],
    }


def run(*, quick: bool, seconds: float | None, plan: ServerPlan | None = None) -> dict:
    plan = plan or ServerPlan()
    import tempfile

    import redis

    from c3s.framestore import FileSystemStore

    seconds = seconds or (3.0 if quick else 10.0)
    warmup_s = 1.0 if quick else 2.0
    machine = Machine.split()
    redis_client = redis.Redis.from_url(REDIS_URL)
    redis_client.ping()
    print("creating the database, 100,000 phones and 60 frames", file=sys.stderr)
    url = create_database()
    process = None
    scene_id = None
    try:
        with tempfile.TemporaryDirectory(prefix="c3s-bench-api-") as instance:
            store = FileSystemStore(Path(instance) / "files")
            scene_id, tokens = _populate(url, store)
            print("building the colour maps", file=sys.stderr)
            build = build_maps(url, store, redis_client, scene_id)
            port = free_port()
            env = server_env(url, instance)
            process = start_server(env, port, machine.server_cpus, Path(instance) / "gunicorn.log", plan)
            cpu = Cpu(process.pid, url, redis_client)
            phases = {}
            for name, requests in _phase_requests(scene_id, tokens).items():
                print(f"loading {name} for {seconds:g} s", file=sys.stderr)
                phases[name] = run_phase(name, port, requests, machine.loader_cpus, cpu, seconds, warmup_s,
                                          machine.server_cores, plan.connections)
    finally:
        if process is not None:
            stop_server(process)
        drop_database(url)
        if scene_id is not None:
            for key in redis_client.scan_iter(f"c3s:show:{scene_id}:*", count=1000):
                redis_client.delete(key)
    poll, track, baseline = phases["poll"], phases["track"], phases["baseline"]
    return {
        "benchmark": "api",
        "polls_per_s_per_core": poll["per_s_per_core"],
        "p50_ms": poll["p50_ms"],
        "p99_ms": poll["p99_ms"],
        "errors": poll["errors"],
        "track_per_s_per_core": track["per_s_per_core"],
        "track_p50_ms": track["p50_ms"],
        "track_p99_ms": track["p99_ms"],
        "track_errors": track["errors"],
        "baseline_per_s_per_core": baseline["per_s_per_core"],
        "baseline_p50_ms": baseline["p50_ms"],
        "baseline_p99_ms": baseline["p99_ms"],
        "baseline_errors": baseline["errors"],
        "speedup_vs_baseline": round(poll["per_s_per_core"] / baseline["per_s_per_core"], 1),
        "polls_per_api_cpu_s": poll["requests_per_api_cpu_s"],
        "show_per_s_per_core": phases["show"]["per_s_per_core"],
        "clock_per_s_per_core": phases["clock"]["per_s_per_core"],
        "me_per_s_per_core": phases["me"]["per_s_per_core"],
        "target_polls_per_s_per_core": TARGET_POLLS_PER_S_PER_CORE,
        "target_p99_ms": TARGET_P99_MS,
        "meets_target": (poll["per_s_per_core"] >= TARGET_POLLS_PER_S_PER_CORE
                         and poll["p99_ms"] <= TARGET_P99_MS and poll["errors"] == 0),
        "phases": phases,
        "stadium": stadium(phases),
        "scene": {"pixels": N_PIXELS, "frames": N_FRAMES, "frame_ms": FRAME_MS, "frame_px": list(FRAME_SIZE),
                  "build_s": build.seconds, "maps_version": build.version},
        **machine.describe(plan, seconds, warmup_s, quick),
        "note": ("closed loop at saturation; per-core figures divide requests/s by the cores gunicorn was "
                 "pinned to; polls_per_api_cpu_s divides by the CPU time gunicorn actually got, which is "
                 "the fairer figure when other work shares the machine (see load_average_1m); PostgreSQL "
                 "and Redis ran unpinned and their CPU per 1000 requests is in phases"),
    }


@click.command("api")
@click.option("--worker-class", type=click.Choice(["gthread", "sync"]), default="gthread", show_default=True)
@load_options
def command(as_json: bool, quick: bool, seconds: float | None, worker_class: str, workers: int, threads: int,
            connections: int) -> None:
    """Poll and track endpoints under load (gunicorn, PostgreSQL, Redis) vs a plain ORM route."""
    result = run(quick=quick, seconds=seconds, plan=ServerPlan(worker_class, workers, threads, connections))
    if as_json:
        click.echo(json.dumps(result, indent=2))
        return
    click.echo(
        f"poll: {result['polls_per_s_per_core']:,.0f}/s per core, p50 {result['p50_ms']} ms, p99 "
        f"{result['p99_ms']} ms, {result['errors']} errors (target {TARGET_POLLS_PER_S_PER_CORE}/s, "
        f"p99 {TARGET_P99_MS} ms); track: {result['track_per_s_per_core']:,.0f}/s per core, p99 "
        f"{result['track_p99_ms']} ms; plain ORM route: {result['baseline_per_s_per_core']:,.0f}/s per core "
        f"({result['speedup_vs_baseline']}x)"
    )
