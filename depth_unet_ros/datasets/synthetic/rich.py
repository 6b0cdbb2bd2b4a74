"""Rich synthetic rooms (``SyntheticIndoorDataset(..., variant="rich")``): closer to the rooms
real cameras film than the plain ones, so that a network can learn scale cues that transfer.

Against the plain rooms (``scenes._sample_scene``) they add clutter of known size on every
surface (``clutter``), windows, baseboards, door casings and visible ceiling lights
(``fixtures``), more varied room sizes, camera heights from a robot's 0.3 m to a person's 1.8 m,
pitch from -10 to 35 degrees, views into corners and close-ups of walls and furniture at
0.5-1.5 m, and a real camera's optics and sensor (``camera_fx``). Depth is the exact z-depth of
what is rendered: every addition is a ray-cast solid. Hand-held sequences keep the plain rooms.
"""
from __future__ import annotations

import math

import numpy as np

from depth_unet_ros.datasets.base import Intrinsics
from depth_unet_ros.datasets.synthetic import camera_fx, clutter, fixtures
from depth_unet_ros.datasets.synthetic import textures as tx
from depth_unet_ros.datasets.synthetic.scenes import (_KIND_P, _KINDS, _ON_WALL, _Scene, _auto_gain,
                                                      _cast, _face_tables, _furniture, _place, _radiance,
                                                      _ray_dirs, _room_solid, add_parts, look_rotation)

RICH_KEY = 2**31 - 3  # seed-sequence key: rich frame i draws from [seed, i, RICH_KEY]
CLEARANCE_M = 0.3  # camera centre to any solid or room plane: depth stays above ~0.24 m
_TOP_M = 1.8  # highest camera: a person holding it at eye height


def _room_size(rng: np.random.Generator) -> np.ndarray:
    """Room extents (x, y, z) m: a quarter small rooms (offices, bedrooms), the rest 3-7.5 m."""
    xy = rng.uniform(2.2, 3.6, 2) if rng.random() < 0.25 else rng.uniform(3.0, 7.5, 2)
    return np.array([*xy, rng.uniform(2.3, 3.3)])


def _camera_height(rng: np.random.Generator, room_h: float) -> float:
    """A robot's camera (0.3-0.75 m) a quarter of the time, else one held by a person."""
    if rng.random() < 0.25:
        return float(rng.uniform(0.3, 0.75))
    return float(rng.uniform(0.9, min(_TOP_M, room_h - 0.4)))


def _pitch_deg(rng: np.random.Generator, height: float) -> float:
    """Low robot cameras look about level; people look down at rooms more often than up."""
    return float(rng.uniform(-10, 15) if height < 0.8 else rng.uniform(-8, 35))


def _room_pose(rng: np.random.Generator, room: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Camera near the wall x = 0 looking into the room, a fifth of the time into a far corner."""
    height = _camera_height(rng, float(room[2]))
    pos = np.array([rng.uniform(0.3, max(0.35, min(1.5, 0.4 * room[0]))),
                    rng.uniform(0.6, room[1] - 0.6), height])
    if rng.random() < 0.2:
        corner_y = room[1] if rng.random() < 0.5 else 0.0
        yaw = math.atan2(corner_y - pos[1], room[0] - pos[0]) + math.radians(rng.uniform(-8, 8))
    else:
        yaw = math.radians(rng.uniform(-35, 35))
    pitch = math.radians(_pitch_deg(rng, height))
    return pos, look_rotation(yaw, pitch, math.radians(rng.uniform(-4, 4)))


def clearance(scene: _Scene, point: np.ndarray) -> float:
    """Distance (m) from a point to the nearest solid (bounding box) or room plane."""
    solids = scene.solids[1:]
    room_gap = float(min(point.min(), (scene.room_m - point).min()))
    if not solids:
        return room_gap
    centers = np.array([s.center for s in solids])
    halves = np.array([s.half for s in solids])
    yaws = np.array([s.yaw for s in solids])
    q = point - centers
    c, s = np.cos(yaws), np.sin(yaws)
    local = np.stack([c * q[:, 0] + s * q[:, 1], -s * q[:, 0] + c * q[:, 1], q[:, 2]], axis=1)
    gap = np.linalg.norm(np.maximum(np.abs(local) - halves, 0), axis=1)
    return min(room_gap, float(gap.min()))


def _close_target(rng: np.random.Generator, scene: _Scene,
                  supports: list) -> tuple[np.ndarray, np.ndarray]:
    """A point to look at from close by, on a furnished surface or a wall, and the horizontal
    direction (2,) from it towards where the camera may stand."""
    tops = [s for s in supports if s.kind != "floor"]
    if tops and rng.random() < 0.5:
        s = tops[int(rng.integers(len(tops)))]
        a = rng.uniform(0, 2 * np.pi)
        return np.array([*s.center, s.top + 0.1]), np.array([np.cos(a), np.sin(a)])
    wall = int(rng.integers(3))
    length = fixtures.wall_length(scene.room_m, wall)
    origin = fixtures.wall_origin(scene.room_m, wall, rng.uniform(0.3, length - 0.3))
    yaw = fixtures.WALL_YAW[wall] + rng.uniform(-0.6, 0.6)
    return np.array([*origin, rng.uniform(0.4, 1.8)]), np.array([-np.sin(yaw), np.cos(yaw)])


def _close_up(rng: np.random.Generator, scene: _Scene, supports: list) -> bool:
    """Move the camera to 0.5-1.5 m from a wall or a piece of furniture, looking at it, where it
    stands clear of every solid; False (camera unchanged) when 10 tries found no such spot."""
    for _ in range(10):
        target, away = _close_target(rng, scene, supports)
        height = np.clip(target[2] + rng.uniform(-0.3, 0.8), 0.3, min(_TOP_M, scene.room_m[2] - 0.4))
        pos = np.array([*(target[:2] + rng.uniform(0.5, 1.5) * away), height])
        if clearance(scene, pos) < CLEARANCE_M:
            continue
        look = target - pos
        yaw = math.atan2(look[1], look[0]) + math.radians(rng.uniform(-10, 10))
        pitch = math.degrees(math.atan2(-look[2], math.hypot(look[0], look[1]))) + rng.uniform(-5, 5)
        scene.cam_pos = pos
        scene.cam_rot = look_rotation(yaw, math.radians(np.clip(pitch, -10, 35)),
                                      math.radians(rng.uniform(-4, 4)))
        return True
    return False


def _wall_span(kind: str, parts: list, origin: np.ndarray, yaw: float, width: float) -> tuple:
    """(wall, s0, s1, z0, z1) a wall-mounted piece takes, for windows to avoid."""
    wall = int(np.argmin([abs(math.remainder(yaw - w, 2 * math.pi)) for w in fixtures.WALL_YAW]))
    s = origin[1] if wall in (0, 3) else origin[0]
    half = width / 2 + (0.1 if kind == "door" else 0.0)  # the door's casing
    return (wall, s - half, s + half, min(p[0][2] for p in parts), max(p[1][2] for p in parts))


def _add_furniture(rng: np.random.Generator, scene: _Scene,
                   bank: tx.TextureBank) -> tuple[list, list, list]:
    """5-13 pieces as in the plain rooms, doors with casings; returns the supports they offer,
    their footprint circles and the wall spans they take."""
    supports, circles, taken = [], [], []
    for kind in rng.choice(_KINDS, size=int(rng.integers(5, 14)), p=_KIND_P):
        kind = str(kind)
        parts, w, d = _furniture(rng, kind, bank)
        placed = _place(rng, scene, kind, w, d, circles)
        if placed is None:
            continue
        origin, yaw, shift = placed
        add_parts(scene, parts, origin, yaw, shift)
        if kind == "door":
            add_parts(scene, fixtures.door_trim_parts(rng, bank), origin, yaw)
        if kind in _ON_WALL:
            taken.append(_wall_span(kind, parts, origin, yaw, w))
        support = clutter.furniture_support(kind, parts, origin, yaw, shift)
        if support is not None:
            supports.append(support)
    return supports, circles, taken


def sample_rich_scene(rng: np.random.Generator, bank: tx.TextureBank) -> _Scene:
    """A furnished, cluttered room with windows, trim and ceiling lights, and a camera in it."""
    room = _room_size(rng)
    cam_pos, cam_rot = _room_pose(rng, room)
    lights = [(np.array([rng.uniform(0.5, room[0] - 0.5), rng.uniform(0.5, room[1] - 0.5),
                         room[2] - 0.15]), rng.uniform(2.0, 6.0)) for _ in range(rng.integers(1, 4))]
    scene = _Scene(room, cam_pos, cam_rot, lights, rng.uniform(0.1, 0.3))
    scene.solids.append(_room_solid(rng, bank, room))
    supports, circles, taken = _add_furniture(rng, scene, bank)
    fixtures.add_baseboards(rng, scene, bank)
    fixtures.add_windows(rng, scene, bank, taken)
    fixtures.add_ceiling_lights(rng, scene, bank)
    start = len(scene.solids)
    supports = clutter.add_clutter(rng, scene, bank, supports, circles, int(rng.integers(5, 26)))
    scene.groups["clutter"] = (start, len(scene.solids))
    if rng.random() < 0.25:
        _close_up(rng, scene, supports)
    return scene


def _emit_table(scene: _Scene) -> np.ndarray:
    """(K,) emitted level per face key; 0 for faces the lamps light."""
    levels = [np.zeros(6) if s.emit is None else s.emit for s in scene.solids]
    return np.concatenate(levels).astype(np.float32)


def render_rich(scene: _Scene, bank: tx.TextureBank, k: Intrinsics, rng: np.random.Generator
                ) -> tuple[np.ndarray, np.ndarray]:
    """Image (H, W, 3) uint8 RGB and exact z-depth (H, W) float32 metres of a rich scene.

    Lamps light the surfaces; windows and light panels emit; auto-exposure (with a random bias
    of -0.4..+0.3 stops) meters the lit surfaces only, so bright windows blow out as they do in
    real photos; then the camera's optics and sensor (``camera_fx.expose``).
    """
    dirs = _ray_dirs(k, scene.cam_rot)
    depth, key = _cast(scene, dirs, k)
    albedo, light, tint = _radiance(scene, bank, _face_tables(scene, bank, rng), depth, key, dirs)
    emit = np.take(_emit_table(scene), key)
    glowing = emit > 0
    light[glowing] = 0.0
    gain = _auto_gain(albedo, light, tint) * 2.0 ** rng.uniform(-0.4, 0.3)
    light = np.where(glowing, emit, light * np.float32(gain))
    for j in range(3):
        albedo[..., j] *= tint[j] * light
    return camera_fx.expose(albedo, rng), depth
