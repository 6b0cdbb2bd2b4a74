"""What a cheap RGB-D camera's colour sensor does to the light reaching it (rich rooms only).

Applied in the renderer, on exposed linear radiance, so every frame already looks taken by a
real camera rather than relying on training augmentation alone: a little defocus or motion blur,
vignetting, a white-balance colour cast, a gamma near sRGB's, and signal-dependent sensor noise
that is correlated across colour channels (demosaicing) and sometimes across neighbouring pixels.
All strengths are mild and drawn per frame from the frame's generator, so a frame stays a pure
function of (seed, index). None of it changes depth.
"""
from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

_REF_WIDTH = 640.0  # blur sizes are drawn for a 640-pixel-wide frame and scaled to the frame
_GRAIN_STD = float(np.sum(cv2.getGaussianKernel(3, 0.8) ** 2))  # std a 3x3 blur leaves of white noise
_HALF_STD = 0.75**2 + 0.25**2  # std of white noise after 2x bilinear upsampling (weights per axis)


@dataclass(frozen=True)
class CameraLook:
    """One frame's draw of the sensor's effects."""

    blur: str  # "none", "defocus" or "motion"
    blur_px: float  # Gaussian sigma (defocus) or streak length (motion) at 640 px width
    blur_angle: float  # motion direction, radians
    vignette: float  # brightness lost in the image corners (0..1)
    white_balance: np.ndarray  # (3,) per-channel gains, mean 1
    gamma: float  # encoding exponent (sRGB is close to 1 / 2.2)
    read_noise: float  # grey levels (0..255), everywhere
    shot_noise: float  # grey levels at full scale, growing as sqrt(signal)
    chroma: float  # share of the noise that differs between channels
    grainy: bool  # noise correlated over neighbouring pixels (demosaiced, denoised sensors)


def draw_look(rng: np.random.Generator) -> CameraLook:
    """Mild, randomised camera effects for one frame."""
    blur = str(rng.choice(["none", "defocus", "motion"], p=[0.4, 0.35, 0.25]))
    blur_px = rng.uniform(0.4, 1.3) if blur == "defocus" else rng.uniform(1.5, 6.0)
    cast = np.exp(rng.normal(0.0, [0.06, 0.0, 0.06])).astype(np.float32)  # red and blue vs green
    return CameraLook(blur=blur, blur_px=float(blur_px), blur_angle=float(rng.uniform(0, np.pi)),
                      vignette=float(rng.uniform(0.05, 0.35)),
                      white_balance=cast / cast.mean(), gamma=float(rng.uniform(0.42, 0.5)),
                      read_noise=float(rng.uniform(0.5, 2.5)), shot_noise=float(rng.uniform(1.0, 5.0)),
                      chroma=float(rng.uniform(0.2, 0.6)), grainy=bool(rng.random() < 0.5))


def _motion_kernel(length: float, angle: float) -> np.ndarray:
    """A normalised line kernel ``length`` pixels long: the streak of a camera moving during
    the exposure."""
    size = int(np.ceil(length)) | 1
    kernel = np.zeros((size, size), np.float32)
    half = (length - 1) / 2
    ends = [(size // 2 + sgn * half * np.cos(angle), size // 2 + sgn * half * np.sin(angle))
            for sgn in (-1, 1)]
    # 1/16-pixel fixed point, so a short streak keeps its fractional length and angle.
    p0, p1 = [tuple(int(round(v * 16)) for v in end) for end in ends]
    cv2.line(kernel, p0, p1, 1.0, 1, cv2.LINE_AA, 4)
    return kernel / kernel.sum()


def _blur(linear: np.ndarray, look: CameraLook) -> np.ndarray:
    scale = linear.shape[1] / _REF_WIDTH
    if look.blur == "defocus" and look.blur_px * scale > 0.2:
        return cv2.GaussianBlur(linear, (0, 0), look.blur_px * scale)
    if look.blur == "motion" and look.blur_px * scale > 1.0:
        return cv2.filter2D(linear, -1, _motion_kernel(look.blur_px * scale, look.blur_angle),
                            borderType=cv2.BORDER_REFLECT)
    return linear


def _vignetting(height: int, width: int, strength: float) -> np.ndarray:
    """(H, W, 1) gain: 1 at the centre, 1 - strength in the corners, smooth (radius squared)."""
    x = (np.arange(width, dtype=np.float32) - (width - 1) / 2) / ((width - 1) / 2 or 1)
    y = (np.arange(height, dtype=np.float32) - (height - 1) / 2) / ((height - 1) / 2 or 1)
    r2 = (x[None, :] ** 2 + y[:, None] ** 2) / 2
    return (1.0 - strength * r2)[..., None]


def _sensor_noise(encoded: np.ndarray, look: CameraLook, rng: np.random.Generator) -> np.ndarray:
    """Zero-mean noise (H, W, 3) in grey levels: read noise plus shot noise growing as the
    square root of the signal, mostly shared by the three channels. The part that differs
    between channels is blotchy (drawn at half size), as demosaicing leaves it; it is also
    cheaper to draw."""
    h, w, _ = encoded.shape
    common = rng.standard_normal((h, w, 1), dtype=np.float32)
    chroma = rng.standard_normal(((h + 1) // 2, (w + 1) // 2, 3), dtype=np.float32)
    chroma = cv2.resize(chroma, (w, h), interpolation=cv2.INTER_LINEAR)
    shared, own = np.float32(np.sqrt(1 - look.chroma**2)), np.float32(look.chroma / _HALF_STD)
    field = shared * common + own * chroma
    if look.grainy:  # restore the std the blur takes away
        field = cv2.GaussianBlur(field, (3, 3), 0.8) / np.float32(_GRAIN_STD)
    sigma = look.read_noise + look.shot_noise * np.sqrt(np.clip(encoded, 0, 255) / 255.0)
    return field * sigma


def expose(linear: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Exposed linear radiance (H, W, 3) float32 (1 = white) -> the camera's uint8 RGB image.

    Draws the frame's ``CameraLook`` and then the sensor noise from ``rng``, in that order.
    """
    look = draw_look(rng)
    h, w, _ = linear.shape
    linear = _blur(linear, look) * look.white_balance
    linear *= _vignetting(h, w, look.vignette)
    encoded = np.power(np.clip(linear, 0, 1), np.float32(look.gamma)) * np.float32(255)
    encoded += _sensor_noise(encoded, look, rng)
    return np.clip(np.rint(encoded), 0, 255).astype(np.uint8)
