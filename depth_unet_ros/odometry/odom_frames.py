"""The tracker's camera poses as REP 105 odometry: pose in ``odom``, twist in the camera frame.

The tracker's world is the first frame's camera optical frame (x right, y down, z forward).
``odom`` is placed at that first camera pose but oriented as REP 103 wants a body frame (x
forward, y left, z up: the camera's ``camera_link`` then), through the fixed turn in
``rotations``; without an IMU the odom z axis is the first frame's "up", not gravity's. The
child frame is the camera's optical frame, whose pose in ``odom`` the message carries.

Covariances follow nav_msgs: 6x6 row-major over (x, y, z, rot x, rot y, rot z); a pose
covariance in the parent (``odom``) axes, a twist covariance in the child's; ``-1`` in the first
element marks one as unknown. Pure numpy, no rclpy.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from depth_unet_ros.odometry import se3
from depth_unet_ros.rotations import LINK_FROM_OPTICAL, rotation_to_quaternion_xyzw

# odom's axes in the first optical frame's terms: odom = that frame's camera_link orientation.
ODOM_FROM_FIRST_OPTICAL = np.eye(4)
ODOM_FROM_FIRST_OPTICAL[:3, :3] = LINK_FROM_OPTICAL
UNKNOWN_COVARIANCE = tuple([-1.0] + [0.0] * 35)  # nav_msgs: "-1 in [0]" = unknown


@dataclass(frozen=True)
class OdomState:
    """One nav_msgs/Odometry's numbers: the optical frame's pose in odom and its velocity."""

    stamp_ns: int
    odom_from_camera: np.ndarray  # (4, 4) float64
    pose_covariance: tuple[float, ...]  # 36, odom axes, or UNKNOWN_COVARIANCE
    linear_mps: np.ndarray  # (3,) m/s in the camera (child) frame
    angular_radps: np.ndarray  # (3,) rad/s in the camera (child) frame
    twist_covariance: tuple[float, ...] = UNKNOWN_COVARIANCE

    @property
    def position_m(self) -> np.ndarray:
        return self.odom_from_camera[:3, 3]

    @property
    def quaternion_xyzw(self) -> np.ndarray:
        return rotation_to_quaternion_xyzw(self.odom_from_camera[:3, :3])


def odom_from_camera(world_from_camera: np.ndarray) -> np.ndarray:
    """(4, 4) tracker pose (world = first optical frame) -> the optical frame's pose in odom."""
    return ODOM_FROM_FIRST_OPTICAL @ np.asarray(world_from_camera, dtype=np.float64)


def pose_covariance_in_odom(covariance: np.ndarray | None,
                            odom_from_cov_axes: np.ndarray) -> tuple[float, ...]:
    """A (6, 6) covariance over (t, r) whose axes are those of a frame with rotation
    ``odom_from_cov_axes`` (3, 3) in odom -> the message's 36 values in odom's axes; unknown
    (``-1`` first) when it is None or not a finite, symmetric, positive semi-definite 6x6."""
    if covariance is None:
        return UNKNOWN_COVARIANCE
    cov = np.asarray(covariance, dtype=np.float64)
    if cov.shape != (6, 6) or not np.all(np.isfinite(cov)):
        return UNKNOWN_COVARIANCE
    cov = 0.5 * (cov + cov.T)
    if np.linalg.eigvalsh(cov).min() < -1e-12 * max(1.0, float(np.abs(cov).max())):
        return UNKNOWN_COVARIANCE
    turn = np.zeros((6, 6))
    turn[:3, :3] = turn[3:, 3:] = np.asarray(odom_from_cov_axes, dtype=np.float64)
    return tuple(float(v) for v in (turn @ cov @ turn.T).ravel())


def twist_between(earlier: np.ndarray, later: np.ndarray, dt_s: float) -> tuple[np.ndarray, np.ndarray]:
    """(linear m/s, angular rad/s), both in the later pose's own axes, of a frame that moved
    from pose ``earlier`` to ``later`` (both (4, 4) in one parent frame) in ``dt_s`` seconds."""
    if not dt_s > 0:
        return np.zeros(3), np.zeros(3)
    earlier, later = np.asarray(earlier, np.float64), np.asarray(later, np.float64)
    linear = later[:3, :3].T @ (later[:3, 3] - earlier[:3, 3]) / dt_s
    angular = se3.so3_log(earlier[:3, :3].T @ later[:3, :3]) / dt_s
    return linear, angular


class OdomTrack:
    """Turns a stream of tracker poses into OdomState, keeping the previous one for the twist.

    The covariance given to ``update`` is over a perturbation in the camera's own axes
    (``world_from_camera @ exp(xi)``), as the tracker and ``CovarianceChain`` give it.
    """

    def __init__(self) -> None:
        self._previous: tuple[int, np.ndarray] | None = None

    def update(self, stamp_ns: int, world_from_camera: np.ndarray,
               covariance: np.ndarray | None) -> OdomState:
        pose = odom_from_camera(world_from_camera)
        linear, angular = np.zeros(3), np.zeros(3)
        if self._previous is not None:
            previous_ns, previous_pose = self._previous
            linear, angular = twist_between(previous_pose, pose, (stamp_ns - previous_ns) / 1e9)
        self._previous = (int(stamp_ns), pose)
        return OdomState(int(stamp_ns), pose, pose_covariance_in_odom(covariance, pose[:3, :3]),
                         linear, angular)

    def reset(self) -> None:
        """Forget the previous pose (the tracker was reset, so poses restart from identity)."""
        self._previous = None
