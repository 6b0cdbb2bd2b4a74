"""Camera geometry: K and P follow a resized image, malformed CameraInfo is refused, and the
focal scale makes a model's depth metric for a camera other than the training one."""
import math

import numpy as np
import pytest

from depth_unet_ros import camera_geometry
from depth_unet_ros.camera_geometry import MalformedCameraInfoError
from depth_unet_ros.datasets.base import Intrinsics


@pytest.mark.parametrize("size_from, size_to", [((640, 480), (320, 240)), ((640, 480), (96, 64)),
                                                ((160, 120), (640, 480)), ((640, 480), (640, 480))])
def test_camera_matrices_scale_like_intrinsics_scaled(size_from, size_to):
    """K and P follow Intrinsics.scaled (pixel-edge convention); P's Tx scales with fx."""
    fx, fy, cx, cy, tx = 500.0, 510.0, 319.2, 241.7, -25.0
    k = [fx, 0, cx, 0, fy, cy, 0, 0, 1]
    p = [fx, 0, cx, tx, 0, fy, cy, 0, 0, 0, 1, 0]
    k_out, p_out = camera_geometry.scale_camera_matrices(k, p, size_from, size_to)
    ref = Intrinsics(fx, fy, cx, cy, *size_from).scaled(*size_to)
    expected_k = [ref.fx, 0, ref.cx, 0, ref.fy, ref.cy, 0, 0, 1]
    np.testing.assert_allclose(k_out, expected_k, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(p_out, [ref.fx, 0, ref.cx, tx * size_to[0] / size_from[0],
                                       0, ref.fy, ref.cy, 0, 0, 0, 1, 0], rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("k_change, match", [({0: math.nan}, "NaN"), ({4: math.inf}, "NaN"),
                                             ({0: 0.0}, "positive"), ({4: -1.0}, "positive")])
def test_camera_info_with_nan_or_nonpositive_focal_is_malformed(k_change, match):
    """NaN/inf anywhere in K or P, or fx/fy <= 0 (uncalibrated), is refused."""
    k = [500.0, 0, 320, 0, 500.0, 240, 0, 0, 1]
    p = [500.0, 0, 320, 0, 0, 500.0, 240, 0, 0, 0, 1, 0]
    camera_geometry.check_camera_matrices(k, p)
    for index, value in k_change.items():
        k[index] = value
    with pytest.raises(MalformedCameraInfoError, match=match):
        camera_geometry.check_camera_matrices(k, p)


def test_focal_scale_is_camera_fx_at_network_width_over_training_focal():
    """A camera with twice the training focal length (same width) doubles the depth."""
    assert camera_geometry.focal_scale(518.0, 640, 320, 259.0) == pytest.approx(1.0)
    assert camera_geometry.focal_scale(1036.0, 640, 320, 259.0) == pytest.approx(2.0)
    # fx is given for the camera's width; at another width it scales with it.
    assert camera_geometry.focal_scale(259.0, 320, 320, 259.0) == pytest.approx(1.0)
    with pytest.raises(ValueError):
        camera_geometry.focal_scale(0.0, 640, 320, 259.0)
