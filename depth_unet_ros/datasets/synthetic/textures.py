"""Procedural, tileable albedo textures for the synthetic indoor scenes.

Each texture is a (T, T, 3) float32 albedo in [0, 1] that repeats every ``size_m`` metres on a
surface, so perspective foreshortens it the way it foreshortens real floors and walls. Most are
near-white patterns that a scene tints with its own colours, so one bank made per seed serves
every frame and frames cost no texture synthesis.
"""
from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

TEXELS = 256  # per tile side; a 2 m wall tile has ~8 mm texels, about one pixel at 4 m


@dataclass(frozen=True)
class Texture:
    albedo: np.ndarray  # (TEXELS, TEXELS, 3) float32 in [0, 1]
    size_m: float  # physical side of one tile in metres


def periodic_noise(rng: np.random.Generator, cells: int) -> np.ndarray:
    """Tileable smooth noise (T, T), zero mean, unit std, with ``cells`` (a power of 2) blobs a side."""
    grid = rng.standard_normal((cells, cells)).astype(np.float32)
    k = TEXELS // cells
    padded = np.pad(grid, 2, mode="wrap")  # bicubic reads 2 cells past each edge
    up = cv2.resize(padded, ((cells + 4) * k, (cells + 4) * k), interpolation=cv2.INTER_CUBIC)
    up = up[2 * k:2 * k + TEXELS, 2 * k:2 * k + TEXELS]
    return (up - up.mean()) / (up.std() + 1e-6)


def random_color(rng: np.random.Generator, value: tuple[float, float],
                 saturation: tuple[float, float], hue: tuple[float, float] = (0.0, 1.0)) -> np.ndarray:
    """An RGB albedo (3,) with hue (0..1 = red..red), brightness and saturation in the ranges."""
    hue = rng.uniform(*hue)
    v, s = rng.uniform(*value), rng.uniform(*saturation)
    rgb = np.clip(np.abs(((hue * 6.0 + np.array([0.0, 4.0, 2.0])) % 6.0) - 3.0) - 1.0, 0.0, 1.0)
    return (v * (1.0 - s + s * rgb)).astype(np.float32)


def _grid() -> tuple[np.ndarray, np.ndarray]:
    t = (np.arange(TEXELS, dtype=np.float32) + 0.5) / TEXELS
    return np.meshgrid(t, t)  # u along columns, v along rows (downwards), each in [0, 1)


def _grey(shade: np.ndarray, size_m: float) -> Texture:
    rgb = np.repeat(shade[..., None], 3, axis=2)
    return Texture(np.clip(rgb, 0.0, 1.0).astype(np.float32), size_m)


def paint(rng: np.random.Generator) -> Texture:
    """Wall paint: faint blotches and roller grain (to be tinted)."""
    return _grey(0.92 + 0.04 * periodic_noise(rng, 4) + 0.02 * periodic_noise(rng, 64), 2.0)


def carpet(rng: np.random.Generator) -> Texture:
    """Carpet or upholstery: fine fibre noise over slow blotches (to be tinted)."""
    return _grey(0.85 + 0.05 * periodic_noise(rng, 8) + 0.08 * periodic_noise(rng, 128), 1.0)


def wood(rng: np.random.Generator, planks: int = 0) -> Texture:
    """Wood grain along u; with ``planks`` > 0, boards across v with dark joints (to be tinted)."""
    u, v = _grid()
    warp = periodic_noise(rng, 4)
    grain = 0.5 + 0.5 * np.sin(2 * np.pi * (v * 24 + 0.6 * warp + 0.15 * np.sin(2 * np.pi * u)))
    shade = 0.8 + 0.12 * grain + 0.03 * periodic_noise(rng, 64)
    if planks:
        board = np.floor(v * planks).astype(np.int64)
        shade = shade * rng.uniform(0.82, 1.12, planks).astype(np.float32)[board]
        joint = np.abs(v * planks - np.round(v * planks)) < 0.04
        shade = np.where(joint, shade * 0.45, shade)
    return _grey(shade, 0.18 * planks if planks else 1.0)


def tiles(rng: np.random.Generator) -> Texture:
    """Square tiles with light grout, four tiles a texture side of 0.8-2.4 m (to be tinted)."""
    u, v = _grid()
    n = 4
    ti, tj = np.floor(v * n).astype(np.int64), np.floor(u * n).astype(np.int64)
    jitter = rng.uniform(0.85, 1.0, (n, n)).astype(np.float32)[ti, tj]
    grout = (np.abs(u * n - np.round(u * n)) < 0.025) | (np.abs(v * n - np.round(v * n)) < 0.025)
    shade = np.where(grout, 0.6, jitter * (0.95 + 0.03 * periodic_noise(rng, 32)))
    return _grey(shade, n * rng.uniform(0.2, 0.6))


def checker(rng: np.random.Generator) -> Texture:
    """Two-tone checkerboard floor (to be tinted)."""
    u, v = _grid()
    n = 4
    odd = (np.floor(u * n) + np.floor(v * n)) % 2 == 1
    shade = np.where(odd, 0.35, 0.95) * (1.0 + 0.03 * periodic_noise(rng, 32))
    return _grey(shade, n * rng.uniform(0.25, 0.5))


def books(rng: np.random.Generator) -> Texture:
    """Book spines on shelves: 3 shelf bands per 1.2 m, spines 2-6 cm wide in random colours."""
    u, v = _grid()
    bands = 3
    albedo = np.empty((TEXELS, TEXELS, 3), np.float32)
    for b in range(bands):
        rows = slice(b * TEXELS // bands, (b + 1) * TEXELS // bands)
        edges = np.cumsum(rng.uniform(0.02, 0.06, 60) / 1.2)  # spine edges in tile units
        spine = np.searchsorted(edges, u[rows] % edges[-1])
        colors = np.stack([random_color(rng, (0.2, 0.8), (0.2, 0.8)) for _ in range(61)])
        height = rng.uniform(0.6, 0.95, 61)[spine]
        gap = (v[rows] * bands) % 1.0 < 1.0 - height  # v grows downwards: the gap is on top
        albedo[rows] = np.where(gap[..., None], np.float32(0.12), colors[spine])
    board = ((v * bands) % 1.0) > 0.93
    albedo = np.where(board[..., None], np.array([0.45, 0.32, 0.2], np.float32), albedo)
    return Texture(albedo.astype(np.float32), 1.2)


def picture(rng: np.random.Generator) -> Texture:
    """A framed picture, one tile per picture: smooth colour blobs inside a dark border."""
    u, v = _grid()
    blobs = np.stack([periodic_noise(rng, 4) for _ in range(3)], axis=-1)
    inner = 0.5 + 0.1 * blobs + 0.1 * blobs.mean(axis=-1, keepdims=True)
    border = (np.minimum(u, 1 - u) < 0.05) | (np.minimum(v, 1 - v) < 0.05)
    return Texture(np.clip(np.where(border[..., None], 0.1, inner), 0, 1).astype(np.float32), 1.0)


def window(rng: np.random.Generator) -> Texture:
    """A window seen from inside, one tile per window: bright sky and faint blurred shapes
    outside, split into 1-3 x 1-2 panes by backlit (darker) sash bars and a frame."""
    u, v = _grid()
    cols, rows = int(rng.integers(1, 4)), int(rng.integers(1, 3))
    outside = 0.82 + 0.1 * (1.0 - v) + 0.06 * periodic_noise(rng, 4) + 0.02 * periodic_noise(rng, 16)
    bar = (np.abs(u * cols - np.round(u * cols)) < 0.02 * cols) | \
        (np.abs(v * rows - np.round(v * rows)) < 0.02 * rows)
    frame = (np.minimum(u, 1 - u) < 0.04) | (np.minimum(v, 1 - v) < 0.04)
    shade = np.where(bar | frame, 0.35, outside)
    rgb = shade[..., None] * np.array([0.96, 0.99, 1.0], np.float32)  # a little blue sky
    return Texture(np.clip(rgb, 0.0, 1.0).astype(np.float32), 1.0)


def printed(rng: np.random.Generator) -> Texture:
    """Printed packaging or a book cover (0.3 m tile): a coloured field with a few colour blocks
    and rows of dark text-like dashes, so small objects show detail at their real size."""
    u, v = _grid()
    albedo = np.empty((TEXELS, TEXELS, 3), np.float32)
    albedo[:] = random_color(rng, (0.5, 0.95), (0.0, 0.7))
    for _ in range(int(rng.integers(1, 4))):
        (u0, v0), (du, dv) = rng.uniform(0, 0.7, 2), rng.uniform(0.1, 0.4, 2)
        block = (u >= u0) & (u < u0 + du) & (v >= v0) & (v < v0 + dv)
        albedo[block] = random_color(rng, (0.15, 0.9), (0.2, 0.9))
    line = (v * 24) % 1.0 < 0.35
    dash = np.sin(2 * np.pi * (u * rng.uniform(6, 14) + rng.uniform(0, 1, (TEXELS, 1)))) > -0.2
    text = line & dash & (v > rng.uniform(0.5, 0.7)) & (np.abs(u - 0.5) < 0.4)
    albedo[text] *= 0.25
    return Texture(albedo, 0.3)


# kind -> (maker, how many variants in a bank)
_KINDS = {
    "paint": (paint, 3), "carpet": (carpet, 3), "grain": (lambda r: wood(r), 2),
    "planks": (lambda r: wood(r, planks=int(r.integers(6, 12))), 3), "tiles": (tiles, 3),
    "checker": (checker, 2), "books": (books, 3), "picture": (picture, 4),
    # Appended for the rich rooms: later kinds draw after every earlier one, so the earlier
    # textures (and the plain rooms' frames) stay bit-identical.
    "window": (window, 3), "printed": (printed, 4),
}


@dataclass(frozen=True)
class TextureBank:
    """All textures side by side in one atlas, so a frame samples them with one remap call."""

    atlas: np.ndarray  # (T + 2, K * (T + 2), 3) float32; each tile has a 1-texel wrap border
    size_m: np.ndarray  # (K,) tile side in metres
    kinds: dict  # kind name -> list of texture indices


def make_bank(rng: np.random.Generator) -> TextureBank:
    textures, kinds = [], {}
    for name, (maker, count) in _KINDS.items():
        kinds[name] = list(range(len(textures), len(textures) + count))
        textures += [maker(rng) for _ in range(count)]
    atlas = np.concatenate([np.pad(t.albedo, ((1, 1), (1, 1), (0, 0)), mode="wrap")
                            for t in textures], axis=1)
    return TextureBank(atlas, np.array([t.size_m for t in textures], np.float32), kinds)
