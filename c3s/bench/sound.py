"""`c3s bench sound`: locating phones from speaker chirps in 3-D venues, simulated independently.

Impulse responses come from pyroomacoustics (see `c3s.bench.sound_room`): an arena 100 x 60 x 25 m
(T60 3.5, 4.5 and 6 s in turn; image sources to order 6 plus a diffuse Sabine tail) and an
open-air stadium 200 x 150 m (no roof, absorbing stands, image sources to order 3). Eight speakers
hang 18-22 m up (arena) or stand 28-32 m up on the rim (stadium); phones are held at random seats
on a standing floor and on tiers (1.4-13 m up in the arena, 1.4-18 m in the stadium), each with a
clock off by up to +-200 ms and a microphone rate off by up to +-50 ppm, under crowd noise, saved
as 16-bit WAV. Each recording is located by the 3-D solver (with the seat map, a temperature
reading and unknown humidity) and by the baseline on the same recording: the 2-D solver the
project had before (speakers' x, y only, the temperature taken as exact).
"""

from __future__ import annotations

import os

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")  # one core: the machine is shared, timings must compare

import json  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402

import click  # noqa: E402
import numpy as np  # noqa: E402

from c3s.bench import sound_room  # noqa: E402
from c3s.bench.sound_venues import BenchVenue, arena, solver_venue, stadium  # noqa: E402
from c3s.positioning.sound import SoundError, locate_from_recording  # noqa: E402
from c3s.positioning.venue_sound import (  # noqa: E402
    Venue,
    locate_in_venue,
    schedule_around,
    speed_of_sound,
    venue_schedule,
)

SCHEDULE_START_MS = 1.7e12
TRUE_TEMPERATURE_C, TRUE_HUMIDITY_PCT = 20.0, 50.0
MAX_CLOCK_OFFSET_MS = 250.0
WRONG_M = 2.0


def _phones(venue: BenchVenue, solver: Venue, n: int, rng: np.random.Generator) -> list[sound_room.Phone]:
    period = venue_schedule(solver, 0.0)
    duration = period.period_ms + period.slot_ms + 300
    seats = venue.seats[rng.choice(len(venue.seats), n, replace=False)]
    out = []
    for seat in seats:
        position = seat + np.array([*rng.uniform(-0.15, 0.15, 2), rng.normal(0, 0.15)])
        offset = rng.uniform(-200, 200)
        true_start = SCHEDULE_START_MS + rng.uniform(3600e3, 7200e3)  # an hour or two into the show
        out.append(sound_room.Phone(position, offset, rng.uniform(-50, 50), true_start + offset, duration))
    return out


def _solve(recording, solver: Venue, venue: BenchVenue, nominal_c: float) -> tuple[dict, dict]:
    duration_ms = len(recording.samples) / recording.sample_rate * 1000
    schedule = schedule_around(solver, SCHEDULE_START_MS, recording.start_ms, duration_ms,
                               MAX_CLOCK_OFFSET_MS)
    t0 = time.process_time()
    try:
        fix = locate_in_venue(recording, solver, schedule, max_clock_offset_ms=MAX_CLOCK_OFFSET_MS)
        ours = {"xy": (fix.x, fix.y), "z": fix.z, "sigma": fix.uncertainty_m, "placed": fix.placed}
    except SoundError:
        ours = {"xy": None}
    ours["seconds"] = time.process_time() - t0
    t0 = time.process_time()
    try:
        old = locate_from_recording(recording, venue.speakers[:, :2], schedule,
                                    temperature_c=nominal_c, max_clock_offset_ms=MAX_CLOCK_OFFSET_MS)
        base = {"xy": (old.x, old.y), "sigma": old.uncertainty_m, "placed": True}
    except SoundError:
        base = {"xy": None}
    base["seconds"] = time.process_time() - t0
    return ours, base


def _stats(results: list[dict], truths: list[np.ndarray]) -> dict:
    errors, sigmas, placed, seconds = [], [], [], []
    for r, truth in zip(results, truths, strict=True):
        seconds.append(r["seconds"])
        if r["xy"] is None:
            continue
        errors.append(float(np.hypot(r["xy"][0] - truth[0], r["xy"][1] - truth[1])))
        sigmas.append(r["sigma"])
        placed.append(r["placed"])
    e, s, p = np.array(errors), np.array(sigmas), np.array(placed, bool)
    used = e[p]

    def pct(q):
        return round(float(np.percentile(used, q)), 4) if used.size else None

    return {
        "recordings": len(results),
        "no_fix": len(results) - len(errors),
        "uncertain": int(np.sum(~p)),
        "placed": int(np.sum(p)),
        "median_uncertainty_m": round(float(np.median(s)), 4) if s.size else None,
        "median_error_m": pct(50),
        "p95_error_m": pct(95),
        "within_0_5_m": round(float(np.mean(used <= 0.5)), 4) if used.size else None,
        "over_1_m": round(float(np.mean(used > 1.0)), 4) if used.size else None,
        "wrong_fixes_over_2_m": int(np.sum(used > WRONG_M)),
        "coverage_2_sigma": round(float(np.mean(e <= 2 * s)), 4) if e.size else None,
        "cpu_seconds_per_recording": round(float(np.median(seconds)), 4),
        "cpu_seconds_max": round(float(np.max(seconds)), 4),
    }


def run_venue(venue_of, name: str, n: int, seed: int, cases: list[dict]) -> list[dict]:
    """Simulate `n` phones once (impulse responses, clean recordings), then every case on them."""
    import pyroomacoustics as pra

    rng = np.random.default_rng(seed)
    true_c = speed_of_sound(TRUE_TEMPERATURE_C, TRUE_HUMIDITY_PCT)
    pra.constants.set("c", true_c)
    venue = venue_of(0)
    truth_venue = solver_venue(venue, TRUE_TEMPERATURE_C)
    phones = _phones(venue, truth_venue, n, rng)
    rows = {i: {"ours": [], "base": []} for i in range(len(cases))}
    for j, phone in enumerate(phones):
        venue = venue_of(j)
        print(f"{name}: phone {j + 1}/{n} at {np.round(phone.position, 1).tolist()}", file=sys.stderr)
        rirs = sound_room.impulse_responses(venue.room, venue.speakers, phone.position, seed * 1000 + j)
        heard, chirp_power = sound_room.clean_recording(truth_venue, SCHEDULE_START_MS, rirs, phone)
        band = (2000.0, 8000.0)
        noisy = {}
        for i, case in enumerate(cases):
            if case["snr_db"] not in noisy:
                noisy[case["snr_db"]] = sound_room.noisy_recording(
                    heard, chirp_power, phone, snr_db=case["snr_db"], band_hz=band, seed=seed * 1000 + j)
            told = solver_venue(venue, case["temperature_c"])
            nominal = np.mean(case["temperature_c"])
            ours, base = _solve(noisy[case["snr_db"]], told, venue, nominal)
            rows[i]["ours"].append(ours)
            rows[i]["base"].append(base)
    truths = [p.position for p in phones]
    out = []
    for i, case in enumerate(cases):
        ours, base = _stats(rows[i]["ours"], truths), _stats(rows[i]["base"], truths)
        ratio = (None if not ours["median_error_m"] or base["median_error_m"] is None
                 else round(base["median_error_m"] / ours["median_error_m"], 2))
        out.append({"venue": name, **case, **ours, "baseline_2d": base,
                    "baseline_over_solver_median_error": ratio})
    return out


def run(n_arena: int, n_stadium: int) -> dict:
    t60s = (3.5, 4.5, 6.0)
    told = TRUE_TEMPERATURE_C
    arena_cases = [
        {"case": "arena, 10 dB crowd noise", "snr_db": 10.0, "temperature_c": told},
        {"case": "arena, 0 dB crowd noise", "snr_db": 0.0, "temperature_c": told},
        {"case": "arena, 10 dB, told 12 C (8 C too cold)", "snr_db": 10.0, "temperature_c": 12.0},
        {"case": "arena, 10 dB, told a range 10-30 C", "snr_db": 10.0, "temperature_c": [10.0, 30.0]},
        {"case": "arena, -10 dB crowd noise", "snr_db": -10.0, "temperature_c": told},
        {"case": "arena, -20 dB crowd noise", "snr_db": -20.0, "temperature_c": told},
    ]
    stadium_cases = [
        {"case": "open-air stadium, 10 dB crowd noise", "snr_db": 10.0, "temperature_c": told},
        {"case": "open-air stadium, 0 dB crowd noise", "snr_db": 0.0, "temperature_c": told},
    ]
    cases = run_venue(lambda j: arena(t60s[j % 3]), "arena", n_arena, 1, arena_cases)
    cases += run_venue(lambda j: stadium(), "open-air stadium", n_stadium, 2, stadium_cases)
    return {
        "benchmark": "sound",
        "simulator": "pyroomacoustics image sources (arena order 6 + diffuse Sabine tail, T60 3.5/4.5/6 s; "
                     "stadium order 3, open roof), crowd noise, 16-bit WAV",
        "true_air": {"temperature_c": TRUE_TEMPERATURE_C, "humidity_pct": TRUE_HUMIDITY_PCT},
        "clock_offset_ms": "uniform +-200", "sample_rate_error_ppm": "uniform +-50",
        "error": "horizontal distance from the phone's true position; statistics over placed fixes, "
                 "coverage over every fix",
        "targets": {"arena_10db_median_m": 0.25, "arena_10db_p95_m": 0.5, "open_air_median_m": 0.4,
                    "0db_over_1_m": 0.01, "coverage_2_sigma": 0.9, "cpu_seconds_per_recording": 0.5},
        "seconds": "CPU time of this process per recording, one thread (the machine is shared, so wall "
                   "time would measure the neighbours)",
        "cases": cases,
        "threads": 1,
    }


@click.command("sound")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object on stdout.")
@click.option("--quick", is_flag=True, help="A few phones per venue, for a smoke run.")
@click.option("--phones", type=click.IntRange(1, 500), default=None,
              help="Phones per venue (default 24 in the arena, 16 in the stadium).")
def command(as_json: bool, quick: bool, phones: int | None) -> None:
    """Sound positioning in a simulated arena and stadium: 3-D solver vs the 2-D baseline."""
    try:
        import pyroomacoustics  # noqa: F401
    except ImportError:
        raise click.UsageError("c3s bench sound needs pyroomacoustics: pip install -e '.[dev]'") from None
    n_arena, n_stadium = (6, 4) if quick else (24, 16)
    if phones is not None:
        n_arena = n_stadium = phones
    result = run(n_arena, n_stadium)
    if as_json:
        click.echo(json.dumps(result, indent=2))
        return
    for case in result["cases"]:
        click.echo(f"{case['case']}: median {case['median_error_m']} m, p95 {case['p95_error_m']} m, "
                   f"coverage {case['coverage_2_sigma']}, placed {case['placed']}/{case['recordings']}; "
                   f"baseline median {case['baseline_2d']['median_error_m']} m")
