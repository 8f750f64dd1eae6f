"""`c3s bench seats`: snapping noisy camera positions to seats, global assignment vs nearest seat.

Seats on a square grid of pitch 1; every occupied seat's pixel is observed at its seat plus
Gaussian noise. Reported: the fraction of pixels put on their own seat by `snap_to_seats` and by
the nearest seat on the same inputs, for the headline case (fully occupied 100 x 100, sigma 0.2),
a curve over sigma and occupancy, and two cases where extra knowledge helps: per-observation
uncertainty known, and several observations of each pixel.
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
from scipy.spatial import cKDTree  # noqa: E402

from c3s.positioning.seats import SeatLabel, SeatMap, snap_to_seats  # noqa: E402


def grid_seat_map(n: int) -> SeatMap:
    """An n x n seat map of pitch 1: section 'A', rows and seats numbered from 1."""
    rows, seats = np.divmod(np.arange(n * n), n)
    labels = tuple(SeatLabel("A", str(r + 1), str(s + 1)) for r, s in zip(rows, seats, strict=True))
    return SeatMap(labels, np.stack([seats, rows], axis=1).astype(np.float64))


def nearest_seat(seat_map: SeatMap, positions: np.ndarray) -> np.ndarray:
    return cKDTree(seat_map.positions).query(positions)[1]


def _case(seat_map: SeatMap, sigma: float, occupancy: float, seed: int) -> dict:
    rng = np.random.default_rng(seed)
    n = len(seat_map)
    truth = np.sort(rng.choice(n, size=int(round(occupancy * n)), replace=False))
    obs = seat_map.positions[truth] + rng.normal(0, sigma, (truth.size, 2))
    t0 = time.perf_counter()
    snapped = snap_to_seats(seat_map, obs, sigma=sigma)
    t1 = time.perf_counter()
    near = nearest_seat(seat_map, obs)
    t2 = time.perf_counter()
    right = snapped.seat_index == truth
    return {
        "sigma": sigma,
        "occupancy": occupancy,
        "pixels": int(truth.size),
        "correct_fraction": float(right.mean()),
        "nearest_correct_fraction": float((near == truth).mean()),
        "unmatched_fraction": float(np.mean(snapped.seat_index < 0)),
        "mean_confidence": float(snapped.confidence.mean()),
        "wrong_with_confidence_below_0_9": int(np.sum(~right & (snapped.confidence < 0.9))),
        "wrong": int(np.sum(~right)),
        "snap_s": t1 - t0,
        "nearest_s": t2 - t1,
    }


def _heteroscedastic(seat_map: SeatMap, seed: int) -> dict:
    """Sigma per observation from 0.1 to 0.3 (mean 0.2), known to the snapper or not."""
    rng = np.random.default_rng(seed)
    n = len(seat_map)
    sigma = rng.uniform(0.1, 0.3, n)
    obs = seat_map.positions + rng.normal(0, 1, (n, 2)) * sigma[:, None]
    truth = np.arange(n)
    known = snap_to_seats(seat_map, obs, sigma=sigma).seat_index
    plain = snap_to_seats(seat_map, obs, sigma=float(sigma.mean())).seat_index
    return {
        "sigma": "uniform 0.1..0.3 per observation",
        "correct_fraction": float(np.mean(known == truth)),
        "plain_assignment_correct_fraction": float(np.mean(plain == truth)),
        "nearest_correct_fraction": float(np.mean(nearest_seat(seat_map, obs) == truth)),
    }


def _multi_observation(seat_map: SeatMap, seed: int, per_pixel: int = 3) -> dict:
    """Each pixel seen in several photos, each with sigma 0.2."""
    rng = np.random.default_rng(seed)
    n = len(seat_map)
    pixel = np.repeat(np.arange(n), per_pixel)
    obs = seat_map.positions[pixel] + rng.normal(0, 0.2, (pixel.size, 2))
    fused = snap_to_seats(seat_map, obs, sigma=0.2, pixel_ids=pixel).seat_index[::per_pixel]
    first = snap_to_seats(seat_map, obs[::per_pixel], sigma=0.2).seat_index
    mean = obs.reshape(n, per_pixel, 2).mean(axis=1)
    truth = np.arange(n)
    return {
        "observations_per_pixel": per_pixel,
        "sigma": 0.2,
        "correct_fraction": float(np.mean(fused == truth)),
        "plain_assignment_one_observation_correct_fraction": float(np.mean(first == truth)),
        "nearest_of_mean_correct_fraction": float(np.mean(nearest_seat(seat_map, mean) == truth)),
    }


def run(n: int, seeds: int, sigmas: list[float], repeats: int) -> dict:
    seat_map = grid_seat_map(n)
    print(f"headline: {n}x{n} seats, sigma 0.2, {seeds} seeds", file=sys.stderr)
    headline = [_case(seat_map, 0.2, 1.0, seed) for seed in range(seeds)]
    timing = [_case(seat_map, 0.2, 1.0, 100 + r) for r in range(repeats)]
    curve = []
    for occupancy in (1.0, 0.8):
        for sigma in sigmas:
            print(f"curve: sigma {sigma}, occupancy {occupancy}", file=sys.stderr)
            case = _case(seat_map, sigma, occupancy, seed=1000 + int(sigma * 1000))
            curve.append({k: v for k, v in case.items() if not k.endswith("_s")})
    snap_s = statistics.median(c["snap_s"] for c in timing)
    nearest_s = statistics.median(c["nearest_s"] for c in timing)
    return {
        "benchmark": "seats",
        "seats": n * n,
        "grid": f"{n}x{n}, pitch 1, fully occupied",
        "noise_sigma_per_axis": 0.2,
        "seeds": seeds,
        "correct_fraction": float(np.mean([c["correct_fraction"] for c in headline])),
        "nearest_correct_fraction": float(np.mean([c["nearest_correct_fraction"] for c in headline])),
        "correct_fraction_per_seed": [c["correct_fraction"] for c in headline],
        "wrong_per_seed": [c["wrong"] for c in headline],
        "mean_confidence": float(np.mean([c["mean_confidence"] for c in headline])),
        "target_correct_fraction": 0.999,
        "curve": curve,
        "uncertainty_known": _heteroscedastic(seat_map, seed=7),
        "several_observations": _multi_observation(seat_map, seed=8),
        "timing": {
            "repeats": repeats,
            "snap_median_s": snap_s,
            "nearest_median_s": nearest_s,
            "snap_over_nearest_time_ratio": snap_s / nearest_s,
            "threads": 1,
        },
    }


@click.command("seats")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object on stdout.")
@click.option("--quick", is_flag=True, help="Smaller grid and fewer seeds, for a smoke run.")
def command(as_json: bool, quick: bool) -> None:
    """Seat snapping: global assignment vs nearest seat on a noisy fully occupied grid."""
    if quick:
        result = run(n=40, seeds=1, sigmas=[0.1, 0.2, 0.3], repeats=1)
    else:
        result = run(n=100, seeds=3, sigmas=[0.1, 0.15, 0.2, 0.25, 0.3], repeats=5)
    if as_json:
        click.echo(json.dumps(result, indent=2))
        return
    click.echo(
        f"{result['seats']} seats, sigma 0.2: global assignment {result['correct_fraction']:.5f} "
        f"vs nearest seat {result['nearest_correct_fraction']:.5f} on the right seat"
    )
    for c in result["curve"]:
        click.echo(f"  sigma {c['sigma']:.2f} occupancy {c['occupancy']:.0%}: "
                   f"{c['correct_fraction']:.5f} vs nearest {c['nearest_correct_fraction']:.5f}")
