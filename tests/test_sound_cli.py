"""`c3s sound-tracks` and `c3s locate --method sound`: the command-line contract, with no database."""

from __future__ import annotations

import json
import wave

import numpy as np
import pytest
from click.testing import CliRunner

from c3s.cli import main
from c3s.positioning.sound import recording_wav
from tests.positioning.test_venue_sound import SEATS, SPEAKERS, START_MS, recording


@pytest.fixture()
def venue_file(tmp_path):
    path = tmp_path / "venue.json"
    path.write_text(json.dumps({"units": "m", "speakers": SPEAKERS.tolist(), "schedule_start_ms": START_MS,
                                "temperature_c": [18, 22], "seats": SEATS.tolist(),
                                "speaker_delay_ms": [0] * len(SPEAKERS)}))
    return path


def test_sound_tracks_writes_one_period_per_speaker(tmp_path, venue_file):
    out = tmp_path / "tracks"
    result = CliRunner().invoke(main, ["sound-tracks", "--venue", str(venue_file), "--out", str(out)])
    assert result.exit_code == 0, result.output
    files = sorted(p.name for p in out.iterdir())
    assert files == [f"speaker-{k}.wav" for k in range(len(SPEAKERS))]
    for k in (0, 5):
        with wave.open(str(out / f"speaker-{k}.wav")) as w:
            assert (w.getframerate(), w.getsampwidth(), w.getnchannels()) == (48000, 2, 1)
            pcm = np.frombuffer(w.readframes(w.getnframes()), "<i2")
        assert pcm.size == len(SPEAKERS) * 600 * 48  # one period: six slots of 600 ms
        loud = np.flatnonzero(np.abs(pcm) > 100)
        assert k * 600 * 48 <= loud[0] and loud[-1] < k * 600 * 48 + 50 * 48  # its chirp, in its slot


def test_locate_sound_prints_3d_fixes_and_reasons(tmp_path, venue_file):
    position = SEATS[700] + (0.0, 0.0, 0.1)
    rec = recording(position, 21)
    good, bad = tmp_path / "phone.wav", tmp_path / "broken.wav"
    good.write_bytes(recording_wav(rec))
    bad.write_bytes(b"RIFF nonsense")
    result = CliRunner().invoke(main, ["locate", "--method", "sound", "--venue", str(venue_file),
                                       "--start-ms", repr(rec.start_ms), "--json", str(good), str(bad)])
    assert result.exit_code == 0, result.output
    out = json.loads(result.output)
    assert out["method"] == "sound" and isinstance(out["elapsed_ms"], float)
    fix, failed = out["detections"]
    assert fix["input"] == str(good) and failed["input"] == str(bad)
    assert np.hypot(fix["x_scene"] - position[0], fix["y_scene"] - position[1]) < 0.2
    assert abs(fix["z_scene"] - position[2]) < 0.6
    assert 0 < fix["uncertainty_m"] <= 0.25 and fix["placed"] is True
    assert "WAV" in failed["reason"] and "x_scene" not in failed


def test_locate_sound_needs_its_venue_and_start(tmp_path, venue_file):
    wav = tmp_path / "a.wav"
    wav.write_bytes(b"")
    runner = CliRunner()
    missing = runner.invoke(main, ["locate", "--method", "sound", str(wav)])
    assert missing.exit_code == 2 and "--venue" in missing.output
    stray = runner.invoke(main, ["locate", "--method", "qr", "--venue", str(venue_file), str(wav)])
    assert stray.exit_code == 2 and "sound only" in stray.output
    stray = runner.invoke(main, ["locate", "--method", "qr", "--start-ms", "0", str(wav)])
    assert stray.exit_code == 2 and "--start-ms to blink and sound" in stray.output
    bad_venue = tmp_path / "bad.json"
    bad_venue.write_text(json.dumps({"units": "m", "speakers": [[0, 0]], "schedule_start_ms": 0,
                                     "temperature_c": 20}))
    refused = runner.invoke(main, ["sound-tracks", "--venue", str(bad_venue), "--out", str(tmp_path)])
    assert refused.exit_code == 2 and "speakers" in refused.output
