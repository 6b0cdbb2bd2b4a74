"""Rotation matrices <-> quaternions, and the fixed turn between REP 103 camera frames.

Frames (REP 103): ``camera_link`` has x forward, y left, z up; the optical frame
(``camera_rgb_optical_frame``) has x right, y down, z forward. Quaternions are (x, y, z, w), as
geometry_msgs stores them. Pure numpy, so bag writing and tests need no tf2.
"""
from __future__ import annotations

import numpy as np

# Columns: the optical frame's axes (right, down, forward) expressed in camera_link.
LINK_FROM_OPTICAL = np.array([[0.0, 0.0, 1.0],
                              [-1.0, 0.0, 0.0],
                              [0.0, -1.0, 0.0]])


def rotation_to_quaternion_xyzw(rotation: np.ndarray) -> np.ndarray:
    """(3, 3) proper rotation -> unit quaternion (4,) x, y, z, w with w >= 0.

    Shepperd's method: divide by the largest of the four diagonal combinations, so the result
    stays accurate for every angle (the trace-only formula loses precision near 180 degrees).
    """
    m = np.asarray(rotation, dtype=np.float64)
    trace = m[0, 0] + m[1, 1] + m[2, 2]
    candidates = (trace, m[0, 0], m[1, 1], m[2, 2])
    i = int(np.argmax(candidates))
    if i == 0:
        w = 0.5 * np.sqrt(1.0 + trace)
        q = np.array([m[2, 1] - m[1, 2], m[0, 2] - m[2, 0], m[1, 0] - m[0, 1], 4 * w * w]) / (4 * w)
    else:
        a = i - 1
        b, c = (a + 1) % 3, (a + 2) % 3
        r = 0.5 * np.sqrt(1.0 + m[a, a] - m[b, b] - m[c, c])
        q = np.empty(4)
        q[a] = r
        q[b] = (m[b, a] + m[a, b]) / (4 * r)
        q[c] = (m[c, a] + m[a, c]) / (4 * r)
        q[3] = (m[c, b] - m[b, c]) / (4 * r)
    q /= np.linalg.norm(q)
    return -q if q[3] < 0 else q


def quaternion_xyzw_to_rotation(q: np.ndarray) -> np.ndarray:
    """Quaternion (4,) x, y, z, w (normalised here) -> (3, 3) rotation matrix."""
    x, y, z, w = np.asarray(q, dtype=np.float64) / np.linalg.norm(q)
    return np.array([
        [1 - 2 * (y * y + z * z), 2 * (x * y - z * w), 2 * (x * z + y * w)],
        [2 * (x * y + z * w), 1 - 2 * (x * x + z * z), 2 * (y * z - x * w)],
        [2 * (x * z - y * w), 2 * (y * z + x * w), 1 - 2 * (x * x + y * y)],
    ])


def link_rotation(optical_rotation: np.ndarray) -> np.ndarray:
    """World-from-camera_link rotation of a camera whose optical frame has ``optical_rotation``
    (world-from-optical, columns right, down, forward)."""
    return np.asarray(optical_rotation, dtype=np.float64) @ LINK_FROM_OPTICAL.T
