"""The reference tracker for comparisons: OpenCV 5's dense RGB-D odometry, frame to frame.

``cv2.Odometry`` with ``OdometryType_RGB_DEPTH`` (Steinbruecker et al.'s photometric alignment
plus ICP on the depth) is the off-the-shelf tracker the feature tracker has to beat when both
are fed the same depth. It sits behind ``FeatureTracker``'s ``track`` / ``reset`` interface so
the offline command runs either on the same frames. Each frame is aligned to the previous one
and the motions are chained; a failed alignment keeps the previous pose (zero motion) and is
reported ``ok=False``. OpenCV's own defaults are kept except the camera matrix and the depth
range, so the baseline is what a user of the library gets.
"""
from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from depth_unet_ros.errors import ImageFormatError
from depth_unet_ros.odometry.tracker import TrackResult

ALGORITHMS = {"common": cv2.OdometryAlgoType_COMMON, "fast": cv2.OdometryAlgoType_FAST}


@dataclass(frozen=True)
class OpenCvOdometryConfig:
    """``algorithm``: OpenCV's "common" (default) or "fast" variant. Depth outside
    [min_depth_m, max_depth_m] is ignored; the range is the depth model's (OpenCV's own
    default stops at 4 m, which would drop the far half of a room)."""

    algorithm: str = "common"
    min_depth_m: float = 0.1
    max_depth_m: float = 10.0


class OpenCvRgbdOdometry:
    """Frame-to-frame ``cv2.Odometry`` (RGB_DEPTH) with FeatureTracker's interface; ``features``
    are accepted and ignored. World = the first frame's optical frame."""

    def __init__(self, config: OpenCvOdometryConfig = OpenCvOdometryConfig()) -> None:
        if config.algorithm not in ALGORITHMS:
            raise ValueError(f"algorithm must be one of {', '.join(ALGORITHMS)}, got "
                             f"{config.algorithm!r}")
        self.config = config
        self.reset()

    def reset(self) -> None:
        """Forget the previous frame: the next one starts a new world frame."""
        self._odometry = None
        self._k: np.ndarray | None = None
        self._previous = None  # (depth, grey) of the last frame
        self._world_from_previous = np.eye(4)

    def track(self, stamp_ns: int, depth_m: np.ndarray, features: np.ndarray | None,
              k: np.ndarray, image_rgb: np.ndarray | None = None) -> TrackResult:
        """Pose of this frame's optical frame in the first frame's (see FeatureTracker.track).

        ``image_rgb`` is required (RGB_DEPTH uses intensity) and must have the depth's size.
        """
        depth = np.asarray(depth_m, dtype=np.float32)
        if depth.ndim != 2:
            raise ImageFormatError(f"depth must be (H, W) metres, got shape {depth.shape}")
        if image_rgb is None or image_rgb.shape[:2] != depth.shape or image_rgb.dtype != np.uint8:
            got = None if image_rgb is None else (image_rgb.shape, image_rgb.dtype)
            raise ImageFormatError(f"OpenCV RGB-D odometry needs image_rgb as (H, W, 3) uint8 at "
                                   f"the depth's size {depth.shape}, got {got}")
        depth = np.where(np.isfinite(depth) & (depth > 0), depth, np.float32(0.0))
        grey = cv2.cvtColor(np.ascontiguousarray(image_rgb), cv2.COLOR_RGB2GRAY)
        k = np.asarray(k, dtype=np.float64).reshape(3, 3)
        if self._odometry is None or not np.allclose(k, self._k):
            self._odometry, self._k = self._make(k), k
        if self._previous is None:
            self._previous = (depth, grey)
            return TrackResult(int(stamp_ns), np.eye(4), True, True, 0.0, None, 0)
        source = cv2.OdometryFrame(*self._previous)
        target = cv2.OdometryFrame(depth, grey)
        self._odometry.prepareFrames(source, target)
        ok, current_from_previous = self._odometry.compute(source, target)  # Rt * src = dst
        ok = bool(ok) and current_from_previous is not None and np.all(
            np.isfinite(current_from_previous))
        if ok:
            self._world_from_previous = self._world_from_previous @ np.linalg.inv(
                np.asarray(current_from_previous, dtype=np.float64))
        self._previous = (depth, grey)
        return TrackResult(int(stamp_ns), self._world_from_previous.copy(), ok, True,
                           0.0 if ok else float("inf"), None, 0)

    def _make(self, k: np.ndarray):
        settings = cv2.OdometrySettings()
        settings.setCameraMatrix(k.astype(np.float32))  # OpenCV 5 asserts CV_32F here
        settings.setMinDepth(self.config.min_depth_m)
        settings.setMaxDepth(self.config.max_depth_m)
        return cv2.Odometry(cv2.OdometryType_RGB_DEPTH, settings, ALGORITHMS[self.config.algorithm])
