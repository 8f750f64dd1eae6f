"""3-D sound location: speakers with heights and delays, seat heights, the speed of sound solved,
the direct path under reflections, and an uncertainty that decides whether a fix is placed.

Recordings come from pyroomacoustics (a small hall, low image-source order, so each takes well
under a second), with the benchmark's crowd noise, clock offset, rate error and 16-bit WAV."""

from __future__ import annotations

import numpy as np
import pyroomacoustics as pra
import pytest

from c3s.bench import sound_room
from c3s.bench.sound_venues import tiered_seats
from c3s.positioning.sound import SoundError, parse_wav, recording_wav
from c3s.positioning.venue_sound import (
    Venue,
    locate_in_venue,
    schedule_around,
    speaker_period_track,
    speed_of_sound,
    venue_from_json,
    venue_schedule,
)

HALL = sound_room.Room((40.0, 30.0, 12.0), t60_s=0.8, max_order=2)
SPEAKERS = np.array([(3, 3, 9), (20, 2, 10), (37, 3, 8.5), (38, 27, 9.5), (20, 28, 8), (2, 27, 10)], float)
SEATS = tiered_seats((40, 30), (12, 9, 28, 21), 0.4, 6.0)
START_MS = 1.7e12
TRUE_C = speed_of_sound(20.0, 50.0)


def venue(**kwargs) -> Venue:
    options = {"speakers": SPEAKERS, "speaker_delay_ms": np.zeros(len(SPEAKERS)),
               "temperature_c": (20.0, 20.0), "seats": SEATS} | kwargs
    return Venue(**options)


def recording(position, seed, *, snr_db=10.0, delays=None, rirs=None, schedule_start_ms=START_MS):
    rng = np.random.default_rng(seed)
    truth = venue(speaker_delay_ms=np.zeros(len(SPEAKERS)) if delays is None else np.asarray(delays, float))
    pra.constants.set("c", TRUE_C)
    if rirs is None:
        rirs = sound_room.impulse_responses(HALL, SPEAKERS, np.asarray(position, float), seed)
    offset = rng.uniform(-200, 200)
    schedule = venue_schedule(truth, 0.0)
    phone = sound_room.Phone(np.asarray(position, float), offset, rng.uniform(-50, 50),
                             schedule_start_ms + rng.uniform(1e6, 2e6) + offset,
                             schedule.period_ms + schedule.slot_ms + 300)
    heard, power = sound_room.clean_recording(truth, schedule_start_ms, rirs, phone)
    return sound_room.noisy_recording(heard, power, phone, snr_db=snr_db, band_hz=(2000, 8000), seed=seed)


def locate(rec, v: Venue):
    duration_ms = len(rec.samples) / rec.sample_rate * 1000
    return locate_in_venue(rec, v, schedule_around(v, START_MS, rec.start_ms, duration_ms, 250.0))


def horizontal(fix, position) -> float:
    return float(np.hypot(fix.x - position[0], fix.y - position[1]))


def test_speed_of_sound_rises_with_temperature_and_humidity():
    assert speed_of_sound(20.0) == pytest.approx(343.2, abs=0.1)
    assert speed_of_sound(20.0, 100.0) / speed_of_sound(20.0) - 1 == pytest.approx(0.0035, abs=0.001)
    assert venue(temperature_c=(10.0, 30.0)).speed_range[1] > speed_of_sound(30.0)
    with pytest.raises(ValueError, match="humidity"):
        speed_of_sound(20.0, 120.0)


@pytest.mark.parametrize("seed", [1, 2])
def test_phone_on_a_tier_is_located_in_3d_within_a_seat(seed):
    seat = SEATS[np.random.default_rng(seed).integers(len(SEATS))]
    position = seat + (0.1, -0.1, 0.1)
    fix = locate(recording(position, seed), venue())
    assert horizontal(fix, position) < 0.15
    assert abs(fix.z - position[2]) < 0.6
    assert fix.placed and fix.uncertainty_m <= 0.25
    assert horizontal(fix, position) <= 2 * fix.uncertainty_m
    assert abs(fix.clock_offset_ms) < 250


def test_height_is_solved_where_there_is_no_seat_map():
    position = np.array([30.0, 8.0, 4.0])
    fix = locate(recording(position, 3), venue(seats=None))
    assert horizontal(fix, position) < 0.3
    assert abs(fix.z - position[2]) < 2.0
    assert horizontal(fix, position) <= 2 * fix.uncertainty_m


def test_the_direct_path_is_picked_not_a_louder_reflection():
    position = np.array([10.0, 20.0, 2.0])
    rirs = []
    for k, s in enumerate(SPEAKERS):
        delay = np.linalg.norm(s - position) / TRUE_C * 48000
        rir = np.zeros(int(delay) + 2000)
        rir[int(round(delay))] = 1 / (4 * np.pi * np.linalg.norm(s - position))
        # Focused by a curved wall: 3x louder than the direct sound, 6-14 ms after it.
        rir[int(round(delay)) + 300 + 60 * k] = 3 * rir[int(round(delay))]
        rirs.append(rir)
    fix = locate(recording(position, 4, rirs=rirs, snr_db=20.0), venue())
    assert horizontal(fix, position) < 0.1


def test_speaker_delays_are_part_of_the_schedule():
    delays = [0.0, 35.0, 0.0, 60.0, 12.0, 0.0]
    position = SEATS[500] + (0.0, 0.0, 0.1)
    rec = recording(position, 5, delays=delays)
    fix = locate(rec, venue(speaker_delay_ms=np.array(delays)))
    assert fix.placed and horizontal(fix, position) < 0.15
    try:
        blind = locate(rec, venue())
    except SoundError:
        return
    assert not (blind.placed and horizontal(blind, position) < 1.0)


def test_speed_of_sound_is_solved_when_the_temperature_reading_is_off():
    position = SEATS[2000] + (0.0, 0.0, 0.1)
    rec = recording(position, 6)
    fix = locate(rec, venue(temperature_c=(12.0, 12.0)))  # 8 degrees C colder than the air
    assert horizontal(fix, position) < 0.2
    assert horizontal(fix, position) <= 2 * fix.uncertainty_m
    assert abs(fix.speed_of_sound_m_s - TRUE_C) < abs(speed_of_sound(12.0) - TRUE_C)


def test_a_fix_less_sure_than_half_a_seat_is_not_placed():
    position = SEATS[900] + (0.0, 0.0, 0.1)
    rec = recording(position, 7)
    fine = locate(rec, venue())
    narrow = locate(rec, venue(seat_width_m=fine.uncertainty_m))  # half a seat < the uncertainty
    assert fine.placed and not narrow.placed
    assert narrow.uncertainty_m == pytest.approx(fine.uncertainty_m)


def test_noise_far_above_the_chirps_gives_no_placed_wrong_fix():
    position = SEATS[2200] + (0.0, 0.0, 0.1)
    for seed in (8, 9):
        try:
            fix = locate(recording(position, seed, snr_db=-25.0), venue())
        except SoundError as error:
            assert "speaker" in str(error) or "position" in str(error)
            continue
        assert not (fix.placed and horizontal(fix, position) > 1.0)


def test_each_speaker_file_is_one_period_that_loops_into_the_schedule():
    v = venue()
    two = venue_schedule(v, 0.0, repeats=2)
    from c3s.positioning.sound import speaker_track

    for k in (0, 3):
        track = speaker_period_track(v, k)
        assert track.size == int(two.period_ms * 48)
        np.testing.assert_allclose(np.tile(track, 2), speaker_track(two, k), atol=1e-12)


def test_a_recording_of_awkward_length_is_located_the_same():
    position = SEATS[1500] + (0.0, 0.0, 0.1)
    rec = recording(position, 10)
    prime = 212_999  # a prime number of samples: the FFT takes a fast length
    cut = parse_wav(recording_wav(type(rec)(rec.samples[:prime], rec.sample_rate, rec.start_ms)),
                    start_ms=rec.start_ms)
    a, b = locate(rec, venue()), locate(cut, venue())
    assert abs(a.x - b.x) < 0.02 and abs(a.y - b.y) < 0.02


def test_venue_json_says_what_is_wrong():
    good = {"units": "m", "speakers": SPEAKERS.tolist(), "schedule_start_ms": 0, "temperature_c": [15, 25]}
    v = venue_from_json(good)
    assert v.temperature_c == (15.0, 25.0) and v.seats is None
    with pytest.raises(ValueError, match="speakers"):
        venue_from_json({**good, "speakers": [[0, 0]] * 5})
    with pytest.raises(ValueError, match="temperature_c"):
        venue_from_json({**good, "temperature_c": "warm"})
    with pytest.raises(ValueError, match="speaker_delay_ms"):
        venue_from_json({**good, "speaker_delay_ms": [0, 1]})
    with pytest.raises(ValueError, match="schedule_start_ms"):
        venue_from_json({k: v for k, v in good.items() if k != "schedule_start_ms"})
