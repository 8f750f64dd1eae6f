"""The seeded synthetic crowd renderer used by tests, the benchmark and the demo."""

from __future__ import annotations

import numpy as np
import pytest

from c3s.vision.crowd import render_crowd
from c3s.vision.qrcode import parse_payload


def small(**kw):
    args = dict(seed=1, width=1200, height=900, cols=6, rows=5, module_px=4.0)
    args.update(kw)
    return render_crowd(**args)


def test_same_seed_same_photo_other_seed_other_photo():
    a, b, c = small(), small(), small(seed=2)
    assert np.array_equal(a.image, b.image)
    assert [p.payload for p in a.phones] == [p.payload for p in b.phones]
    assert not np.array_equal(a.image, c.image)


def test_image_and_truth_are_consistent():
    photo = small(n_anchors=4, n_foreign=2)
    assert photo.image.shape == (900, 1200, 3) and photo.image.dtype == np.uint8
    assert len(photo.phones) == 30
    kinds = [p.kind for p in photo.phones]
    assert kinds.count("anchor") == 4 and kinds.count("foreign") == 2
    for phone in photo.phones:
        payload = parse_payload(phone.payload)
        assert payload is not None
        if phone.kind == "foreign":
            assert payload.scene_id == photo.scene_id + 1
        else:
            assert payload.scene_id == photo.scene_id
        assert phone.corners_img.shape == (4, 2)
        assert np.allclose(phone.corners_img.mean(axis=0), (phone.x_img, phone.y_img), atol=1.0)
        d1 = phone.corners_img[2] - phone.corners_img[0]
        d2 = phone.corners_img[3] - phone.corners_img[1]
        side = np.sqrt(abs(d1[0] * d2[1] - d1[1] * d2[0]) / 2)
        assert side / 21 == pytest.approx(phone.module_px, rel=1e-6)
    assert set(photo.anchors) == {p.payload for p in photo.phones if p.kind == "anchor"}
    for phone in photo.phones:
        if phone.kind == "anchor":
            assert photo.anchors[phone.payload] == (phone.x_scene, phone.y_scene)


def test_codes_are_drawn_where_the_truth_says():
    photo = small(blur_sigma=(0, 0), phone_blur_sigma=(0, 0), noise_sigma=(0, 0))
    gray = photo.image.mean(axis=2)
    for phone in photo.visible_phones:
        x0, y0 = np.floor(phone.corners_img.min(axis=0)).astype(int)
        x1, y1 = np.ceil(phone.corners_img.max(axis=0)).astype(int)
        region = gray[y0:y1, x0:x1]
        assert region.min() < 80 and region.max() - region.min() > 50  # dark modules, light screen


def test_module_size_classes_and_ranges():
    fixed = small(module_px=3.0)
    assert {round(p.module_px, 6) for p in fixed.phones} == {3.0}
    mixed = small(module_px=(2.5, 6.0))
    sizes = [p.module_px for p in mixed.phones]
    assert 2.5 <= min(sizes) < max(sizes) <= 6.0


def test_tilt_and_occlusion():
    photo = render_crowd(seed=3, width=2000, height=1500, cols=10, rows=8, module_px=3.0,
                         occlusion_rate=0.3)
    assert max(p.tilt_deg for p in photo.phones) <= 40.0
    assert max(p.tilt_deg for p in photo.phones) > 25.0
    assert 0 < sum(not p.visible for p in photo.phones) < len(photo.phones) // 2


def test_curved_stand_is_not_one_homography():
    import cv2

    flat, bent = small(), small(curvature=1.0)
    for photo, bent_expected in ((flat, False), (bent, True)):
        img = np.array([(p.x_img, p.y_img) for p in photo.phones])
        scene = np.array([(p.x_scene, p.y_scene) for p in photo.phones])
        h, _ = cv2.findHomography(scene, img, 0)
        err = np.linalg.norm(cv2.perspectiveTransform(scene.reshape(-1, 1, 2), h).reshape(-1, 2)
                             - img, axis=1)
        assert (err.max() > 5) == bent_expected


def test_bad_arguments_are_refused():
    with pytest.raises(ValueError):
        render_crowd(width=10, height=10)
    with pytest.raises(ValueError):
        render_crowd(cols=2, rows=2, n_anchors=5)


@pytest.mark.slow
def test_full_size_photo():
    photo = render_crowd(seed=0, module_px=(2.5, 6.0))
    assert photo.image.shape == (3000, 4000, 3) and len(photo.phones) == 192
    assert len(photo.visible_phones) > 150
