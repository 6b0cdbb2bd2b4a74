"""odometry.covariance_chain: odometry's pose covariance grows over keyframes, starts at zero, and
is marked unknown for good once the tracker fails (until a reset)."""
from __future__ import annotations

import numpy as np
import pytest

from depth_unet_ros.errors import ConfigError
from depth_unet_ros.odometry import se3
from depth_unet_ros.odometry.covariance_chain import CovarianceChain


def _forward(distance_m: float) -> np.ndarray:
    pose = np.eye(4)
    pose[2, 3] = distance_m
    return pose


def test_the_first_frame_is_certain_and_keyframe_links_add_up():
    """Straight ahead, no rotation: each keyframe link adds its own variance (the adjoint of a
    pure translation leaves translation variances alone)."""
    chain = CovarianceChain()
    rel = np.diag([1e-4] * 3 + [1e-6] * 3)
    assert np.all(chain.update(np.eye(4), None, keyframe=True, first=True) == 0)
    within = chain.update(_forward(0.05), rel, keyframe=False)
    np.testing.assert_allclose(np.diag(within)[:3], 1e-4)
    chain.update(_forward(0.1), rel, keyframe=True)
    after_two = chain.update(_forward(0.15), rel, keyframe=True)
    np.testing.assert_allclose(np.diag(after_two)[:3], 2e-4, rtol=0.01)  # + rotation lever arm
    assert np.all(np.linalg.eigvalsh(after_two) >= 0)


def test_rotation_uncertainty_becomes_position_uncertainty_at_a_distance():
    """An uncertain heading at the keyframe moves a frame 1 m further on sideways: its lateral
    variance grows by about (1 m)^2 x the yaw variance."""
    chain = CovarianceChain()
    chain.update(np.eye(4), None, keyframe=True, first=True)
    yaw_only = np.zeros((6, 6))
    yaw_only[4, 4] = 1e-4  # about the optical y (vertical) axis
    chain.update(np.eye(4) @ se3.exp([0, 0, 0, 0, 0, 0]), yaw_only, keyframe=True)
    far = chain.update(_forward(1.0), np.zeros((6, 6)), keyframe=False)
    assert far[0, 0] == pytest.approx(1e-4, rel=1e-6)  # optical x = sideways
    assert far[2, 2] == pytest.approx(0.0, abs=1e-15)  # along the view: unaffected


def test_a_failure_makes_it_unknown_until_reset_and_scale_multiplies():
    chain = CovarianceChain(scale=4.0)
    chain.update(np.eye(4), None, keyframe=True, first=True)
    np.testing.assert_allclose(chain.update(_forward(0.01), np.eye(6), keyframe=False), 4 * np.eye(6))
    assert chain.update(_forward(0.02), None, keyframe=True) is None
    assert chain.update(_forward(0.03), np.eye(6), keyframe=False) is None
    assert np.all(chain.update(_forward(0.03), None, keyframe=True, first=True) == 0)
    with pytest.raises(ConfigError):
        CovarianceChain(scale=0.0)
