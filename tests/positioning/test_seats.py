"""Seat maps: import with line-numbered errors, lookup with suggestions, snapping to seats."""

from __future__ import annotations

import json

import numpy as np
import pytest
from scipy.spatial import cKDTree

from c3s.positioning.seats import (
    SeatLabel,
    SeatMap,
    SeatMapError,
    parse_seat_map,
    snap_to_seats,
)


def grid_map(n: int, section: str = "A") -> SeatMap:
    rows, seats = np.divmod(np.arange(n * n), n)
    labels = tuple(SeatLabel(section, str(r + 1), str(s + 1)) for r, s in zip(rows, seats, strict=True))
    return SeatMap(labels, np.stack([seats, rows], axis=1).astype(float))


GOOD_CSV = """section,row,seat,x,y
A,1,1,0,0
A,1,2,1,0
A,2,1,0,1
B,1,1,10,0
"""


def test_csv_and_json_give_the_same_map():
    from_csv = parse_seat_map(GOOD_CSV.encode())
    seats = [
        {"section": "A", "row": 1, "seat": 1, "x": 0, "y": 0},
        {"section": "A", "row": 1, "seat": 2, "x": 1, "y": 0},
        {"section": "A", "row": 2, "seat": 1, "x": 0, "y": 1},
        {"section": "B", "row": 1, "seat": 1, "x": 10, "y": 0},
    ]
    from_json = parse_seat_map(json.dumps({"seats": seats}, indent=1))
    assert from_csv.labels == from_json.labels
    np.testing.assert_array_equal(from_csv.positions, from_json.positions)
    assert from_csv.positions.shape == (4, 2)


def test_semicolon_csv_and_header_in_any_order_and_case():
    text = "X;Y;Seat;Row;Section\n3.5;2;7;12;north\n"
    seat_map = parse_seat_map(text)
    assert seat_map.find("North", "12", "07") == 0
    np.testing.assert_array_equal(seat_map.positions, [[3.5, 2.0]])


def test_malformed_csv_lists_every_bad_line_with_its_number():
    text = (
        "section,row,seat,x,y\n"
        "A,1,1,0,0\n"
        "A,1,2,abc,0\n"  # line 3: x not a number
        "A,1,3,2\n"  # line 4: a field short
        "A,1,1,5,5\n"  # line 5: seat defined twice
        "A,1,4,0,0\n"  # line 6: same position as A-1-1
        ",1,5,9,9\n"  # line 7: no section
        "A,1,6,nan,1\n"  # line 8: not finite
    )
    with pytest.raises(SeatMapError) as caught:
        parse_seat_map(text)
    message = str(caught.value)
    assert len(caught.value.errors) == 6
    for line, words in [(3, "x='abc'"), (4, "expected 5 fields"), (5, "already defined on line 2"),
                        (6, "same position"), (7, "missing section"), (8, "not a finite")]:
        assert any(e.startswith(f"line {line}:") and words in e for e in caught.value.errors), line
        assert f"line {line}:" in message


def test_csv_without_required_columns_is_refused():
    with pytest.raises(SeatMapError, match="lacks column.*x, y"):
        parse_seat_map("section,row,seat\nA,1,1\n")


def test_json_errors_carry_line_numbers():
    text = '[\n {"section": "A", "row": 1, "seat": 1, "x": 0, "y": 0},\n {"section": "A", "row": 1}\n]'
    with pytest.raises(SeatMapError) as caught:
        parse_seat_map(text)
    assert caught.value.errors == ["line 3 (seat entry 2): missing seat, x, y"]
    with pytest.raises(SeatMapError, match="line 2: invalid JSON"):
        parse_seat_map('[\n {"section": }\n]')


def test_long_error_lists_are_cut_in_the_message_but_kept_whole():
    text = "section,row,seat,x,y\n" + "".join(f"A,1,{i},x,0\n" for i in range(30))
    with pytest.raises(SeatMapError) as caught:
        parse_seat_map(text)
    assert len(caught.value.errors) == 30
    assert "and 10 more" in str(caught.value)


def test_empty_map_is_an_error():
    with pytest.raises(SeatMapError, match="no seats"):
        parse_seat_map("section,row,seat,x,y\n")


def test_unknown_seat_gets_close_suggestions():
    seat_map = grid_map(30)
    assert seat_map.find("a", "03", "7") is not None
    assert seat_map.find("A", "3", "31") is None
    # Seat past the end of the row: the last seats of that row.
    assert seat_map.suggest("A", "3", "31")[:2] == [SeatLabel("A", "3", "30"), SeatLabel("A", "3", "29")]
    # A typo in the section letter still lands on the real section.
    assert SeatLabel("A", "3", "7") in seat_map.suggest("B", "3", "7")
    # A swapped row digit suggests the right seat in a similar row.
    assert any(s.seat == "7" for s in seat_map.suggest("A", "31", "7"))


def test_snapping_beats_nearest_seat_on_a_noisy_full_grid():
    seat_map = grid_map(40)
    rng = np.random.default_rng(3)
    obs = seat_map.positions + rng.normal(0, 0.25, seat_map.positions.shape)
    truth = np.arange(len(seat_map))
    result = snap_to_seats(seat_map, obs, sigma=0.25)
    nearest = cKDTree(seat_map.positions).query(obs)[1]
    snapped_right = np.mean(result.seat_index == truth)
    assert snapped_right > np.mean(nearest == truth) + 0.03
    assert snapped_right > 0.98
    # One pixel per seat.
    matched = result.seat_index[result.seat_index >= 0]
    assert len(np.unique(matched)) == len(matched)
    # Confidence is lower where the seat is wrong, and about as high as the share of right seats.
    wrong = result.seat_index != truth
    assert result.confidence[wrong].mean() < result.confidence[~wrong].mean() - 0.05
    assert abs(result.confidence.mean() - snapped_right) < 0.01


def test_known_uncertainty_and_several_observations_help():
    seat_map = grid_map(40)
    rng = np.random.default_rng(5)
    n = len(seat_map)
    truth = np.arange(n)
    sigma = rng.choice([0.08, 0.4], n)
    obs = seat_map.positions + rng.normal(0, 1, (n, 2)) * sigma[:, None]
    weighted = snap_to_seats(seat_map, obs, sigma=sigma).seat_index
    plain = snap_to_seats(seat_map, obs, sigma=float(sigma.mean())).seat_index
    assert np.mean(weighted == truth) > np.mean(plain == truth)
    pixel = np.repeat(truth, 4)
    many = seat_map.positions[pixel] + rng.normal(0, 0.3, (4 * n, 2))
    fused = snap_to_seats(seat_map, many, sigma=0.3, pixel_ids=pixel)
    single = snap_to_seats(seat_map, many[::4], sigma=0.3)
    assert np.all(fused.seat_index.reshape(n, 4) == fused.seat_index[::4, None])
    assert np.mean(fused.seat_index[::4] == truth) > np.mean(single.seat_index == truth)


def test_far_observations_and_crowded_seats_stay_unmatched():
    seat_map = grid_map(5)
    obs = np.array([[2.05, 2.0], [1.95, 2.02], [50.0, 50.0]])
    result = snap_to_seats(seat_map, obs, sigma=0.1)
    assert result.seat_index[2] == -1 and np.isnan(result.distance[2])
    centre = seat_map.find("A", "3", "3")
    # Two observations on one seat: one gets it, the other stays unmatched rather than being
    # pushed a full pitch (10 sigma) away.
    assert sorted(result.seat_index[:2].tolist()) == [-1, centre]


def test_snap_rejects_bad_input():
    seat_map = grid_map(3)
    with pytest.raises(ValueError, match="shape"):
        snap_to_seats(seat_map, np.zeros((4, 3)), sigma=0.1)
    with pytest.raises(ValueError, match="sigma must be finite and positive"):
        snap_to_seats(seat_map, np.zeros((2, 2)), sigma=[0.1, 0.0])
    with pytest.raises(ValueError, match="finite"):
        snap_to_seats(seat_map, np.array([[np.nan, 0.0]]), sigma=0.1)
