"""Map image points of one photo to scene coordinates from the anchors seen in it.

A robust homography (``cv2.USAC_MAGSAC``) is fitted on the anchors, then refined on its inliers
(Levenberg-Marquardt, which minimises the reprojection error in scene units). A stand is often not
one plane (a curved bowl, tiers): when the homography leaves large residuals on the inliers, a
local model is tried as well: a thin-plate spline (``scipy.interpolate.RBFInterpolator``) that
corrects the homography's residuals smoothly. The model kept is the one with the smaller error on
held-out anchors (5-fold: each anchor is predicted by a model fitted without it).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import cv2
import numpy as np

MIN_ANCHORS = 4
MIN_AGREEING = 0.4  # share of the anchors a mapping must explain


class MappingError(ValueError):
    """The anchors cannot define a mapping; ``str(error)`` says why, in words for a person."""


@dataclass
class SceneMapping:
    """Image pixels -> scene units, fitted on anchors.

    ``kind``: "homography" or "local"; ``anchors_found``: anchors given; ``inliers``: how many
    the model kept; ``inlier_mask``: bool (N,) over the anchors given; ``residuals_scene``: (N,)
    distance in scene units between each anchor's mapped image point and its scene position
    (outliers included); ``rms_scene``: root mean square of the inliers' residuals (for the local
    model, which passes close to every anchor, its held-out error, which is the honest figure);
    ``holdout_rms_scene``: the held-out error that chose the model.
    """

    kind: str
    homography: np.ndarray
    anchors_found: int
    inliers: int
    inlier_mask: np.ndarray
    residuals_scene: np.ndarray
    rms_scene: float
    holdout_rms_scene: float
    _spline: object | None = field(default=None, repr=False)

    def apply(self, img_pts: np.ndarray) -> np.ndarray:
        """Map (N, 2) image points (pixels) to (N, 2) scene points (scene units)."""
        pts = np.asarray(img_pts, np.float64).reshape(-1, 2)
        if len(pts) == 0:
            return np.empty((0, 2))
        out = _project(self.homography, pts)
        if self._spline is not None:
            out = out + self._spline(pts)
        return out


def _project(h: np.ndarray, pts: np.ndarray) -> np.ndarray:
    return cv2.perspectiveTransform(pts.reshape(-1, 1, 2).astype(np.float64), h).reshape(-1, 2)


def _check_geometry(img: np.ndarray, scene: np.ndarray) -> None:
    if img.ndim != 2 or img.shape[1] != 2 or scene.shape != img.shape:
        raise MappingError(
            f"image and scene points must both be (N, 2) arrays of the same length, got "
            f"{img.shape} and {scene.shape}")
    if not (np.all(np.isfinite(img)) and np.all(np.isfinite(scene))):
        raise MappingError("anchor coordinates must be finite numbers")
    n = len(img)
    if n < MIN_ANCHORS:
        raise MappingError(f"{n} anchor(s) found; at least {MIN_ANCHORS} are needed to fit a "
                           "mapping from the photo to the scene")
    for name, pts, unit in (("image", img, "pixels"), ("scene", scene, "scene units")):
        distinct = np.unique(np.round(pts, 6), axis=0)
        if len(distinct) < MIN_ANCHORS:
            raise MappingError(
                f"only {len(distinct)} distinct anchor positions in the {name}; duplicated "
                f"anchors do not count, at least {MIN_ANCHORS} distinct ones are needed")
        centred = distinct - distinct.mean(axis=0)
        sv = np.linalg.svd(centred, compute_uv=False)
        spread = float(np.sqrt(np.mean(np.sum(centred**2, axis=1))))
        if spread == 0 or sv[1] < 1e-3 * sv[0]:
            raise MappingError(
                f"the anchors lie on one line in the {name} ({unit}); they must span an area "
                "(no three of four on a line) to fix a perspective mapping")


def _fit_homography(img: np.ndarray, scene: np.ndarray, threshold: float,
                    rng_seed: int = 0) -> tuple[np.ndarray, np.ndarray] | None:
    if len(img) < MIN_ANCHORS:
        return None
    cv2.setRNGSeed(rng_seed)
    h, mask = cv2.findHomography(img, scene, cv2.USAC_MAGSAC, threshold, maxIters=10000,
                                 confidence=0.999)
    if h is None or mask is None:
        return None
    mask = mask.ravel().astype(bool)
    if mask.sum() < MIN_ANCHORS:
        return None
    # refine on the inliers: Levenberg-Marquardt on the scene-space reprojection error
    h_lm, _ = cv2.findHomography(img[mask], scene[mask], 0)
    if h_lm is not None:
        h_lm = _refine_lm(h_lm, img[mask], scene[mask])
        # keep the refinement only if it does not lose inliers
        res = np.linalg.norm(_project(h_lm, img) - scene, axis=1)
        if (res[mask] <= threshold * 1.5).mean() >= 0.95:
            h = h_lm
    if abs(np.linalg.det(h)) < 1e-12:
        return None
    return h, mask


def _refine_lm(h: np.ndarray, img: np.ndarray, scene: np.ndarray, iters: int = 20) -> np.ndarray:
    """Levenberg-Marquardt on the 8 free parameters of ``h`` (h33 = 1)."""
    p = (h / h[2, 2]).ravel()[:8].copy()

    def residual(p):
        hh = np.append(p, 1.0).reshape(3, 3)
        return (_project(hh, img) - scene).ravel()

    lam = 1e-3
    r = residual(p)
    cost = float(r @ r)
    for _ in range(iters):
        jac = np.empty((len(r), 8))
        for k in range(8):
            step = 1e-7 * max(abs(p[k]), 1e-3)
            dp = p.copy()
            dp[k] += step
            jac[:, k] = (residual(dp) - r) / step
        jtj, jtr = jac.T @ jac, jac.T @ r
        improved = False
        for _ in range(10):
            try:
                delta = np.linalg.solve(jtj + lam * np.diag(np.diag(jtj) + 1e-12), -jtr)
            except np.linalg.LinAlgError:
                break
            r_new = residual(p + delta)
            c_new = float(r_new @ r_new)
            if c_new < cost:
                p, r, cost, lam, improved = p + delta, r_new, c_new, lam * 0.3, True
                break
            lam *= 10
        if not improved or cost < 1e-20:
            break
    return np.append(p, 1.0).reshape(3, 3)


def _rms(x: np.ndarray) -> float:
    return float(np.sqrt(np.mean(np.square(x)))) if len(x) else float("nan")


def fit_scene_mapping(
    img_pts: np.ndarray,
    scene_pts: np.ndarray,
    *,
    threshold_scene: float | None = None,
    local_if_rms_over: float | None = None,
    allow_local: bool = True,
    min_local_anchors: int = 8,
) -> SceneMapping:
    """Fit image -> scene on anchors: robust homography, or a local model where one plane fails.

    Parameters
    ----------
    img_pts : (N, 2) array of image points, pixels.
    scene_pts : (N, 2) array of the same anchors' scene positions, scene units.
    threshold_scene : inlier threshold of MAGSAC, scene units. Default: 1 % of the anchors' extent
        in the scene.
    local_if_rms_over : try the local model when the homography's inlier RMS exceeds this (scene
        units). Default: a quarter of ``threshold_scene``.
    allow_local : set False to force a single homography.
    min_local_anchors : fewest inliers for which the local model is considered.

    Raises
    ------
    MappingError
        Fewer than 4 anchors, duplicated or collinear anchors, or no mapping that at least 5
        anchors and 40 % of them agree on (with more than 4 anchors).
    """
    img = np.asarray(img_pts, np.float64)
    scene = np.asarray(scene_pts, np.float64)
    _check_geometry(img, scene)
    extent = float(np.max(np.ptp(scene, axis=0)))
    if threshold_scene is None:
        threshold_scene = 0.01 * extent
    if local_if_rms_over is None:
        local_if_rms_over = 0.25 * threshold_scene

    fitted = _fit_homography(img, scene, threshold_scene)
    if fitted is None:
        # a bent stand can leave too few points within the strict threshold; loosen once
        threshold_scene *= 4
        fitted = _fit_homography(img, scene, threshold_scene)
    if fitted is None:
        raise MappingError(
            "no perspective mapping agrees with at least 4 anchors; check that the anchors' "
            "scene coordinates match the codes in the photo")
    h, mask = fitted
    residuals = np.linalg.norm(_project(h, img) - scene, axis=1)
    h_rms = _rms(residuals[mask])
    mapping = SceneMapping(kind="homography", homography=h, anchors_found=len(img),
                           inliers=int(mask.sum()), inlier_mask=mask, residuals_scene=residuals,
                           rms_scene=h_rms, holdout_rms_scene=float("nan"))
    bent = h_rms > local_if_rms_over or mask.sum() < 0.8 * len(img)
    if allow_local and len(img) >= min_local_anchors and bent:
        mapping = _maybe_local(mapping, img, scene, threshold_scene)
    n = len(img)
    if n > MIN_ANCHORS and (mapping.inliers <= MIN_ANCHORS or mapping.inliers < MIN_AGREEING * n):
        # any 4 points fit some homography exactly: agreement of so few proves nothing
        raise MappingError(
            f"only {mapping.inliers} of {n} anchors agree on one mapping; check that the "
            "anchors' scene coordinates match the codes in the photo")
    return mapping


def _spline(img: np.ndarray, resid: np.ndarray, smoothing: float):
    from scipy.interpolate import RBFInterpolator

    scale = float(np.max(np.ptp(img, axis=0))) or 1.0
    rbf = RBFInterpolator(img / scale, resid, kernel="thin_plate_spline", smoothing=smoothing,
                          degree=1)
    return lambda pts: rbf(np.asarray(pts, np.float64).reshape(-1, 2) / scale)


def _kfold_errors(img: np.ndarray, scene: np.ndarray, smoothing: float | None,
                  folds: int = 5) -> np.ndarray:
    """Held-out error of every anchor (k-fold): homography alone (``smoothing`` None) or
    homography + thin-plate spline on its residuals."""
    n = len(img)
    order = np.random.default_rng(0).permutation(n)
    errors = np.full(n, np.inf)
    for k in range(min(folds, n)):
        test = order[k::folds]
        train = np.setdiff1d(order, test)
        if len(train) < MIN_ANCHORS + (2 if smoothing is not None else 0):
            continue
        h, _ = cv2.findHomography(img[train], scene[train], 0)
        if h is None:
            continue
        pred = _project(h, img[test])
        if smoothing is not None:
            corr = _spline(img[train], scene[train] - _project(h, img[train]), smoothing)
            pred = pred + corr(img[test])
        errors[test] = np.linalg.norm(pred - scene[test], axis=1)
    return errors


def _maybe_local(mapping: SceneMapping, img: np.ndarray, scene: np.ndarray,
                 threshold_scene: float) -> SceneMapping:
    """Replace the homography by homography + thin-plate spline if held-out anchors say so.

    On a bent stand MAGSAC keeps only the part of it one plane explains, so the local model starts
    from every anchor and drops, twice, those its own held-out error calls outliers (a pixel
    that moved, a wrong anchor)."""
    keep = np.ones(len(img), bool)
    smoothing = 1e-3
    for _ in range(3):
        if keep.sum() < MIN_ANCHORS + 4:
            return mapping
        errors = _kfold_errors(img[keep], scene[keep], smoothing)
        finite = errors[np.isfinite(errors)]
        if len(finite) == 0:
            return mapping
        med = float(np.median(finite))
        cut = max(threshold_scene, med + 4 * 1.4826 * float(np.median(np.abs(finite - med))))
        bad = ~(errors <= cut)
        if not bad.any():
            break
        idx = np.flatnonzero(keep)
        keep[idx[bad]] = False
    x_img, x_scene = img[keep], scene[keep]
    h_err = _rms(_kfold_errors(x_img, x_scene, None))
    best = None
    for smoothing in (0.0, 1e-4, 1e-3, 1e-2):
        err = _rms(_kfold_errors(x_img, x_scene, smoothing))
        if np.isfinite(err) and (best is None or err < best[0]):
            best = (err, smoothing)
    # held-out error of the homography fitted by MAGSAC on its own inliers, for comparison
    mh_err = _rms(_kfold_errors(img[mapping.inlier_mask], scene[mapping.inlier_mask], None))
    mapping.holdout_rms_scene = mh_err
    if best is None or not best[0] < 0.8 * min(h_err, mh_err if mapping.inliers >= 0.8 * keep.sum()
                                               else np.inf):
        return mapping
    err, smoothing = best
    h_use, _ = cv2.findHomography(x_img, x_scene, 0)
    if h_use is None:
        return mapping
    corr = _spline(x_img, x_scene - _project(h_use, x_img), smoothing)
    pred = _project(h_use, img) + corr(img)
    residuals = np.linalg.norm(pred - scene, axis=1)
    return SceneMapping(kind="local", homography=h_use, anchors_found=len(img),
                        inliers=int(keep.sum()), inlier_mask=keep, residuals_scene=residuals,
                        rms_scene=max(_rms(residuals[keep]), err), holdout_rms_scene=err,
                        _spline=corr)
