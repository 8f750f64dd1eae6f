"""`c3s bench seatmap --quick` for real: gunicorn as shipped on a throw-away PostgreSQL database,
two guests reading the seat map page by page and whole, the clock measured meanwhile."""

from __future__ import annotations

import json
import os
import subprocess
import sys

from tests.helpers.services import ADMIN_URL, REDIS_URL


def test_the_seatmap_benchmark_reads_every_seat_and_times_the_clock():
    env = {**os.environ, "C3S_BENCH_ADMIN_URL": ADMIN_URL, "C3S_BENCH_REDIS_URL": REDIS_URL}
    done = subprocess.run([sys.executable, "-m", "c3s.cli", "bench", "seatmap", "--quick", "--seconds", "2",
                           "--json"], capture_output=True, text=True, timeout=300, check=False, env=env)
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    assert result["seats"] == 20_000 and result["pullers"] == 2 and result["quick"] is True
    for name in ("pages", "largest_pages", "whole_map"):
        phase = result[name]
        # Every map a puller finished held every seat, and every answer was a 200.
        assert phase["maps_read"] >= 1 and phase["wrong_answers"] == 0, (name, phase)
        assert phase["clock"]["requests"] > 10 and phase["clock"]["p99_ms"] >= phase["clock"]["p50_ms"] > 0
    # Pages of 5,000 seats take four requests a map, the largest pages two, the whole map one.
    assert result["pages"]["requests"] >= 4 * result["pages"]["maps_read"]
    assert result["whole_map"]["requests"] == result["whole_map"]["maps_read"]
    assert result["p99_ratio_pages_over_idle"] == round(result["pages"]["clock"]["p99_ms"]
                                                         / result["idle"]["clock"]["p99_ms"], 2)
