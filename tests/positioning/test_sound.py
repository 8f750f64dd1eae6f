"""Sound positioning: chirp schedule and WAV, simulator, matched-filter TDOA solver, bad audio."""

from __future__ import annotations

import io
import wave

import numpy as np
import pytest

from c3s.positioning.sound import (
    ChirpSchedule,
    Recording,
    SoundError,
    chirp_waveform,
    locate_from_recording,
    parse_wav,
    recording_wav,
    render_schedule_wav,
    simulate_recording,
    speed_of_sound,
)

SPEAKERS = np.array([(-5, -5), (50, -8), (105, -5), (105, 65), (50, 68), (-5, 65)], float)
SCHEDULE = ChirpSchedule(6, start_ms=1_700_000_000_000.0)


def test_speed_of_sound_follows_temperature():
    assert speed_of_sound(0.0) == pytest.approx(331.3)
    assert speed_of_sound(20.0) == pytest.approx(343.2, abs=0.1)
    with pytest.raises(ValueError, match="temperature_c"):
        speed_of_sound(float("nan"))


def test_each_speaker_has_its_own_chirp():
    t = np.arange(2400) / 48000
    chirps = [chirp_waveform(SCHEDULE, k, t) for k in range(6)]
    for k in range(6):
        auto = np.max(np.abs(np.correlate(chirps[k], chirps[k], "full")))
        for j in range(6):
            if j != k:
                cross = np.max(np.abs(np.correlate(chirps[k], chirps[j], "full")))
                assert cross < 0.35 * auto, (k, j)


def test_schedule_wav_plays_every_chirp_in_its_slot():
    data = render_schedule_wav(SCHEDULE, sample_rate=48000)
    played = parse_wav(data, start_ms=SCHEDULE.start_ms)
    assert played.sample_rate == 48000
    assert len(played.samples) == 2 * 6 * 600 * 48
    template = chirp_waveform(SCHEDULE, 3, np.arange(2400) / 48000)
    corr = np.correlate(played.samples, template, "valid")
    starts = np.sort(np.argsort(corr)[-2:])
    np.testing.assert_array_equal(starts, [3 * 600 * 48, (6 + 3) * 600 * 48])


@pytest.mark.parametrize("seed", [1, 2])
def test_phone_is_located_within_centimetres_despite_offset_rate_error_noise_and_reverb(seed):
    rng = np.random.default_rng(seed)
    truth = rng.uniform((0, 0), (100, 60))
    rec = simulate_recording(
        truth, SPEAKERS, SCHEDULE, seed=seed, snr_db=10, reverb_rt60_s=1.0,
        clock_offset_ms=73.0, sample_rate_error_ppm=-90.0, temperature_c=12.0,
    )
    fix = locate_from_recording(rec, SPEAKERS, SCHEDULE, temperature_c=12.0)
    assert np.hypot(fix.x - truth[0], fix.y - truth[1]) < 0.05
    assert fix.speakers_heard == 6 and fix.chirps_heard >= 7
    assert fix.clock_offset_ms == pytest.approx(73.0, abs=0.5)
    assert fix.sample_rate_error_ppm == pytest.approx(-90.0, abs=20.0)
    assert 0 < fix.uncertainty_m < 0.5


def test_scene_units_and_an_uploaded_wav_round_trip():
    truth = np.array([40.0, 25.0])  # scene units of 2 m
    rec = simulate_recording(truth, SPEAKERS / 2, SCHEDULE, seed=3, snr_db=10,
                             metres_per_unit=2.0, clock_offset_ms=-40.0)
    uploaded = parse_wav(recording_wav(rec), start_ms=rec.start_ms)
    fix = locate_from_recording(uploaded, SPEAKERS / 2, SCHEDULE, temperature_c=20.0,
                                metres_per_unit=2.0)
    assert np.hypot(fix.x - truth[0], fix.y - truth[1]) < 0.05


def _recording(**kwargs) -> Recording:
    return simulate_recording((30.0, 30.0), SPEAKERS, SCHEDULE, seed=4, snr_db=10, **kwargs)


def test_silent_recording_is_refused():
    rec = _recording()
    silent = Recording(np.zeros_like(rec.samples), rec.sample_rate, rec.start_ms)
    with pytest.raises(SoundError, match="silent.*microphone permission"):
        locate_from_recording(silent, SPEAKERS, SCHEDULE, temperature_c=20.0)


def test_clipped_recording_is_refused():
    rec = _recording()
    loud = np.clip(rec.samples * 50, -1, 1).astype(np.float32)
    with pytest.raises(SoundError, match="clipped"):
        locate_from_recording(Recording(loud, rec.sample_rate, rec.start_ms), SPEAKERS, SCHEDULE,
                              temperature_c=20.0)


@pytest.mark.parametrize("rate, reason", [(8000, "cannot carry"), (16000, "cannot carry"),
                                          (1000, "not supported")])
def test_wrong_sample_rate_is_refused(rate, reason):
    rec = Recording(np.random.default_rng(0).normal(0, 0.1, rate).astype(np.float32), rate, 0.0)
    with pytest.raises(SoundError, match=reason):
        locate_from_recording(rec, SPEAKERS, SCHEDULE, temperature_c=20.0)


def test_too_few_chirps_is_a_reason_not_a_guess():
    rec = _recording(start_ms=SCHEDULE.start_ms, duration_ms=3 * SCHEDULE.slot_ms)
    with pytest.raises(SoundError, match=r"heard chirps from 3 speaker\(s\) \(need at least 4\)"):
        locate_from_recording(rec, SPEAKERS, SCHEDULE, temperature_c=20.0)


def test_noise_only_recording_hears_no_chirp():
    noise = np.random.default_rng(5).normal(0, 0.05, 48000 * 5).astype(np.float32)
    rec = Recording(noise, 48000, SCHEDULE.start_ms - 100)
    with pytest.raises(SoundError, match="heard chirps from 0 speaker"):
        locate_from_recording(rec, SPEAKERS, SCHEDULE, temperature_c=20.0)


def test_recording_outside_the_schedule_is_refused():
    rec = _recording(start_ms=SCHEDULE.start_ms + 60_000, duration_ms=2000)
    with pytest.raises(SoundError, match="does not cover a chirp"):
        locate_from_recording(rec, SPEAKERS, SCHEDULE, temperature_c=20.0)


def test_parse_wav_refuses_what_is_not_a_pcm_wav():
    with pytest.raises(SoundError, match="not a PCM WAV"):
        parse_wav(b"RIFF....WAVEfmt garbage")
    empty = io.BytesIO()
    with wave.open(empty, "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(48000)
    with pytest.raises(SoundError, match="no samples"):
        parse_wav(empty.getvalue())


def test_parse_wav_reads_stereo_24_bit():
    left = (np.sin(np.arange(480) / 10) * 0.5 * 2**23).astype(np.int32)
    frames = np.stack([left, left], axis=1).reshape(-1)
    raw = b"".join(int(v).to_bytes(3, "little", signed=True) for v in frames)
    buffer = io.BytesIO()
    with wave.open(buffer, "wb") as out:
        out.setnchannels(2)
        out.setsampwidth(3)
        out.setframerate(44100)
        out.writeframes(raw)
    rec = parse_wav(buffer.getvalue(), start_ms=5.0)
    assert rec.sample_rate == 44100 and rec.start_ms == 5.0
    np.testing.assert_allclose(rec.samples, left / 2**23, atol=1e-6)
