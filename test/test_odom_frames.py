"""odometry.odom_frames: tracker poses (first optical frame = world) become REP 105 odometry in an
``odom`` frame oriented as REP 103 (x forward, y left, z up), with an honest or unknown covariance."""
from __future__ import annotations

import numpy as np
import pytest

from depth_unet_ros.odometry import se3
from depth_unet_ros.odometry.odom_frames import (UNKNOWN_COVARIANCE, OdomState, OdomTrack,
                                                 odom_from_camera, pose_covariance_in_odom,
                                                 twist_between)
from depth_unet_ros.rotations import quaternion_xyzw_to_rotation


def _pose(rotation_vector=(0.0, 0.0, 0.0), translation=(0.0, 0.0, 0.0)) -> np.ndarray:
    pose = np.eye(4)
    pose[:3, :3] = se3.so3_exp(np.asarray(rotation_vector, dtype=float))
    pose[:3, 3] = translation
    return pose


def test_the_first_camera_sits_at_the_odom_origin_looking_along_odom_x():
    """Identity in the tracker: at the origin, optical z (forward) along odom +x, optical x
    (right) along odom -y, optical y (down) along odom -z."""
    pose = odom_from_camera(np.eye(4))
    np.testing.assert_allclose(pose[:3, 3], 0.0)
    np.testing.assert_allclose(pose[:3, :3] @ [0, 0, 1], [1, 0, 0], atol=1e-12)
    np.testing.assert_allclose(pose[:3, :3] @ [1, 0, 0], [0, -1, 0], atol=1e-12)
    np.testing.assert_allclose(pose[:3, :3] @ [0, 1, 0], [0, 0, -1], atol=1e-12)


def test_walking_forward_and_turning_left_read_as_rep103_motion():
    """1 m along optical +z is +x in odom; 1 m optical -y (up) is +z; a yaw to the left (about
    optical -y) is a positive rotation about odom z, and the quaternion says so too."""
    ahead, up = _pose(translation=(0, 0, 1)), _pose(translation=(0, -1, 0))
    np.testing.assert_allclose(odom_from_camera(ahead)[:3, 3], [1, 0, 0], atol=1e-12)
    np.testing.assert_allclose(odom_from_camera(up)[:3, 3], [0, 0, 1], atol=1e-12)
    turned = odom_from_camera(_pose(rotation_vector=(0, -0.3, 0)))
    forward = turned[:3, :3] @ [0, 0, 1]
    assert np.arctan2(forward[1], forward[0]) == pytest.approx(0.3)
    state = OdomState(0, turned, UNKNOWN_COVARIANCE, np.zeros(3), np.zeros(3))
    np.testing.assert_allclose(quaternion_xyzw_to_rotation(state.quaternion_xyzw), turned[:3, :3],
                               atol=1e-12)


def test_twist_is_in_the_moving_frame_and_per_second():
    """Moving 0.1 m forward and yawing 0.02 rad in 0.1 s: 1 m/s along the camera's own z and
    0.2 rad/s about its own y axis, wherever it points in the parent frame."""
    start = _pose(rotation_vector=(0.4, 1.0, -0.2), translation=(3, 2, 1))
    step = _pose(rotation_vector=(0, 0.02, 0), translation=(0, 0, 0.1))
    linear, angular = twist_between(start, start @ step, 0.1)
    expected_linear = (start @ step)[:3, :3].T @ (start[:3, :3] @ [0, 0, 0.1]) / 0.1
    np.testing.assert_allclose(linear, expected_linear, atol=1e-9)
    assert np.linalg.norm(linear) == pytest.approx(1.0)
    np.testing.assert_allclose(angular, [0, 0.2, 0], atol=1e-9)
    assert [v.tolist() for v in twist_between(start, start, 0.0)] == [[0, 0, 0], [0, 0, 0]]


def test_covariance_is_rotated_into_odom_axes_or_marked_unknown():
    """A variance along the camera's forward axis lands on odom x at the start; None, NaN, a
    wrong shape or an indefinite matrix become nav_msgs' 'unknown' (-1 first)."""
    cov = np.diag([1e-4, 2e-4, 9e-4, 1e-6, 2e-6, 3e-6])
    values = np.array(pose_covariance_in_odom(cov, odom_from_camera(np.eye(4))[:3, :3])).reshape(6, 6)
    np.testing.assert_allclose(np.diag(values), [9e-4, 1e-4, 2e-4, 3e-6, 1e-6, 2e-6], atol=1e-15)
    assert values[0, 0] >= 0 and len(UNKNOWN_COVARIANCE) == 36 and UNKNOWN_COVARIANCE[0] == -1
    indefinite = np.diag([1.0, 1, 1, 1, 1, -1])
    for bad in (None, np.full((6, 6), np.nan), np.eye(3), indefinite):
        assert pose_covariance_in_odom(bad, np.eye(3)) == UNKNOWN_COVARIANCE


def test_track_gives_zero_twist_first_then_the_finite_difference_and_forgets_on_reset():
    track = OdomTrack()
    first = track.update(1_000_000_000, np.eye(4), None)
    assert first.pose_covariance == UNKNOWN_COVARIANCE and first.twist_covariance[0] == -1
    np.testing.assert_allclose(first.linear_mps, 0.0)
    second = track.update(1_050_000_000, _pose(translation=(0, 0, 0.05)), np.eye(6) * 1e-4)
    np.testing.assert_allclose(second.linear_mps, [0, 0, 1.0], atol=1e-9)
    assert second.pose_covariance[0] == pytest.approx(1e-4)
    np.testing.assert_allclose(second.position_m, [0.05, 0, 0], atol=1e-12)
    track.reset()
    np.testing.assert_allclose(track.update(2_000_000_000, np.eye(4), None).linear_mps, 0.0)
