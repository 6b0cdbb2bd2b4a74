"""Small objects of known size on table tops, cabinets, shelves, beds, sofas and the floor (rich
rooms only).

Real rooms are full of books, boxes, bottles, mugs, monitors, lamps, plants and bags whose sizes
people (and networks) know, so they tell the scale of a scene. Each object is a few boxes and
vertical cylinders of realistic size (5-60 cm), standing on a support surface, ray-cast like the
furniture, so its depth is exact. Placement prefers supports the camera sees.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from depth_unet_ros.datasets.synthetic import textures as tx
from depth_unet_ros.datasets.synthetic.scenes import _Scene, _uniform, add_parts


@dataclass
class Support:
    """A horizontal surface objects can stand on: a rectangle at height ``top``."""

    kind: str  # "table", "cabinet", "shelf", "bed", "sofa", "chair" or "floor"
    center: np.ndarray  # (2,) world xy
    half: np.ndarray  # (2,) half extents along the support's own x and y
    yaw: float
    top: float  # metres above the floor
    taken: list  # [(xy (2,), radius)] objects already standing on it


# Free rectangle of a piece's first part (its seat or top), as insets from its local x sides,
# its y start and its y end (metres): a sofa's back and arms, a bed's headboard, a chair's back.
_INSETS = {"sofa": (0.18, 0.22, 0.0), "bed": (0.0, 0.06, 0.0), "chair": (0.0, 0.0, 0.04)}

# object kind -> (weight, the supports it stands on)
_OBJECTS = {
    "book_stack": (3.0, {"table", "cabinet", "shelf", "bed", "sofa", "chair", "floor"}),
    "books_upright": (2.0, {"table", "cabinet", "shelf"}),
    "box": (3.0, {"table", "cabinet", "shelf", "chair", "floor"}),
    "bottle": (2.0, {"table", "cabinet", "floor"}),
    "mug": (2.0, {"table", "cabinet"}),
    "vase": (1.0, {"table", "cabinet", "shelf"}),
    "monitor": (1.5, {"table"}),
    "laptop": (1.0, {"table", "bed", "sofa"}),
    "keyboard": (0.7, {"table"}),
    "lamp": (1.0, {"table", "cabinet"}),
    "plant": (1.5, {"table", "cabinet", "shelf", "floor"}),
    "bag": (2.0, {"bed", "sofa", "chair", "floor"}),
    "pillow": (2.0, {"bed", "sofa"}),
    "bin": (1.0, {"floor"}),
}


def furniture_support(kind: str, parts: list, origin: np.ndarray, yaw: float,
                      shift: float) -> Support | None:
    """The support a placed piece offers on its first part (a table top, a cabinet or shelf top,
    a bed's mattress, a sofa's or chair's seat); None for pieces nothing stands on."""
    if kind not in {"table", "cabinet", "shelf", "bed", "sofa", "chair"}:
        return None
    lo, hi = parts[0][0], parts[0][1]
    ix, iy0, iy1 = _INSETS.get(kind, (0.0, 0.0, 0.0))
    x0, x1, y0, y1 = lo[0] + ix, hi[0] - ix, lo[1] + iy0 + shift, hi[1] - iy1 + shift
    c, s = np.cos(yaw), np.sin(yaw)
    mx, my = (x0 + x1) / 2, (y0 + y1) / 2
    center = np.array([origin[0] + c * mx - s * my, origin[1] + s * mx + c * my])
    return Support(kind, center, np.array([(x1 - x0) / 2, (y1 - y0) / 2]), float(yaw), float(hi[2]), [])


def _faces(tex: int, tint: np.ndarray, top: tuple | None = None, side: tuple | None = None
           ) -> tuple[np.ndarray, np.ndarray]:
    """Uniform faces, optionally another (texture, tint) on top (face 5) or on the +y side (3)."""
    t, c = _uniform(tex, tint)
    for face, spec in ((5, top), (3, side)):
        if spec is not None:
            t[face], c[face] = spec
    return t, c


def _box(parts: list, lo, hi, faces, cylinder: bool = False) -> None:
    parts.append((np.array(lo, float), np.array(hi, float), faces[0].copy(), faces[1].copy(),
                  cylinder, False))


def _books(rng: np.random.Generator, bank: tx.TextureBank, upright: bool) -> list:
    """A stack of 1-4 books lying flat, or a row of 3-10 standing ones (spines along +y)."""
    parts: list = []
    pages = tx.random_color(rng, (0.8, 0.95), (0.0, 0.15), (0.1, 0.15))
    paint = int(bank.kinds["paint"][0])
    if upright:
        x, depth, count = 0.0, rng.uniform(0.13, 0.22), int(rng.integers(3, 11))
        for _ in range(count):
            t, h = rng.uniform(0.015, 0.05), rng.uniform(0.17, 0.3)
            cover = tx.random_color(rng, (0.15, 0.85), (0.2, 0.8))
            _box(parts, (x, -depth / 2, 0), (x + t, depth / 2, h),
                 _faces(paint, pages, side=(paint, cover)))
            x += t
        for p in parts:  # centre the row on the origin
            p[0][0] -= x / 2
            p[1][0] -= x / 2
        return parts
    z = 0.0
    w, d = rng.uniform(0.14, 0.3), rng.uniform(0.1, 0.22)
    for _ in range(int(rng.integers(1, 5))):
        t = rng.uniform(0.015, 0.06)
        dx, dy = rng.uniform(-0.02, 0.02, 2)
        cover = (int(rng.choice(bank.kinds["printed"])), tx.random_color(rng, (0.5, 1.0), (0.0, 0.4)))
        _box(parts, (-w / 2 + dx, -d / 2 + dy, z), (w / 2 + dx, d / 2 + dy, z + t),
             _faces(paint, pages, top=cover))
        z += t
        w, d = w * rng.uniform(0.85, 1.1), d * rng.uniform(0.85, 1.1)
    return parts


def _object(rng: np.random.Generator, kind: str, bank: tx.TextureBank, support: str) -> list:
    """Parts [(lo, hi, textures, tints, cylinder, fit)] of one object, centred on the local
    origin, standing on z = 0."""
    pick = lambda k: int(rng.choice(bank.kinds[k]))  # noqa: E731
    colour = lambda: tx.random_color(rng, (0.2, 0.9), (0.1, 0.85))  # noqa: E731
    dark = _uniform(pick("paint"), tx.random_color(rng, (0.03, 0.12), (0.0, 0.1)))
    U, parts = rng.uniform, []
    if kind in ("book_stack", "books_upright"):
        return _books(rng, bank, kind == "books_upright")
    if kind == "box":
        big = support == "floor"
        w, d, h = U(0.2, 0.6) if big else U(0.1, 0.4), U(0.15, 0.5) if big else U(0.08, 0.3), \
            U(0.12, 0.5) if big else U(0.05, 0.3)
        if rng.random() < 0.5:
            faces = _uniform(pick("paint"), tx.random_color(rng, (0.45, 0.7), (0.35, 0.6), (0.07, 0.1)))
        else:
            faces = _uniform(pick("printed"), tx.random_color(rng, (0.8, 1.0), (0.0, 0.2)))
        _box(parts, (-w / 2, -d / 2, 0), (w / 2, d / 2, h), faces)
    elif kind in ("bottle", "mug", "vase", "bin"):
        r, h = {"bottle": (U(0.03, 0.05), U(0.18, 0.3)), "mug": (U(0.035, 0.05), U(0.08, 0.12)),
                "vase": (U(0.05, 0.12), U(0.15, 0.45)), "bin": (U(0.1, 0.17), U(0.25, 0.45))}[kind]
        faces = _uniform(pick("paint" if kind != "vase" else "printed"), colour())
        _box(parts, (-r, -r, 0), (r, r, h), faces, cylinder=True)
        if kind == "bottle":
            neck = 0.35 * r
            _box(parts, (-neck, -neck, h), (neck, neck, h + U(0.04, 0.08)), faces, cylinder=True)
    elif kind == "monitor":
        w, h, neck = U(0.45, 0.7), U(0.28, 0.42), U(0.06, 0.14)
        _box(parts, (-0.11, -0.09, 0), (0.11, 0.09, 0.015), dark)
        _box(parts, (-0.02, -0.03, 0.015), (0.02, 0.0, 0.015 + neck), dark)
        _box(parts, (-w / 2, 0.0, 0.015 + neck), (w / 2, 0.03, 0.015 + neck + h), dark)
    elif kind == "laptop":
        w, d = U(0.3, 0.38), U(0.21, 0.26)
        shell = _uniform(pick("paint"), tx.random_color(rng, (0.1, 0.8), (0.0, 0.1)))
        _box(parts, (-w / 2, -d / 2, 0), (w / 2, d / 2, 0.02), shell)
        if rng.random() < 0.7:  # open: the lid stands at the back
            _box(parts, (-w / 2, d / 2 - 0.01, 0.02), (w / 2, d / 2, 0.02 + d), dark)
    elif kind == "keyboard":
        _box(parts, (-U(0.2, 0.23), -0.07, 0), (U(0.2, 0.23), 0.07, U(0.02, 0.035)), dark)
    elif kind == "lamp":
        shade, stem = U(0.08, 0.16), U(0.25, 0.45)
        metal = _uniform(pick("paint"), tx.random_color(rng, (0.1, 0.9), (0.0, 0.3)))
        cloth = _uniform(pick("carpet"), tx.random_color(rng, (0.7, 0.95), (0.0, 0.3)))
        _box(parts, (-0.07, -0.07, 0), (0.07, 0.07, 0.025), metal, cylinder=True)
        _box(parts, (-0.012, -0.012, 0.025), (0.012, 0.012, stem), metal, cylinder=True)
        _box(parts, (-shade, -shade, stem), (shade, shade, stem + U(0.14, 0.22)), cloth, cylinder=True)
    elif kind == "plant":
        r = U(0.1, 0.18) if support == "floor" else U(0.05, 0.1)
        pot_h, leaves = r * U(1.0, 1.8), r * U(1.5, 4.0)
        pot = _uniform(pick("paint"), tx.random_color(rng, (0.3, 0.9), (0.2, 0.7), (0.0, 0.12)))
        green = _uniform(pick("carpet"), tx.random_color(rng, (0.2, 0.55), (0.4, 0.8), (0.22, 0.4)))
        _box(parts, (-r, -r, 0), (r, r, pot_h), pot, cylinder=True)
        crown = 1.3 * r
        _box(parts, (-crown, -crown, pot_h), (crown, crown, pot_h + leaves), green, cylinder=True)
    else:  # bag or pillow: fabric blocks
        w, d, h = (U(0.25, 0.45), U(0.12, 0.25), U(0.25, 0.45)) if kind == "bag" else \
            (U(0.4, 0.6), U(0.12, 0.2), U(0.3, 0.45))
        fabric = _uniform(pick("carpet"), tx.random_color(rng, (0.15, 0.85), (0.1, 0.7)))
        _box(parts, (-w / 2, -d / 2, 0), (w / 2, d / 2, h), fabric)
    return parts


def _radius(parts: list) -> float:
    """Footprint radius of parts centred on the local origin (their xy bounding box)."""
    lo = np.min([p[0][:2] for p in parts], axis=0)
    hi = np.max([p[1][:2] for p in parts], axis=0)
    return float(np.hypot(*np.maximum(np.abs(lo), np.abs(hi))))


def _visible(scene: _Scene, point: np.ndarray) -> bool:
    """Whether a world point is in front of the camera and inside a 64 x 50 degree view."""
    q = scene.cam_rot.T @ (point - scene.cam_pos)
    return bool(q[2] > 0.3 and abs(q[0]) < 0.62 * q[2] and abs(q[1]) < 0.47 * q[2])


def _floor_in_view(rng: np.random.Generator, scene: _Scene) -> np.ndarray | None:
    """Where the ray through a random point of the view meets the floor; None if it does not
    (looking up) or meets it more than 6 m away."""
    ray = scene.cam_rot @ np.array([rng.uniform(-0.5, 0.5), rng.uniform(-0.1, 0.4), 1.0])
    if ray[2] >= -1e-3:
        return None
    t = -scene.cam_pos[2] / ray[2]
    return scene.cam_pos[:2] + t * ray[:2] if t * np.hypot(*ray[:2]) < 6.0 else None


def _floor_spot(rng: np.random.Generator, scene: _Scene, r: float) -> np.ndarray:
    """A floor point for an object of footprint radius r: where the camera sees the floor half
    the time, else anywhere, against a wall half of that."""
    room = scene.room_m[:2]
    seen = _floor_in_view(rng, scene) if rng.random() < 0.5 else None
    if seen is not None:
        return np.clip(seen, r + 0.05, room - r - 0.05)
    xy = rng.uniform(r + 0.05, room - r - 0.05)
    if rng.random() < 0.5:
        axis, far = int(rng.integers(2)), rng.random() < 0.5
        xy[axis] = room[axis] - r - 0.03 if far else r + 0.03
    return xy


def _free(xy: np.ndarray, r: float, circles: list) -> bool:
    return all(np.linalg.norm(xy - m) >= r + rad for m, rad in circles)


def add_clutter(rng: np.random.Generator, scene: _Scene, bank: tx.TextureBank, supports: list,
                furniture: list, count: int) -> list:
    """Up to ``count`` objects on ``supports`` and the floor, clear of the furniture footprints
    ``furniture`` [(xy, radius)], of each other and (on the floor) of the camera. Returns the
    supports, with what stands on them in ``taken``."""
    floor = Support("floor", scene.room_m[:2] / 2, scene.room_m[:2] / 2, 0.0, 0.0, [])
    supports = [floor, *supports]
    weights = np.array([1.5 if s.kind == "floor" else 6.0 if _visible(scene, np.array([*s.center, s.top]))
                        else 1.0 for s in supports])
    for _ in range(count):
        support = supports[int(rng.choice(len(supports), p=weights / weights.sum()))]
        kinds = [k for k, (_, on) in _OBJECTS.items() if support.kind in on]
        p = np.array([_OBJECTS[k][0] for k in kinds])
        kind = str(rng.choice(kinds, p=p / p.sum()))
        parts = _object(rng, kind, bank, support.kind)
        _place_object(rng, scene, support, parts, furniture)
    return supports


def _place_object(rng: np.random.Generator, scene: _Scene, support: Support, parts: list,
                  furniture: list) -> bool:
    """Stand ``parts`` on ``support`` at a free spot (6 tries); False when none was found."""
    r = _radius(parts)
    c, s = np.cos(support.yaw), np.sin(support.yaw)
    for _ in range(6):
        if support.kind == "floor":
            xy = _floor_spot(rng, scene, r)
            if not (_free(xy, r, furniture) and np.linalg.norm(xy - scene.cam_pos[:2]) > r + 0.5):
                continue
        else:
            room_x = support.half - r
            if np.any(room_x < 0):
                return False
            lx, ly = rng.uniform(-room_x, room_x)
            xy = support.center + np.array([c * lx - s * ly, s * lx + c * ly])
        if not _free(xy, r, support.taken):
            continue
        support.taken.append((xy, r))
        turn = rng.uniform(-0.5, 0.5) if rng.random() < 0.7 else rng.uniform(0, 2 * np.pi)
        yaw = support.yaw + turn
        add_parts(scene, parts, np.array([*xy, 0.0]), float(yaw), base_z=support.top)
        return True
    return False
