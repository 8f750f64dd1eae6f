"""The benchmark's venues: an arena and an open-air stadium, with tiered seats and raised speakers."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from c3s.bench.sound_room import Room
from c3s.positioning.venue_sound import Venue

SEAT_PITCH_M = (0.5, 0.8)  # seat width, row depth
PHONE_UP_M = 1.4  # a phone held up above a standing floor


@dataclass(frozen=True)
class BenchVenue:
    name: str
    room: Room
    speakers: np.ndarray  # (K, 3) metres
    seats: np.ndarray  # (S, 3) metres: phone height at each seat
    floor: tuple[float, float, float, float]  # x0, y0, x1, y1 of the standing floor


def tiered_seats(size: tuple[float, float], floor: tuple[float, float, float, float],
                 rise_per_row_m: float, top_m: float, margin_m: float = 2.0) -> np.ndarray:
    """Seats on a grid: a standing floor at `PHONE_UP_M`, and tiers rising by `rise_per_row_m`
    per row outward from it, up to `top_m`."""
    xs = np.arange(margin_m, size[0] - margin_m, SEAT_PITCH_M[0])
    ys = np.arange(margin_m, size[1] - margin_m, SEAT_PITCH_M[1])
    x, y = (a.ravel() for a in np.meshgrid(xs, ys))
    x0, y0, x1, y1 = floor
    out = np.maximum(np.maximum(x0 - x, x - x1), np.maximum(y0 - y, y - y1))
    rows = np.floor(np.maximum(out, 0) / SEAT_PITCH_M[1])
    z = np.minimum(PHONE_UP_M + rise_per_row_m * rows, top_m)
    return np.column_stack([x, y, z])


def arena(t60_s: float, seed: int = 7) -> BenchVenue:
    rng = np.random.default_rng(seed)
    xy = [(8, 8), (50, 4), (92, 8), (96, 30), (92, 52), (50, 56), (8, 52), (4, 30)]
    speakers = np.column_stack([np.array(xy, float), rng.uniform(18, 22, len(xy))])
    floor = (25.0, 15.0, 75.0, 45.0)
    return BenchVenue("arena", Room((100.0, 60.0, 25.0), t60_s=t60_s, max_order=6), speakers,
                      tiered_seats((100, 60), floor, 0.45, 13.0), floor)


def stadium(seed: int = 8) -> BenchVenue:
    rng = np.random.default_rng(seed)
    xy = [(4, 75), (30, 8), (100, 3), (170, 8), (196, 75), (170, 142), (100, 147), (30, 142)]
    speakers = np.column_stack([np.array(xy, float), rng.uniform(28, 32, len(xy))])
    floor = (47.5, 41.0, 152.5, 109.0)
    room = Room((200.0, 150.0, 45.0), open_air=True, wall_absorption=0.5, max_order=3)
    return BenchVenue("open-air stadium", room, speakers,
                      tiered_seats((200, 150), floor, 0.3, 18.0), floor)


def solver_venue(venue: BenchVenue, temperature_c, delays_ms: np.ndarray | None = None) -> Venue:
    """What the operator tells the solver: speakers, seats and a temperature (reading or range)."""
    t = (temperature_c, temperature_c) if np.isscalar(temperature_c) else tuple(temperature_c)
    return Venue(speakers=venue.speakers,
                 speaker_delay_ms=np.zeros(len(venue.speakers)) if delays_ms is None else delays_ms,
                 temperature_c=t, humidity_pct=(0.0, 100.0), seats=venue.seats)
