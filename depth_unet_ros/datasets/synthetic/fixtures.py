"""Fixed parts of real rooms that the plain synthetic rooms lack (rich rooms only): windows with
casings, sills and sometimes curtains, baseboards along the floor line, door casings and handles,
and ceiling lights seen as bright panels.

Every fixture is a solid the renderer ray-casts, so depth stays exact: a window pane stands 5 mm
proud of its wall (its depth is the wall's), a baseboard 1-2 cm. Panes and light panels emit
(``_Solid.emit``): they show as bright, often blown-out regions whatever the lamps do, as real
windows and ceiling lights do in indoor photos.
"""
from __future__ import annotations

import numpy as np

from depth_unet_ros.datasets.synthetic import textures as tx
from depth_unet_ros.datasets.synthetic.scenes import _WOOD_HUE, _Scene, _uniform, add_parts

PANE_M = 0.005  # how far a window pane stands out of its wall
# Yaw of the local wall frame (x along the wall, y into the room) on walls x = X, y = 0, y = Y, x = 0.
WALL_YAW = (np.pi / 2, 0.0, np.pi, -np.pi / 2)


def wall_length(room: np.ndarray, wall: int) -> float:
    return float(room[1] if wall in (0, 3) else room[0])


def wall_origin(room: np.ndarray, wall: int, s: float) -> np.ndarray:
    """Floor point on ``wall`` at ``s`` metres along it (the coordinate ``_place`` draws)."""
    return np.array([(room[0], s), (s, 0.0), (s, room[1]), (0.0, s)][wall], float)


def _trim_faces(rng: np.random.Generator, bank: tx.TextureBank) -> tuple[np.ndarray, np.ndarray]:
    """White painted trim most of the time, else stained wood."""
    if rng.random() < 0.7:
        return _uniform(int(rng.choice(bank.kinds["paint"])),
                        tx.random_color(rng, (0.8, 0.97), (0, 0.08)))
    return _uniform(int(rng.choice(bank.kinds["grain"])),
                    tx.random_color(rng, (0.3, 0.7), (0.3, 0.6), _WOOD_HUE))


def _part(lo, hi, faces, cylinder: bool = False, fit: bool = False) -> tuple:
    return (np.array(lo, float), np.array(hi, float), faces[0].copy(), faces[1].copy(), cylinder, fit)


def window_parts(rng: np.random.Generator, bank: tx.TextureBank,
                 room_h: float) -> tuple[list, float, float, float]:
    """A window in the local wall frame (x along the wall, y into the room, z up): the pane
    (parts[0], one window texture tile), casing, sill and maybe curtains. Returns the parts, the
    width it takes along the wall, and its lowest and highest z."""
    w, h = rng.uniform(0.6, 2.0), rng.uniform(0.9, 1.6)
    z0 = rng.uniform(0.6, 1.0)
    z1 = min(z0 + h, room_h - 0.15)
    c, e = rng.uniform(0.04, 0.09), rng.uniform(0.015, 0.04)
    sky = tx.random_color(rng, (0.9, 1.0), (0.0, 0.12), (0.5, 0.7))
    trim = _trim_faces(rng, bank)
    pane = _uniform(int(rng.choice(bank.kinds["window"])), sky)
    parts = [_part((-w / 2, 0, z0), (w / 2, PANE_M, z1), pane, fit=True),
             _part((-w / 2 - c, 0, z0), (-w / 2, e, z1 + c), trim),
             _part((w / 2, 0, z0), (w / 2 + c, e, z1 + c), trim),
             _part((-w / 2, 0, z1), (w / 2, e, z1 + c), trim),
             _part((-w / 2 - c - 0.03, 0, z0 - 0.03),  # the sill
                   (w / 2 + c + 0.03, rng.uniform(0.06, 0.2), z0), trim)]
    span, low, high = w + 2 * c + 0.06, z0 - 0.03, z1 + c
    if rng.random() < 0.3:  # curtains, drawn open to both sides, to the floor or the sill
        cw, bottom = rng.uniform(0.15, 0.4), 0.0 if rng.random() < 0.6 else z0 - 0.1
        cloth = _uniform(int(rng.choice(bank.kinds["carpet"])),
                         tx.random_color(rng, (0.3, 0.9), (0.1, 0.6)))
        top = min(z1 + 0.2, room_h - 0.02)
        for x in (-w / 2 - c - cw, w / 2 + c):
            parts.append(_part((x, 0.06, bottom), (x + cw, 0.06 + rng.uniform(0.04, 0.1), top), cloth))
        span, low, high = w + 2 * (c + cw) + 0.02, min(low, bottom), max(high, top)
    return parts, span, low, high


def add_windows(rng: np.random.Generator, scene: _Scene, bank: tx.TextureBank, taken: list) -> None:
    """0-3 windows on the walls the camera faces, clear of the furniture and fixtures in
    ``taken`` [(wall, s0, s1, z0, z1)]; each brings a lamp-like light into the room."""
    room = scene.room_m
    for _ in range(int(rng.choice(4, p=[0.25, 0.4, 0.25, 0.1]))):
        parts, span, z_lo, z_hi = window_parts(rng, bank, float(room[2]))
        for _ in range(8):
            wall = int(rng.integers(3))
            length = wall_length(room, wall)
            if length < span + 0.3:
                continue
            s = rng.uniform(span / 2 + 0.15, length - span / 2 - 0.15)
            if any(wl == wall and s0 < s + span / 2 and s - span / 2 < s1 and z0 < z_hi and z_lo < z1
                   for wl, s0, s1, z0, z1 in taken):
                continue
            taken.append((wall, s - span / 2, s + span / 2, z_lo, z_hi))
            yaw = WALL_YAW[wall]
            pane = add_parts(scene, parts, wall_origin(room, wall, s), yaw)[0]
            pane.emit = np.zeros(6)
            pane.emit[3] = rng.uniform(1.0, 1.8)
            into = np.array([-np.sin(yaw), np.cos(yaw), 0.0])
            scene.lights.append((pane.center + 0.8 * into, rng.uniform(1.0, 4.0)))
            break


def add_baseboards(rng: np.random.Generator, scene: _Scene, bank: tx.TextureBank) -> None:
    """Baseboards along all four walls (most rooms), 5-12 cm tall, 1-2 cm thick."""
    if rng.random() > 0.8:
        return
    room, trim = scene.room_m, _trim_faces(rng, bank)
    h, t = rng.uniform(0.05, 0.12), rng.uniform(0.01, 0.02)
    for wall in range(4):
        length = wall_length(room, wall)
        add_parts(scene, [_part((-length / 2, 0, 0), (length / 2, t, h), trim)],
                  wall_origin(room, wall, length / 2), WALL_YAW[wall])


def door_trim_parts(rng: np.random.Generator, bank: tx.TextureBank) -> list:
    """Casing around a 0.9 x 2.05 m door (``scenes._furniture``'s) and a handle on one side."""
    c, e = rng.uniform(0.05, 0.09), rng.uniform(0.015, 0.03)
    trim = _trim_faces(rng, bank)
    metal = _uniform(int(bank.kinds["paint"][0]), tx.random_color(rng, (0.2, 0.8), (0.0, 0.1)))
    side = 1.0 if rng.random() < 0.5 else -1.0
    hx = side * 0.36
    return [_part((-0.45 - c, 0, 0), (-0.45, e, 2.05 + c), trim),
            _part((0.45, 0, 0), (0.45 + c, e, 2.05 + c), trim),
            _part((-0.45, 0, 2.05), (0.45, e, 2.05 + c), trim),
            _part((min(hx, hx - side * 0.12), 0.04, 0.98),  # the handle
                  (max(hx, hx - side * 0.12), 0.1, 1.02), metal)]


def add_ceiling_lights(rng: np.random.Generator, scene: _Scene, bank: tx.TextureBank) -> None:
    """A visible, bright fixture on the ceiling above most of the lamps: a square panel, a long
    strip or a small downlight, 3 cm deep."""
    room_h = float(scene.room_m[2])
    for pos, _ in list(scene.lights):
        if pos[2] < room_h - 0.2 or rng.random() > 0.85:
            continue
        shape = rng.choice(3)
        a, b = [(rng.uniform(0.3, 0.6),) * 2, (rng.uniform(1.0, 1.3), rng.uniform(0.12, 0.3)),
                (rng.uniform(0.1, 0.2),) * 2][shape]
        faces = _uniform(int(bank.kinds["paint"][0]), np.array([1.0, 0.98, 0.94], np.float32))
        box = _part((-a / 2, -b / 2, room_h - 0.03), (a / 2, b / 2, room_h), faces)
        panel = add_parts(scene, [box], pos, rng.uniform(0, np.pi))[0]
        panel.emit = np.zeros(6)
        panel.emit[4] = rng.uniform(1.1, 2.0)  # the face looking down
