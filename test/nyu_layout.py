"""Test helper: tiny NYU Depth V2 files in the exact layout of the real ones.

``write_nyu_mat`` writes what MATLAB's ``save -v7.3`` writes for ``nyu_depth_v2_labeled.mat``:
HDF5 behind a 512-byte user block that starts with the MATLAB text header, with MATLAB's
column-major arrays seen by h5py with reversed axes: ``images`` (N, 3, W, H) uint8,
``depths`` and ``rawDepths`` (N, W, H) float32. ``write_splits_mat`` writes a MATLAB v5
``splits.mat`` with uint16 (K, 1) ``trainNdxs`` / ``testNdxs`` (1-based), as the official one.
"""
from __future__ import annotations

import os
from pathlib import Path

import h5py
import numpy as np
import scipy.io

_HEADER = b"MATLAB 7.3 MAT-file, Platform: GLNXA64, Created on: Mon Jan  1 00:00:00 2024 HDF5 schema 1.00 ."


def write_nyu_mat(path: str | os.PathLike, images_rgb: np.ndarray, depths: np.ndarray,
                  raw_depths: np.ndarray) -> Path:
    """``images_rgb`` (N, H, W, 3) uint8, ``depths`` / ``raw_depths`` (N, H, W) metres."""
    path = Path(path)
    images_rgb = np.asarray(images_rgb, np.uint8)
    with h5py.File(path, "w", userblock_size=512) as f:
        for name, data, cls in (("images", images_rgb.transpose(0, 3, 2, 1), b"uint8"),
                                ("depths", np.asarray(depths, np.float32).transpose(0, 2, 1), b"single"),
                                ("rawDepths", np.asarray(raw_depths, np.float32).transpose(0, 2, 1), b"single")):
            ds = f.create_dataset(name, data=np.ascontiguousarray(data))
            ds.attrs["MATLAB_class"] = np.bytes_(cls)
    # MATLAB's 128-byte header: 116 bytes of text, 8 bytes subsystem offset, version 0x0200, "IM".
    header = _HEADER.ljust(116, b" ") + b"\0" * 8 + b"\x00\x02" + b"IM"
    with open(path, "r+b") as fh:
        fh.write(header)
    return path


def write_splits_mat(path: str | os.PathLike, train_1based, test_1based) -> Path:
    """A MATLAB v5 ``splits.mat`` with uint16 (K, 1) trainNdxs / testNdxs."""
    path = Path(path)
    scipy.io.savemat(str(path), {
        "trainNdxs": np.asarray(train_1based, np.uint16).reshape(-1, 1),
        "testNdxs": np.asarray(test_1based, np.uint16).reshape(-1, 1),
    })
    return path


def patterned_frames(n: int, height: int = 480, width: int = 640, seed: int = 0):
    """Non-symmetric test frames: (images (n, H, W, 3) uint8, dense depth, raw depth with holes).

    Every pixel differs from its transpose and mirror, so an axis swap or flip cannot pass.
    """
    rng = np.random.default_rng(seed)
    rows, cols = np.mgrid[0:height, 0:width]
    images = np.empty((n, height, width, 3), np.uint8)
    dense = np.empty((n, height, width), np.float32)
    for i in range(n):
        images[i, ..., 0] = (rows + 3 * i) % 256
        images[i, ..., 1] = (cols * 7 + i) % 256
        images[i, ..., 2] = rng.integers(0, 256, (height, width), dtype=np.uint8)
        dense[i] = 0.5 + rows * 0.01 + cols * 0.0001 + i
    raw = np.where(rng.random(dense.shape) < 0.3, 0.0, dense - 0.01).astype(np.float32)
    return images, dense, raw
