"""Sound location end to end: the operator places speakers and fetches the chirp WAV, a pixel phone
uploads what it recorded (simulated: delays, noise, reverberation, clock offset, microphone rate
error) and a real Celery worker locates it; bad audio ends as a failed job or a 4xx with reasons."""

from __future__ import annotations

import time

import numpy as np
import pytest
from sqlalchemy import select

from c3s.models import Pixel
from c3s.positioning.sound import (
    ChirpSchedule,
    Recording,
    parse_wav,
    recording_wav,
    simulate_recording,
)
from tests.helpers.factories import auth, make_scene, make_user, multipart

pytestmark = pytest.mark.slow

SPEAKERS = [(-5.0, -5.0), (50.0, -8.0), (105.0, -5.0), (105.0, 65.0), (50.0, 68.0), (-5.0, 65.0)]
# A server-clock time on a boundary of this scene's 3600 ms schedule period.
T0 = 3600.0 * 497_222_223


@pytest.fixture()
def hall(worker_app, session):
    """A 100 x 60 m scene with six speakers around it and one joined pixel phone."""
    client = worker_app.test_client()
    _, owner = make_user(session, "scene_admin")
    scene = make_scene(client, owner, method="sound", width=100.0, height=60.0, temperature_c=25.0)
    response = client.put(f"/api/scenes/{scene['id']}/speakers", headers=auth(owner),
                          json={"speakers": [{"x": x, "y": y} for x, y in SPEAKERS]})
    assert response.status_code == 200, response.json
    _, phone = make_user(session, guest=True)
    joined = client.post(f"/api/scenes/{scene['id']}/join", headers=auth(phone)).json
    return client, owner, phone, scene, joined, response.json


def schedule_like_the_server(speakers_body) -> ChirpSchedule:
    """What the looping WAV plays around T0: the period before, the one from T0 and the next."""
    period, slot = speakers_body["period_ms"], speakers_body["slot_ms"]
    assert T0 % period == 0
    return ChirpSchedule(len(SPEAKERS), start_ms=T0 - period, slot_ms=slot, chirp_ms=50.0, repeats=3)


def record(speakers_body, position, *, seed, duration_ms=None, **kwargs) -> Recording:
    schedule = schedule_like_the_server(speakers_body)
    period, slot = speakers_body["period_ms"], speakers_body["slot_ms"]
    return simulate_recording(position, SPEAKERS, schedule, seed=seed, temperature_c=25.0,
                              start_ms=T0 - 100, duration_ms=duration_ms or period + slot + 300, **kwargs)


def upload(client, token, scene_id, number, wav: bytes, start_ms: float):
    return client.post(f"/api/scenes/{scene_id}/pixels/{number}/sound", headers=auth(token),
                       **multipart(file=(wav, "clip.wav"), start_ms=str(start_ms)))


def wait_for(client, token, scene_id, number, job_id, timeout_s=60):
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        job = client.get(f"/api/scenes/{scene_id}/pixels/{number}/sound/{job_id}", headers=auth(token)).json
        if job["status"] in ("done", "failed"):
            return job
        time.sleep(0.2)
    raise AssertionError(f"job {job_id} still {job['status']} after {timeout_s} s")


def test_schedule_wav_for_the_operator(hall):
    client, owner, phone, scene, joined, speakers = hall
    assert speakers["slot_ms"] == 600 and speakers["period_ms"] == 3600
    assert joined["calibration"]["method"] == "sound" and joined["calibration"]["speakers"] == 6
    assert joined["calibration"]["min_duration_ms"] == 3600 + 600 + 300
    url = f"/api/scenes/{scene['id']}/sound/schedule.wav"
    response = client.get(f"{url}?start_ms={T0:.0f}", headers=auth(owner))
    assert response.status_code == 200 and response.mimetype == "audio/wav"
    assert response.headers["X-C3S-Start-Ms"] == f"{T0:.0f}"
    wav = parse_wav(response.data)
    assert wav.sample_rate == 48000 and len(wav.samples) == 2 * 3600 * 48
    # Speaker 3's own track holds its chirps only, at the same place as in the mixed file.
    track = parse_wav(client.get(f"{url}?start_ms={T0:.0f}&speaker=3", headers=auth(owner)).data).samples
    assert len(track) == len(wav.samples)
    loud = np.flatnonzero(np.abs(track) > 0.05) // (600 * 48)  # the slots in which it sounds
    assert set(loud.tolist()) == {3, 9}
    np.testing.assert_allclose(track[3 * 28800:4 * 28800], wav.samples[3 * 28800:4 * 28800], atol=2e-4)
    assert client.get(f"{url}?start_ms={T0:.0f}&speaker=6", headers=auth(owner)).status_code == 422
    unaligned = client.get(f"{url}?start_ms={T0 + 1000:.0f}", headers=auth(owner))
    assert unaligned.status_code == 422 and unaligned.json["detail"]["next_start_ms"] == T0 + 3600
    default = client.get(url, headers=auth(owner))
    assert default.status_code == 200 and float(default.headers["X-C3S-Start-Ms"]) > time.time() * 1000
    assert client.get(url, headers=auth(phone)).status_code == 403


def test_recording_is_located_by_a_real_worker(hall, session):
    client, _, phone, scene, joined, speakers = hall
    truth = (37.0, 21.0)
    clip = record(speakers, truth, seed=5, snr_db=10.0, reverb_rt60_s=0.4, clock_offset_ms=45.0,
                  sample_rate_error_ppm=60.0)
    response = upload(client, phone, scene["id"], joined["number"], recording_wav(clip), clip.start_ms)
    assert response.status_code == 202, response.json
    job = wait_for(client, phone, scene["id"], joined["number"], response.json["id"])
    assert job["status"] == "done", job["reason"]
    assert job["stats"]["speakers_heard"] == 6 and job["stats"]["pixels_located"] == 1
    assert job["stats"]["clock_offset_ms"] == pytest.approx(45.0, abs=2.0)
    pixel = session.scalar(select(Pixel))
    assert pixel.status == "located" and pixel.located_by == "sound"
    assert np.hypot(pixel.x - truth[0], pixel.y - truth[1]) < 0.5
    assert 0 < pixel.sigma < 1.0


def clipped(clip: Recording) -> Recording:
    return Recording(np.clip(clip.samples * 20, -1, 1).astype(np.float32), clip.sample_rate, clip.start_ms)


@pytest.mark.parametrize(("make", "reason"), [
    (lambda sp: Recording(np.zeros(48000 * 4, np.float32), 48000, T0 - 100), "silent"),
    (lambda sp: clipped(record(sp, (50.0, 30.0), seed=2)), "clipped"),
    # 1.2 s covers the slots of two speakers only.
    (lambda sp: record(sp, (50.0, 30.0), seed=3, duration_ms=1200), "heard chirps from 2 speaker"),
    # The venue's sound was off: crowd noise only, no chirp where the clock says one should be.
    (lambda sp: Recording(np.random.default_rng(1).normal(0, 0.05, 48000 * 4).astype(np.float32), 48000,
                          T0 - 100), "heard chirps from 0 speaker"),
])
def test_bad_recordings_fail_with_a_reason(hall, session, make, reason):
    client, _, phone, scene, joined, speakers = hall
    clip = make(speakers)
    response = upload(client, phone, scene["id"], joined["number"], recording_wav(clip), clip.start_ms)
    assert response.status_code == 202, response.json
    job = wait_for(client, phone, scene["id"], joined["number"], response.json["id"])
    assert job["status"] == "failed" and reason in job["reason"], job
    assert session.scalar(select(Pixel.status)) == "joined"


def test_obviously_bad_uploads_are_refused_at_once(hall, session):
    client, owner, phone, scene, joined, speakers = hall
    number = joined["number"]
    low_rate = Recording(np.random.default_rng(0).normal(0, 0.1, 8000 * 3).astype(np.float32), 8000, T0)
    response = upload(client, phone, scene["id"], number, recording_wav(low_rate), T0)
    assert response.status_code == 422 and "sample rate 8000 Hz" in response.json["message"]
    response = upload(client, phone, scene["id"], number, b"RIFF....not a wave at all", T0)
    assert response.status_code == 415 and "WAV" in response.json["message"]
    response = upload(client, owner, scene["id"], number, recording_wav(record(speakers, (1, 1), seed=1)), T0)
    assert response.status_code == 403
    missing_time = client.post(f"/api/scenes/{scene['id']}/pixels/{number}/sound", headers=auth(phone),
                               **multipart(file=(b"x", "clip.wav")))
    assert missing_time.status_code == 422

    # Too few speakers is refused when placing them and when uploading to a scene without them.
    few = client.put(f"/api/scenes/{scene['id']}/speakers", headers=auth(owner),
                     json={"speakers": [{"x": 0, "y": 0}, {"x": 10, "y": 0}, {"x": 0, "y": 10}]})
    assert few.status_code == 422 and "4 to 32" in few.json["message"]
    bare = make_scene(client, owner, method="sound", width=10.0, height=10.0)
    other = client.post(f"/api/scenes/{bare['id']}/join", headers=auth(phone)).json["number"]
    response = upload(client, phone, bare["id"], other, recording_wav(record(speakers, (1, 1), seed=1)), T0)
    assert response.status_code == 409 and "speaker" in response.json["message"]
    assert session.scalar(select(Pixel.status).where(Pixel.scene_id == scene["id"])) == "joined"
