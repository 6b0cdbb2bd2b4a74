"""Eigen et al. (2014) joint RGB-D augmentation: scale, rotate, crop, colour gain, flip.

Geometry moves image and depth together. Depth is resampled with nearest neighbour so the
invalid zeros stay zero and no value is invented between a surface and a hole, and it is divided
by the scale factor: enlarging the image by s looks like the scene seen from s times closer.
Intrinsics follow the image (fx, fy scaled; cx, cy shifted by the crop; cx mirrored by a flip).
"""
from __future__ import annotations

from dataclasses import dataclass, replace

import cv2
import numpy as np

from depth_unet_ros.datasets.base import Intrinsics, RGBDFrame
from depth_unet_ros.errors import ConfigError


@dataclass(frozen=True)
class AugmentConfig:
    scale: tuple[float, float] = (1.0, 1.5)  # s: image enlarged by s, depth divided by s
    rotation_deg: float = 5.0  # angle drawn from [-rotation_deg, rotation_deg]
    color_gain: tuple[float, float] = (0.8, 1.2)  # per-channel multiplier
    flip_p: float = 0.5  # probability of a horizontal flip
    crop_hw: tuple[int, int] | None = None  # output (height, width); None: the input's size
    # Photometric jitter beyond Eigen's (0 = off, and no random draw, so older runs replay
    # exactly): factors drawn from [1 - x, 1 + x]. Real cameras differ in exposure, contrast and
    # colour saturation far more than per-channel gains cover.
    brightness: float = 0.0
    contrast: float = 0.0
    saturation: float = 0.0
    # Optics and sensor of other cameras (0 = off, no draw): Gaussian blur with sigma drawn from
    # [0, blur_sigma] pixels of the input image (defocus, motion), then per-pixel Gaussian noise
    # with a standard deviation drawn from [0, noise_std] grey levels (cheap sensors in dim rooms).
    blur_sigma: float = 0.0
    noise_std: float = 0.0


@dataclass(frozen=True)
class AugmentParams:
    """One draw of the random choices, so a test or a debugger can replay it exactly."""

    scale: float
    angle_deg: float
    crop_yx: tuple[int, int]  # top-left corner of the crop in the scaled, rotated image
    crop_hw: tuple[int, int]
    gains: tuple[float, float, float]  # R, G, B
    flip: bool
    brightness: float = 1.0  # multiplier of the whole image
    contrast: float = 1.0  # multiplier of each pixel's distance from the image mean grey
    saturation: float = 1.0  # multiplier of each pixel's distance from its own grey
    blur_sigma: float = 0.0  # Gaussian blur of the input image, pixels (0 = none)
    noise_std: float = 0.0  # additive Gaussian noise, grey levels (0 = none)
    noise_seed: int = 0  # seeds the noise pattern, so a draw replays exactly


def sample_params(config: AugmentConfig, rng: np.random.Generator,
                  height: int, width: int) -> AugmentParams:
    """Draw every random choice for an input of ``height`` x ``width``, always in one order."""
    lo, hi = config.scale
    if not 0 < lo <= hi:
        raise ConfigError(f"augment scale range {config.scale} must satisfy 0 < low <= high")
    s = float(rng.uniform(lo, hi))
    angle = float(rng.uniform(-config.rotation_deg, config.rotation_deg))
    crop_h, crop_w = config.crop_hw or (height, width)
    scaled_h, scaled_w = _scaled_size(height, width, s)
    # A crop larger than the image is allowed: the overhang is padded (depth 0 = invalid).
    y0 = _offset(rng, scaled_h, crop_h)
    x0 = _offset(rng, scaled_w, crop_w)
    gains = tuple(float(g) for g in rng.uniform(*config.color_gain, size=3))
    flip = bool(rng.random() < config.flip_p)
    photometric = [float(rng.uniform(1 - x, 1 + x)) if x > 0 else 1.0
                   for x in (config.brightness, config.contrast, config.saturation)]
    sensor = {}
    if config.blur_sigma > 0:
        sensor["blur_sigma"] = float(rng.uniform(0.0, config.blur_sigma))
    if config.noise_std > 0:
        sensor["noise_std"] = float(rng.uniform(0.0, config.noise_std))
        sensor["noise_seed"] = int(rng.integers(2 ** 31))
    return AugmentParams(s, angle, (y0, x0), (int(crop_h), int(crop_w)), gains, flip, *photometric,
                         **sensor)


def _scaled_size(height: int, width: int, s: float) -> tuple[int, int]:
    return max(1, int(round(height * s))), max(1, int(round(width * s)))


def _offset(rng: np.random.Generator, size: int, crop: int) -> int:
    return int(rng.integers(0, size - crop + 1)) if size >= crop else -int(rng.integers(0, crop - size + 1))


def _window(array: np.ndarray, y0: int, x0: int, h: int, w: int) -> np.ndarray:
    """array[y0:y0+h, x0:x0+w] with zeros where the window leaves the array."""
    out = np.zeros((h, w) + array.shape[2:], array.dtype)
    ys, xs = max(y0, 0), max(x0, 0)
    ye, xe = min(y0 + h, array.shape[0]), min(x0 + w, array.shape[1])
    if ys < ye and xs < xe:
        out[ys - y0:ye - y0, xs - x0:xe - x0] = array[ys:ye, xs:xe]
    return out


def apply_params(frame: RGBDFrame, p: AugmentParams) -> RGBDFrame:
    """The augmented copy of ``frame`` for one set of drawn parameters."""
    image, depth_m, k = frame.image, frame.depth_m.astype(np.float32), frame.intrinsics
    h, w = image.shape[:2]
    if p.blur_sigma > 0:  # before resampling: the blur belongs to the camera that took the image
        image = cv2.GaussianBlur(image, (0, 0), p.blur_sigma)
    if p.scale != 1.0:
        sh, sw = _scaled_size(h, w, p.scale)
        image = cv2.resize(image, (sw, sh), interpolation=cv2.INTER_LINEAR)
        depth_m = cv2.resize(depth_m, (sw, sh), interpolation=cv2.INTER_NEAREST) / np.float32(p.scale)
        k = k.scaled(sw, sh)
        h, w = sh, sw
    if p.angle_deg != 0.0:
        # About the image centre: close to a roll of the camera about its optical axis, so the
        # intrinsics are kept as they are.
        m = cv2.getRotationMatrix2D(((w - 1) / 2.0, (h - 1) / 2.0), p.angle_deg, 1.0)
        image = cv2.warpAffine(image, m, (w, h), flags=cv2.INTER_LINEAR,
                               borderMode=cv2.BORDER_CONSTANT, borderValue=0)
        depth_m = cv2.warpAffine(depth_m, m, (w, h), flags=cv2.INTER_NEAREST,
                                 borderMode=cv2.BORDER_CONSTANT, borderValue=0)
    (y0, x0), (ch, cw) = p.crop_yx, p.crop_hw
    image, depth_m = _window(image, y0, x0, ch, cw), _window(depth_m, y0, x0, ch, cw)
    k = Intrinsics(k.fx, k.fy, k.cx - x0, k.cy - y0, cw, ch)
    gains = np.asarray(p.gains, np.float32)
    image = jitter_photometric(image.astype(np.float32) * gains, p)
    if p.noise_std > 0:
        noise = np.random.default_rng(p.noise_seed).standard_normal(image.shape, np.float32)
        image = image + noise * np.float32(p.noise_std)
    image = np.clip(image + 0.5, 0, 255).astype(np.uint8)
    if p.flip:
        image, depth_m = image[:, ::-1], depth_m[:, ::-1]
        k = replace(k, cx=k.width - 1 - k.cx)
    return RGBDFrame(np.ascontiguousarray(image), np.ascontiguousarray(depth_m, np.float32), k,
                     frame.name)


def jitter_photometric(image: np.ndarray, p: AugmentParams) -> np.ndarray:
    """Brightness, contrast, saturation on a float (H, W, 3) image in 0..255 units (unclipped)."""
    if p.brightness == p.contrast == p.saturation == 1.0:
        return image
    image = image * np.float32(p.brightness)
    grey = image @ np.array([0.299, 0.587, 0.114], np.float32)  # (H, W)
    image = grey.mean() + (image - grey.mean()) * np.float32(p.contrast)
    grey = grey.mean() + (grey - grey.mean()) * np.float32(p.contrast)
    return grey[..., None] + (image - grey[..., None]) * np.float32(p.saturation)


def augment_frame(frame: RGBDFrame, config: AugmentConfig, rng: np.random.Generator) -> RGBDFrame:
    """Eigen's joint augmentation of one frame; the same ``rng`` state gives the same result."""
    return apply_params(frame, sample_params(config, rng, *frame.image.shape[:2]))
