"""`c3s bench join`'s arithmetic: today's pair from its two requests, cores for the stadium, and a
phase that answered nothing well stopping the run instead of dividing by zero."""

from __future__ import annotations

import click
import pytest

from c3s.bench.join import _pair, _result, stadium


def _phase(per_cpu_s: float, *, pg_per_1000: float = 500.0, requests: int = 100) -> dict:
    return {"requests": requests, "errors": 0, "statuses": {"201": requests}, "per_s_per_core": per_cpu_s / 4,
            "requests_per_api_cpu_s": per_cpu_s, "p50_ms": 10.0, "p99_ms": 30.0,
            "postgres_cpu_ms_per_1000": pg_per_1000}


def test_a_pair_costs_the_sum_of_its_two_requests():
    pair = _pair(_phase(300.0, pg_per_1000=1000.0), _phase(150.0, pg_per_1000=2000.0))
    assert pair["requests_per_api_cpu_s"] == 100.0  # 1/300 + 1/150 s of CPU per pair
    assert pair["postgres_cpu_ms_per_1000"] == 3000.0
    assert (pair["p50_ms"], pair["p99_ms"]) == (20.0, 60.0)


def test_stadium_cores_for_the_rush_and_the_check_ins():
    arithmetic = stadium(_phase(1000.0, pg_per_1000=600.0), _phase(2500.0, pg_per_1000=250.0))
    assert arithmetic["rush"] == {"joins_per_s": 833.3, "api_cores": 0.83, "postgres_cores": 0.5}
    assert arithmetic["check_in"] == {"requests_per_s": 10000, "api_cores": 4.0, "postgres_cores": 2.5}


def test_a_phase_with_no_good_answer_stops_the_run():
    phases = {name: _phase(1000.0) for name in ("join", "baseline_guest", "baseline_join", "me", "me_show",
                                                "baseline_me")}
    assert _result(phases)["join_ratio"] == 2.0  # 1000 against a pair of two 1000/s requests
    phases["baseline_me"] = {**_phase(1000.0), "requests": 0, "requests_per_api_cpu_s": None,
                             "statuses": {"500": 80}}
    with pytest.raises(click.ClickException, match="baseline_me"):
        _result(phases)
