"""`c3s bench login`: does a login storm starve the clock? `/api/time` latency (p50, p99) from one
keep-alive client polling every 20 ms, first with the server idle, then while `--clients`
processes log in as fast as they can (right passwords, so every attempt costs a full Argon2id
verification and the rate limits, set out of the way here, do not hide the hashing).

Served for real: gunicorn with the production settings (``c3s.web.gunicorn_conf``, one worker),
a throw-away PostgreSQL database and Redis. Two servers on the same input in the same run:

- ``hashing``: the shipped hashing, one Argon2id lane and one hash at a time per process;
- ``baseline``: argon2-cffi's defaults, four lanes and no limit on hashes at once (how C3S
  hashed before).

Figures depend on the machine; a shared machine's neighbours move them.
"""

from __future__ import annotations

import http.client
import json
import multiprocessing
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import click

from c3s.bench.http import REDIS_URL, create_database, drop_database

PASSWORD = "correct horse battery staple"
POLL_INTERVAL_S = 0.02


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _accounts(url: str, count: int, lanes: int) -> list[str]:
    """`count` registered accounts whose hashes have `lanes` lanes; returns their emails."""
    import psycopg2
    from argon2 import PasswordHasher

    password_hash = PasswordHasher(parallelism=lanes).hash(PASSWORD)
    emails = [f"operator{n}-{lanes}@bench.invalid" for n in range(count)]
    connection = psycopg2.connect(url)
    with connection, connection.cursor() as cursor:
        cursor.executemany("INSERT INTO users (email, password_hash) VALUES (%s, %s)",
                           [(email, password_hash) for email in emails])
    connection.close()
    return emails


def _start(url: str, instance: Path, port: int, *, lanes: int, slots: int) -> subprocess.Popen:
    env = {**os.environ, "C3S_DATABASE_URL": url, "C3S_REDIS_URL": REDIS_URL,
           "C3S_INSTANCE_PATH": str(instance), "C3S_PASSWORD_HASH_LANES": str(lanes),
           "C3S_PASSWORD_HASH_SLOTS": str(slots), "C3S_RATE_LOGINS_PER_ADDRESS": "100000000",
           "C3S_RATE_LOGIN_FAILURES_PER_ACCOUNT": "100000000"}
    env.pop("C3S_BROKER_URL", None)
    log = open(instance / f"gunicorn-{port}.log", "wb")  # noqa: SIM115 - closed with the process
    process = subprocess.Popen([sys.executable, "-m", "gunicorn", "-w", "1", "-b", f"127.0.0.1:{port}",
                                "-c", "python:c3s.web.gunicorn_conf", "c3s.web.wsgi:app"],
                               env=env, stdout=log, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise click.ClickException(f"gunicorn exited:\n{(instance / f'gunicorn-{port}.log').read_text()[-3000:]}")
        try:
            connection = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
            connection.request("GET", "/api/time")
            if connection.getresponse().status == 200:
                return process
        except OSError:
            time.sleep(0.2)
    process.kill()
    raise click.ClickException("gunicorn did not answer /api/time within 60 s")


def poll_clock(port: int, seconds: float) -> list[float]:
    """/api/time round trips in ms, one every POLL_INTERVAL_S over one keep-alive connection."""
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    latencies = []
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        started = time.perf_counter()
        connection.request("GET", f"/api/time?t0={time.time() * 1000:.0f}")
        response = connection.getresponse()
        response.read()
        latencies.append((time.perf_counter() - started) * 1000)
        time.sleep(max(0.0, POLL_INTERVAL_S - (time.perf_counter() - started)))
    connection.close()
    return latencies


def _hammer(port: int, emails: list[str], stop, counts) -> None:
    """Log in as fast as the server answers until `stop` is set (a process of its own, so the
    clock's client shares no interpreter lock with it); adds its answers to `counts`."""
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    n, mine = 0, {}
    while not stop.is_set():
        body = json.dumps({"email": emails[n % len(emails)], "password": PASSWORD})
        connection.request("POST", "/api/tokens", body, {"Content-Type": "application/json"})
        response = connection.getresponse()
        response.read()
        mine[response.status] = mine.get(response.status, 0) + 1
        n += 1
    connection.close()
    for status, count in mine.items():
        counts[status] = counts.get(status, 0) + count


def latency_stats(latencies: list[float]) -> dict:
    ordered = sorted(latencies)
    return {"requests": len(ordered), "p50_ms": round(statistics.median(ordered), 2),
            "p99_ms": round(ordered[min(len(ordered) - 1, int(0.99 * len(ordered)))], 2),
            "max_ms": round(ordered[-1], 2)}


def _run_server(url: str, instance: Path, *, lanes: int, slots: int, clients: int, seconds: float) -> dict:
    emails = _accounts(url, clients, lanes)
    port = _free_port()
    process = _start(url, instance, port, lanes=lanes, slots=slots)
    try:
        idle = latency_stats(poll_clock(port, seconds))
        manager = multiprocessing.Manager()
        stop, counts = manager.Event(), manager.dict()
        threads = [multiprocessing.Process(target=_hammer, args=(port, emails[k:] + emails[:k], stop, counts))
                   for k in range(clients)]
        for thread in threads:
            thread.start()
        time.sleep(1.0)  # the storm is under way
        started = time.monotonic()
        storm = latency_stats(poll_clock(port, seconds))
        elapsed = time.monotonic() - started
        stop.set()
        for thread in threads:
            thread.join(timeout=90)
        counts = dict(counts)
        manager.shutdown()
    finally:
        process.terminate()
        process.wait(timeout=30)
    logins = sum(counts.values())
    return {"lanes": lanes, "hashes_at_once": slots or "any", "clock_idle": idle, "clock_during_logins": storm,
            "login_answers": {str(k): v for k, v in sorted(counts.items())},
            "logins_per_s": round(logins / (elapsed + 1.0), 1)}


@click.command("login")
@click.option("--clients", type=click.IntRange(1, 64), default=8, show_default=True,
              help="processes logging in as fast as they can")
@click.option("--seconds", type=click.FloatRange(2, 120), default=15.0, show_default=True,
              help="length of each phase (idle, during logins), per server")
@click.option("--json", "as_json", is_flag=True, help="print only the JSON result")
def command(clients: int, seconds: float, as_json: bool):
    """/api/time p50 and p99 while CLIENTS processes log in, the shipped password hashing against
    argon2-cffi's defaults (see the module docstring). Needs PostgreSQL and Redis
    (C3S_BENCH_ADMIN_URL, C3S_BENCH_REDIS_URL)."""
    url = create_database()
    try:
        with tempfile.TemporaryDirectory(prefix="c3s-bench-login-") as folder:
            instance = Path(folder)
            shipped = _run_server(url, instance, lanes=1, slots=1, clients=clients, seconds=seconds)
            baseline = _run_server(url, instance, lanes=4, slots=0, clients=clients, seconds=seconds)
    finally:
        drop_database(url)
    result = {"clients": clients, "seconds": seconds, "hashing": shipped, "baseline": baseline,
              "p99_ratio_baseline_over_hashing": round(
                  baseline["clock_during_logins"]["p99_ms"] / shipped["clock_during_logins"]["p99_ms"], 2),
              "cpus": os.cpu_count()}
    if not as_json:
        for name in ("hashing", "baseline"):
            run = result[name]
            click.echo(f"{name:9} clock p99 idle {run['clock_idle']['p99_ms']} ms, during logins "
                       f"{run['clock_during_logins']['p99_ms']} ms ({run['logins_per_s']} logins/s)", err=True)
    click.echo(json.dumps(result, indent=None if as_json else 2))
