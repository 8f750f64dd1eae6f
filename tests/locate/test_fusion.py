"""A pixel's position is the robust fusion of its observations: agreeing sightings sharpen it,
a lone false sighting does not move it, and a person who really moved is followed once
confirmed."""

from __future__ import annotations

from datetime import timedelta

import numpy as np
import pytest

from c3s.locate.fusion import fuse
from c3s.models import Observation, utcnow


def obs(x, y, *, sigma=0.05, minutes=0, confidence=1.0, method="qr", id_=None):
    return Observation(id=id_, x=x, y=y, sigma=sigma, confidence=confidence, method=method,
                       observed_at=utcnow() + timedelta(minutes=minutes))


def test_single_observation_is_taken_as_is():
    fused = fuse([obs(3.0, 4.0, sigma=0.1)])
    assert (fused.x, fused.y, fused.sigma) == (3.0, 4.0, 0.1)


def test_agreeing_observations_average_by_inverse_variance():
    rng = np.random.default_rng(1)
    truth = np.array([10.0, 5.0])
    sightings = [obs(*(truth + rng.normal(0, 0.05, 2)), minutes=i) for i in range(16)]
    fused = fuse(sightings)
    assert np.hypot(fused.x - truth[0], fused.y - truth[1]) < 0.04
    assert fused.sigma == pytest.approx(0.05 / 4)
    precise = fuse([obs(0.0, 0.0, sigma=0.01), obs(1.0, 0.0, sigma=1.0)])
    assert precise.x < 0.05  # the sure sighting dominates the vague one


def test_a_lone_outlier_does_not_move_the_pixel():
    sightings = [obs(5.0, 5.0, minutes=i) for i in range(3)] + [obs(40.0, 12.0, minutes=10)]
    fused = fuse(sightings)
    assert (round(fused.x, 6), round(fused.y, 6)) == (5.0, 5.0)
    assert fused.observations_used == 3 and fused.confidence < 1.0


def test_a_confirmed_move_is_followed_not_averaged():
    before = [obs(5.0, 5.0, minutes=i) for i in range(3)]
    after = [obs(20.0, 8.0, minutes=10 + i) for i in range(2)]
    fused = fuse(before + after)
    assert (round(fused.x, 6), round(fused.y, 6)) == (20.0, 8.0)


def test_no_observations_is_an_error():
    with pytest.raises(ValueError, match="no observations"):
        fuse([])
