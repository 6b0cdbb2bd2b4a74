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


def depth_edges(depth_m: np.ndarray, max_spread: float) -> tuple[np.ndarray, np.ndarray]:
    """(H, W) depth (NaN or <= 0 invalid) -> (float32 depth with 0 where invalid, bool mask of
    pixels next to a depth edge: max / min over their 3x3 neighbourhood > 1 + ``max_spread``)."""
    d = np.asarray(depth_m, dtype=np.float32)
    valid = np.isfinite(d) & (d > 0)
    d0 = np.where(valid, d, 0.0).astype(np.float32)
    kernel = np.ones((3, 3), np.uint8)
    hi = cv2.dilate(d0, kernel)
    lo = cv2.erode(np.where(valid, d0, np.float32(1e6)), kernel)
    return d0, valid & (hi > lo * (1.0 + max_spread))


def depth_at(depth_m: np.ndarray, height: int, width: int, max_spread: float,
             edges: np.ndarray | None = None) -> np.ndarray:
    """(H, W) depth (NaN or <= 0 invalid) -> (height, width) float32, 0 where invalid.

    A coarse pixel keeps the mean of the valid readings in its footprint if at least half are
    valid and the footprint holds no depth edge (see ``depth_edges``; pass ``edges`` when the
    same depth is resampled to several sizes): a mean of foreground and background is a
    surface that exists in neither frame. A smoothly slanted surface is kept whatever the
    footprint's size.
    """
    if edges is None:
        d0, edges = depth_edges(depth_m, max_spread)
    else:
        d0 = np.asarray(depth_m, dtype=np.float32)
        d0 = np.where(np.isfinite(d0) & (d0 > 0), d0, 0.0).astype(np.float32)
    h, w = d0.shape
    valid = (d0 > 0).astype(np.float32)
    if (h, w) == (height, width):
        return np.where(edges, 0.0, d0).astype(np.float32)
    size = (width, height)
    total = cv2.resize(d0, size, interpolation=cv2.INTER_AREA)
    frac = cv2.resize(valid, size, interpolation=cv2.INTER_AREA)
    edge_frac = cv2.resize(edges.astype(np.float32), size, interpolation=cv2.INTER_AREA)
    ok = (frac >= 0.5) & (edge_frac <= 0.0)
    return np.where(ok, total / np.maximum(frac, 1e-6), 0.0).astype(np.float32)


def shrink_depth(depth_m: np.ndarray, height: int, width: int) -> np.ndarray:
    """(H, W) depth -> (height, width) float32: the mean of each footprint's valid readings,
    NaN where fewer than half of them are valid (NaN or <= 0 is invalid on input)."""
    d = np.asarray(depth_m, dtype=np.float32)
    valid = np.isfinite(d) & (d > 0)
    size = (width, height)
    total = cv2.resize(np.where(valid, d, 0.0).astype(np.float32), size,
                       interpolation=cv2.INTER_AREA)
    frac = cv2.resize(valid.astype(np.float32), size, interpolation=cv2.INTER_AREA)
    return np.where(frac >= 0.5, total / np.maximum(frac, 1e-6), np.nan).astype(np.float32)


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

    Points whose 2x2 neighbourhood leaves the image get zeros and inside = False. cv2.remap
    does the lookup (over ten times faster than numpy gathers for 32 channels); it rounds the
    interpolation weights to 1/32 pixel, far below the depth's own noise.
    """
    h, w, c = image.shape
    inside = (u >= 0) & (v >= 0) & (u < w - 1) & (v < h - 1)
    n = len(u)
    cols = min(max(n, 1), 1024)  # remap's maps are images: keep each side well under 32767
    rows = -(-n // cols)
    map_u = np.full(rows * cols, -10.0, np.float32)
    map_v = np.full(rows * cols, -10.0, np.float32)
    map_u[:n] = np.where(inside, u, -10.0)
    map_v[:n] = np.where(inside, v, -10.0)
    out = cv2.remap(image, map_u.reshape(rows, cols), map_v.reshape(rows, cols),
                    cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT, borderValue=0)
    return out.reshape(rows * cols, c)[:n], inside
