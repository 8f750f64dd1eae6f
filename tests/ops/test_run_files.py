"""The files ops installs but this machine cannot run end to end: shell scripts (shellcheck),
systemd units (systemd-analyze), the Procfile and units against `c3s worker`, the crontab, the
MongoDB configuration and init script, and the task-safety settings the worker docs promise."""

from __future__ import annotations

import re
import shlex
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from .conftest import REPO

OPS = REPO / "ops"
WORKERS = REPO / "workers"
SOURCED_LIBRARIES = {"ops/postgres/common.sh", "ops/cron/lib.sh"}


def shell_scripts() -> list[Path]:
    found = []
    for base in (OPS, WORKERS):
        for path in sorted(base.rglob("*")):
            if not path.is_file():
                continue
            first_line = path.read_bytes().split(b"\n", 1)[0]
            if path.suffix == ".sh" or re.match(rb"#!.*\b(ba)?sh\b", first_line):
                found.append(path)
    return found


def test_shellcheck_passes_on_every_script_in_ops_and_workers():
    shellcheck = shutil.which("shellcheck")
    if shellcheck is None:
        pytest.fail("shellcheck is not installed (make test installs it via ops/dev/system-deps.sh)")
    scripts = shell_scripts()
    names = {str(p.relative_to(REPO)) for p in scripts}
    assert {"ops/postgres/make-primary.sh", "ops/postgres/make-standby.sh", "ops/postgres/lag.sh",
            "ops/postgres/promote.sh", "ops/cron/backup-postgres.sh", "ops/cron/backup-mongo.sh",
            "ops/cron/restore-postgres.sh", "ops/cron/restore-mongo.sh",
            "ops/cron/verify-restore.sh", "ops/mongo/init-replica-set.sh"} <= names
    result = subprocess.run([shellcheck, "-x", *map(str, scripts)], cwd=REPO,
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr


def test_ops_scripts_are_executable_and_strict():
    for path in shell_scripts():
        name = str(path.relative_to(REPO))
        if name in SOURCED_LIBRARIES or not name.startswith("ops/"):
            continue
        assert path.stat().st_mode & 0o111, f"{name} is not executable"
        assert "\nset -euo pipefail\n" in path.read_text(), f"{name} lacks set -euo pipefail"


def test_systemd_units_verify_cleanly(tmp_path):
    analyze = shutil.which("systemd-analyze")
    if analyze is None:
        pytest.fail("systemd-analyze is not installed (make test installs systemd via ops/dev/system-deps.sh)")
    # Point the units at this checkout so the ExecStart binaries exist; any warning fails.
    units = []
    for source, name in ((WORKERS / "systemd/c3s-api.service", "c3s-api.service"),
                         (WORKERS / "systemd/c3s-worker@.service", "c3s-worker@locate.service")):
        target = tmp_path / name
        target.write_text(source.read_text().replace("/opt/c3s", str(REPO)))
        units.append(str(target))
    result = subprocess.run([analyze, "verify", *units], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0 and not result.stdout.strip() and not result.stderr.strip(), (
        result.stdout + result.stderr)


def unit_setting(path: Path, key: str) -> str:
    values = re.findall(rf"^{key}=(.*)$", path.read_text(), flags=re.MULTILINE)
    assert len(values) == 1, f"{path.name}: {key} set {len(values)} times"
    return values[0].strip()


def systemd_seconds(value: str) -> float:
    units = {"": 1, "s": 1, "sec": 1, "min": 60, "m": 60, "h": 3600}
    match = re.fullmatch(r"(\d+)\s*([a-z]*)", value)
    assert match and match[2] in units, f"unexpected systemd time span {value!r}"
    return int(match[1]) * units[match[2]]


def test_worker_timeouts_exceed_the_task_time_limit_and_the_safety_settings_hold():
    from c3s.config import Config
    from c3s.tasks import TASK_TIME_LIMIT_S, VISIBILITY_TIMEOUT_S, celery_settings

    unit = WORKERS / "systemd/c3s-worker@.service"
    assert systemd_seconds(unit_setting(unit, "TimeoutStopSec")) > TASK_TIME_LIMIT_S
    assert unit_setting(unit, "KillMode") == "mixed"
    settings = celery_settings(Config.from_env({}))
    assert settings["broker_transport_options"]["visibility_timeout"] == VISIBILITY_TIMEOUT_S
    assert VISIBILITY_TIMEOUT_S > settings["task_time_limit"] >= settings["task_soft_time_limit"]
    assert settings["task_acks_late"] is True
    assert settings["task_reject_on_worker_lost"] is True
    assert settings["worker_prefetch_multiplier"] == 1


def worker_arguments(command: str) -> list[str]:
    """The arguments after `c3s worker` in a Procfile or ExecStart line, variables dropped."""
    words = [w for w in shlex.split(command) if not w.startswith("$")]
    index = words.index("worker")
    assert words[index - 1].endswith("c3s"), command
    return words[index + 1:]


def test_procfile_and_unit_run_one_pool_per_queue_with_valid_worker_options():
    from c3s.commands.worker import worker_command
    from c3s.config import Config
    from c3s.tasks import LOCATE_QUEUE, SHOW_QUEUE, celery_settings

    procfile = dict(line.split(":", 1) for line in (WORKERS / "Procfile").read_text().splitlines()
                    if line and not line.startswith("#"))
    assert set(procfile) == {"api", "locate", "show"}
    assert "c3s.web.wsgi:app" in procfile["api"]
    exec_start = unit_setting(WORKERS / "systemd/c3s-worker@.service", "ExecStart")
    commands = {LOCATE_QUEUE: procfile["locate"], SHOW_QUEUE: procfile["show"],
                "%i": exec_start}
    for queue, command in commands.items():
        context = worker_command.make_context("worker", worker_arguments(command))
        assert context.params["queues"] == queue, command
        assert any(arg.startswith("--hostname=") for arg in context.params["celery_args"])
    routes = celery_settings(Config.from_env({}))["task_routes"]
    queues = {route["queue"] for route in routes.values()}
    assert queues == {LOCATE_QUEUE, SHOW_QUEUE} == {"locate", "show"}


def crontab_jobs() -> list[tuple[list[str], str, str]]:
    jobs = []
    for line in (OPS / "cron/crontab").read_text().splitlines():
        if not line.strip() or line.startswith("#") or re.match(r"^[A-Z][A-Z0-9_]*=", line):
            continue
        fields = line.split(None, 6)
        jobs.append((fields[:5], fields[5], fields[6]))
    return jobs


def test_crontab_runs_both_backups_nightly_in_the_maintenance_window():
    jobs = crontab_jobs()
    scripts = set()
    for (minute, hour, day, month, weekday), user, command in jobs:
        assert 0 <= int(minute) < 60 and 3 <= int(hour) < 5, "outside the 03:00-05:00 window"
        assert (day, month, weekday) == ("*", "*", "*"), "not nightly"
        assert user in {"postgres", "c3s-backup"}
        assert "%" not in command  # cron turns % into a newline
        for script in re.findall(r'"\$C3S_HOME/([^"]+)"', command):
            path = REPO / script
            assert path.is_file() and path.stat().st_mode & 0o111, script
            scripts.add(script)
        assert "PIPESTATUS[0]" in command  # a failure reaches cron's mail, not only syslog
    assert scripts == {"ops/cron/backup-postgres.sh", "ops/cron/backup-mongo.sh"}
    assert "SHELL=/bin/bash" in (OPS / "cron/crontab").read_text()  # PIPESTATUS is bash


def test_mongod_conf_and_init_script_describe_the_same_replica_set():
    conf = yaml.safe_load((OPS / "mongo/mongod.conf").read_text())
    name = conf["replication"]["replSetName"]
    assert conf["security"]["authorization"] == "enabled" and conf["security"]["keyFile"]
    init = (OPS / "mongo/init-replica-set.sh").read_text()
    assert re.search(rf"MONGO_RS_NAME=\$\{{MONGO_RS_NAME:-{name}\}}", init)
    members = re.search(r"MONGO_MEMBERS=\$\{MONGO_MEMBERS:-([^}]+)\}", init)[1].split()
    assert len(members) == 3
    backup = (OPS / "cron/backup-mongo.sh").read_text()
    default_uri = re.search(r"BACKUP_MONGO_URI=\$\{BACKUP_MONGO_URI:-([^}]+)\}", backup)[1]
    assert f"replicaSet={name}" in default_uri
    assert default_uri.split("//", 1)[1].split("/", 1)[0].split(",") == members


def test_init_replica_set_script_parses_as_javascript():
    node = shutil.which("node")
    if node is None:
        pytest.fail("node is not installed (make test installs nodejs via ops/dev/system-deps.sh)")
    result = subprocess.run([node, "--check", str(OPS / "mongo/init-replica-set.js")],
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr


def test_mongo_backup_without_mongodump_fails_clearly_and_writes_nothing(tmp_path):
    backup_dir = tmp_path / "mongo-backups"
    result = subprocess.run(
        ["bash", str(OPS / "cron/backup-mongo.sh")],
        env={"PATH": "/usr/bin:/bin", "BACKUP_DIR": str(backup_dir),
             "MONGODUMP": "mongodump-not-installed"},
        capture_output=True, text=True, timeout=60)
    assert result.returncode == 1
    assert "mongodump-not-installed not found" in result.stderr
    assert not backup_dir.exists() or list(backup_dir.iterdir()) == []
