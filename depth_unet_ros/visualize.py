"""Colour maps of depth and side-by-side comparison images (uint8 RGB), and PNG writing.

Near is blue, far is red (turbo); invalid pixels (NaN, <= 0) are black, so holes in Kinect
depth are never mistaken for a depth value.
"""
from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from depth_unet_ros.errors import ImageFormatError
from depth_unet_ros.preprocessing import check_rgb_image, resize_depth

# Percentiles of the valid pixels that set the colour range when none is given: robust to the
# few flying pixels at object edges that would otherwise squash the scale.
_AUTO_RANGE_PERCENTILES = (2.0, 98.0)


def _colormap_code(cmap: str) -> int:
    code = getattr(cv2, f"COLORMAP_{cmap.upper()}", None)
    if code is None:
        raise ValueError(f"unknown colour map {cmap!r}; use an OpenCV one such as 'turbo', "
                         "'inferno', 'viridis' or 'jet'")
    return code


def _auto_range(values: np.ndarray) -> tuple[float, float]:
    if values.size == 0:
        return 0.0, 1.0
    lo, hi = np.percentile(values, _AUTO_RANGE_PERCENTILES)
    return float(lo), float(hi)


def _apply_colormap(values: np.ndarray, valid: np.ndarray, vmin: float, vmax: float,
                    cmap: str) -> np.ndarray:
    """(H, W) values -> (H, W, 3) uint8 RGB, ``vmin``..``vmax`` over the map, black where invalid."""
    span = max(vmax - vmin, 1e-12)
    scaled = np.where(valid, (values - vmin) / span, 0.0)
    index = np.clip(np.round(scaled * 255.0), 0, 255).astype(np.uint8)
    rgb = cv2.cvtColor(cv2.applyColorMap(index, _colormap_code(cmap)), cv2.COLOR_BGR2RGB)
    rgb[~valid] = 0
    return rgb


def depth_range(depth_m: np.ndarray) -> tuple[float, float]:
    """The colour range (vmin_m, vmax_m) colorize_depth picks for ``depth_m`` when none is given."""
    depth = np.asarray(depth_m, dtype=np.float32)
    with np.errstate(invalid="ignore"):
        return _auto_range(depth[np.isfinite(depth) & (depth > 0)])


def colorize_depth(depth_m: np.ndarray, vmin_m: float | None = None, vmax_m: float | None = None,
                   cmap: str = "turbo") -> np.ndarray:
    """(H, W) depth in metres -> (H, W, 3) uint8 RGB; NaN, inf and <= 0 are black.

    Without ``vmin_m``/``vmax_m`` the range comes from the 2nd and 98th percentiles of the valid
    pixels; pass the same range to compare several maps.
    """
    depth = np.asarray(depth_m, dtype=np.float32)
    if depth.ndim != 2:
        raise ImageFormatError(f"colorize_depth needs an (H, W) depth map, got shape {depth.shape}")
    with np.errstate(invalid="ignore"):
        valid = np.isfinite(depth) & (depth > 0)
    vmin, vmax = vmin_m, vmax_m
    if vmin is None or vmax is None:
        auto_lo, auto_hi = _auto_range(depth[valid])
        vmin = auto_lo if vmin is None else vmin
        vmax = auto_hi if vmax is None else vmax
    return _apply_colormap(depth, valid, float(vmin), float(vmax), cmap)


def _to_height(rgb: np.ndarray, height: int) -> np.ndarray:
    if rgb.shape[0] == height:
        return rgb
    width = max(1, round(rgb.shape[1] * height / rgb.shape[0]))
    # Nearest keeps black (invalid) pixels black instead of blending them into colours.
    return cv2.resize(rgb, (width, height), interpolation=cv2.INTER_NEAREST)


def comparison_image(image_rgb: np.ndarray, pred_m: np.ndarray,
                     gt_m: np.ndarray | None = None) -> np.ndarray:
    """input | prediction | ground truth | absolute error, side by side as one uint8 RGB image.

    Prediction and ground truth share one colour scale (from the ground truth's valid pixels
    when given), so equal colours mean equal metres. The error |pred - gt| is in its own
    'inferno' scale from 0, black where the ground truth is invalid. All panels are resized to
    the input image's height.
    """
    check_rgb_image(image_rgb)
    pred = np.asarray(pred_m, dtype=np.float32)
    height = image_rgb.shape[0]
    panels = [image_rgb]
    if gt_m is None:
        vmin, vmax = depth_range(pred)
        panels.append(colorize_depth(pred, vmin, vmax))
    else:
        gt = np.asarray(gt_m, dtype=np.float32)
        vmin, vmax = depth_range(gt)
        pred_at_gt = resize_depth(pred, gt.shape)
        panels += [colorize_depth(pred, vmin, vmax), colorize_depth(gt, vmin, vmax)]
        with np.errstate(invalid="ignore"):
            gt_valid = np.isfinite(gt) & (gt > 0) & np.isfinite(pred_at_gt)
        error_m = np.abs(pred_at_gt - gt)
        _, error_hi = _auto_range(error_m[gt_valid])
        panels.append(_apply_colormap(error_m, gt_valid, 0.0, error_hi, "inferno"))
    return np.concatenate([_to_height(p, height) for p in panels], axis=1)


def save_png(path: str | Path, rgb: np.ndarray) -> Path:
    """Write an (H, W, 3) uint8 RGB image as PNG, creating parent folders; returns the path."""
    check_rgb_image(rgb)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    if not cv2.imwrite(str(path), cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR)):
        raise OSError(f"could not write {path}; check the folder is writable and the name ends in .png")
    return path
