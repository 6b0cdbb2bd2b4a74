"""The pose covariance of odometry: the tracker's keyframe-relative one, chained over keyframes.

The tracker reports each frame's uncertainty relative to its keyframe (a perturbation
``world_from_camera @ exp(xi)`` in the camera's axes). Odometry's pose is relative to the first
frame, so its uncertainty is the keyframe's, carried into the frame's axes, plus the frame's own:

    cov_cam = Ad(cam_from_kf) cov_kf Ad(cam_from_kf)^T + cov_rel

(first order; keyframe links treated as independent). A frame that becomes the keyframe hands
its covariance on. Once any frame fails (no covariance: its pose is the motion model's guess)
nothing bounds the drift any more, so the chain says "unknown" until it is reset. The tracker's
own covariance is an underestimate (neighbouring features are correlated); ``scale`` multiplies
it, and the node exposes that factor.
"""
from __future__ import annotations

import numpy as np

from depth_unet_ros.errors import ConfigError
from depth_unet_ros.odometry import se3


class CovarianceChain:
    """Accumulates keyframe-relative (6, 6) covariances into first-frame-relative ones."""

    def __init__(self, scale: float = 1.0):
        if not scale > 0:
            raise ConfigError(f"the covariance scale must be positive, got {scale}")
        self._scale = float(scale)
        self.reset()

    def reset(self) -> None:
        """A new trajectory: its first frame is exactly at the origin."""
        self._world_from_kf: np.ndarray | None = None
        self._kf_covariance: np.ndarray | None = np.zeros((6, 6))
        self._lost = False

    def update(self, world_from_camera: np.ndarray, relative: np.ndarray | None, keyframe: bool,
               first: bool = False) -> np.ndarray | None:
        """The (6, 6) covariance of this frame's pose in its own axes, or None when unknown.

        ``relative`` is the tracker's covariance (None: failed, or the first frame); ``first``
        marks the frame that defines the origin (zero covariance).
        """
        pose = np.asarray(world_from_camera, dtype=np.float64)
        if first:
            self.reset()
            self._world_from_kf = pose
            return np.zeros((6, 6))
        if relative is None or self._lost or self._world_from_kf is None:
            self._lost = True
            return None
        ad = se3.adjoint(se3.inverse(pose) @ self._world_from_kf)  # cam_from_kf
        covariance = ad @ self._kf_covariance @ ad.T + self._scale * np.asarray(relative, np.float64)
        if keyframe:
            self._world_from_kf, self._kf_covariance = pose, covariance
        return covariance
