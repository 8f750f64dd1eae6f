"""The blink code and its video decoder, on small seeded synthetic clips."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from c3s.vision import blink
from c3s.vision.blink import _code as blink_code
from c3s.vision.blink import _colours as blink_colours
from c3s.vision.blink_synth import make_clip

MATCH_PX = 2.0


def _score(clip, detections):
    truth = {int(n): xy for n, xy in zip(clip.numbers, clip.xy, strict=True)}
    right, wrong, errors = set(), [], []
    for d in detections:
        xy = truth.get(d.number)
        err = np.inf if xy is None else float(np.hypot(d.x_img - xy[0], d.y_img - xy[1]))
        if err <= MATCH_PX:
            right.add(d.number)
            errors.append(err)
        else:
            wrong.append(d)
    return right, wrong, (float(np.median(errors)) if errors else np.inf)


def _pack(bits: np.ndarray) -> np.ndarray:
    """(n, 16, 3) bits -> one int per pattern."""
    flat = bits.reshape(len(bits), -1).astype(np.int64)
    return flat @ (1 << np.arange(flat.shape[1], dtype=np.int64))


# ------------------------------------------------------------------------------------ the code


def test_pattern_contract():
    p = blink.pattern(12345)
    assert p.slot_ms * len(p.colors) <= 1200.0
    assert p.colors.dtype == np.uint8 and p.colors.shape == (16, 3)
    assert set(np.unique(p.colors)) <= {0, 255}
    assert p.colors[0].tolist() == [255, 255, 255] and p.colors[1].tolist() == [0, 0, 0]
    # slot floor(t / slot_ms) mod n_slots on the server clock
    t = 1_700_000_000_000.0 + 5 * p.slot_ms + 1.0
    k = int(t // p.slot_ms) % 16
    assert p.color_at(t).tolist() == p.colors[k].tolist()


@pytest.mark.parametrize("bad", [-1, blink.N_NUMBERS, 2.5, "7", True])
def test_pattern_rejects_bad_numbers(bad):
    with pytest.raises(ValueError, match="pixel number"):
        blink.pattern(bad)


def test_every_number_has_a_distinct_valid_pattern_under_every_cyclic_shift():
    numbers = np.arange(blink.N_NUMBERS)
    bits = blink.pattern_bits(numbers)
    assert blink.N_NUMBERS >= 100_000
    np.testing.assert_array_equal(
        bits[:7].astype(np.uint8) * 255, [blink.pattern(int(n)).colors for n in range(7)]
    )
    on = bits[:, 2:].sum(axis=2)
    assert on.min() >= 1 and on.max() <= 2  # data slots never black (occlusion) nor white
    words = _pack(bits)
    assert len(np.unique(words)) == len(words)
    for shift in range(1, 16):
        shifted = _pack(np.roll(bits, shift, axis=1))
        assert not np.isin(shifted, words).any()


def test_shifted_or_corrupted_readings_never_decode_to_another_number():
    rng = np.random.default_rng(3)
    numbers = rng.choice(blink.N_NUMBERS, 3000, replace=False)
    ideal = blink.pattern_bits(numbers).astype(np.float32) * 1000.0 + 50.0
    decoded, reasons, _, _ = blink_colours._classify(ideal, 60.0)
    np.testing.assert_array_equal(decoded, numbers)
    for shift in range(1, 16):
        decoded, reasons, _, _ = blink_colours._classify(np.roll(ideal, shift, axis=1), 60.0)
        assert (decoded == -1).all()
    # one data slot read as a different valid data colour: always detected (distance 4)
    bad = ideal.copy()
    slot = rng.integers(2, 16, len(numbers))
    rows = np.arange(len(numbers))
    current = bad[rows, slot] > 500
    alternatives = blink_code._DATA_BITS[rng.integers(0, 6, len(numbers))].astype(bool)
    same = (alternatives == current).all(axis=1)
    alternatives[same] = blink_code._DATA_BITS[(np.argmax(same) + 1) % 6].astype(bool)
    bad[rows, slot] = np.where(alternatives, 1050.0, 50.0)
    changed = ~(alternatives == current).all(axis=1)
    decoded, reasons, _, _ = blink_colours._classify(bad, 60.0)
    assert changed.sum() > 2500
    # rejected, or (when the change made an invalid pair, i.e. a known erasure) repaired
    assert np.isin(decoded[changed], [-1]).sum() > 0.8 * changed.sum()
    assert ((decoded == -1) | (decoded == numbers)).all()


def test_reed_solomon_fills_two_erasures_and_detects_a_third_error():
    rng = np.random.default_rng(5)
    numbers = rng.choice(blink.N_NUMBERS, 2000, replace=False)
    symbols = np.stack([blink_code._symbols(int(n)) for n in numbers])
    known = np.ones_like(symbols, dtype=bool)
    for row in known:
        row[rng.choice(7, 2, replace=False)] = False
    garbled = np.where(known, symbols, rng.integers(0, 31, symbols.shape))
    np.testing.assert_array_equal(blink.decode_symbols(garbled, known), numbers)
    # plus one wrong symbol among the five known ones: never accepted
    wrong = garbled.copy()
    for i, row in enumerate(known):
        j = rng.choice(np.flatnonzero(row))
        wrong[i, j] = (wrong[i, j] + rng.integers(1, 31)) % 31
    assert (blink.decode_symbols(wrong, known) == -1).all()
    # three erasures leave no check symbol: refused
    three = known.copy()
    three[:, 0] = three[:, 1] = three[:, 2] = False
    three[:, 3:] = True
    assert (blink.decode_symbols(symbols, three) == -1).all()


# ------------------------------------------------------------------------------------ decoding


@pytest.mark.parametrize(
    ("fps", "seed", "size"),
    [(24.0, 11, (640, 360)), (30.0, 12, (960, 540)), (60.0, 13, (1280, 720))],
)
def test_decodes_a_stand_at_any_start_phase_and_frame_rate(fps, seed, size):
    clip = make_clip(200, width=size[0], height=size[1], fps=fps, seed=seed, jitter_ms=2.0)
    result = blink.decode_frames(clip.frames(), clip.timestamps_ms)
    right, wrong, median_err = _score(clip, result.detections)
    assert wrong == []
    assert len(right) >= 0.97 * len(clip.numbers)
    assert median_err < 0.5
    stats = result.decode_stats
    assert stats["decoded"] == len(result.detections)
    assert stats["blobs"] == stats["decoded"] + sum(stats["rejected"].values())


def test_decodes_with_nominal_fps_only_and_jpeg_artefacts():
    clip = make_clip(200, width=960, height=540, fps=30.0, seed=21, jitter_ms=1.0, jpeg_quality=80)
    result = blink.decode_frames(clip.frames(), None, fps=30.0)
    right, wrong, _ = _score(clip, result.detections)
    assert wrong == []
    assert len(right) >= 0.97 * len(clip.numbers)


def test_strong_white_balance_and_brightness_differences():
    clip = make_clip(150, width=960, height=540, seed=22)
    clip.params["white_balance"][:] = np.random.default_rng(0).uniform(
        0.45, 1.0, (len(clip.params["white_balance"]), 3)
    )
    clip.params["brightness"][:] = np.random.default_rng(1).uniform(
        0.3, 1.0, len(clip.params["brightness"])
    )
    result = blink.decode_frames(clip.frames(), clip.timestamps_ms)
    right, wrong, _ = _score(clip, result.detections)
    assert wrong == []
    assert len(right) >= 0.95 * len(clip.numbers)


def test_occluded_phones_are_mostly_recovered_and_never_misread():
    clip = make_clip(
        200, width=960, height=540, seed=23, occluded_fraction=0.3, occlusion_range_ms=(100, 200)
    )
    result = blink.decode_frames(clip.frames(), clip.timestamps_ms)
    right, wrong, _ = _score(clip, result.detections)
    assert wrong == []
    hidden = set(clip.numbers[clip.occluded].tolist())
    assert len(hidden) > 40
    assert len(hidden & right) >= 0.85 * len(hidden)


def test_distractors_never_come_out_as_numbers():
    clip = make_clip(10, width=960, height=540, seed=24, n_distractors=240)
    result = blink.decode_frames(clip.frames(), clip.timestamps_ms)
    right, wrong, _ = _score(clip, result.detections)
    assert wrong == []
    assert len(right) >= 9
    assert sum(result.decode_stats["rejected"].values()) >= 230


# ------------------------------------------------------------------------------------ files


def _small_clip():
    return make_clip(60, width=640, height=360, fps=30.0, seed=31)


def test_folder_of_frames_with_timestamps_in_names_or_a_file(tmp_path):
    clip = _small_clip()
    named = tmp_path / "named"
    listed = tmp_path / "listed"
    named.mkdir()
    listed.mkdir()
    for i, (frame, t) in enumerate(zip(clip.frames(), clip.timestamps_ms, strict=True)):
        cv2.imwrite(str(named / f"frame_{i:03d}_{t:.1f}ms.png"), frame)
        cv2.imwrite(str(listed / f"img{i}.png"), frame)  # natural order: img2 before img10
    (listed / "timestamps.txt").write_text("\n".join(f"{t:.3f}" for t in clip.timestamps_ms))
    for folder in (named, listed):
        right, wrong, _ = _score(clip, blink.locate_clip(folder))
        assert wrong == [] and len(right) >= 0.95 * len(clip.numbers)
    with pytest.raises(ValueError, match="no image files"):
        blink.locate_clip(tmp_path)  # holds only folders
    (listed / "timestamps.txt").unlink()
    with pytest.raises(ValueError, match="--fps"):
        blink.locate_clip(listed)
    right, wrong, _ = _score(clip, blink.locate_clip(listed, fps=30.0))
    assert wrong == [] and len(right) >= 0.9 * len(clip.numbers)


def test_video_file(tmp_path):
    clip = _small_clip()
    path = tmp_path / "stand.mp4"
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), 30.0, (640, 360))
    for frame in clip.frames():
        writer.write(frame)
    writer.release()
    detections = blink.locate_clip(path)
    right, wrong, _ = _score(clip, detections)
    assert wrong == [] and len(right) >= 0.95 * len(clip.numbers)
    d = detections[0]
    assert d.code == str(d.number) and 0.0 <= d.confidence <= 1.0


def test_bad_inputs_raise_clear_errors(tmp_path):
    with pytest.raises(ValueError, match="does not exist"):
        blink.locate_clip(tmp_path / "missing.mp4")
    junk = tmp_path / "junk.mp4"
    junk.write_bytes(b"not a video")
    with pytest.raises(ValueError):
        blink.locate_clip(junk)
    frame = np.zeros((64, 64, 3), np.uint8)
    with pytest.raises(ValueError, match="frame rate"):
        blink.decode_frames([frame, frame])
    with pytest.raises(ValueError, match="uint8"):
        blink.decode_frames([np.zeros((64, 64), np.uint8)], fps=30)
    with pytest.raises(ValueError, match="same size"):
        blink.decode_frames([frame, np.zeros((32, 32, 3), np.uint8)], fps=30)
    with pytest.raises(ValueError, match="no frames"):
        blink.decode_frames([], fps=30)
    with pytest.raises(ValueError, match="timestamps"):
        blink.decode_frames([frame, frame, frame], [0.0, 33.0])
    with pytest.raises(ValueError, match="increasing"):
        blink.decode_frames([frame, frame, frame], [0.0, 33.0, 20.0])
    with pytest.raises(ValueError, match="fps"):
        blink.locate_clip(junk, fps=-3)


def test_long_clips_are_read_only_as_far_as_needed():
    clip = make_clip(20, width=320, height=240, fps=30.0, duration_ms=6000.0, seed=41)
    result = blink.decode_frames(clip.frames(), clip.timestamps_ms)
    assert result.frames < len(clip.timestamps_ms)
    assert clip.timestamps_ms[result.frames - 1] <= 4 * 1200.0
    right, wrong, _ = _score(clip, result.detections)
    assert wrong == [] and len(right) >= 19


def _clean_penalty(colours: np.ndarray) -> np.ndarray:
    """Soft penalties (n, 14, 6) of clear readings of data colour indices (n, 14)."""
    pen = np.full((*colours.shape, 6), blink_colours._SOFT_CAP)
    np.put_along_axis(pen, colours[..., None], 0.0, axis=2)
    return pen


def _data_colours(numbers: np.ndarray) -> np.ndarray:
    bits = blink.pattern_bits(numbers)[:, 2:]
    lookup = {b[0] * 4 + b[1] * 2 + b[2]: i for b, i in blink_code._BITS_TO_DATA.items()}
    code = bits.astype(np.int64) @ np.array([4, 2, 1])
    return np.vectorize(lookup.__getitem__, otypes=[np.int64])(code).reshape(len(bits), 14)


def test_soft_decoding_resolves_ambiguous_symbols_but_never_picks_another_number():
    rng = np.random.default_rng(8)
    numbers = rng.choice(blink.N_NUMBERS, 4000, replace=False)
    colours = _data_colours(numbers)
    rows = np.arange(len(numbers))
    decoded, _, _ = blink.soft_decode(_clean_penalty(colours))
    np.testing.assert_array_equal(decoded, numbers)
    # slots of three different symbols unclear (the hard decoder gives up: three erasures), in
    # one of them another colour even a little likelier; or two symbols ambiguous and both
    # leaning the wrong way (one check left): the code resolves them
    for n_ambiguous, n_leaning in ((3, 1), (2, 2)):
        pen = _clean_penalty(colours)
        for i in rows:
            symbols = rng.choice(7, n_ambiguous, replace=False)
            for k, slot in enumerate(2 * symbols + rng.integers(0, 2, n_ambiguous)):
                other = (colours[i, slot] + rng.integers(1, 6)) % 6
                low, high = rng.uniform(0.0, 0.5), rng.uniform(0.5, 1.0)
                if k >= n_leaning:
                    low, high = rng.uniform(4.0, 6.0), rng.uniform(0.0, 0.5)
                pen[i, slot, other], pen[i, slot, colours[i, slot]] = low, high
        decoded, _, _ = blink.soft_decode(pen)
        assert ((decoded == numbers) | (decoded == -1)).all()
        assert (decoded == numbers).mean() > 0.99
    # plus one clearly wrong symbol: up to four symbols misread, never another number
    wrong = pen.copy()
    position = rng.integers(0, 7, len(numbers))
    for slot in (2 * position, 2 * position + 1):
        wrong[rows, slot] = blink_colours._SOFT_CAP
        wrong[rows, slot, (colours[rows, slot] + rng.integers(1, 6, len(numbers))) % 6] = 0.0
    decoded, _, _ = blink.soft_decode(wrong)
    assert ((decoded == numbers) | (decoded == -1)).all()
    # random clear colours (a screen playing a made-up code) with up to two unclear slots, and
    # 100 real patterns among them: the real ones decode, and a random word passes only if
    # every clear slot of a valid colour pair is exactly a codeword's (as hard decoding with two
    # erasures; the 5 invalid pairs of 36 are erasures too)
    random = np.concatenate([rng.integers(0, 6, colours.shape), colours[:100]])
    pairs = random.reshape(-1, 7, 2)
    valid_pair = np.repeat(pairs[:, :, 0] * 6 + pairs[:, :, 1] < 31, 2, axis=1)
    for ambiguous in range(3):
        pen = _clean_penalty(random)
        clear = valid_pair.copy()
        for i in range(len(random)):
            for slot in rng.choice(14, ambiguous, replace=False):
                pen[i, slot] = rng.uniform(0.0, 2.0, 6)
                clear[i, slot] = False
        decoded, _, _ = blink.soft_decode(pen)
        np.testing.assert_array_equal(decoded[-100:], numbers[:100])
        hit = decoded[:-100] >= 0
        assert hit.mean() < 0.01
        agree = _data_colours(decoded[:-100][hit]) == random[:-100][hit]
        assert (agree | ~clear[:-100][hit]).all()


def test_noisy_and_corrupted_readings_never_decode_to_a_different_number():
    rng = np.random.default_rng(9)
    numbers = rng.choice(blink.N_NUMBERS, 3000, replace=False)
    bits = blink.pattern_bits(numbers).astype(np.float32)
    rows = np.arange(len(numbers))
    readings = bits * 1000.0 + 50.0 + rng.normal(0, 40.0, bits.shape)
    # two slots blended half-way towards another data colour, one slot clearly another colour
    for _ in range(2):
        slot = rng.integers(2, 16, len(numbers))
        other = blink_code._DATA_BITS[rng.integers(0, 6, len(numbers))] * 1000.0 + 50.0
        readings[rows, slot] = 0.5 * readings[rows, slot] + 0.5 * other
    hit = rows[: len(rows) // 2]
    slot = rng.integers(2, 16, len(hit))
    readings[hit, slot] = blink_code._DATA_BITS[rng.integers(0, 6, len(hit))] * 1000.0 + 50.0
    decoded, reasons, _, _ = blink_colours._classify(readings, 60.0)
    assert ((decoded == -1) | (decoded == numbers)).all()
    assert (decoded[len(hit) :] == numbers[len(hit) :]).mean() > 0.9  # blends are resolved
    assert (decoded[hit] == -1).mean() > 0.5  # a clear misreading is refused


def test_soft_decoding_refuses_a_reading_between_two_numbers():
    """Readings that fit two codewords (sharing 3 symbols) about equally: never a guess."""
    rng = np.random.default_rng(10)
    numbers = rng.choice(blink.N_NUMBERS, 3000, replace=False)
    words = np.stack([blink_code._symbols(int(n)) for n in numbers])
    rivals = np.empty_like(numbers)
    for i, word in enumerate(words):
        basis = np.sort(rng.choice(7, 4, replace=False))
        values = (word[basis] - blink_code._OFFSET[basis]) % 31
        values[-1] = (values[-1] + rng.integers(1, 31)) % 31  # 3 symbols shared, then different
        digits = blink_code._inv_mod(blink_code._VANDER[basis]) @ values % 31
        rivals[i] = digits @ (31 ** np.arange(4))
    keep = rivals < blink.N_NUMBERS
    numbers, rivals = numbers[keep], rivals[keep]
    ours, theirs = _data_colours(numbers), _data_colours(rivals)
    pen = np.full((*ours.shape, 6), blink_colours._SOFT_CAP)
    rows = np.arange(len(numbers))[:, None]
    pen[rows, np.arange(14), theirs] = rng.uniform(0.0, 1.0, ours.shape)
    pen[rows, np.arange(14), ours] = rng.uniform(0.0, 1.0, ours.shape)
    pen[ours == theirs] = np.where(
        np.arange(6) == ours[ours == theirs][:, None], 0.0, blink_colours._SOFT_CAP
    )
    decoded, _, _ = blink.soft_decode(pen)
    assert len(numbers) > 300
    assert (decoded == -1).all()


def test_two_erasures_must_fit_the_decoded_number():
    """With two symbols unclear only one check is left: their readings must fit the number."""
    rng = np.random.default_rng(12)
    numbers = rng.choice(blink.N_NUMBERS, 2000, replace=False)
    bits = blink.pattern_bits(numbers).astype(np.float32)
    rows = np.arange(len(numbers))
    fits = rows % 2 == 0  # blends that contain the number's own colour, or only other colours
    readings = bits * 1000.0 + 50.0 + rng.normal(0, 15.0, bits.shape)
    for symbol in (1, 4):
        for slot in (2 + 2 * symbol, 3 + 2 * symbol):
            own = bits[rows, slot]
            other = blink_code._DATA_BITS[rng.integers(0, 6, len(rows))].astype(np.float32)
            # colours sharing no channel with the number's own colour at that slot
            apart = blink_code._DATA_BITS[(own @ blink_code._DATA_BITS.T == 0).argmax(axis=1)]
            first = np.where(fits[:, None], own, apart)
            second = np.where(fits[:, None], other, 1.0 - own - (1.0 - own) * apart)
            second = np.where(second.sum(axis=1, keepdims=True) > 0, second, apart)
            readings[rows, slot] = (0.5 * first + 0.5 * second) * 1000.0 + 50.0
    decoded, _, n_erased, _ = blink_colours._classify(readings, 60.0)
    assert ((decoded == -1) | (decoded == numbers)).all()
    assert (decoded[fits] == numbers[fits]).mean() > 0.85
    assert (decoded[~fits] == numbers[~fits]).mean() < 0.15  # about 0.55 without the fit test


def test_crowd_colour_model_learns_how_colours_look_in_decoded_blobs():
    rng = np.random.default_rng(13)
    numbers = rng.choice(blink.N_NUMBERS, 2500, replace=False)
    bits = blink.pattern_bits(numbers)[:, 2:].astype(np.float64)
    colours = _data_colours(numbers)
    # lossy video: blue bleeds into green-only slots and fades in cyan ones, so green and
    # cyan read about 0.4 and 0.65 blue: only a model of the crowd tells them apart reliably
    z = bits.copy()
    z[..., 2] = np.where(colours == 1, 0.4, np.where(colours == 4, 0.65, z[..., 2]))
    z += rng.normal(0, 0.04, z.shape)
    contrast = np.full((len(numbers), 3), 500.0)
    decoded = numbers.copy()
    decoded[:100] = -1  # to be read with the crowd's model
    rows = np.arange(100)
    penalty = blink_colours._crowd_penalty(z, contrast, decoded, rows)
    assert (penalty.argmin(axis=2) == colours[rows]).mean() > 0.99
    soft, _, _ = blink.soft_decode(penalty)
    np.testing.assert_array_equal(soft, numbers[rows])
    # too few decoded blobs to learn from: no model
    few = np.full(len(numbers), -1)
    few[:200] = numbers[:200]
    assert blink_colours._crowd_penalty(z, contrast, few, rows) is None


def test_a_pattern_that_changes_between_cycles_gets_no_single_check_decode():
    rng = np.random.default_rng(14)
    numbers = rng.choice(blink.N_NUMBERS, 1000, replace=False)
    readings = blink.pattern_bits(numbers).astype(np.float32) * 1000.0 + 50.0
    readings[:, [4, 9]] = np.nan  # two symbols unseen: one check left
    steady = np.zeros_like(readings)
    with np.errstate(invalid="ignore"):  # unseen slots have no distances (as in decode_frames)
        decoded, _, n_erased, _ = blink_colours._classify(readings, 60.0, steady)
        np.testing.assert_array_equal(decoded, numbers)
        assert (n_erased == 2).all()
        changed = steady.copy()
        changed[:, 14, 1] = 900.0  # slot 14 read twice, once with green and once without
        decoded, reasons, _, _ = blink_colours._classify(readings, 60.0, changed)
    assert (decoded == -1).all() and set(reasons) == {"unsteady_repeat"}
    full = blink.pattern_bits(numbers).astype(np.float32) * 1000.0 + 50.0
    decoded, _, _, _ = blink_colours._classify(full, 60.0, changed)  # three checks: still decoded
    np.testing.assert_array_equal(decoded, numbers)
