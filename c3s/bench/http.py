"""The machinery of the HTTP load benchmarks (`c3s bench api`, `c3s bench join`): how a run splits
the machine, a fresh PostgreSQL database, gunicorn pinned to its own cores serving
``c3s.bench.api:bench_app()``, the CPU time of the server's processes, and the closed-loop
keep-alive load generator (this module run as a script: a JSON spec on stdin, the result on
stdout)."""

from __future__ import annotations

import json
import os
import random
import selectors
import socket
import subprocess
import sys
import time
import uuid
from array import array
from dataclasses import asdict, dataclass
from pathlib import Path

import click

ADMIN_URL = os.environ.get("C3S_BENCH_ADMIN_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
REDIS_URL = os.environ.get("C3S_BENCH_REDIS_URL", "redis://127.0.0.1:6379/13")

WORKERS, THREADS, CONNECTIONS = 2, 4, 16
# The server hashes tokens with this key; the set-up stores the phones' tokens under it.
BENCH_TOKEN_KEY = "c3s-bench-token-key-not-a-secret"


@dataclass(frozen=True)
class ServerPlan:
    """How gunicorn serves and how hard the load generator pushes."""

    worker_class: str = "gthread"
    workers: int = WORKERS
    threads: int = THREADS
    connections: int = CONNECTIONS


@dataclass(frozen=True)
class Machine:
    """How a run splits this machine: half its CPUs (at least one) for the server, the rest for
    the load generator; and the load average when it started."""

    server_cpus: frozenset[int]
    loader_cpus: frozenset[int]
    machine_cpus: int
    load_before: float

    @classmethod
    def split(cls) -> Machine:
        cpus = sorted(os.sched_getaffinity(0))
        server = frozenset(cpus[: max(1, len(cpus) // 2)])
        return cls(server, frozenset(cpus[len(server):]) or server, len(cpus), round(os.getloadavg()[0], 2))

    @property
    def server_cores(self) -> int:
        return len(self.server_cpus)

    def describe(self, plan: ServerPlan, seconds: float, warmup_s: float, quick: bool) -> dict:
        """The run's keys that say where and how it ran."""
        return {"server": {**asdict(plan), "cores": self.server_cores, "cpus": sorted(self.server_cpus),
                           "loader_cpus": sorted(self.loader_cpus), "machine_cpus": self.machine_cpus},
                "seconds": seconds, "warmup_s": warmup_s,
                "load_average_1m": {"before": self.load_before, "after": round(os.getloadavg()[0], 2)},
                "quick": quick}


def load_options(command):
    """The options every gunicorn load benchmark takes (--json, --quick, --seconds, the plan)."""
    options = [
        click.option("--json", "as_json", is_flag=True, help="Print one JSON object on stdout."),
        click.option("--quick", is_flag=True, help="3 s per phase, for a smoke run."),
        click.option("--seconds", type=click.FloatRange(0.5, 600), default=None, help="Seconds measured per phase."),
        click.option("--workers", type=click.IntRange(2, 64), default=WORKERS, show_default=True),
        click.option("--threads", type=click.IntRange(1, 64), default=THREADS, show_default=True),
        click.option("--connections", type=click.IntRange(1, 1024), default=CONNECTIONS, show_default=True,
                     help="Keep-alive connections of the load generator, one request in flight each."),
    ]
    for option in reversed(options):
        command = option(command)
    return command


# ------------------------------------------------------------------------------ databases


def create_database() -> str:
    from sqlalchemy import create_engine, text

    from c3s.db import driver_url, init_db, make_engine

    name = f"c3s_bench_{uuid.uuid4().hex[:10]}"
    admin = create_engine(driver_url(ADMIN_URL), isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(text(f'CREATE DATABASE "{name}"'))
    admin.dispose()
    url = ADMIN_URL.rsplit("/", 1)[0] + f"/{name}"
    engine = make_engine(url)
    init_db(engine)
    engine.dispose()
    return url


def drop_database(url: str) -> None:
    from sqlalchemy import create_engine, text

    from c3s.db import driver_url

    admin = create_engine(driver_url(ADMIN_URL), isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(text(f'DROP DATABASE IF EXISTS "{url.rsplit("/", 1)[1]}" WITH (FORCE)'))
    admin.dispose()


def insert_stand(cursor, name: str, size: tuple[int, int], n_pixels: int,
                 n_guests: int) -> tuple[int, list[int]]:
    """In a bench database: the operator, their QR scene of `size` whose next pixel number is
    `n_pixels`, and `n_guests` guest users; returns the scene id and the guests' ids in order."""
    cursor.execute("INSERT INTO users (email, password_hash) VALUES ('operator@bench.invalid', 'x') "
                   "RETURNING id")
    owner = cursor.fetchone()[0]
    cursor.execute("INSERT INTO scenes (name, owner_id, method_id, width, height, fit, next_pixel_number)"
                   " SELECT %s, %s, id, %s, %s, 'contain', %s FROM methods WHERE code = 'qr'"
                   " RETURNING id", (name, owner, *size, n_pixels))
    scene_id = cursor.fetchone()[0]
    cursor.execute("INSERT INTO users (is_guest) SELECT true FROM generate_series(1, %s) RETURNING id",
                   (n_guests,))
    return scene_id, sorted(r[0] for r in cursor.fetchall())


# ------------------------------------------------------------------------------ the server


def server_env(database_url: str, instance: str) -> dict[str, str]:
    """The benchmark server's environment: the bench database, Redis and token key, tasks in process."""
    env = {**os.environ, "C3S_DATABASE_URL": database_url, "C3S_REDIS_URL": REDIS_URL, "C3S_INSTANCE_PATH": instance,
           "C3S_TOKEN_KEY": BENCH_TOKEN_KEY, "OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1"}
    env.pop("C3S_BROKER_URL", None)
    return env


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def start_server(env: dict, port: int, cpus: set[int], log_path: Path, plan: ServerPlan | None,
                 app: str = "c3s.bench.api:bench_app()") -> subprocess.Popen:
    """gunicorn serving `app` on `cpus`: as `plan` says, or with no plan as shipped
    (``c3s.web.gunicorn_conf``, its threads from ``C3S_API_THREADS``, two workers as the
    systemd unit runs it)."""
    how = (["-w", str(plan.workers), "-k", plan.worker_class, "--threads", str(plan.threads), "--keep-alive", "30"]
           if plan is not None else ["-w", env.get("C3S_API_WORKERS", "2"), "-c", "python:c3s.web.gunicorn_conf"])
    command = [sys.executable, "-m", "gunicorn", *how, "-b", f"127.0.0.1:{port}", "--log-level", "warning",
               "--error-logfile", str(log_path), app]
    process = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                               start_new_session=True, preexec_fn=lambda: os.sched_setaffinity(0, cpus))
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise click.ClickException(f"gunicorn exited:\n{log_path.read_text(errors='replace')[-3000:]}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1) as s:
                s.sendall(b"GET /api/time HTTP/1.1\r\nHost: bench\r\nConnection: close\r\n\r\n")
                if s.recv(12).startswith(b"HTTP/1.1 200"):
                    return process
        except OSError:
            time.sleep(0.2)
    stop_server(process)
    raise click.ClickException("gunicorn did not answer within 60 s")


def stop_server(process: subprocess.Popen) -> None:
    import signal

    if process.poll() is None:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()


# ------------------------------------------------------------------------------ CPU accounting


def _cpu_s(pids) -> float:
    ticks = 0
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        ticks += int(fields[11]) + int(fields[12])  # utime + stime
    return ticks / os.sysconf("SC_CLK_TCK")


def _children(root: int) -> set[int]:
    parents = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                parents[int(entry)] = int(Path(f"/proc/{entry}/stat").read_text().rsplit(")", 1)[1].split()[1])
            except OSError:
                continue
    tree, grew = {root}, True
    while grew:
        grew = False
        for pid, parent in parents.items():
            if parent in tree and pid not in tree:
                tree.add(pid)
                grew = True
    return tree


class Cpu:
    """CPU seconds used so far by the server's processes, the bench database's backends and Redis."""

    def __init__(self, server_pid: int, database_url: str, redis_client):
        self.server_pid, self.redis = server_pid, redis_client
        self.database = database_url.rsplit("/", 1)[1]
        self.admin_url = database_url

    def sample(self) -> dict[str, float]:
        import psycopg2

        with psycopg2.connect(self.admin_url) as connection, connection.cursor() as cursor:
            cursor.execute("SELECT pid FROM pg_stat_activity WHERE datname = %s AND pid <> pg_backend_pid()",
                           (self.database,))
            backends = [r[0] for r in cursor.fetchall()]
        connection.close()
        info = self.redis.info("cpu")
        return {"api": _cpu_s(_children(self.server_pid)), "postgres": _cpu_s(backends),
                "redis": info["used_cpu_user"] + info["used_cpu_sys"], "backends": len(backends)}


# ------------------------------------------------------------------------------ load


class LoadGenerator:
    """Closed-loop keep-alive load: ``connections`` sockets, each with one request in flight."""

    def __init__(self, port: int, requests: list[bytes], connections: int, sequential: bool = False):
        self.port, self.requests, self.connections = port, requests, connections
        # Sequential: each request once, in order (requests that may not repeat, e.g. a join
        # with a fresh token each); otherwise a random one each time.
        self.sequential, self.sent = sequential, 0
        self.selector = selectors.DefaultSelector()
        self.state: dict[socket.socket, list] = {}
        self.latencies = array("d")
        self.ok = self.errors = self.bytes = 0
        self.statuses: dict[str, int] = {}
        self.measuring = False
        self.stop_at = 0.0
        self.rng = random.Random(1)

    def connect(self) -> None:
        sock = socket.create_connection(("127.0.0.1", self.port))
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.selector.register(sock, selectors.EVENT_READ)
        self.fire(sock)

    def fire(self, sock) -> None:
        if self.sequential:
            index, self.sent = self.sent % len(self.requests), self.sent + 1
        else:
            index = self.rng.randrange(len(self.requests))
        sock.sendall(self.requests[index])
        self.state[sock] = [time.perf_counter(), b""]

    def drop(self, sock) -> None:
        self.selector.unregister(sock)
        self.state.pop(sock, None)
        sock.close()

    def run(self, seconds: float, warmup_s: float) -> dict:
        """Prints MEASURING when the warm-up ends; returns the counts of the measured window."""
        for _ in range(self.connections):
            self.connect()
        started = time.perf_counter()
        measure_from, self.stop_at = started + warmup_s, started + warmup_s + seconds
        while (now := time.perf_counter()) < self.stop_at:
            if not self.measuring and now >= measure_from:
                self.measuring = True
                print("MEASURING", flush=True)
            for key, _ in self.selector.select(0.5):
                self.receive(key.fileobj)
        for sock in list(self.state):
            self.drop(sock)
        return self.summary(seconds)

    def receive(self, sock) -> None:
        entry = self.state[sock]
        try:
            data = sock.recv(262144)
        except OSError:
            data = b""
        if not data:  # the server closed a connection with a request in flight
            self.errors += self.measuring
            self.drop(sock)
            self.connect()
            return
        buffer = entry[1] + data
        head_end = buffer.find(b"\r\n\r\n")
        head = buffer[:head_end].lower() if head_end >= 0 else b""
        at = head.find(b"content-length:")
        if at < 0:
            entry[1] = buffer
            return
        line_end = head.find(b"\r\n", at)
        length = int(head[at + 15 : line_end if line_end > 0 else None])
        if len(buffer) - head_end - 4 < length:
            entry[1] = buffer
            return
        self.record(buffer[9:12].decode(), time.perf_counter() - entry[0], head_end + 4 + length)
        if b"connection: close" in head:
            self.drop(sock)
            self.connect()
        else:
            self.fire(sock)

    def record(self, status: str, elapsed_s: float, size: int) -> None:
        if not self.measuring or time.perf_counter() >= self.stop_at:
            return
        self.statuses[status] = self.statuses.get(status, 0) + 1
        if status in ("200", "201"):
            self.ok += 1
            self.latencies.append(elapsed_s)
            self.bytes += size
        else:
            self.errors += 1

    def summary(self, seconds: float) -> dict:
        ordered = sorted(self.latencies)

        def percentile(q: float) -> float | None:
            return round(1000 * ordered[min(len(ordered) - 1, int(q * len(ordered)))], 3) if ordered else None

        return {"requests": self.ok, "errors": self.errors, "seconds": seconds,
                "rps": round(self.ok / seconds, 1), "p50_ms": percentile(0.50), "p90_ms": percentile(0.90),
                "p99_ms": percentile(0.99), "max_ms": percentile(1.0),
                "response_bytes": round(self.bytes / max(self.ok, 1), 1),
                "request_bytes": round(sum(map(len, self.requests)) / len(self.requests), 1),
                "statuses": self.statuses}


def run_phase(name: str, port: int, requests: list[str], cpus: set[int], cpu: Cpu,
               seconds: float, warmup_s: float, server_cores: int, connections: int,
               sequential: bool = False) -> dict:
    spec = {"port": port, "connections": connections, "seconds": seconds, "warmup_s": warmup_s,
            "requests": requests, "sequential": sequential}
    loader = subprocess.Popen([sys.executable, "-m", "c3s.bench.http"], stdin=subprocess.PIPE,
                              stdout=subprocess.PIPE, text=True, preexec_fn=lambda: os.sched_setaffinity(0, cpus))
    loader.stdin.write(json.dumps(spec))
    loader.stdin.close()
    before = after = None
    wall = time.perf_counter()
    for line in loader.stdout:
        if line.startswith("MEASURING"):
            before, wall = cpu.sample(), time.perf_counter()
        elif line.startswith("{"):
            after, wall = cpu.sample(), time.perf_counter() - wall
            result = json.loads(line)
    if loader.wait() != 0 or before is None or after is None:
        raise click.ClickException(f"the load generator failed in phase {name}")
    used = {k: after[k] - before[k] for k in ("api", "postgres", "redis")}
    per_thousand = {f"{k}_cpu_ms_per_1000": round(1e6 * v / max(result["requests"], 1), 1) for k, v in used.items()}
    result.update({
        "per_s_per_core": round(result["rps"] / server_cores, 1),
        "requests_per_api_cpu_s": round(result["requests"] / used["api"], 1) if used["api"] > 0 else None,
        "api_cpu_busy_fraction": round(used["api"] / wall / server_cores, 3),
        **per_thousand, "database_backends": after["backends"],
    })
    return result


if __name__ == "__main__":
    # The load generator: a JSON spec on stdin, the result as one JSON line on stdout.
    _spec = json.loads(sys.stdin.read())
    _requests = [r.encode() for r in _spec["requests"]]
    _generator = LoadGenerator(_spec["port"], _requests, _spec["connections"], _spec.get("sequential", False))
    print(json.dumps(_generator.run(_spec["seconds"], _spec["warmup_s"])), flush=True)
