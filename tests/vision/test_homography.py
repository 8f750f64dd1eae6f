"""Image -> scene mapping on anchors: robust homography, local model for bent stands."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from c3s.vision.crowd import render_crowd
from c3s.vision.homography import MappingError, SceneMapping, fit_scene_mapping
from c3s.vision.qr import decode_qr_codes

H_TRUE = np.array([[1.1, 0.2, 30.0], [-0.1, 0.9, 50.0], [1e-4, 2e-5, 1.0]])


def project(h, pts):
    return cv2.perspectiveTransform(np.asarray(pts, float).reshape(-1, 1, 2), h).reshape(-1, 2)


def noisy_anchors(seed, n=200, sigma=2.0, outliers=0.3):
    rng = np.random.default_rng(seed)
    img = rng.uniform([0, 0], [4000, 3000], (n, 2))
    scene_true = project(H_TRUE, img)
    scene = scene_true + rng.normal(0, sigma, scene_true.shape)
    bad = rng.random(n) < outliers
    scene[bad] += rng.uniform(-400, 400, (bad.sum(), 2))
    return img, scene, scene_true, bad


def test_issue_numbers_200_points_2px_noise_30pc_outliers():
    medians = []
    for seed in range(5):
        img, scene, scene_true, bad = noisy_anchors(seed)
        mapping = fit_scene_mapping(img, scene, threshold_scene=6.0)
        assert isinstance(mapping, SceneMapping) and mapping.kind == "homography"
        assert mapping.anchors_found == 200
        # the inliers are (nearly) the true inliers
        assert (mapping.inlier_mask & bad).sum() <= 3
        assert mapping.inliers >= 0.95 * (~bad).sum()
        assert mapping.rms_scene == pytest.approx(2.0 * np.sqrt(2), rel=0.25)
        assert mapping.residuals_scene.shape == (200,)
        medians.append(np.median(np.linalg.norm(mapping.apply(img) - scene_true, axis=1)))
    assert np.median(medians) < 0.6  # issue 3 measured 0.5 px with MAGSAC, 1.3 px with RANSAC


def test_default_threshold_works_too():
    img, scene, scene_true, _ = noisy_anchors(9)
    mapping = fit_scene_mapping(img, scene)
    assert np.median(np.linalg.norm(mapping.apply(img) - scene_true, axis=1)) < 1.0


def test_exact_four_points():
    img = np.array([[0, 0], [100, 0], [100, 100], [0, 100]], float)
    scene = project(H_TRUE, img)
    mapping = fit_scene_mapping(img, scene)
    assert mapping.inliers == 4 and mapping.rms_scene < 1e-6
    assert np.allclose(mapping.apply([[50, 50]]), project(H_TRUE, [[50, 50]]), atol=1e-6)
    assert mapping.apply(np.empty((0, 2))).shape == (0, 2)


@pytest.mark.parametrize("img, reason", [
    (np.array([[0, 0], [1, 1], [2, 2]], float), "at least 4"),
    (np.array([[0, 0], [0, 0], [5, 5], [9, 1]], float), "distinct"),
    (np.array([[0, 0], [1, 1], [2, 2], [3, 3], [4, 4]], float), "one line"),
    (np.array([[0, 0], [1, 0], [np.nan, 1], [0, 1]], float), "finite"),
])
def test_degenerate_anchors_raise_mapping_error_with_reason(img, reason):
    scene = np.arange(img.size, dtype=float).reshape(img.shape) * [1, 0.5]
    with pytest.raises(MappingError, match=reason):
        fit_scene_mapping(img, scene)
    assert issubclass(MappingError, ValueError)


def test_mismatched_shapes():
    with pytest.raises(MappingError, match="same length"):
        fit_scene_mapping(np.zeros((5, 2)), np.zeros((4, 2)))


def test_inconsistent_anchors_raise():
    rng = np.random.default_rng(3)
    img = rng.uniform(0, 1000, (12, 2))
    scene = rng.uniform(0, 10, (12, 2))  # no mapping relates these
    with pytest.raises(MappingError):
        fit_scene_mapping(img, scene, allow_local=False)


def stand_points(curvature, seed=5):
    photo = render_crowd(seed=seed, width=1600, height=1200, cols=12, rows=8, module_px=3.0,
                         curvature=curvature, occlusion_rate=0.0)
    img = np.array([(p.x_img, p.y_img) for p in photo.phones])
    scene = np.array([(p.x_scene, p.y_scene) for p in photo.phones])
    return img, scene


def test_curved_stand_uses_the_local_model_and_it_wins():
    img, scene = stand_points(curvature=1.0)
    rng = np.random.default_rng(1)
    order = rng.permutation(len(img))
    anchors, test = order[:40], order[40:]
    scene_noisy = scene.copy()
    scene_noisy[anchors] += rng.normal(0, 0.005, (40, 2))
    scene_noisy[anchors[:3]] += 2.0  # three wrong anchors
    local = fit_scene_mapping(img[anchors], scene_noisy[anchors])
    with pytest.raises(MappingError, match="agree"):  # one plane explains too few anchors
        fit_scene_mapping(img[anchors], scene_noisy[anchors], allow_local=False)
    # the best single plane, with a threshold loose enough to take the whole bend
    plane = fit_scene_mapping(img[anchors], scene_noisy[anchors], allow_local=False,
                              threshold_scene=1.0)
    assert plane.kind == "homography" and local.kind == "local"
    assert not local.inlier_mask[:3].any()
    err_local = np.median(np.linalg.norm(local.apply(img[test]) - scene[test], axis=1))
    err_plane = np.median(np.linalg.norm(plane.apply(img[test]) - scene[test], axis=1))
    assert err_local < 0.3 * err_plane
    assert local.rms_scene > 0  # honest: the held-out error, not the spline's zero at anchors


def test_flat_stand_keeps_the_homography():
    img, scene = stand_points(curvature=0.0)
    rng = np.random.default_rng(2)
    noisy = scene + rng.normal(0, 0.01, scene.shape)
    mapping = fit_scene_mapping(img, noisy)
    assert mapping.kind == "homography"


def test_end_to_end_anchors_in_a_photo():
    photo = render_crowd(seed=12, width=1600, height=1200, cols=8, rows=6, module_px=3.5,
                         n_anchors=8)
    detections = decode_qr_codes(photo.image)
    anchors = [(d, photo.anchors[d.payload]) for d in detections if d.payload in photo.anchors]
    assert len(anchors) >= 6
    mapping = fit_scene_mapping(np.array([(d.x_img, d.y_img) for d, _ in anchors]),
                                np.array([xy for _, xy in anchors]))
    truth = {p.payload: p for p in photo.phones}
    pixels = [d for d in detections if d.payload not in photo.anchors]
    mapped = mapping.apply(np.array([(d.x_img, d.y_img) for d in pixels]))
    expected = np.array([(truth[d.payload].x_scene, truth[d.payload].y_scene) for d in pixels])
    err = np.linalg.norm(mapped - expected, axis=1)
    assert np.median(err) < 0.02  # metres; seats are 0.55 m apart
