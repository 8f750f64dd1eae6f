"""`c3s bench sound`: locating phones from speaker chirps, full solver vs a plain baseline.

Six speakers around a 100 x 60 m scene play the default schedule; phones at random positions
inside record it with white noise (10 dB SNR averaged over speakers), a random decaying
reverberation per speaker, a random clock offset (+-100 ms) and a random microphone sample-rate
error (+-100 ppm). Each recording is located twice: by `locate_from_recording` and by the baseline
on the same recording (strongest integer-sample peak, plain least squares, no rate estimate).
"""

from __future__ import annotations

import os

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")  # one core: the machine is shared, timings must compare

import json  # noqa: E402
import statistics  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402

import click  # noqa: E402
import numpy as np  # noqa: E402

from c3s.positioning.sound import (  # noqa: E402
    ChirpSchedule,
    SoundError,
    locate_from_recording,
    simulate_recording,
)

SCENE_M = (100.0, 60.0)
SPEAKERS_M = np.array([(-5, -5), (50, -8), (105, -5), (105, 65), (50, 68), (-5, 65)], float)
BASELINE = {"subsample": False, "leading_edge": False, "robust": False, "solve_rate": False}
FAILURE_M = 2.0  # an error beyond this, or no fix at all, counts as a failure


def _locate(rec, speakers, schedule, temperature_c, truth, **options) -> tuple[float, float]:
    t0 = time.perf_counter()
    try:
        fix = locate_from_recording(rec, speakers, schedule, temperature_c=temperature_c,
                                    **options)
    except SoundError:
        return float("inf"), time.perf_counter() - t0
    return float(np.hypot(fix.x - truth[0], fix.y - truth[1])), time.perf_counter() - t0


def _finite(value: float) -> float | None:
    """JSON has no infinity: a statistic that falls on a missing fix is null."""
    return float(value) if np.isfinite(value) else None


def _summary(errors: list[float], seconds: list[float]) -> dict:
    e = np.asarray(errors)  # inf where no fix: it sorts last, so it counts against percentiles
    ok = np.isfinite(e)
    return {
        "median_error_m": _finite(np.percentile(e, 50, method="higher")),
        "p90_error_m": _finite(np.percentile(e, 90, method="higher")),
        "max_error_m": _finite(np.max(e)),
        "no_fix": int(np.sum(~ok)),
        "failure_rate": float(np.mean(~ok | (e > FAILURE_M))),
        "locate_median_s": statistics.median(seconds),
    }


def run_case(
    n: int, snr_db: float, rt60_s: float, drr_db: float, seed: int, *,
    temperature_error_c: float = 0.0, speaker_error_m: float = 0.0,
) -> dict:
    """`n` random phones; the solvers get the temperature and speaker positions with errors."""
    rng = np.random.default_rng(seed)
    surveyed = SPEAKERS_M + np.random.default_rng(seed + 99).normal(0, speaker_error_m, (6, 2))
    schedule = ChirpSchedule(len(SPEAKERS_M), start_ms=1.7e12)
    temperature_c = 18.0
    errors: dict[str, list[float]] = {"solver": [], "baseline": []}
    seconds: dict[str, list[float]] = {"solver": [], "baseline": []}
    for i in range(n):
        truth = rng.uniform((0, 0), SCENE_M)
        rec = simulate_recording(
            truth, SPEAKERS_M, schedule, seed=seed * 1000 + i, snr_db=snr_db,
            reverb_rt60_s=rt60_s, drr_db=drr_db, clock_offset_ms=rng.uniform(-100, 100),
            sample_rate_error_ppm=rng.uniform(-100, 100), temperature_c=temperature_c,
        )
        for name, options in (("solver", {}), ("baseline", BASELINE)):
            err, sec = _locate(rec, surveyed, schedule, temperature_c + temperature_error_c,
                               truth, **options)
            errors[name].append(err)
            seconds[name].append(sec)
    solver, baseline = _summary(errors["solver"], seconds["solver"]), _summary(
        errors["baseline"], seconds["baseline"])
    ratio = (None if solver["median_error_m"] is None or baseline["median_error_m"] is None
             else baseline["median_error_m"] / solver["median_error_m"])
    return {
        "snr_db": snr_db,
        "temperature_error_c": temperature_error_c,
        "speaker_position_error_m": speaker_error_m,
        "reverb_rt60_s": rt60_s,
        "drr_db": drr_db,
        "recordings": n,
        **solver,
        "baseline": baseline,
        "baseline_over_solver_median_error": ratio,
    }


def run(n: int, n_stress: int) -> dict:
    print(f"headline: {n} recordings at 10 dB SNR, RT60 1 s", file=sys.stderr)
    headline = run_case(n, snr_db=10.0, rt60_s=1.0, drr_db=0.0, seed=1)
    stress = []
    conditions = [
        {"snr_db": 0.0, "rt60_s": 1.0, "drr_db": 0.0},
        {"snr_db": -10.0, "rt60_s": 2.0, "drr_db": -6.0},
        {"snr_db": -15.0, "rt60_s": 2.0, "drr_db": -6.0},
        {"snr_db": -20.0, "rt60_s": 2.0, "drr_db": -6.0},
        {"snr_db": 10.0, "rt60_s": 1.0, "drr_db": 0.0, "temperature_error_c": 3.0},
        {"snr_db": 10.0, "rt60_s": 1.0, "drr_db": 0.0, "speaker_error_m": 0.2},
    ]
    for condition in conditions:
        print(f"harder: {condition}", file=sys.stderr)
        stress.append(run_case(n_stress, seed=2, **condition))
    return {
        "benchmark": "sound",
        "scene_m": list(SCENE_M),
        "speakers_m": SPEAKERS_M.tolist(),
        "clock_offset_ms": "uniform +-100",
        "sample_rate_error_ppm": "uniform +-100",
        "failure_threshold_m": FAILURE_M,
        "target_median_error_m": 0.3,
        **headline,
        "harder_conditions": stress,
        "threads": 1,
    }


@click.command("sound")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object on stdout.")
@click.option("--quick", is_flag=True, help="Fewer recordings, for a smoke run.")
def command(as_json: bool, quick: bool) -> None:
    """Sound positioning: median error of the TDOA solver vs a plain baseline."""
    result = run(n=8, n_stress=4) if quick else run(n=100, n_stress=30)
    if as_json:
        click.echo(json.dumps(result, indent=2))
        return
    click.echo(
        f"median error {result['median_error_m']} m (p90 {result['p90_error_m']:.4f} m, "
        f"failures {result['failure_rate']:.1%}); baseline "
        f"{result['baseline']['median_error_m']} m"
    )
