"""Camera geometry for resized images: checking CameraInfo matrices, scaling K and P with the
image, and the focal-length ratio that makes a model's depth metric for another camera.

Pure numpy: the depth node, the pose node and the offline tools share these rules.
"""
from __future__ import annotations

from typing import Sequence

import numpy as np

from depth_unet_ros.errors import DepthUnetError


class MalformedCameraInfoError(DepthUnetError):
    """A CameraInfo whose intrinsics are not finite and positive; it is ignored, not cached."""


def check_camera_matrices(k: Sequence[float], p: Sequence[float]) -> None:
    """Raise MalformedCameraInfoError unless K and P are finite with positive fx, fy."""
    k_arr, p_arr = np.asarray(k, dtype=np.float64), np.asarray(p, dtype=np.float64)
    if k_arr.size != 9 or p_arr.size != 12:
        raise MalformedCameraInfoError(f"camera_info K has {k_arr.size} values (9 expected) and P "
                                       f"{p_arr.size} (12 expected)")
    if not (np.isfinite(k_arr).all() and np.isfinite(p_arr).all()):
        raise MalformedCameraInfoError("camera_info K or P holds NaN or infinity; fix the camera "
                                       "calibration (camera_calibration) or its driver")
    if k_arr[0] <= 0 or k_arr[4] <= 0:
        raise MalformedCameraInfoError(f"camera_info K has fx={k_arr[0]}, fy={k_arr[4]}; both must "
                                       "be positive (an uncalibrated camera publishes zeros)")


def scale_camera_matrices(k: Sequence[float], p: Sequence[float], from_wh: tuple[int, int],
                          to_wh: tuple[int, int]) -> tuple[list[float], list[float]]:
    """K (3x3) and P (3x4), row-major, for the same camera after resizing the image.

    Same pixel-edge convention as ``datasets.base.Intrinsics.scaled`` (cx' = (cx + 0.5) s - 0.5):
    both matrices are premultiplied by [[sx, 0, (sx - 1) / 2], [0, sy, (sy - 1) / 2], [0, 0, 1]],
    which also scales P's Tx, Ty by sx, sy.
    """
    (w0, h0), (w1, h1) = from_wh, to_wh
    if min(w0, h0, w1, h1) <= 0:
        raise ValueError(f"image sizes must be positive, got {from_wh} -> {to_wh}")
    sx, sy = w1 / w0, h1 / h0
    s = np.array([[sx, 0.0, 0.5 * sx - 0.5], [0.0, sy, 0.5 * sy - 0.5], [0.0, 0.0, 1.0]])
    k_out = s @ np.asarray(k, dtype=np.float64).reshape(3, 3)
    p_out = s @ np.asarray(p, dtype=np.float64).reshape(3, 4)
    return k_out.ravel().tolist(), p_out.ravel().tolist()


def focal_scale(fx_px: float, camera_width_px: int, network_width_px: int, focal_px: float) -> float:
    """Depth multiplier for a camera whose focal length differs from the training camera's.

    The network judges distance from apparent size, so for a camera with focal length f' (at the
    network input width) it predicts depth as if seen by the training camera (focal_px): the
    true depth is prediction x f' / focal_px. ``fx_px`` is the camera's fx for an image
    ``camera_width_px`` wide.
    """
    if fx_px <= 0 or camera_width_px <= 0 or network_width_px <= 0 or focal_px <= 0:
        raise ValueError(f"focal_scale needs positive values, got fx={fx_px}, camera width "
                         f"{camera_width_px}, network width {network_width_px}, focal {focal_px}")
    return (fx_px * network_width_px / camera_width_px) / focal_px
