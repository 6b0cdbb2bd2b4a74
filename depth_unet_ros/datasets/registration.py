"""Register a depth image into another camera: back-project, shift, re-project with a z-buffer.

Why: Kinect v1 recordings such as 7-Scenes store depth in the infrared camera (fx 585) and
colour from a separate, wider lens a few centimetres to the side, so pixel (u, v) of the two
images is not the same ray. Training on such pairs as if registered would teach the network
that edges in depth sit beside edges in colour. numpy only (the runtime's rule for datasets).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from depth_unet_ros.datasets.base import Intrinsics


@dataclass(frozen=True)
class RigCalibration:
    """Where the colour camera is, seen from the depth camera (no rotation: Kinect v1's two
    lenses are parallel to within the accuracy we can estimate from edges).

    ``colour``: the colour camera's intrinsics. ``colour_from_depth_m``: t in
    ``X_colour = X_depth + t`` (metres, optical axes x right, y down, z forward).
    """

    colour: Intrinsics
    colour_from_depth_m: tuple[float, float, float]


def register_depth(depth_m: np.ndarray, depth_k: Intrinsics, target_k: Intrinsics,
                   colour_from_depth_m: tuple[float, float, float] = (0.0, 0.0, 0.0)) -> np.ndarray:
    """Depth (H, W) metres in the depth camera -> (target.height, target.width) in the target.

    Each valid depth pixel is moved to its 3-D point, shifted into the target camera and
    projected to the nearest target pixel; where several land on one pixel the nearest surface
    wins (z-buffer), so a foreground edge hides the background behind it. Target pixels that
    no depth pixel reaches (outside the depth camera's view, occlusions) are 0 = invalid. The
    value stored is the target camera's z, so the depth is metric in the target camera.
    """
    depth = np.asarray(depth_m, np.float64)
    v, u = np.nonzero(np.isfinite(depth) & (depth > 0))
    z = depth[v, u]
    x = (u - depth_k.cx) / depth_k.fx * z + colour_from_depth_m[0]
    y = (v - depth_k.cy) / depth_k.fy * z + colour_from_depth_m[1]
    z = z + colour_from_depth_m[2]
    in_front = z > 1e-6
    x, y, z = x[in_front], y[in_front], z[in_front]
    ut = np.rint(x / z * target_k.fx + target_k.cx).astype(np.int64)
    vt = np.rint(y / z * target_k.fy + target_k.cy).astype(np.int64)
    inside = (ut >= 0) & (ut < target_k.width) & (vt >= 0) & (vt < target_k.height)
    ut, vt, z = ut[inside], vt[inside], z[inside]
    out = np.full(target_k.height * target_k.width, np.inf)
    np.minimum.at(out, vt * target_k.width + ut, z)  # z-buffer: the nearest point per pixel
    out[np.isinf(out)] = 0.0
    return out.reshape(target_k.height, target_k.width).astype(np.float32)


def fill_cracks(depth_m: np.ndarray) -> np.ndarray:
    """Fill isolated 1-pixel holes that forward projection leaves when the target camera's
    pixels are smaller than the source's, with the nearest of the neighbours in a row or column.

    Only a hole whose two opposite neighbours are both valid and within 5 % of each other is
    filled, so depth edges and real holes stay invalid.
    """
    out = depth_m.copy()
    for axis in (1, 0):
        before, after = np.roll(out, 1, axis), np.roll(out, -1, axis)
        hole = (out == 0) & (before > 0) & (after > 0)
        close = np.abs(before - after) <= 0.05 * np.maximum(before, after)
        fill = hole & close
        if axis == 1:
            fill[:, [0, -1]] = False
        else:
            fill[[0, -1], :] = False
        out[fill] = np.minimum(before, after)[fill]
    return out
