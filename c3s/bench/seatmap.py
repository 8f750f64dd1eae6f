"""`c3s bench seatmap`: can guests pulling the largest seat map stall the clock? `/api/time`
latency (p50, p99) from one keep-alive client polling every 20 ms, first with the server idle,
then while `--pullers` processes (guests joined to the scene) read the whole 150,000-seat map
again and again (``MAX_SEATS``, the most a scene takes), each over its own keep-alive
connection.

Served for real: gunicorn with the production settings (``c3s.web.gunicorn_conf``), a throw-away
PostgreSQL database and Redis. One worker by default, so that the pullers' requests share the
clock's process and its interpreter lock: the worst case. With the systemd unit's two workers
(``--workers 2``) the kernel spreads the connections over the workers, and a run measures
whichever placement it got. Three ways of reading the map, on the same map in the same run:

- ``pages``: ``GET .../seatmap`` as shipped, following ``Link: rel="next"`` from page to page
  (5,000 seats a page, the default);
- ``largest_pages``: the same with ``limit=10000``, the largest page allowed;
- ``whole_map`` (the baseline): the whole map in one answer, as the route served it before it
  had pages (ORM rows through the marshmallow schema; ``GET /api/bench/whole-seatmap/<id>``).

Figures depend on the machine; a shared machine's neighbours move them (the load average is in
the result).
"""

from __future__ import annotations

import http.client
import io
import json
import multiprocessing
import os
import re
import tempfile
import time
from pathlib import Path

import click

from c3s.bench.http import (
    BENCH_TOKEN_KEY,
    create_database,
    drop_database,
    free_port,
    server_env,
    start_server,
    stop_server,
)
from c3s.bench.login import POLL_INTERVAL_S, latency_stats, poll_clock
from c3s.positioning.seats import MAX_SEATS

TARGET_P99_MS = 25.0
SCENE = (600.0, 300.0)
PITCH = 0.5  # seat spacing, scene units
SEATS_PER_ROW, ROWS_PER_SECTION = 100, 50
QUICK_SEATS = 20_000
LINK = re.compile(rb'<([^>]+)>; rel="next"')


def bench_app():
    """The C3S app plus ``GET /api/bench/whole-seatmap/<scene_id>``, the seat map as the route
    answered before it had pages: every seat as an ORM object through the marshmallow schema,
    in one response (gunicorn: ``c3s.bench.seatmap:bench_app()``)."""
    from apiflask import APIBlueprint
    from sqlalchemy import select

    from c3s import scenes
    from c3s.models import Seat
    from c3s.web import create_app
    from c3s.web.auth import require_read, token_auth
    from c3s.web.context import db_session
    from c3s.web.schemas import SeatMapOut

    app = create_app()
    bp = APIBlueprint("bench_seatmap", __name__)

    @bp.get("/bench/whole-seatmap/<int:scene_id>")
    @bp.auth_required(token_auth)
    @bp.output(SeatMapOut)
    def whole_seat_map(scene_id: int):
        session = db_session()
        scene = scenes.get_scene(session, scene_id)
        require_read(scene, "member", to="read its seat map")
        rows = list(session.scalars(select(Seat).where(Seat.scene_id == scene.id)
                                    .order_by(Seat.section, Seat.row, Seat.seat)))
        return {"count": len(rows), "seats": rows}

    app.register_blueprint(bp, url_prefix="/api")
    return app


def _populate(url: str, n_seats: int, pullers: int) -> tuple[int, list[str]]:
    """A seated scene with `n_seats` seats (sections of 50 rows of 100) and `pullers` guests
    joined to it; returns the scene id and the guests' tokens."""
    import psycopg2
    from psycopg2.extras import execute_values

    from c3s.accounts import hash_token, new_token
    from c3s.bench.http import insert_stand

    connection = psycopg2.connect(url)
    with connection, connection.cursor() as cursor:
        scene_id, guests = insert_stand(cursor, "Bench stadium", SCENE, pullers, pullers)
        cursor.execute("UPDATE scenes SET method_id = (SELECT id FROM methods WHERE code = 'seat') WHERE id = %s",
                       (scene_id,))
        per_section = SEATS_PER_ROW * ROWS_PER_SECTION
        lines = io.StringIO()
        for k in range(n_seats):
            section, rest = divmod(k, per_section)
            row, seat = divmod(rest, SEATS_PER_ROW)
            x = PITCH * (1 + seat + (SEATS_PER_ROW + 4) * (section % 10))
            y = PITCH * (1 + row + (ROWS_PER_SECTION + 4) * (section // 10))
            lines.write(f"{scene_id}\tS{section + 1}\t{row + 1}\t{seat + 1}\t{x}\t{y}\t{PITCH}\n")
        lines.seek(0)
        cursor.copy_expert("COPY seats (scene_id, section, row, seat, x, y, spacing) FROM STDIN", lines)
        tokens = [new_token() for _ in guests]
        execute_values(cursor, "INSERT INTO api_tokens (user_id, token_hash, kind, expires_at, last_used_at)"
                       " VALUES %s", [(u, hash_token(t, BENCH_TOKEN_KEY.encode()), "device")
                                      for u, t in zip(guests, tokens, strict=True)],
                       template="(%s, %s, %s, now() + interval '1 day', now())")
        execute_values(cursor, "INSERT INTO pixels (scene_id, scene_width, scene_height, user_id, number) VALUES %s",
                       [(scene_id, *SCENE, u, n) for n, u in enumerate(guests)])
        cursor.execute("ANALYZE seats")
    connection.close()
    return scene_id, tokens


def _read_map(connection: http.client.HTTPConnection, token: str, first: str) -> dict:
    """One whole map from `first`, page after page by the `Link` header: its seats, requests,
    bytes and answer times, and whether every answer was a 200."""
    url, seats, received, answer_s = first, 0, 0, []
    while url:
        started = time.perf_counter()
        connection.request("GET", url, headers={"Authorization": f"Bearer {token}"})
        response = connection.getresponse()
        body = response.read()
        answer_s.append(time.perf_counter() - started)
        received += len(body)
        if response.status != 200:
            return {"seats": seats, "bytes": received, "answer_s": answer_s, "ok": False}
        seats += body.count(b'"spacing"')
        link = LINK.search((response.getheader("Link") or "").encode())
        url = link.group(1).decode() if link else None
    return {"seats": seats, "bytes": received, "answer_s": answer_s, "ok": True}


def _pull(port: int, token: str, first: str, n_seats: int, stop, results) -> None:
    """Read the whole map again and again until `stop` is set (a process of its own, so the
    clock's client shares no interpreter lock with it)."""
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
    maps, received, answer_s, wrong = 0, 0, [], 0
    while not stop.is_set():
        read = _read_map(connection, token, first)
        received, answer_s = received + read["bytes"], answer_s + read["answer_s"]
        if read["ok"] and read["seats"] == n_seats:
            maps += 1
        elif not stop.is_set():
            wrong += 1
    connection.close()
    results.append({"maps": maps, "requests": len(answer_s), "bytes": received, "wrong": wrong,
                    "slowest_answer_s": round(max(answer_s, default=0.0), 3),
                    "answer_s_total": sum(answer_s)})


def _warm_up(port: int, tokens: list[str], paths: list[str]) -> None:
    """Every path read once over fresh connections before anything is measured, so no phase
    pays for a worker's first request (its database connections, compiled statements)."""
    for path in paths:
        for token in tokens:
            connection = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
            _read_map(connection, token, path)
            connection.close()


def _phase(port: int, tokens: list[str], first: str | None, n_seats: int, seconds: float) -> dict:
    """The clock while the pullers read the map from `first` (None: nobody pulls)."""
    if first is None:
        return {"clock": latency_stats(poll_clock(port, seconds))}
    manager = multiprocessing.Manager()
    stop, results = manager.Event(), manager.list()
    pullers = [multiprocessing.Process(target=_pull, args=(port, token, first, n_seats, stop, results))
               for token in tokens]
    for puller in pullers:
        puller.start()
    time.sleep(1.0)  # the pulls are under way
    started = time.monotonic()
    clock = latency_stats(poll_clock(port, seconds))
    elapsed = time.monotonic() - started + 1.0
    stop.set()
    for puller in pullers:
        puller.join(timeout=180)
    results = list(results)
    manager.shutdown()
    maps = sum(r["maps"] for r in results)
    requests = sum(r["requests"] for r in results)
    return {"clock": clock, "maps_read": maps, "maps_per_s": round(maps / elapsed, 2),
            "requests": requests, "mb_per_s": round(sum(r["bytes"] for r in results) / elapsed / 1e6, 1),
            "mean_answer_ms": round(1000 * sum(r["answer_s_total"] for r in results) / max(1, requests), 1),
            "slowest_answer_ms": round(1000 * max((r["slowest_answer_s"] for r in results), default=0.0), 1),
            "wrong_answers": sum(r["wrong"] for r in results)}


def run(*, n_seats: int, pullers: int, seconds: float, workers: int) -> dict:
    url = create_database()
    try:
        scene_id, tokens = _populate(url, n_seats, pullers)
        with tempfile.TemporaryDirectory(prefix="c3s-bench-seatmap-") as folder:
            port = free_port()
            env = {**server_env(url, folder), "C3S_API_WORKERS": str(workers)}
            process = start_server(env, port, set(os.sched_getaffinity(0)), Path(folder) / "gunicorn.log", None,
                                   app="c3s.bench.seatmap:bench_app()")
            load_before = round(os.getloadavg()[0], 2)
            try:
                paths = {"idle": None, "pages": f"/api/scenes/{scene_id}/seatmap",
                         "largest_pages": f"/api/scenes/{scene_id}/seatmap?limit=10000",
                         "whole_map": f"/api/bench/whole-seatmap/{scene_id}"}
                _warm_up(port, tokens, [path for path in paths.values() if path is not None])
                phases = {name: _phase(port, tokens, path, n_seats, seconds) for name, path in paths.items()}
            finally:
                stop_server(process)
    finally:
        drop_database(url)
    p99 = {name: phase["clock"]["p99_ms"] for name, phase in phases.items()}
    return {"seats": n_seats, "pullers": pullers, "seconds": seconds, "poll_interval_ms": POLL_INTERVAL_S * 1000,
            "server": {"workers": workers, "threads": int(os.environ.get("C3S_API_THREADS", "4")),
                       "config": "c3s.web.gunicorn_conf"},
            **phases,
            "p99_ratio_pages_over_idle": round(p99["pages"] / p99["idle"], 2),
            "p99_ratio_whole_map_over_pages": round(p99["whole_map"] / p99["pages"], 2),
            "p99_ratio_whole_map_over_largest_pages": round(p99["whole_map"] / p99["largest_pages"], 2),
            "target_p99_ms": TARGET_P99_MS,
            "target_met": p99["pages"] <= TARGET_P99_MS and p99["largest_pages"] <= TARGET_P99_MS,
            "load_average_1m": {"before": load_before, "after": round(os.getloadavg()[0], 2)},
            "cpus": os.cpu_count()}


@click.command("seatmap")
@click.option("--pullers", type=click.IntRange(1, 16), default=2, show_default=True,
              help="guests reading the whole map in a loop")
@click.option("--seconds", type=click.FloatRange(2, 300), default=None,
              help="length of each phase [default: 20, --quick 3]")
@click.option("--workers", type=click.IntRange(1, 16), default=1, show_default=True,
              help="gunicorn workers (one: the pullers share the clock's process; the systemd unit runs 2)")
@click.option("--quick", is_flag=True, help=f"{QUICK_SEATS:,} seats and 3 s phases, for a smoke run")
@click.option("--json", "as_json", is_flag=True, help="print only the JSON result")
def command(pullers: int, seconds: float | None, workers: int, quick: bool, as_json: bool):
    """/api/time p50 and p99 while PULLERS guests read the largest seat map page by page, against
    the whole map in one answer (see the module docstring). Needs PostgreSQL and Redis
    (C3S_BENCH_ADMIN_URL, C3S_BENCH_REDIS_URL)."""
    seconds = seconds or (3.0 if quick else 20.0)
    result = run(n_seats=QUICK_SEATS if quick else MAX_SEATS, pullers=pullers, seconds=seconds, workers=workers)
    result["quick"] = quick
    if not as_json:
        for name in ("idle", "pages", "largest_pages", "whole_map"):
            phase = result[name]
            pulls = f", {phase['maps_per_s']} maps/s" if "maps_per_s" in phase else ""
            click.echo(f"{name:14} clock p50 {phase['clock']['p50_ms']} ms, p99 {phase['clock']['p99_ms']} ms"
                       f"{pulls}", err=True)
    click.echo(json.dumps(result, indent=None if as_json else 2))
