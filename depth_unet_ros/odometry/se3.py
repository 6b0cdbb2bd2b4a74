"""Small SE(3) helpers for the tracker: exp/log maps, inverses, adjoints, pose distances.

Twists are 6-vectors ordered (tx, ty, tz, rx, ry, rz): translation first, as ROS covariances are
ordered. Poses are (4, 4) float64 homogeneous matrices. Pure numpy, so the tracker and its tests
need nothing else.
"""
from __future__ import annotations

import numpy as np

_SMALL = 1e-8  # below this angle (rad) the series forms are exact to float64 precision


def hat(omega: np.ndarray) -> np.ndarray:
    """(3,) -> (3, 3) skew-symmetric matrix, so that ``hat(a) @ b == cross(a, b)``."""
    x, y, z = np.asarray(omega, dtype=np.float64)
    return np.array([[0.0, -z, y], [z, 0.0, -x], [-y, x, 0.0]])


def so3_exp(omega: np.ndarray) -> np.ndarray:
    """Rotation vector (3,) in radians -> (3, 3) rotation (Rodrigues)."""
    omega = np.asarray(omega, dtype=np.float64)
    theta = float(np.linalg.norm(omega))
    k = hat(omega)
    if theta < _SMALL:
        return np.eye(3) + k + 0.5 * k @ k
    return (np.eye(3) + np.sin(theta) / theta * k
            + (1.0 - np.cos(theta)) / theta**2 * k @ k)


def so3_log(rotation: np.ndarray) -> np.ndarray:
    """(3, 3) rotation -> rotation vector (3,) in radians, angle in [0, pi]."""
    r = np.asarray(rotation, dtype=np.float64)
    cos = np.clip((np.trace(r) - 1.0) / 2.0, -1.0, 1.0)
    theta = float(np.arccos(cos))
    vee = np.array([r[2, 1] - r[1, 2], r[0, 2] - r[2, 0], r[1, 0] - r[0, 1]])
    if theta < 1e-6:
        return 0.5 * vee
    if np.pi - theta < 1e-4:
        # Near 180 degrees sin(theta) vanishes: read the axis from the symmetric part instead.
        b = (r + np.eye(3)) / 2.0
        axis = b[int(np.argmax(np.diag(b)))]
        axis = axis / np.linalg.norm(axis)
        if np.dot(axis, vee) < 0:
            axis = -axis
        return theta * axis
    return theta / (2.0 * np.sin(theta)) * vee


def _left_jacobian(omega: np.ndarray) -> np.ndarray:
    """SO(3) left Jacobian V: the translation part of exp maps through it."""
    theta = float(np.linalg.norm(omega))
    k = hat(omega)
    if theta < _SMALL:
        return np.eye(3) + 0.5 * k + k @ k / 6.0
    return (np.eye(3) + (1.0 - np.cos(theta)) / theta**2 * k
            + (theta - np.sin(theta)) / theta**3 * k @ k)


def exp(xi: np.ndarray) -> np.ndarray:
    """Twist (6,) (tx, ty, tz, rx, ry, rz) -> (4, 4) pose."""
    xi = np.asarray(xi, dtype=np.float64)
    out = np.eye(4)
    out[:3, :3] = so3_exp(xi[3:])
    out[:3, 3] = _left_jacobian(xi[3:]) @ xi[:3]
    return out


def log(pose: np.ndarray) -> np.ndarray:
    """(4, 4) pose -> twist (6,) (tx, ty, tz, rx, ry, rz); inverse of ``exp``."""
    pose = np.asarray(pose, dtype=np.float64)
    omega = so3_log(pose[:3, :3])
    rho = np.linalg.solve(_left_jacobian(omega), pose[:3, 3])
    return np.concatenate([rho, omega])


def inverse(pose: np.ndarray) -> np.ndarray:
    """Inverse of a rigid (4, 4) pose, without a general matrix inversion."""
    pose = np.asarray(pose, dtype=np.float64)
    out = np.eye(4)
    out[:3, :3] = pose[:3, :3].T
    out[:3, 3] = -pose[:3, :3].T @ pose[:3, 3]
    return out


def adjoint(pose: np.ndarray) -> np.ndarray:
    """(6, 6) adjoint of a pose for twists ordered (t, r): ``pose exp(xi) pose^-1 ==
    exp(adjoint(pose) @ xi)``; it moves a covariance from one frame's axes to another's."""
    pose = np.asarray(pose, dtype=np.float64)
    r, t = pose[:3, :3], pose[:3, 3]
    out = np.zeros((6, 6))
    out[:3, :3] = r
    out[:3, 3:] = hat(t) @ r
    out[3:, 3:] = r
    return out


def orthonormalize(pose: np.ndarray) -> np.ndarray:
    """The nearest proper rigid pose (rotation part projected onto SO(3) by SVD).

    Chained products drift off SO(3) by rounding, and ``inverse`` (a transpose) turns that drift
    into a larger one at every keyframe; projecting each new world pose keeps it at rounding
    level for any trajectory length.
    """
    pose = np.array(pose, dtype=np.float64)
    u, _, vt = np.linalg.svd(pose[:3, :3])
    r = u @ vt
    if np.linalg.det(r) < 0:
        r = u @ np.diag([1.0, 1.0, -1.0]) @ vt
    pose[:3, :3] = r
    pose[3] = (0.0, 0.0, 0.0, 1.0)
    return pose


def rotation_angle_rad(pose_or_rotation: np.ndarray) -> float:
    """Angle (rad) of a pose's or a rotation matrix's rotation part."""
    r = np.asarray(pose_or_rotation, dtype=np.float64)[:3, :3]
    return float(np.arccos(np.clip((np.trace(r) - 1.0) / 2.0, -1.0, 1.0)))


def translation_norm_m(pose: np.ndarray) -> float:
    """Length (m) of a pose's translation."""
    return float(np.linalg.norm(np.asarray(pose, dtype=np.float64)[:3, 3]))
