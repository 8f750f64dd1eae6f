"""Seat maps and the snapping of camera-found positions to seats.

A seat map lists every seat of a scene as (section, row, seat, x, y), with x and y in scene units.
`parse_seat_map` reads it from CSV or JSON and reports every bad line at once; `SeatMap.find` and
`SeatMap.suggest` serve a phone that types its seat; `snap_to_seats` turns noisy positions from the
camera methods into seats with one global assignment (no two pixels on one seat), which beats
nearest-seat because a neighbour's seat that is already taken is no longer a candidate.
"""

from __future__ import annotations

import csv
import difflib
import io
import json
import math
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any, Literal, NamedTuple

import numpy as np
from scipy.sparse import csr_matrix
from scipy.sparse.csgraph import min_weight_full_bipartite_matching
from scipy.spatial import cKDTree

MAX_LISTED_ERRORS = 20
# A stadium has some 100,000 seats; a map past this is refused before it is stored or served.
MAX_SEATS = 150_000
# A section, row or seat name longer than this is refused (no sign carries more).
MAX_LABEL_CHARS = 32
REQUIRED_COLUMNS = ("section", "row", "seat", "x", "y")


class SeatMapError(ValueError):
    """A seat map that cannot be imported; `errors` holds one message per bad line."""

    def __init__(self, errors: list[str]):
        self.errors = list(errors)
        shown = self.errors[:MAX_LISTED_ERRORS]
        more = len(self.errors) - len(shown)
        lines = [f"seat map has {len(self.errors)} error(s):", *(f"  {e}" for e in shown)]
        if more:
            lines.append(f"  ... and {more} more")
        super().__init__("\n".join(lines))


class SeatLabel(NamedTuple):
    """A seat's name, normalised (upper case, single spaces, no leading zeros in numbers)."""

    section: str
    row: str
    seat: str

    def __str__(self) -> str:
        return f"{self.section}-{self.row}-{self.seat}"


def normalise_part(value: Any) -> str:
    """Normalise one label part so that 'a ', 'A' and '07' vs '7' compare equal."""
    text = re.sub(r"\s+", " ", str(value).strip().upper())
    if text.isdigit():
        text = str(int(text))
    return text


def seat_label(section: Any, row: Any, seat: Any) -> SeatLabel:
    return SeatLabel(normalise_part(section), normalise_part(row), normalise_part(seat))


@dataclass(frozen=True)
class SeatMap:
    """All seats of a scene.

    Attributes
    ----------
    labels : tuple of SeatLabel, length N
    positions : ndarray, shape (N, 2), float64
        Seat centres (x, y) in scene units; row i belongs to ``labels[i]``.
    heights : ndarray, shape (N,), float64, optional
        A phone's height at each seat (the optional ``z`` column, scene units; NaN where not
        given), for sound location in tiered venues.
    """

    labels: tuple[SeatLabel, ...]
    positions: np.ndarray
    heights: np.ndarray | None = None
    _index: dict[SeatLabel, int] = field(init=False, repr=False, compare=False)
    _tree: dict[str, dict[str, dict[str, int]]] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        positions = np.asarray(self.positions, dtype=np.float64)
        if positions.shape != (len(self.labels), 2):
            raise ValueError(
                f"positions must have shape ({len(self.labels)}, 2), got {positions.shape}"
            )
        object.__setattr__(self, "positions", positions)
        if self.heights is not None:
            heights = np.asarray(self.heights, dtype=np.float64)
            if heights.shape != (len(self.labels),):
                raise ValueError(f"heights must have shape ({len(self.labels)},), got {heights.shape}")
            object.__setattr__(self, "heights", heights)
        index = {label: i for i, label in enumerate(self.labels)}
        if len(index) != len(self.labels):
            raise ValueError("seat labels must be unique")
        tree: dict[str, dict[str, dict[str, int]]] = {}
        for label, i in index.items():
            tree.setdefault(label.section, {}).setdefault(label.row, {})[label.seat] = i
        object.__setattr__(self, "_index", index)
        object.__setattr__(self, "_tree", tree)

    def __len__(self) -> int:
        return len(self.labels)

    def find(self, section: Any, row: Any, seat: Any) -> int | None:
        """Index of the seat, or None when the map has no such seat."""
        return self._index.get(seat_label(section, row, seat))

    def suggest(self, section: Any, row: Any, seat: Any, limit: int = 5) -> list[SeatLabel]:
        """Seats a person probably meant when `find` failed, best first.

        Close spellings of the section, then of the row within it; within such a row the
        numerically nearest seats ('seat 31' in a row of 30 suggests 30, 29, ...), then close
        spellings of the seat. The search is per level, so it stays fast on 100,000 seats.
        """
        query = seat_label(section, row, seat)
        out: list[SeatLabel] = []
        for sec in _close(query.section, self._tree):
            rows = self._tree[sec]
            for r in _close(query.row, rows):
                seats = rows[r]
                for s in _numeric_neighbours(query.seat, seats) + _close(query.seat, seats):
                    label = SeatLabel(sec, r, s)
                    if label not in out:
                        out.append(label)
        return out[:limit]


def _close(word: str, options: dict[str, Any], n: int = 3) -> list[str]:
    if word in options:
        return [word]
    # A one-letter section typed wrong ('B' for 'A') has no close spelling; still offer the
    # most similar ones rather than nothing.
    return difflib.get_close_matches(word, list(options), n=n, cutoff=0.5) or (
        difflib.get_close_matches(word, list(options), n=n, cutoff=0.0)
    )


def _numeric_neighbours(seat: str, seats: dict[str, int], n: int = 3) -> list[str]:
    if not seat.isdigit():
        return []
    numbers = [s for s in seats if s.isdigit()]
    return sorted(numbers, key=lambda s: abs(int(s) - int(seat)))[:n]


# ----------------------------------------------------------------------------------- parsing


def parse_seat_map(
    data: bytes | str, *, fmt: Literal["csv", "json"] | None = None
) -> SeatMap:
    """Read a seat map from CSV or JSON.

    Parameters
    ----------
    data : bytes or str
        CSV with a header naming the columns ``section, row, seat, x, y`` (any order, any case,
        ``,`` or ``;`` separated), or JSON: a list of objects with those keys, or an object
        ``{"seats": [...]}``. Bytes are decoded as UTF-8 (a BOM is allowed).
    fmt : {"csv", "json"}, optional
        Guessed from the first character when omitted.

    Returns
    -------
    SeatMap

    Raises
    ------
    SeatMapError
        Listing every problem with its line number: missing or non-numeric fields, non-finite
        coordinates, a seat defined twice, two seats at one position, an empty map.
    """
    if isinstance(data, bytes):
        try:
            data = data.decode("utf-8-sig")
        except UnicodeDecodeError as exc:
            raise SeatMapError([f"file is not UTF-8 text ({exc.reason} at byte {exc.start})"]) from exc
    if fmt is None:
        fmt = "json" if data.lstrip()[:1] in ("[", "{") else "csv"
    if fmt not in ("csv", "json"):
        raise ValueError(f"fmt must be 'csv' or 'json', got {fmt!r}")
    records = _csv_records(data) if fmt == "csv" else _json_records(data)
    return _build(records)


def _csv_records(text: str) -> Iterator[tuple[str, dict[str, Any]]]:
    lines = text.splitlines()
    if not lines or not lines[0].strip():
        raise SeatMapError(["line 1: expected a header naming section,row,seat,x,y"])
    delimiter = ";" if lines[0].count(";") > lines[0].count(",") else ","
    reader = csv.reader(io.StringIO(text), delimiter=delimiter)
    header = [h.strip().lower() for h in next(reader)]
    missing = [c for c in REQUIRED_COLUMNS if c not in header]
    if missing:
        raise SeatMapError([f"line 1: header lacks column(s) {', '.join(missing)}"])
    for row in reader:
        if not any(cell.strip() for cell in row):
            continue
        where = f"line {reader.line_num}"
        if len(row) != len(header):
            yield where, {"__error__": f"expected {len(header)} fields, found {len(row)}"}
            continue
        yield where, dict(zip(header, row, strict=True))


def _json_records(text: str) -> Iterator[tuple[str, dict[str, Any]]]:
    try:
        doc = json.loads(text)
    except json.JSONDecodeError as exc:
        raise SeatMapError([f"line {exc.lineno}: invalid JSON ({exc.msg})"]) from exc
    except RecursionError:
        raise SeatMapError(["line 1: the JSON is nested too deeply (a seat map is a list of objects)"]) from None
    items = doc.get("seats") if isinstance(doc, dict) else doc
    if not isinstance(items, list):
        raise SeatMapError(["line 1: expected a list of seats or an object with key 'seats'"])
    for number, (item, line) in enumerate(zip(items, _json_item_lines(text), strict=False), 1):
        where = f"line {line} (seat entry {number})"
        if not isinstance(item, dict):
            yield where, {"__error__": "entry is not an object"}
            continue
        yield where, {str(k).lower(): v for k, v in item.items()}


def _json_item_lines(text: str) -> Iterator[int]:
    """Line number where each element of the (first) top-level seat list starts. The lines are
    counted on from the previous element, so a map costs one pass over its text."""
    decoder = json.JSONDecoder()
    start = text.index("[")
    pos = start + 1
    line, counted = 1, 0
    while True:
        while pos < len(text) and text[pos] in " \t\r\n,":
            pos += 1
        if pos >= len(text) or text[pos] == "]":
            return
        line += text.count("\n", counted, pos)
        counted = pos
        yield line
        _, pos = decoder.raw_decode(text, pos)


def _number(value: Any) -> float:
    """A coordinate from CSV text or a JSON number; JSON's true and false are not numbers."""
    if isinstance(value, bool):
        raise TypeError(value)
    return float(value)


def _parse_record(record: dict[str, Any]) -> tuple[SeatLabel, float, float, float]:
    if "__error__" in record:
        raise ValueError(record["__error__"])
    missing = [c for c in REQUIRED_COLUMNS if record.get(c) is None or str(record[c]).strip() == ""]
    if missing:
        raise ValueError(f"missing {', '.join(missing)}")
    coords = []
    for axis in ("x", "y"):
        value = record[axis]
        try:
            number = _number(value)
        except (TypeError, ValueError):
            raise ValueError(f"{axis}={value!r} is not a number") from None
        if not math.isfinite(number):
            raise ValueError(f"{axis}={value!r} is not a finite number")
        coords.append(number)
    z = math.nan
    if record.get("z") is not None and str(record["z"]).strip() != "":
        try:
            z = _number(record["z"])
        except (TypeError, ValueError):
            raise ValueError(f"z={record['z']!r} is not a number") from None
        if not math.isfinite(z):
            raise ValueError(f"z={record['z']!r} is not a finite number")
    for part in ("section", "row", "seat"):
        text = str(record[part])
        if len(text) > MAX_LABEL_CHARS:
            raise ValueError(f"{part} has {len(text)} characters; at most {MAX_LABEL_CHARS}")
        if any(ord(c) < 32 or ord(c) == 127 for c in text):
            raise ValueError(f"{part} contains a control character")
    return seat_label(record["section"], record["row"], record["seat"]), coords[0], coords[1], z


def _build(records: Iterable[tuple[str, dict[str, Any]]]) -> SeatMap:
    errors: list[str] = []
    labels: list[SeatLabel] = []
    xy: list[tuple[float, float]] = []
    zs: list[float] = []
    seen_label: dict[SeatLabel, str] = {}
    seen_position: dict[tuple[float, float], tuple[SeatLabel, str]] = {}
    for count, (where, record) in enumerate(records, 1):
        if count > MAX_SEATS:
            raise SeatMapError([f"{where}: the map has more than {MAX_SEATS:,} seats, the most one scene takes"])
        try:
            label, x, y, z = _parse_record(record)
        except ValueError as exc:
            errors.append(f"{where}: {exc}")
            continue
        key = (round(x, 6), round(y, 6))
        if label in seen_label:
            errors.append(f"{where}: seat {label} already defined on {seen_label[label]}")
        elif key in seen_position:
            other, other_where = seen_position[key]
            errors.append(f"{where}: seat {label} at ({x:g}, {y:g}) has the same position as "
                          f"seat {other} on {other_where}")
        else:
            seen_label[label] = where
            seen_position[key] = (label, where)
            labels.append(label)
            xy.append((x, y))
            zs.append(z)
    if not labels and not errors:
        errors.append("the seat map has no seats")
    if errors:
        raise SeatMapError(errors)
    heights = np.asarray(zs, dtype=np.float64)
    return SeatMap(tuple(labels), np.asarray(xy, dtype=np.float64),
                   heights if np.isfinite(heights).any() else None)


# ---------------------------------------------------------------------------------- snapping


@dataclass(frozen=True)
class SnapResult:
    """Seats chosen for observations by `snap_to_seats`.

    Attributes
    ----------
    seat_index : ndarray, shape (M,), int64
        Index into the seat map per observation, -1 when the observation was left unmatched.
        Observations of one pixel (same ``pixel_ids`` entry) share one seat.
    confidence : ndarray, shape (M,), float64
        Approximate posterior probability (0..1) that the chosen seat (or "no seat") is right,
        from the likelihood of the choice against its best single alternatives, including
        swapping seats with the neighbour that holds the alternative seat.
    distance : ndarray, shape (M,), float64
        Distance in scene units from the pixel's fused position to its seat (NaN if unmatched).
    """

    seat_index: np.ndarray
    confidence: np.ndarray
    distance: np.ndarray

    @property
    def matched_fraction(self) -> float:
        return float(np.mean(self.seat_index >= 0)) if self.seat_index.size else 0.0


def _as_sigma(sigma: Any, m: int) -> np.ndarray:
    s = np.asarray(sigma, dtype=np.float64)
    if s.ndim == 0:
        s = np.full((m, 2), float(s))
    elif s.shape == (m,):
        s = np.repeat(s[:, None], 2, axis=1)
    if s.shape != (m, 2):
        raise ValueError(f"sigma must be a scalar, shape ({m},) or ({m}, 2); got {s.shape}")
    if not np.all(np.isfinite(s) & (s > 0)):
        raise ValueError("sigma must be finite and positive for every observation")
    return s


def fuse_observations(
    positions: np.ndarray, sigma: np.ndarray, pixel_ids: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Inverse-variance mean of each pixel's observations.

    Returns the fused positions (P, 2), their standard deviations (P, 2) and, per observation,
    the row of its pixel in those arrays (M,).
    """
    _, inverse = np.unique(pixel_ids, return_inverse=True)
    p = int(inverse.max()) + 1
    weight = 1.0 / sigma**2
    sum_w = np.zeros((p, 2))
    sum_wx = np.zeros((p, 2))
    np.add.at(sum_w, inverse, weight)
    np.add.at(sum_wx, inverse, weight * positions)
    return sum_wx / sum_w, 1.0 / np.sqrt(sum_w), inverse


def snap_to_seats(
    seat_map: SeatMap,
    positions: Any,
    *,
    sigma: Any,
    pixel_ids: Any = None,
    gate: float = 6.0,
    max_candidates: int = 12,
) -> SnapResult:
    """Assign observed positions to seats with one global minimum-cost matching.

    Each pixel gets at most one seat and each seat at most one pixel. The cost of pixel i on
    seat j is the negative log-likelihood of the observation under Gaussian noise with that
    observation's own standard deviation, ``0.5 * ((dx/sx)^2 + (dy/sy)^2)`` (the per-pixel
    normalising constant is dropped: every pixel pays it once whatever it is matched to).
    A pixel may stay unmatched at cost ``0.5 * gate^2``, so a pixel farther than `gate` standard
    deviations from every free seat stays unmatched rather than stealing a neighbour's seat;
    this also handles maps that are not fully occupied. Candidates are the `max_candidates`
    nearest seats within the gate (a k-d tree), so the matching is sparse and fast on 100,000
    seats.

    Parameters
    ----------
    seat_map : SeatMap
    positions : array_like, shape (M, 2), float
        Observed positions in scene units.
    sigma : float or array_like, shape (M,) or (M, 2)
        Standard deviation of each observation (per axis if (M, 2)), scene units.
    pixel_ids : array_like, shape (M,), optional
        Observations with equal ids are of one pixel; they are fused (inverse-variance mean)
        before matching and receive the same seat.
    gate : float
        Mahalanobis distance beyond which a seat is not a candidate.
    max_candidates : int
        Nearest seats considered per pixel.

    Returns
    -------
    SnapResult
    """
    pos = np.asarray(positions, dtype=np.float64)
    if pos.ndim != 2 or pos.shape[1] != 2:
        raise ValueError(f"positions must have shape (M, 2), got {pos.shape}")
    if not np.all(np.isfinite(pos)):
        raise ValueError("positions must be finite")
    if not (math.isfinite(gate) and gate > 0):
        raise ValueError(f"gate must be a positive number, got {gate}")
    m = len(pos)
    sig = _as_sigma(sigma, m)
    if m == 0:
        empty = np.zeros(0)
        return SnapResult(np.zeros(0, dtype=np.int64), empty, empty)
    ids = np.arange(m) if pixel_ids is None else np.asarray(pixel_ids)
    if ids.shape != (m,):
        raise ValueError(f"pixel_ids must have shape ({m},), got {ids.shape}")
    fused, fused_sigma, inverse = fuse_observations(pos, sig, ids)
    cand, cost = _candidates(seat_map.positions, fused, fused_sigma, gate, max_candidates)
    dummy = 0.5 * gate**2
    seat = _match(cand, cost, dummy, len(seat_map))
    confidence = _confidence(cand, cost, seat, dummy, len(seat_map))
    dist = np.full(len(fused), np.nan)
    ok = seat >= 0
    dist[ok] = np.hypot(*(fused[ok] - seat_map.positions[seat[ok]]).T)
    return SnapResult(seat[inverse], confidence[inverse], dist[inverse])


def _candidates(
    seats: np.ndarray, points: np.ndarray, sigma: np.ndarray, gate: float, k: int
) -> tuple[np.ndarray, np.ndarray]:
    """Nearest seats per point (P, K) with their costs; -1 / inf where fewer are in the gate."""
    k = min(k, len(seats))
    radius = gate * float(sigma.max())
    dist, idx = cKDTree(seats).query(points, k=k, distance_upper_bound=radius)
    idx = idx.reshape(len(points), k)
    found = idx < len(seats)
    safe = np.where(found, idx, 0)
    z = (seats[safe] - points[:, None, :]) / sigma[:, None, :]
    cost = 0.5 * np.sum(z**2, axis=2)
    keep = found & (cost <= 0.5 * gate**2)
    return np.where(keep, idx, -1), np.where(keep, cost, np.inf)


def _match(cand: np.ndarray, cost: np.ndarray, dummy: float, n_seats: int) -> np.ndarray:
    p = len(cand)
    keep = cand >= 0
    rows = np.concatenate([np.nonzero(keep)[0], np.arange(p)])
    cols = np.concatenate([cand[keep], n_seats + np.arange(p)])
    # +1 keeps every edge weight positive: the sparse matcher would read 0 as "no edge".
    weights = np.concatenate([cost[keep], np.full(p, dummy)]) + 1.0
    graph = csr_matrix((weights, (rows, cols)), shape=(p, n_seats + p))
    _, col = min_weight_full_bipartite_matching(graph)
    return np.where(col < n_seats, col, -1).astype(np.int64)


def _confidence(
    cand: np.ndarray, cost: np.ndarray, seat: np.ndarray, dummy: float, n_seats: int
) -> np.ndarray:
    """Posterior of each pixel's choice against single moves and pairwise swaps."""
    p, k = cand.shape
    rows = np.arange(p)
    own = np.where(seat[:, None] == cand, cost, 0.0).sum(axis=1)
    own = np.where(seat >= 0, own, dummy)
    owner = np.full(n_seats, -1)
    owner[seat[seat >= 0]] = rows[seat >= 0]
    holder = np.where(cand >= 0, owner[cand], -1)
    # Cost for the holder of an alternative seat to take this pixel's seat instead.
    holder_safe = np.where(holder >= 0, holder, 0)
    h_cand, h_cost = cand[holder_safe], cost[holder_safe]
    takes = h_cand == seat[:, None, None]
    h_to_mine = np.where(takes.any(axis=2), np.where(takes, h_cost, 0.0).sum(axis=2), dummy)
    h_to_mine = np.where(seat[:, None] >= 0, h_to_mine, dummy)
    h_now = own[holder_safe]
    delta = np.where(holder >= 0, cost + h_to_mine - own[:, None] - h_now, cost - own[:, None])
    delta = np.where((cand >= 0) & (cand != seat[:, None]), delta, np.inf)
    alt = np.exp(-np.clip(delta, -50, None)).sum(axis=1)
    alt += np.where(seat >= 0, np.exp(-np.clip(dummy - own, -50, None)), 0.0)
    return 1.0 / (1.0 + alt)
