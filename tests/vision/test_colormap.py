import numpy as np
import pytest

from c3s.vision.colormap import (
    DECODE_LUT,
    ENCODE_LUT,
    FIT_MODES,
    ColorMapper,
    build_track_table,
    footprint_radii,
    linear_to_srgb,
    pack_color_map,
    reference_colors,
    track_for_pixel,
    unpack_color_map,
)


def seat_grid(scene_w, scene_h, spacing, *, jitter=0.0, seed=0):
    rng = np.random.default_rng(seed)
    xs = np.arange(spacing / 2, scene_w, spacing)
    ys = np.arange(spacing / 2, scene_h, spacing)
    gx, gy = np.meshgrid(xs, ys)
    positions = np.stack([gx.ravel(), gy.ravel()], axis=1)
    return positions + rng.uniform(-jitter, jitter, positions.shape)


def natural_frame(height, width, seed=0):
    """Gradients, hard-edged blobs and fine stripes: the mix that makes area averages differ."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:height, 0:width]
    frame = np.stack([xx * 255 // width, yy * 255 // height, np.full_like(xx, 90)], -1)
    for _ in range(30):
        cy, cx = rng.integers(0, height), rng.integers(0, width)
        r = rng.integers(2, max(3, height // 6))
        frame[(yy - cy) ** 2 + (xx - cx) ** 2 < r * r] = rng.integers(0, 256, 3)
    frame[::2, : width // 4] = 0
    return frame.astype(np.uint8)


def test_lookup_tables_round_trip_every_level():
    assert np.array_equal(ENCODE_LUT[DECODE_LUT], np.arange(256))


@pytest.mark.parametrize(("shape", "level"), [((64, 96), None), ((67, 101), None), ((67, 101), 8)])
def test_uniform_frame_gives_its_exact_colour_everywhere(shape, level):
    # Also with frame sides that are not multiples of the pyramid's cells, up to the edges.
    positions = seat_grid(40, 30, 1.3, jitter=0.3)
    for color in [(0, 0, 0), (255, 255, 255), (200, 17, 90), (1, 128, 254)]:
        frame = np.empty((*shape, 3), np.uint8)
        frame[...] = color
        mapper = ColorMapper.build(positions, (40, 30), frame.shape, fit="stretch", level=level)
        assert (mapper.colors(frame) == color).all()


def test_a_lone_pixel_shows_the_whole_frame_average():
    frame = np.zeros((30, 45, 3), np.uint8)
    frame[:15] = 255
    mapper = ColorMapper.build(np.array([[5.0, 5.0]]), (45, 30), frame.shape, fit="stretch")
    assert mapper.colors(frame).tolist() == [[188, 188, 188]]


def test_split_frame_gives_each_side_its_colour():
    frame = np.zeros((120, 160, 3), np.uint8)
    frame[:, :80] = (255, 0, 0)
    frame[:, 80:] = (0, 0, 255)
    positions = seat_grid(160, 120, 4, jitter=1.0)
    mapper = ColorMapper.build(positions, (160, 120), frame.shape, fit="stretch")
    colors = mapper.colors(frame)
    left = mapper.boxes_px[:, 2] <= 80
    right = mapper.boxes_px[:, 0] >= 80
    assert left.sum() > 100 and right.sum() > 100
    assert (colors[left] == (255, 0, 0)).all()
    assert (colors[right] == (0, 0, 255)).all()
    straddling = ~left & ~right
    assert straddling.sum() > 10
    # A footprint across the split mixes both in proportion to its area on each side, in linear light.
    x0, x1 = mapper.boxes_px[straddling, 0], mapper.boxes_px[straddling, 2]
    share_left = (80 - x0) / (x1 - x0)
    expected_red = np.rint(linear_to_srgb(share_left) * 255)
    expected_blue = np.rint(linear_to_srgb(1 - share_left) * 255)
    assert np.abs(colors[straddling, 0] - expected_red).max() <= 1
    assert np.abs(colors[straddling, 2] - expected_blue).max() <= 1


def test_black_and_white_stripes_average_in_linear_light_to_188_not_128():
    frame = np.zeros((64, 64, 3), np.uint8)
    frame[::2] = 255
    positions = seat_grid(64, 64, 8)
    mapper = ColorMapper.build(positions, (64, 64), frame.shape, fit="stretch")
    colors = mapper.colors(frame).astype(int)
    assert np.abs(colors - 188).max() <= 1


def test_contain_letterboxes_in_black():
    frame = np.full((50, 50, 3), 255, np.uint8)
    positions = np.array([[10.0, 50.0], [100.0, 50.0], [190.0, 50.0]])
    mapper = ColorMapper.build(positions, (200, 100), frame.shape, fit="contain", radii=4.0)
    assert mapper.colors(frame).tolist() == [[0, 0, 0], [255, 255, 255], [0, 0, 0]]


def test_cover_crops_and_stretch_keeps_the_whole_frame():
    frame = np.zeros((100, 100, 3), np.uint8)
    frame[:20] = (255, 0, 0)  # a red band across the top fifth
    frame[20:] = (0, 255, 0)
    top = np.array([[100.0, 5.0]])
    # cover scales the square frame to 200 x 200 and crops its top and bottom 50 units.
    covered = ColorMapper.build(top, (200, 100), frame.shape, fit="cover", radii=2.0)
    stretched = ColorMapper.build(top, (200, 100), frame.shape, fit="stretch", radii=2.0)
    assert covered.colors(frame).tolist() == [[0, 255, 0]]
    assert stretched.colors(frame).tolist() == [[255, 0, 0]]


def test_sparse_crowd_gets_larger_footprints_and_no_aliasing():
    dense = seat_grid(50, 100, 1.0, seed=1)
    sparse = seat_grid(50, 100, 5.0, seed=2) + [50, 0]
    positions = np.concatenate([dense, sparse])
    radii = footprint_radii(positions)
    is_sparse = positions[:, 0] > 52
    assert np.median(radii[is_sparse]) > 3 * np.median(radii[~is_sparse])
    # A 1-frame-pixel checkerboard: a point sample would show pure black or white.
    frame = np.zeros((200, 200, 3), np.uint8)
    frame[(np.add.outer(np.arange(200), np.arange(200)) % 2) == 0] = 255
    mapper = ColorMapper.build(positions, (100, 100), frame.shape, fit="stretch")
    colors = mapper.colors(frame).astype(int)
    assert np.abs(colors[is_sparse] - 188).max() <= 3


def test_default_pyramid_agrees_with_exact_reference():
    frame = natural_frame(240, 320)
    positions = seat_grid(320, 240, 8, jitter=2.0, seed=3)
    mapper = ColorMapper.build(positions, (320, 240), frame.shape, fit="stretch")
    assert mapper.pyramid.base > 1  # the approximation is really in use
    reference = reference_colors(mapper, frame).astype(int)
    error = np.abs(mapper.colors(frame).astype(int) - reference)
    assert error.mean() < 1.5
    assert np.percentile(error, 95) <= 6
    exact = ColorMapper.build(
        positions, (320, 240), frame.shape, fit="stretch", level=1, cells_per_footprint=np.inf
    )
    assert np.abs(exact.colors(frame).astype(int) - reference).max() <= 1


def test_track_table_holds_each_frames_colours_per_pixel():
    rng = np.random.default_rng(4)
    frames = [rng.integers(0, 256, (48, 64, 3), dtype=np.uint8) for _ in range(5)]
    positions = seat_grid(64, 48, 3, jitter=0.5)
    mapper = ColorMapper.build(positions, (64, 48), frames[0].shape)
    table = build_track_table(mapper, iter(frames))
    assert table.shape == (5, len(positions), 3) and table.dtype == np.uint8
    track = track_for_pixel(table, 7)
    assert np.array_equal(track, np.stack([mapper.colors(f)[7] for f in frames]))
    with pytest.raises(ValueError, match="at least one frame"):
        build_track_table(mapper, [])
    with pytest.raises(ValueError, match="outside"):
        track_for_pixel(table, len(positions))


def test_pack_unpack_round_trip_and_rejects_foreign_bytes():
    colors = np.random.default_rng(5).integers(0, 256, (1000, 3), dtype=np.uint8)
    data = pack_color_map(colors)
    assert len(data) == 12 + 3000
    assert np.array_equal(unpack_color_map(data, 1000), colors)
    with pytest.raises(ValueError, match="expected"):
        unpack_color_map(data, 999)
    with pytest.raises(ValueError, match="bytes"):
        unpack_color_map(data[:-1], 1000)
    with pytest.raises(ValueError, match="magic"):
        unpack_color_map(b"XXXX" + data[4:], 1000)


def test_bad_input_is_rejected_with_a_clear_message():
    frame = np.zeros((10, 10, 3), np.uint8)
    with pytest.raises(ValueError, match="NaN"):
        ColorMapper.build(np.array([[1.0, np.nan]]), (10, 10), frame.shape)
    with pytest.raises(ValueError, match="fit"):
        ColorMapper.build(np.array([[1.0, 1.0]]), (10, 10), frame.shape, fit="zoom")
    mapper = ColorMapper.build(np.array([[1.0, 1.0], [5.0, 5.0]]), (10, 10), frame.shape)
    with pytest.raises(ValueError, match="built for"):
        mapper.colors(np.zeros((20, 10, 3), np.uint8))


def test_stretch_onto_a_wider_scene_keeps_the_edge_columns_white():
    # 100 x 100 frame on a 200 x 100 scene: a frame pixel is 2 units wide but 1 unit tall, so
    # footprints are widened in x, and at the scene's edge that widening must stay in the scene.
    frame = np.full((100, 100, 3), 255, np.uint8)
    mapper = ColorMapper.build(seat_grid(200, 100, 1.0), (200, 100), frame.shape, fit="stretch")
    assert mapper.boxes_px[:, 0].min() >= 0 and mapper.boxes_px[:, 2].max() <= 100
    assert (mapper.boxes_px[:, 2] - mapper.boxes_px[:, 0]).min() >= 1 - 1e-9
    assert (mapper.colors(frame) == 255).all()
    assert (reference_colors(mapper, frame) == 255).all()


def edge_positions(scene_w, scene_h):
    """A seat grid plus pixels on, at the corners of, and past the scene's edges."""
    xs, ys = [0.0, scene_w / 2, scene_w], [0.0, scene_h / 2, scene_h]
    rim = [(x, y) for x in xs for y in ys] + [(-3.0, scene_h / 3), (scene_w + 3, scene_h / 4)]
    return np.concatenate([seat_grid(scene_w, scene_h, min(scene_w, scene_h) / 7, jitter=0.2), rim])


@pytest.mark.parametrize("fit", FIT_MODES)
@pytest.mark.parametrize(("frame_hw", "scene_size"), [
    ((10, 10), (20, 10)),  # stretch: 2 units per frame pixel in x, 1 in y
    ((10, 10), (10, 20)),
    ((7, 13), (13, 13)),  # odd frame sides, wider than the scene's aspect
    ((12, 5), (30, 11)),  # taller frame on a wide scene
])
@pytest.mark.parametrize("level", [None, 1, 4])
def test_uniform_frame_gives_its_exact_colour_up_to_and_across_the_frame_edge(
    fit, frame_hw, scene_size, level
):
    positions = edge_positions(*scene_size)
    frame_h, frame_w = frame_hw
    for radii in [None, 0.2, 3.0]:  # density, narrower than a frame pixel, crossing the edges
        mapper = ColorMapper.build(positions, scene_size, (*frame_hw, 3), fit=fit, radii=radii,
                                   level=level)
        x0, y0, x1, y1 = mapper.boxes_px.T
        seen = (np.minimum(x1, frame_w) > np.maximum(x0, 0)) & (np.minimum(y1, frame_h) > np.maximum(y0, 0))
        at_edge = seen & ((x0 <= 0) | (y0 <= 0) | (x1 >= frame_w) | (y1 >= frame_h))
        assert at_edge.any()
        for color in [(255, 255, 255), (200, 17, 90), (1, 128, 254)]:
            frame = np.empty((*frame_hw, 3), np.uint8)
            frame[...] = color
            colors, reference = mapper.colors(frame), reference_colors(mapper, frame)
            assert (colors[seen] == color).all(), (radii, color)
            assert (reference[seen] == color).all(), (radii, color)
            # Wholly outside the frame (contain's bars) stays black, as documented.
            assert (colors[~seen] == 0).all() and (reference[~seen] == 0).all()


def test_a_footprint_partly_in_contains_bars_averages_only_the_frame_part():
    # A 10 x 10 frame, red left half and blue right half, fits x 5..15 of a 20 x 10 scene.
    frame = np.zeros((10, 10, 3), np.uint8)
    frame[:, :5] = (255, 0, 0)
    frame[:, 5:] = (0, 0, 255)
    positions = np.array([[5.0, 5.0], [15.0, 5.0], [10.0, 5.0], [2.0, 5.0]])
    mapper = ColorMapper.build(positions, (20, 10), frame.shape, fit="contain", radii=2.0, level=1)
    # Half of each of the first two footprints lies in a bar: left out, not counted as black.
    # The third straddles the split evenly; the fourth lies wholly in the left bar.
    expected = [[255, 0, 0], [0, 0, 255], [188, 0, 188], [0, 0, 0]]
    assert mapper.colors(frame).tolist() == expected
    assert reference_colors(mapper, frame).tolist() == expected
