"""Synthetic indoor RGB-D frames: ray-cast rooms with furniture, textured surfaces and lamps.

Exact per-pixel z-depth (along the optical axis, as Kinect and NYU store it) comes from
vectorised ray-box and ray-cylinder intersection; the loop runs only over the few solids, each
over the pixels of its screen-space bounding box. Depth can be inferred from appearance the way
it can indoors: foreshortened floor and wall textures, light falloff, corner shading and
furniture of realistic size, seen by a camera at human height.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import cv2
import numpy as np

from depth_unet_ros.datasets.synthetic import textures as tx
from depth_unet_ros.datasets.base import NYU_INTRINSICS, Intrinsics, RGBDFrame
from depth_unet_ros.errors import DatasetError

_WOOD_HUE = (0.05, 0.11)


@dataclass
class _Solid:
    """A box (or vertical cylinder) with per-face texture and tint; face key = axis * 2 + side."""

    center: np.ndarray  # (3,) world metres
    half: np.ndarray  # (3,) half extents in the solid's own frame; cylinder: (r, r, h / 2)
    yaw: float  # rotation about world z, radians
    textures: np.ndarray  # (6,) bank index per face; side 1 = normal along +axis
    tints: np.ndarray  # (6, 3) albedo colour per face
    cylinder: bool = False
    fit_front: bool = False  # the +y face shows exactly one texture tile (a picture)
    # (6,) per face: 0 = lit by the lamps; > 0 = emits this exposed level (a window pane, a
    # ceiling panel), whatever the lighting. Rich rooms only; None = nothing emits.
    emit: np.ndarray | None = None


@dataclass
class _Scene:
    room_m: np.ndarray  # (3,) room size; the room spans [0, room_m]
    cam_pos: np.ndarray  # (3,) camera centre, world metres (z up)
    cam_rot: np.ndarray  # (3, 3) camera-to-world, columns: right, down, forward
    lights: list  # [(position (3,), intensity)]
    ambient: float
    solids: list = field(default_factory=list)  # solids[0] is the room, seen from inside
    groups: dict = field(default_factory=dict)  # name -> (start, stop) in solids ("clutter", rich)


def _uniform(tex: int, tint: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    return np.full(6, tex), np.tile(tint, (6, 1))


def _furniture(rng: np.random.Generator, kind: str, bank: tx.TextureBank) -> tuple[list, float, float]:
    """Parts [(lo, hi, textures, tints, cylinder, fit)] in a local frame (x along the width,
    y away from the wall, z up), with the width and depth of the footprint."""
    pick = lambda k: int(rng.choice(bank.kinds[k]))  # noqa: E731
    wood = _uniform(pick("grain"), tx.random_color(rng, (0.3, 0.8), (0.3, 0.7), _WOOD_HUE))
    fabric = _uniform(pick("carpet"), tx.random_color(rng, (0.25, 0.85), (0.1, 0.6)))
    laminate = _uniform(pick("paint"), tx.random_color(rng, (0.3, 0.95), (0.0, 0.4)))
    U = rng.uniform
    parts = []

    def box(lo, hi, faces, front=None, cylinder=False, fit=False):
        tex, tint = faces[0].copy(), faces[1].copy()
        if front is not None:
            tex[3], tint[3] = front, 1.0
        parts.append((np.array(lo, float), np.array(hi, float), tex, tint, cylinder, fit))

    if kind in ("table", "chair"):
        w, d, h = (U(0.8, 1.6), U(0.6, 1.0), U(0.7, 0.78)) if kind == "table" else (0.45, 0.45, 0.45)
        top_faces = laminate if rng.random() < 0.4 else wood
        box((-w / 2, 0, h - 0.04), (w / 2, d, h), top_faces)
        for x in (-w / 2 + 0.03, w / 2 - 0.08):
            for y in (0.03, d - 0.08):
                box((x, y, 0), (x + 0.05, y + 0.05, h - 0.04), top_faces)
        if kind == "chair":
            box((-w / 2, d - 0.04, h), (w / 2, d, h + 0.45), top_faces)
    elif kind in ("shelf", "cabinet"):
        w, d, h = (U(0.6, 1.2), U(0.28, 0.4), U(1.2, 2.1)) if kind == "shelf" else \
            (U(0.5, 1.4), U(0.4, 0.6), U(0.6, 1.1))
        box((-w / 2, 0, 0), (w / 2, d, h), wood if kind == "shelf" else laminate,
            front=pick("books") if kind == "shelf" else None)
    elif kind == "bed":
        w, d = U(1.0, 1.8), U(1.9, 2.1)
        box((-w / 2, 0, 0), (w / 2, d, U(0.45, 0.6)), fabric)
        box((-w / 2, 0, 0), (w / 2, 0.06, U(0.9, 1.2)), wood)
    elif kind == "sofa":
        w, d = U(1.5, 2.2), U(0.8, 0.95)
        box((-w / 2, 0, 0), (w / 2, d, 0.42), fabric)
        box((-w / 2, 0, 0), (w / 2, 0.22, 0.85), fabric)
        for x in (-w / 2, w / 2 - 0.18):
            box((x, 0, 0), (x + 0.18, d, 0.62), fabric)
    elif kind == "bin":
        r, h = U(0.12, 0.3), U(0.3, 1.0)
        w = d = 2 * r
        box((-r, 0, 0), (r, d, h), laminate, cylinder=True)
    elif kind == "picture":
        w, d, z = U(0.4, 1.2), 0.03, U(1.0, 1.5)
        box((-w / 2, 0, z), (w / 2, d, z + U(0.3, 0.8)), wood, front=pick("picture"), fit=True)
    else:  # door
        w, d = 0.9, 0.04
        box((-w / 2, 0, 0), (w / 2, d, 2.05), wood)
    return parts, w, d


_KINDS = ("table", "chair", "shelf", "cabinet", "bed", "sofa", "bin", "picture", "door")
_ON_WALL = {"shelf", "cabinet", "bed", "sofa", "picture", "door"}
_KIND_P = np.array([3, 2, 3, 3, 1.5, 1.5, 2, 2.5, 1.0]) / 19.5


def _place(rng, scene: _Scene, kind: str, w: float, d: float, circles: list):
    """Floor position and yaw of a piece's local origin, or None when no free spot was found."""
    room = scene.room_m
    for _ in range(12):
        if kind in _ON_WALL:  # walls facing the camera: far (x = X) and the two sides
            wall = int(rng.integers(3))
            length = room[1] if wall == 0 else room[0]
            if length < w + 0.1:
                continue
            s = rng.uniform(w / 2 + 0.05, length - w / 2 - 0.05)
            origin, yaw = [(room[0], s), (s, 0.0), (s, room[1])][wall], [np.pi / 2, 0.0, np.pi][wall]
            shift = 0.0
        else:
            origin, yaw, shift = rng.uniform(0.5, room[:2] - 0.5), rng.uniform(0, 2 * np.pi), -d / 2
        c, s_ = np.cos(yaw), np.sin(yaw)
        mid = np.array(origin) + (d / 2 + shift) * np.array([-s_, c])
        radius = 0.5 * np.hypot(w, d)
        if np.linalg.norm(mid - scene.cam_pos[:2]) < radius + 0.8:
            continue
        if kind not in _ON_WALL and (np.any(mid < radius) or np.any(mid + radius > room[:2])):
            continue
        if kind != "picture" and any(np.linalg.norm(mid - m) < 0.85 * (radius + r) for m, r in circles):
            continue
        if kind != "picture":
            circles.append((mid, radius))
        return np.array(origin, float), float(yaw), shift
    return None


def look_rotation(yaw: float, pitch: float, roll: float) -> np.ndarray:
    """Camera-to-world rotation (3, 3), columns right, down, forward (the optical frame).

    Radians: ``yaw`` about world z from +x, ``pitch`` > 0 looks down, ``roll`` about the
    forward axis (> 0 turns the image clockwise as seen by the camera).
    """
    fwd = np.array([np.cos(pitch) * np.cos(yaw), np.cos(pitch) * np.sin(yaw), -np.sin(pitch)])
    right = np.array([np.sin(yaw), -np.cos(yaw), 0.0])
    down = np.cross(fwd, right)
    right, down = np.cos(roll) * right + np.sin(roll) * down, np.cos(roll) * down - np.sin(roll) * right
    return np.stack([right, down, fwd], axis=1)


def _sample_scene(rng: np.random.Generator, bank: tx.TextureBank) -> _Scene:
    room = np.array([rng.uniform(3, 8), rng.uniform(3, 8), rng.uniform(2.4, 3.0)])
    cam = np.array([rng.uniform(0.3, 1.0), rng.uniform(0.8, room[1] - 0.8),
                    rng.uniform(1.2, min(1.7, room[2] - 0.5))])
    yaw, pitch, roll = np.radians([rng.uniform(-25, 25), rng.uniform(-3, 20), rng.uniform(-3, 3)])
    lights = [(np.array([rng.uniform(0.5, room[0] - 0.5), rng.uniform(0.5, room[1] - 0.5),
                         room[2] - 0.15]), rng.uniform(2.0, 6.0)) for _ in range(rng.integers(1, 3))]
    scene = _Scene(room, cam, look_rotation(yaw, pitch, roll), lights, rng.uniform(0.12, 0.3))
    scene.solids.append(_room_solid(rng, bank, room))
    circles: list = []
    for kind in rng.choice(_KINDS, size=int(rng.integers(4, 12)), p=_KIND_P):
        parts, w, d = _furniture(rng, str(kind), bank)
        placed = _place(rng, scene, str(kind), w, d, circles)
        if placed is not None:
            add_parts(scene, parts, *placed)
    return scene


def _room_solid(rng: np.random.Generator, bank: tx.TextureBank, room: np.ndarray) -> _Solid:
    """The room box seen from inside: painted walls, a near-white ceiling, a floor covering."""
    floor_kind = str(rng.choice(["planks", "tiles", "carpet", "checker"]))
    floor_tint = {"planks": ((0.35, 0.8), (0.3, 0.6), _WOOD_HUE), "carpet": ((0.3, 0.7), (0.1, 0.5)),
                  "tiles": ((0.6, 0.95), (0.0, 0.3)), "checker": ((0.6, 0.95), (0.0, 0.2))}[floor_kind]
    tex, tints = _uniform(int(rng.choice(bank.kinds["paint"])),
                          tx.random_color(rng, (0.6, 0.95), (0.0, 0.3)))
    tex[4], tints[4] = int(rng.choice(bank.kinds["paint"])), tx.random_color(rng, (0.85, 0.95), (0, 0.05))
    tex[5], tints[5] = int(rng.choice(bank.kinds[floor_kind])), tx.random_color(rng, *floor_tint)
    return _Solid(room / 2, room / 2, 0.0, tex, tints)


def add_parts(scene: _Scene, parts: list, origin: np.ndarray, yaw: float, shift: float = 0.0,
              base_z: float = 0.0) -> list:
    """Append ``parts`` [(lo, hi, textures, tints, cylinder, fit)], given in a local frame (x
    along the width, y away from the wall shifted by ``shift``, z up from ``base_z``), as solids
    at floor point ``origin`` turned by ``yaw``; returns the new solids."""
    c, s = np.cos(yaw), np.sin(yaw)
    added = []
    for lo, hi, tex, tints, cylinder, fit in parts:
        mid = (lo + hi) / 2
        x, y = mid[0], mid[1] + shift
        center = np.array([origin[0] + c * x - s * y, origin[1] + s * x + c * y, mid[2] + base_z])
        added.append(_Solid(center, (hi - lo) / 2, yaw, tex, tints, cylinder, fit))
    scene.solids += added
    return added


_SIGNS = np.array(np.meshgrid([-1, 1], [-1, 1], [-1, 1])).reshape(3, -1)  # (3, 8) box corners
# The box's 12 edges: corner pairs that differ along one axis.
_EDGES = np.array([(i, j) for i in range(8) for j in range(i + 1, 8)
                   if np.sum(_SIGNS[:, i] != _SIGNS[:, j]) == 1]).T  # (2, 12)
_NEAR = 1e-3  # metres: the part of a solid nearer than this to the camera plane is ignored


def _screen_box(solid: _Solid, scene: _Scene, k: Intrinsics) -> tuple[slice, slice] | None:
    """Pixel rows and columns that can see ``solid``; None when it is behind the camera.

    A solid that reaches behind the camera (a baseboard along the whole wall) is clipped at the
    near plane first, so its box covers only what can be seen of it, not the whole frame.
    """
    c, s = np.cos(solid.yaw), np.sin(solid.yaw)
    rot = np.array([[c, -s, 0], [s, c, 0], [0, 0, 1]])
    corners = solid.center[:, None] + rot @ (_SIGNS * solid.half[:, None])  # (3, 8) world
    cam = scene.cam_rot.T @ (corners - scene.cam_pos[:, None])  # (3, 8) camera frame
    front = cam[2] > _NEAR
    if not front.any():
        return None
    if not front.all():  # keep the corners in front and where the edges cross the near plane
        a, b = _EDGES[:, front[_EDGES[0]] != front[_EDGES[1]]]
        f = (_NEAR - cam[2, a]) / (cam[2, b] - cam[2, a])
        cam = np.concatenate([cam[:, front], cam[:, a] + f * (cam[:, b] - cam[:, a])], axis=1)
    u, v = k.fx * cam[0] / cam[2] + k.cx, k.fy * cam[1] / cam[2] + k.cy
    x0, x1 = max(int(u.min()) - 1, 0), min(int(np.ceil(u.max())) + 2, k.width)
    y0, y1 = max(int(v.min()) - 1, 0), min(int(np.ceil(v.max())) + 2, k.height)
    return (slice(y0, y1), slice(x0, x1)) if x0 < x1 and y0 < y1 else None


def _cast(scene: _Scene, dirs: list, k: Intrinsics) -> tuple[np.ndarray, np.ndarray]:
    """z-depth (H, W) metres and hit face key (H, W) = solid * 6 + axis * 2 + side."""
    o = [float(v) for v in scene.cam_pos]
    with np.errstate(divide="ignore", invalid="ignore"):
        # Rays start inside the room and leave it through the nearest wall plane ahead; the
        # face normal points into the room, hence side 1 for rays going towards -axis.
        depth, key = None, None
        for a, (d, oa, size) in enumerate(zip(dirs, o, scene.room_m)):
            t = np.abs((np.where(d > 0, np.float32(size), np.float32(0)) - oa) / d)  # inf if d == 0
            face = (d < 0).astype(np.int32) + 2 * a
            if depth is None:
                depth, key = t, face
            else:
                nearer = t < depth
                depth, key = np.where(nearer, t, depth), np.where(nearer, face, key)
        for n, solid in enumerate(scene.solids[1:], start=1):
            roi = _screen_box(solid, scene, k)
            if roi is not None:
                t, face = (_hit_cylinder if solid.cylinder else _hit_box)(solid, o, [d[roi] for d in dirs])
                dview, kview = depth[roi], key[roi]
                hit = (t > 0) & (t < dview)
                dview[hit], kview[hit] = t[hit], n * 6 + face[hit]
    return depth, key


def _hit_box(solid: _Solid, o: list, dirs: list) -> tuple[np.ndarray, np.ndarray]:
    """Slab test in the box frame: entry distance (inf on a miss) and entry face key."""
    c, s = float(np.cos(solid.yaw)), float(np.sin(solid.yaw))
    q = [o[i] - float(solid.center[i]) for i in range(3)]  # Python floats keep arrays float32
    ol = [c * q[0] + s * q[1], -s * q[0] + c * q[1], q[2]]
    half = [float(h) for h in solid.half]
    dl = [c * dirs[0] + s * dirs[1], -s * dirs[0] + c * dirs[1], dirs[2]]
    t_near, t_far, face = None, None, None
    for a in range(3):
        inv = 1.0 / dl[a]
        t1, t2 = (-half[a] - ol[a]) * inv, (half[a] - ol[a]) * inv
        near, far = np.minimum(t1, t2), np.maximum(t1, t2)
        side = (dl[a] < 0).astype(np.int32) + 2 * a  # entering through the face that faces the ray
        if t_near is None:
            t_near, t_far, face = near, far, side
        else:
            face = np.where(near > t_near, side, face)
            t_near, t_far = np.maximum(t_near, near), np.minimum(t_far, far)
    return np.where(t_near <= t_far, t_near, np.inf), face


def _hit_cylinder(solid: _Solid, o: list, dirs: list) -> tuple[np.ndarray, np.ndarray]:
    """Vertical cylinder: side (face key 1) or top cap (face key 5)."""
    r, hz = float(solid.half[0]), float(solid.half[2])
    ox, oy, oz = (o[i] - float(solid.center[i]) for i in range(3))
    a = dirs[0] * dirs[0] + dirs[1] * dirs[1]
    b = ox * dirs[0] + oy * dirs[1]
    disc = b * b - a * (ox * ox + oy * oy - r * r)
    t_side = (-b - np.sqrt(np.maximum(disc, 0))) / a
    t = np.where((disc > 0) & (np.abs(oz + t_side * dirs[2]) <= hz), t_side, np.inf)
    face = np.ones(t.shape, np.int32)
    if oz > hz:  # the top is visible only from above
        t_top = (hz - oz) / dirs[2]
        on_top = ((ox + t_top * dirs[0]) ** 2 + (oy + t_top * dirs[1]) ** 2 <= r * r) & (t_top > 0)
        top = on_top & (t_top < t)
        t, face = np.where(top, t_top, t), np.where(top, 5, face)
    return t, face


def _face_tables(scene: _Scene, bank: tx.TextureBank, rng: np.random.Generator) -> dict:
    """Per face key: outward normal, texture, tint, and texture coordinates as affine maps of
    the world hit point (tile units: one texture tile per unit)."""
    tables = {name: [] for name in ("normal", "tex", "tint", "uv")}
    for solid in scene.solids:
        c, s = np.cos(solid.yaw), np.sin(solid.yaw)
        to_local = np.array([[c, s, 0], [-s, c, 0], [0, 0, 1]])  # rows: the solid's axes
        jitter = rng.uniform(0.8, 1.25)  # the same texture at another scale in another scene
        for f in range(6):
            axis = f // 2
            tables["normal"].append(to_local[axis] * (1.0 if f % 2 else -1.0))
            tables["tex"].append(solid.textures[f])
            tables["tint"].append(solid.tints[f])
            # u runs along local y on x-faces, else x; v along local y on z-faces, else -z
            # (texture rows run downwards on walls).
            row_u = to_local[1] if axis == 0 else to_local[0]
            row_v = to_local[1] if axis == 2 else -to_local[2]
            size = bank.size_m[solid.textures[f]] * jitter
            if solid.fit_front and f == 3:  # one tile spans the picture exactly
                sizes, offsets = (2 * solid.half[0], 2 * solid.half[2]), (solid.half[0], solid.half[2])
            else:
                sizes, offsets = (size, size), rng.uniform(0, size, 2)
            uv = []
            for row, size_m, offset_m in zip((row_u, row_v), sizes, offsets):
                uv += [*(row / size_m), (offset_m - row @ solid.center) / size_m]
            tables["uv"].append(uv)
    out = {name: np.ascontiguousarray(np.asarray(v, np.float32).T) for name, v in tables.items()}
    return out  # out[name][j]: a contiguous (K,) table per component; tex is (K,)


def _radiance(scene: _Scene, bank: tx.TextureBank, tab: dict, depth: np.ndarray,
              key: np.ndarray, dirs: list) -> tuple[np.ndarray, np.ndarray, list]:
    """Albedo (H, W, 3), light (H, W) and tint [3 x (H, W)] of the cast rays, before exposure."""
    p = [float(scene.cam_pos[i]) + depth * dirs[i] for i in range(3)]  # world hit points
    coef = [np.take(tab["uv"][j], key) for j in range(8)]
    fu = coef[0] * p[0] + coef[1] * p[1] + coef[2] * p[2] + coef[3]  # tile units
    fv = coef[4] * p[0] + coef[5] * p[1] + coef[6] * p[2] + coef[7]
    normal = [np.take(tab["normal"][j], key) for j in range(3)]
    for n, sol in enumerate(scene.solids):
        if sol.cylinder:  # curved side: radial normal, u along the circumference
            side = key == n * 6 + 1
            r = float(sol.half[0])
            dx, dy = p[0][side] - float(sol.center[0]), p[1][side] - float(sol.center[1])
            normal[0][side], normal[1][side], normal[2][side] = dx / r, dy / r, 0
            fu[side] = np.arctan2(dy, dx) * (r / float(bank.size_m[sol.textures[1]]))
    t = tx.TEXELS  # atlas x: tile start, +1 border texel, -0.5 to sample texel centres
    map_x = np.take(tab["tex"], key) * np.float32(t + 2) + 0.5 + (fu - np.floor(fu)) * t
    map_y = 0.5 + (fv - np.floor(fv)) * t
    albedo = cv2.remap(bank.atlas, map_x.astype(np.float32), map_y.astype(np.float32),
                       cv2.INTER_LINEAR)
    light = np.full(depth.shape, scene.ambient, np.float32)
    for pos, power in scene.lights:
        lv = [float(pos[i]) - p[i] for i in range(3)]
        dist2 = lv[0] * lv[0] + lv[1] * lv[1] + lv[2] * lv[2]
        cos_dist = normal[0] * lv[0] + normal[1] * lv[1] + normal[2] * lv[2]
        light += float(power) * np.maximum(cos_dist, 0) / (dist2 * np.sqrt(dist2))
    # Corners and the floor line darken: distance to the nearest room plane other than the
    # one hit (room face key f lies on plane f ^ 1 of the list below).
    gaps = [p[0], float(scene.room_m[0]) - p[0], p[1], float(scene.room_m[1]) - p[1],
            p[2], float(scene.room_m[2]) - p[2]]
    nearest = np.minimum.reduce([g + (key == (j ^ 1)) * np.float32(100) for j, g in enumerate(gaps)])
    light *= 1.0 - 0.45 * np.exp(-np.maximum(nearest, 0) / 0.35)
    tint = [np.take(tab["tint"][j], key) for j in range(3)]
    return albedo, light, tint


def _auto_gain(albedo: np.ndarray, light: np.ndarray, tint: list) -> float:
    """Auto-exposure, as a camera would: the 97th percentile of radiance maps to 0.8."""
    sub = (slice(None, None, 4), slice(None, None, 4))
    peak = np.percentile(albedo[sub].mean(axis=-1) * light[sub] * (tint[0][sub] + tint[1][sub]
                                                                   + tint[2][sub]) / 3, 97)
    return 0.8 / max(float(peak), 1e-3)


def _shade(scene: _Scene, bank: tx.TextureBank, depth: np.ndarray, key: np.ndarray,
           dirs: list, rng: np.random.Generator, tables: dict | None = None,
           gain: float | None = None) -> np.ndarray:
    """Textured Lambertian image (H, W, 3) uint8 RGB of the cast rays.

    ``tables`` (from ``_face_tables``) and ``gain`` fix texture placement and exposure, e.g. over
    a sequence; when None they are drawn from ``rng`` and set by auto-exposure. ``rng`` always
    draws the sensor noise, last.
    """
    tab = _face_tables(scene, bank, rng) if tables is None else tables
    albedo, light, tint = _radiance(scene, bank, tab, depth, key, dirs)
    light *= _auto_gain(albedo, light, tint) if gain is None else gain
    for j in range(3):
        albedo[..., j] *= tint[j] * light
    noise = rng.random(depth.shape, dtype=np.float32)[..., None] * 3.0  # +-1.5 grey levels
    image = np.sqrt(np.clip(albedo, 0, 1)) * 255.0 + noise  # gamma 2
    return np.clip(image - 1.0, 0, 255).astype(np.uint8)  # noise mean 1.5, rounding 0.5


def _ray_dirs(k: Intrinsics, cam_rot: np.ndarray) -> list:
    """World ray directions [3 x (H, W) float32] through the pixel centres, scaled to z = 1."""
    xn = ((np.arange(k.width, dtype=np.float32) - k.cx) / k.fx)[None, :]
    yn = ((np.arange(k.height, dtype=np.float32) - k.cy) / k.fy)[:, None]
    rot = cam_rot.astype(np.float32)
    return [rot[j, 0] * xn + rot[j, 1] * yn + rot[j, 2] for j in range(3)]  # (H, W), z = 1


def render(scene: _Scene, bank: tx.TextureBank, k: Intrinsics, rng: np.random.Generator,
           tables: dict | None = None, gain: float | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Image (H, W, 3) uint8 RGB and z-depth (H, W) float32 metres of ``scene`` seen from its
    ``cam_pos`` / ``cam_rot``; ``tables``, ``gain`` and ``rng`` as in ``_shade``."""
    dirs = _ray_dirs(k, scene.cam_rot)
    depth, key = _cast(scene, dirs, k)
    return _shade(scene, bank, depth, key, dirs, rng, tables, gain), depth


def view_gain(scene: _Scene, bank: tx.TextureBank, k: Intrinsics, tables: dict) -> float:
    """The auto-exposure gain a camera would pick for this view (no noise drawn)."""
    dirs = _ray_dirs(k, scene.cam_rot)
    depth, key = _cast(scene, dirs, k)
    return _auto_gain(*_radiance(scene, bank, tables, depth, key, dirs))


VARIANTS = ("plain", "rich")


class SyntheticIndoorDataset:
    """``num_frames`` synthetic rooms; frame i is a pure function of (seed, i, variant).

    ``variant="plain"`` (the default) renders the rooms the bundled models were trained on, bit
    for bit; ``"rich"`` adds clutter, windows, trim, ceiling lights, robot-to-eye camera heights,
    close-ups and camera effects (``synthetic.rich``), named ``synth_rich_<seed>_<i>``.
    Depth is z-depth in metres, valid (> 0) everywhere. The texture bank is made once per
    process from the seed and not pickled, so DataLoader workers stay cheap to start.
    """

    def __init__(self, num_frames: int, seed: int = 0, height: int = 480, width: int = 640,
                 intrinsics: Intrinsics = NYU_INTRINSICS, variant: str = "plain") -> None:
        if num_frames < 0 or height < 8 or width < 8:
            raise DatasetError(f"synthetic dataset needs num_frames >= 0 and an image of at least "
                               f"8x8, got {num_frames} frames of {width}x{height}")
        if variant not in VARIANTS:
            raise DatasetError(f"synthetic variant must be one of {VARIANTS}, got {variant!r}")
        self.num_frames, self.seed, self.variant = int(num_frames), int(seed), variant
        if (intrinsics.width, intrinsics.height) != (width, height):
            intrinsics = intrinsics.scaled(width, height)
        self.intrinsics = intrinsics
        self._bank: tx.TextureBank | None = None

    def __len__(self) -> int:
        return self.num_frames

    def __getitem__(self, i: int) -> RGBDFrame:
        if not 0 <= i < self.num_frames:
            raise IndexError(f"synthetic frame {i} out of range for {self.num_frames} frames")
        if self._bank is None:
            self._bank = tx.make_bank(np.random.default_rng([self.seed, 2**31 - 1]))
        k = self.intrinsics
        if self.variant == "rich":
            from depth_unet_ros.datasets.synthetic import rich

            rng = np.random.default_rng([self.seed, i, rich.RICH_KEY])
            image, depth = rich.render_rich(rich.sample_rich_scene(rng, self._bank), self._bank, k, rng)
            return RGBDFrame(image=image, depth_m=depth, intrinsics=k,
                             name=f"synth_rich_{self.seed}_{i:05d}")
        rng = np.random.default_rng([self.seed, i])
        scene = _sample_scene(rng, self._bank)
        image, depth = render(scene, self._bank, k, rng)
        return RGBDFrame(image=image, depth_m=depth, intrinsics=k, name=f"synth_{self.seed}_{i:05d}")

    def __getstate__(self) -> dict:
        return {**self.__dict__, "_bank": None}
