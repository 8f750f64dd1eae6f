import numpy as np
import pytest

from c3s.vision.colormap import ColorMapper
from c3s.vision.render import render_crowd_view, side_by_side


def test_each_pixel_is_a_dot_of_its_colour_at_its_place():
    positions = np.array([[10.0, 10.0], [90.0, 40.0]])
    colors = np.array([[255, 0, 0], [0, 0, 255]], np.uint8)
    view = render_crowd_view(positions, colors, (100, 50), width_px=200, dot_radius_px=3)
    assert view.shape == (100, 200, 3)
    assert tuple(view[20, 20]) == (255, 0, 0)
    assert tuple(view[80, 180]) == (0, 0, 255)
    assert tuple(view[50, 100]) == (0, 0, 0)  # empty scene stays background
    assert tuple(view[20, 26]) == (0, 0, 0)  # beyond the dot's radius


def test_crowd_view_of_a_mapped_frame_looks_like_the_frame():
    # Left half of the frame yellow, right half cyan; a full stand shows the same split.
    frame = np.zeros((60, 120, 3), np.uint8)
    frame[:, :60] = (255, 255, 0)
    frame[:, 60:] = (0, 255, 255)
    gx, gy = np.meshgrid(np.arange(1, 120, 2.0), np.arange(1, 60, 2.0))
    positions = np.stack([gx.ravel(), gy.ravel()], axis=1)
    colors = ColorMapper.build(positions, (120, 60), frame.shape).colors(frame)
    view = render_crowd_view(positions, colors, (120, 60), width_px=240)
    dots = view.reshape(-1, 3)[view.reshape(-1, 3).any(axis=1)]
    assert len(dots) > 0.3 * view.shape[0] * view.shape[1]
    assert tuple(view[62, 42]) == (255, 255, 0)  # the dot of the pixel at (21, 31)
    assert tuple(view[62, 202]) == (0, 255, 255)


def test_side_by_side_puts_both_at_the_frame_height():
    frame = np.full((40, 60, 3), 200, np.uint8)
    view = np.full((80, 100, 3), 10, np.uint8)
    both = side_by_side(frame, view, gap_px=4)
    assert both.shape == (40, 60 + 4 + 50, 3)
    assert (both[:, :60] == 200).all() and (both[:, 64:] == 10).all()


def test_mismatched_colours_are_rejected():
    with pytest.raises(ValueError, match="colors"):
        render_crowd_view(np.zeros((3, 2)), np.zeros((2, 3), np.uint8), (10, 10), width_px=20)
