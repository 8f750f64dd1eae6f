"""Seat maps may carry a phone height per seat (`z`), for sound location on tiers."""

from __future__ import annotations

import numpy as np
import pytest

from c3s.positioning.seats import SeatMapError, parse_seat_map


def test_the_optional_z_column_is_read():
    seats = parse_seat_map("section,row,seat,x,y,z\nA,1,1,0,0,1.4\nA,2,1,0,0.8,1.85\n", fmt="csv")
    np.testing.assert_allclose(seats.heights, [1.4, 1.85])
    flat = parse_seat_map("section,row,seat,x,y\nA,1,1,0,0\n", fmt="csv")
    assert flat.heights is None


def test_a_bad_height_names_its_line():
    with pytest.raises(SeatMapError, match="line 3: z='high'"):
        parse_seat_map("section,row,seat,x,y,z\nA,1,1,0,0,1.4\nA,2,1,0,0.8,high\n", fmt="csv")
