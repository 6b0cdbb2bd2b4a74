"""Direct alignment of one pyramid level: robust inverse-compositional Levenberg-Marquardt.

The keyframe's pixels, lifted to 3D through its depth, are moved by ``cur_from_kf`` into the
current frame and compared with the current image (features or intensity) there. Inverse
compositional: the Jacobians are taken on the keyframe's own image at the identity, so they and
the per-pixel 6x6 Hessian blocks are computed once per keyframe, and an iteration costs one
bilinear lookup and a few reductions. Robust: residual vectors are Huber-weighted by their norm,
with the scale re-estimated (median absolute residual) at the start of each level.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from depth_unet_ros.odometry import se3
from depth_unet_ros.odometry.pyramid import bilinear, gradients


@dataclass(frozen=True)
class ReferenceLevel:
    """One keyframe level, ready to be aligned against: N selected pixels."""

    points: np.ndarray      # (N, 3) float64 keyframe-camera coordinates in metres
    values: np.ndarray      # (N, C) float32 keyframe image at those pixels
    jacobian: np.ndarray    # (N, C, 6) float32 d(image)/d(twist) at the identity
    hessians: np.ndarray    # (N, 36) float64 per-pixel J^T J, summed with weights per iteration
    k: np.ndarray           # (3, 3) camera matrix at this level's size
    height: int
    width: int


@dataclass(frozen=True)
class LevelResult:
    """Outcome of aligning one level."""

    cur_from_kf: np.ndarray  # (4, 4) refined estimate
    residual: float          # final robust mean residual norm (image units)
    inside_fraction: float   # share of the reference pixels that land inside the current image
    inlier_fraction: float   # share of the inside pixels within the Huber threshold
    hessian: np.ndarray      # (6, 6) weighted J^T J at the solution (in the keyframe's axes)
    sigma2: float            # weighted residual variance per scalar residual
    iterations: int
    converged: bool          # stopped on a small step rather than on the iteration cap


def make_reference(image: np.ndarray, depth_m: np.ndarray, k: np.ndarray, min_depth_m: float,
                   max_points: int, border_px: int = 1) -> ReferenceLevel:
    """Select the keyframe pixels of one level and precompute their Jacobians.

    ``image`` (h, w, C) and ``depth_m`` (h, w, 0 = invalid) have the level's size. Pixels need a
    valid depth and a non-zero gradient; when more than ``max_points`` qualify, the ones with
    the strongest gradient are kept (flat pixels constrain nothing).
    """
    h, w, c = image.shape
    gx, gy = gradients(image)
    strength = np.sqrt((gx * gx + gy * gy).sum(axis=2))
    ok = (depth_m > min_depth_m) & (strength > 1e-6)
    if border_px > 0:
        ok[:border_px] = ok[-border_px:] = False
        ok[:, :border_px] = ok[:, -border_px:] = False
    idx = np.flatnonzero(ok)
    if idx.size > max_points:
        keep = np.argpartition(strength.ravel()[idx], idx.size - max_points)[-max_points:]
        idx = np.sort(idx[keep])
    v, u = np.divmod(idx, w)
    z = depth_m.ravel()[idx].astype(np.float64)
    fx, fy, cx, cy = k[0, 0], k[1, 1], k[0, 2], k[1, 2]
    x = (u - cx) / fx * z
    y = (v - cy) / fy * z
    points = np.stack([x, y, z], axis=1)
    # d(u, v)/d(twist) at the identity, for a point moved by exp(twist) (translation first).
    iz, iz2 = 1.0 / z, 1.0 / (z * z)
    du = np.stack([fx * iz, 0 * z, -fx * x * iz2,
                   -fx * x * y * iz2, fx * (1 + x * x * iz2), -fx * y * iz], axis=1)
    dv = np.stack([0 * z, fy * iz, -fy * y * iz2,
                   -fy * (1 + y * y * iz2), fy * x * y * iz2, fy * x * iz], axis=1)
    gxs = gx.reshape(-1, c)[idx]
    gys = gy.reshape(-1, c)[idx]
    jac = (gxs[:, :, None] * du[:, None, :] + gys[:, :, None] * dv[:, None, :]).astype(np.float32)
    hess = np.matmul(jac.transpose(0, 2, 1), jac).astype(np.float64).reshape(-1, 36)
    return ReferenceLevel(points=points, values=image.reshape(-1, c)[idx], jacobian=jac,
                          hessians=hess, k=np.asarray(k, dtype=np.float64), height=h, width=w)


def _residuals(ref: ReferenceLevel, image: np.ndarray, cur_from_kf: np.ndarray,
               min_depth_m: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(N, C) residuals current - keyframe, (N,) their norms, (N,) usable mask."""
    p = ref.points @ cur_from_kf[:3, :3].T + cur_from_kf[:3, 3]
    z = p[:, 2]
    front = z > min_depth_m
    zs = np.where(front, z, 1.0)
    u = ref.k[0, 0] * p[:, 0] / zs + ref.k[0, 2]
    v = ref.k[1, 1] * p[:, 1] / zs + ref.k[1, 2]
    values, inside = bilinear(image, u, v)
    usable = inside & front
    r = values - ref.values
    r[~usable] = 0.0
    return r, np.sqrt(np.einsum("nc,nc->n", r, r)), usable


def _huber(e: np.ndarray, delta: float) -> tuple[np.ndarray, np.ndarray]:
    """Huber cost and IRLS weight of residual norms ``e``."""
    small = e <= delta
    cost = np.where(small, 0.5 * e * e, delta * (e - 0.5 * delta))
    weight = np.where(small, 1.0, delta / np.maximum(e, 1e-12))
    return cost, weight


def align_level(ref: ReferenceLevel, image: np.ndarray, cur_from_kf: np.ndarray,
                max_iterations: int, huber_k: float, min_depth_m: float,
                step_tolerance: float = 1e-5, cost_tolerance: float = 1e-3) -> LevelResult:
    """Refine ``cur_from_kf`` so that ``image`` (the current frame at this level) matches the
    keyframe's reference pixels; Levenberg-Marquardt with a step accepted only if the robust
    mean cost falls."""
    n = len(ref.points)
    c = ref.values.shape[1]
    pose = np.array(cur_from_kf, dtype=np.float64)
    r, e, usable = _residuals(ref, image, pose, min_depth_m)
    if usable.sum() < 12:
        return LevelResult(pose, float("inf"), float(usable.mean()) if n else 0.0, 0.0,
                           np.zeros((6, 6)), float("inf"), 0, False)
    # Robust scale from this level's starting residuals (MAD of norms), floored so that a
    # perfect start does not make every later pixel an outlier.
    delta = huber_k * max(1.4826 * float(np.median(e[usable])), 1e-3 * np.sqrt(c))

    def cost_of(e: np.ndarray, usable: np.ndarray) -> float:
        return float(_huber(e[usable], delta)[0].mean())

    cost = cost_of(e, usable)
    lam, iterations, converged = 1e-4, 0, False
    for iterations in range(1, max_iterations + 1):
        _, w = _huber(e, delta)
        w = np.where(usable, w, 0.0)
        hess = (w @ ref.hessians).reshape(6, 6)
        # One matrix-vector product over all N x C residuals (BLAS), not an einsum loop.
        grad = ((w[:, None] * r).reshape(1, -1) @ ref.jacobian.reshape(-1, 6))[0].astype(np.float64)
        step_ok = False
        for _ in range(6):
            damped = hess + lam * np.diag(np.diag(hess) + 1e-9)
            try:
                # r(delta) ~ r - J delta, so the least-squares step is +H^-1 J^T r, undone
                # on the keyframe side (inverse compositional update).
                delta_xi = np.linalg.solve(damped, grad)
            except np.linalg.LinAlgError:
                lam *= 10.0
                continue
            trial = pose @ se3.inverse(se3.exp(delta_xi))
            r_t, e_t, usable_t = _residuals(ref, image, trial, min_depth_m)
            cost_t = cost_of(e_t, usable_t) if usable_t.sum() >= 12 else np.inf
            if cost_t <= cost:
                gain = (cost - cost_t) / max(cost, 1e-12)
                pose, r, e, usable, cost = trial, r_t, e_t, usable_t, cost_t
                lam = max(lam / 10.0, 1e-7)
                step_ok = True
                break
            lam *= 10.0
        if not step_ok or np.linalg.norm(delta_xi) < step_tolerance or gain < cost_tolerance:
            converged = True  # no step lowers the cost (enough) any more, or it is negligible
            break
    _, w = _huber(e, delta)
    w = np.where(usable, w, 0.0)
    hess = (w @ ref.hessians).reshape(6, 6)
    used = int(usable.sum())
    sigma2 = float((w * e * e).sum() / max(used * c - 6, 1))
    inliers = float((e[usable] <= delta).mean()) if used else 0.0
    return LevelResult(cur_from_kf=pose, residual=float(e[usable].mean()),
                       inside_fraction=used / max(n, 1), inlier_fraction=inliers,
                       hessian=hess, sigma2=sigma2, iterations=iterations, converged=converged)
