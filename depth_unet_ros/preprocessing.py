"""The one place that resizes camera images and depth maps, and converts encodings to RGB.

Every backend, training evaluation and the node call ``resize_image``, so the network sees the
same pixels whichever path an image takes. Arithmetic preprocessing (uint8 to float, mean/std,
HWC to CHW) lives inside the ONNX graph, not here.
"""
from __future__ import annotations

import cv2
import numpy as np

from depth_unet_ros.errors import ImageFormatError

# encoding -> (channels, OpenCV conversion to RGB or None when already RGB)
_ENCODINGS: dict[str, tuple[int, int | None]] = {
    "rgb8": (3, None),
    "bgr8": (3, cv2.COLOR_BGR2RGB),
    "rgba8": (4, cv2.COLOR_RGBA2RGB),
    "bgra8": (4, cv2.COLOR_BGRA2RGB),
    "mono8": (1, cv2.COLOR_GRAY2RGB),
}
SUPPORTED_ENCODINGS: tuple[str, ...] = tuple(_ENCODINGS)


def _check_size(size_hw: tuple[int, int]) -> tuple[int, int]:
    h, w = (int(v) for v in size_hw)
    if h <= 0 or w <= 0:
        raise ValueError(f"target size must be positive (height, width), got {tuple(size_hw)}")
    return h, w


def check_rgb_image(image: np.ndarray) -> None:
    """Raise ImageFormatError unless ``image`` is an (H, W, 3) uint8 array."""
    if not isinstance(image, np.ndarray):
        raise ImageFormatError(f"expected an (H, W, 3) uint8 numpy array, got {type(image).__name__}")
    if image.dtype != np.uint8:
        raise ImageFormatError(
            f"expected a uint8 RGB image, got dtype {image.dtype}; convert with "
            "np.clip(img, 0, 255).astype(np.uint8) (scale floats in [0, 1] by 255 first)")
    if image.ndim != 3 or image.shape[2] != 3 or image.shape[0] == 0 or image.shape[1] == 0:
        raise ImageFormatError(
            f"expected an (H, W, 3) RGB image, got shape {image.shape}; convert other encodings "
            f"with preprocessing.to_rgb(image, encoding) ({', '.join(SUPPORTED_ENCODINGS)})")


def resize_image(image: np.ndarray, size_hw: tuple[int, int]) -> np.ndarray:
    """Resize an (H, W, 3) uint8 RGB image to ``size_hw`` = (h, w).

    INTER_AREA when shrinking (no aliasing), INTER_LINEAR when enlarging; the input itself
    (no copy) when it already has that size.
    """
    check_rgb_image(image)
    h, w = _check_size(size_hw)
    if image.shape[:2] == (h, w):
        return image
    shrinking = h * w < image.shape[0] * image.shape[1]
    interpolation = cv2.INTER_AREA if shrinking else cv2.INTER_LINEAR
    return cv2.resize(image, (w, h), interpolation=interpolation)


def _as_depth(depth_m: np.ndarray) -> np.ndarray:
    depth_m = np.asarray(depth_m)
    if depth_m.ndim != 2:
        raise ImageFormatError(f"expected an (H, W) depth map, got shape {depth_m.shape}")
    return depth_m.astype(np.float32, copy=False)


def resize_depth(depth_m: np.ndarray, size_hw: tuple[int, int]) -> np.ndarray:
    """Bilinear resize of an (H, W) depth map in metres to (h, w) float32; for predictions.

    Returns the float32 input unchanged when the size already matches.
    """
    depth_m = _as_depth(depth_m)
    h, w = _check_size(size_hw)
    if depth_m.shape == (h, w):
        return depth_m
    return cv2.resize(depth_m, (w, h), interpolation=cv2.INTER_LINEAR)


def resize_depth_nearest(depth_m: np.ndarray, size_hw: tuple[int, int]) -> np.ndarray:
    """Nearest-neighbour resize of an (H, W) depth map to (h, w) float32; for targets.

    Never blends a valid reading with a 0 (= invalid) neighbour, so holes stay holes and no
    depth that was never measured appears at object boundaries.
    """
    depth_m = _as_depth(depth_m)
    h, w = _check_size(size_hw)
    if depth_m.shape == (h, w):
        return depth_m
    return cv2.resize(depth_m, (w, h), interpolation=cv2.INTER_NEAREST)


def to_rgb(image: np.ndarray, encoding: str) -> np.ndarray:
    """Convert an 8-bit image in a ROS ``encoding`` to (H, W, 3) uint8 RGB.

    rgb8 is returned as is (no copy); mono8 is replicated to three channels. A mono8 image may
    be (H, W) or (H, W, 1).
    """
    if encoding not in _ENCODINGS:
        raise ImageFormatError(
            f"unsupported image encoding {encoding!r}; supported: {', '.join(SUPPORTED_ENCODINGS)} "
            "(republish the camera in one of these, e.g. with image_proc)")
    if not isinstance(image, np.ndarray) or image.dtype != np.uint8:
        dtype = getattr(image, "dtype", type(image).__name__)
        raise ImageFormatError(f"encoding {encoding!r} needs a uint8 array, got {dtype}")
    channels, code = _ENCODINGS[encoding]
    if image.ndim == 2 and channels == 1:
        image = image[:, :, None]
    if image.ndim != 3 or image.shape[2] != channels:
        raise ImageFormatError(
            f"encoding {encoding!r} has {channels} channel(s) but the image has shape {image.shape}")
    if code is None:
        return image
    return cv2.cvtColor(image, code)
