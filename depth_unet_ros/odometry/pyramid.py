"""Image pyramids for direct alignment: feature normalisation, halving, depth resampling,
camera-matrix scaling, bilinear lookup and image gradients.

All images are HWC float32 (a grey image is (h, w, 1)); pixel (u, v) is the centre of column u,
row v, the convention OpenCV's resizing follows.
"""
from __future__ import annotations

import cv2
import numpy as np

FEATURE_NORMS = ("pixel", "channel", "none")


def normalize_features(features: np.ndarray, mode: str = "pixel") -> np.ndarray:
    """(h, w, C) features made comparable between frames.

    The features were trained only as a by-product of depth, so their channels have unrelated
    scales. "pixel": unit L2 norm per pixel (a residual is then a cosine distance, bounded
    and free of brightness-like gain); "channel": zero mean, unit variance per channel over the
    image; "none": as given.
    """
    f = np.asarray(features, dtype=np.float32)
    f = np.where(np.isfinite(f), f, 0.0).astype(np.float32, copy=False)
    if mode == "pixel":
        norm = np.linalg.norm(f, axis=2, keepdims=True)
        return f / np.maximum(norm, 1e-6)
    if mode == "channel":
        mean = f.mean(axis=(0, 1), keepdims=True)
        std = f.std(axis=(0, 1), keepdims=True)
        return (f - mean) / np.maximum(std, 1e-6)
    if mode == "none":
        return f
    raise ValueError(f"feature_norm must be one of {FEATURE_NORMS}, got {mode!r}")


def halve(image: np.ndarray) -> np.ndarray:
    """(h, w, C) -> (h // 2, w // 2, C) by 2x2 averaging (area resampling)."""
    h, w, c = image.shape
    out = cv2.resize(image, (w // 2, h // 2), interpolation=cv2.INTER_AREA)
    return out.reshape(h // 2, w // 2, c)


def resize(image: np.ndarray, height: int, width: int) -> np.ndarray:
    """(h, w, C) -> (height, width, C), area resampling when shrinking, bilinear otherwise."""
    h, w, c = image.shape
    if (h, w) == (height, width):
        return image
    inter = cv2.INTER_AREA if height < h else cv2.INTER_LINEAR
    return cv2.resize(image, (width, height), interpolation=inter).reshape(height, width, c)


def depth_at(depth_m: np.ndarray, height: int, width: int, max_spread: float) -> np.ndarray:
    """(H, W) depth (NaN or <= 0 invalid) -> (height, width) float32, 0 where invalid.

    A coarse pixel keeps the mean of its footprint only if every reading in it is valid and
    the footprint does not straddle a depth edge (max / min <= 1 + ``max_spread``): a mean of
    foreground and background is a surface that exists in neither frame.
    """
    d = np.asarray(depth_m, dtype=np.float32)
    valid = np.isfinite(d) & (d > 0)
    d0 = np.where(valid, d, 0.0).astype(np.float32)
    h, w = d.shape
    if (h, w) == (height, width):
        return d0
    size = (width, height)
    mean = cv2.resize(d0, size, interpolation=cv2.INTER_AREA)
    frac = cv2.resize(valid.astype(np.float32), size, interpolation=cv2.INTER_AREA)
    big = np.where(valid, d, 0.0).astype(np.float32)
    small = np.where(valid, d, np.float32(1e6)).astype(np.float32)
    ky, kx = max(1, round(h / height)), max(1, round(w / width))
    kernel = np.ones((ky, kx), np.uint8)
    # Anchored at the window's top-left, which is the pixel nearest-neighbour shrinking keeps.
    hi = cv2.resize(cv2.dilate(big, kernel, anchor=(0, 0)), size, interpolation=cv2.INTER_NEAREST)
    lo = cv2.resize(cv2.erode(small, kernel, anchor=(0, 0)), size, interpolation=cv2.INTER_NEAREST)
    ok = (frac > 0.999) & (hi <= lo * (1.0 + max_spread))
    return np.where(ok, mean, 0.0).astype(np.float32)


def scale_k(k: np.ndarray, src_hw: tuple[int, int], dst_hw: tuple[int, int]) -> np.ndarray:
    """Camera matrix for an image of ``src_hw`` resized to ``dst_hw`` (pixel-centre rule)."""
    sy, sx = dst_hw[0] / src_hw[0], dst_hw[1] / src_hw[1]
    k = np.asarray(k, dtype=np.float64)
    return np.array([[k[0, 0] * sx, 0.0, (k[0, 2] + 0.5) * sx - 0.5],
                     [0.0, k[1, 1] * sy, (k[1, 2] + 0.5) * sy - 0.5],
                     [0.0, 0.0, 1.0]])


def gradients(image: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Central-difference x and y gradients of (h, w, C), zero on the border."""
    gx = np.zeros_like(image)
    gy = np.zeros_like(image)
    gx[:, 1:-1] = 0.5 * (image[:, 2:] - image[:, :-2])
    gy[1:-1] = 0.5 * (image[2:] - image[:-2])
    return gx, gy


def bilinear(image: np.ndarray, u: np.ndarray, v: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Sample (h, w, C) at float pixel coordinates (N,) -> ((N, C) values, (N,) inside mask).

    Points whose 2x2 neighbourhood leaves the image get zeros and inside = False.
    """
    h, w, c = image.shape
    inside = (u >= 0) & (v >= 0) & (u < w - 1) & (v < h - 1)
    u = np.where(inside, u, 0.0)
    v = np.where(inside, v, 0.0)
    u0 = u.astype(np.int32)
    v0 = v.astype(np.int32)
    au = (u - u0).astype(np.float32)[:, None]
    av = (v - v0).astype(np.float32)[:, None]
    flat = image.reshape(h * w, c)
    i = v0 * w + u0
    top = flat[i] * (1 - au) + flat[i + 1] * au
    bottom = flat[i + w] * (1 - au) + flat[i + w + 1] * au
    out = top * (1 - av) + bottom * av
    out[~inside] = 0.0
    return out, inside
