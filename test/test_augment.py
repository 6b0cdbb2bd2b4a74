"""Eigen joint augmentation: depth/scale coupling, flips, invalid pixels, determinism, sizes."""
from __future__ import annotations

import numpy as np
import pytest

from depth_unet_ros.datasets.base import NYU_INTRINSICS, RGBDFrame
from depth_unet_ros.errors import ConfigError
from training.augment import AugmentConfig, AugmentParams, apply_params, augment_frame, sample_params

H, W = 48, 64


def _frame(holes: float = 0.0, seed: int = 0) -> RGBDFrame:
    """Depth a ramp in both axes (unique per pixel) with optional random holes (0)."""
    rng = np.random.default_rng(seed)
    rows, cols = np.mgrid[0:H, 0:W]
    depth = (1.0 + 0.05 * rows + 0.001 * cols).astype(np.float32)
    depth[rng.random((H, W)) < holes] = 0.0
    image = np.stack([rows * 5, cols * 4, (rows + cols) % 256], axis=-1).astype(np.uint8)
    return RGBDFrame(image, depth, NYU_INTRINSICS.scaled(W, H), "f")


def _are_input_values(values: np.ndarray, inputs: np.ndarray) -> bool:
    """Whether every value equals (to float32 rounding) one of ``inputs``."""
    ref = np.unique(inputs).astype(np.float64)
    i = np.clip(np.searchsorted(ref, values), 1, ref.size - 1)
    closest = np.minimum(np.abs(ref[i] - values), np.abs(ref[i - 1] - values))
    return bool(np.all(closest <= 1e-6 * np.abs(values)))


def _params(scale=1.0, angle=0.0, crop_yx=(0, 0), crop_hw=(H, W), gains=(1.0, 1.0, 1.0), flip=False):
    return AugmentParams(scale, angle, crop_yx, crop_hw, gains, flip)


def test_identity_parameters_change_nothing():
    frame = _frame(holes=0.2)
    out = apply_params(frame, _params())
    np.testing.assert_array_equal(out.image, frame.image)
    np.testing.assert_array_equal(out.depth_m, frame.depth_m)
    assert out.intrinsics == frame.intrinsics


@pytest.mark.parametrize("s", [1.0, 1.25, 1.5])
def test_depth_divided_by_scale_on_corresponding_pixels(s):
    """Each output depth times s is an input depth, taken from the pixel the output maps to."""
    frame = _frame()
    rng = np.random.default_rng(1)
    p = sample_params(AugmentConfig(scale=(s, s), rotation_deg=0.0, flip_p=0.0), rng, H, W)
    out = apply_params(frame, p)
    y0, x0 = p.crop_yx
    rows, cols = np.mgrid[0:H, 0:W]
    src_r = np.clip(np.floor((rows + y0 + 0.5) / s), 0, H - 1).astype(int)
    src_c = np.clip(np.floor((cols + x0 + 0.5) / s), 0, W - 1).astype(int)
    # Nearest neighbour picks the source pixel under the output pixel's centre, give or take
    # one pixel of rounding: the ramp pins the row/column down to that.
    got_r = np.round(((out.depth_m * s) - 1.0 - 0.001 * src_c) / 0.05)
    assert np.abs(got_r - src_r).max() <= 1
    assert _are_input_values(out.depth_m.astype(np.float64) * s, frame.depth_m)  # not a blend


def test_scale_updates_intrinsics():
    """Enlarging by s scales fx, fy by s; the crop shifts cx, cy by its offset."""
    frame = _frame()
    out = apply_params(frame, _params(scale=1.5, crop_yx=(5, 7)))
    k0, k = frame.intrinsics, out.intrinsics
    assert k.fx == pytest.approx(k0.fx * 1.5) and k.fy == pytest.approx(k0.fy * 1.5)
    assert k.cx == pytest.approx((k0.cx + 0.5) * 1.5 - 0.5 - 7)
    assert k.cy == pytest.approx((k0.cy + 0.5) * 1.5 - 0.5 - 5)
    assert (k.width, k.height) == (W, H)


def test_flip_mirrors_image_depth_and_principal_point():
    frame = _frame(holes=0.1)
    out = apply_params(frame, _params(flip=True))
    np.testing.assert_array_equal(out.image, frame.image[:, ::-1])
    np.testing.assert_array_equal(out.depth_m, frame.depth_m[:, ::-1])
    assert out.intrinsics.cx == pytest.approx(W - 1 - frame.intrinsics.cx)
    assert out.intrinsics.cy == frame.intrinsics.cy


@pytest.mark.parametrize("seed", range(5))
def test_invalid_zeros_never_become_interpolated_values(seed):
    """With scale and rotation, every nonzero output depth is an input depth divided by s."""
    frame = _frame(holes=0.3, seed=seed)
    rng = np.random.default_rng(seed)
    p = sample_params(AugmentConfig(), rng, H, W)
    out = apply_params(frame, p)
    rescaled = out.depth_m[out.depth_m > 0].astype(np.float64) * p.scale
    assert _are_input_values(rescaled, frame.depth_m[frame.depth_m > 0])
    assert (out.depth_m == 0).mean() >= 0.25  # the holes survive


def test_rotation_leaves_corners_invalid():
    """Pixels rotated in from outside the image are depth 0 (invalid), not extrapolated."""
    frame = _frame()
    out = apply_params(frame, _params(angle=5.0))
    assert out.depth_m[0, 0] == 0 and out.depth_m[-1, -1] == 0
    assert out.depth_m[H // 2, W // 2] > 0


def test_colour_gain_per_channel_with_clipping():
    frame = _frame()
    out = apply_params(frame, _params(gains=(1.2, 0.8, 1.0)))
    expected_r = np.clip(np.round(frame.image[..., 0] * 1.2), 0, 255)
    np.testing.assert_array_equal(out.image[..., 0], expected_r.astype(np.uint8))
    np.testing.assert_array_equal(out.image[..., 2], frame.image[..., 2])
    np.testing.assert_array_equal(out.depth_m, frame.depth_m)
    assert out.image.dtype == np.uint8


def test_same_seed_same_result_and_different_seed_differs():
    frame = _frame(holes=0.1)
    cfg = AugmentConfig()
    a = augment_frame(frame, cfg, np.random.default_rng(42))
    b = augment_frame(frame, cfg, np.random.default_rng(42))
    c = augment_frame(frame, cfg, np.random.default_rng(43))
    np.testing.assert_array_equal(a.image, b.image)
    np.testing.assert_array_equal(a.depth_m, b.depth_m)
    assert a.intrinsics == b.intrinsics
    assert not np.array_equal(a.depth_m, c.depth_m)


@pytest.mark.parametrize("crop_hw", [None, (32, 40), (60, 80)])
def test_output_size(crop_hw):
    """Default crop returns the input size; an explicit crop (even larger, padded) its own."""
    frame = _frame()
    out = augment_frame(frame, AugmentConfig(crop_hw=crop_hw), np.random.default_rng(0))
    h, w = crop_hw or (H, W)
    assert out.image.shape == (h, w, 3) and out.depth_m.shape == (h, w)
    assert out.depth_m.dtype == np.float32
    assert (out.intrinsics.width, out.intrinsics.height) == (w, h)
    assert out.image.flags.c_contiguous and out.depth_m.flags.c_contiguous


def test_input_frame_is_not_modified():
    frame = _frame(holes=0.1)
    image, depth = frame.image.copy(), frame.depth_m.copy()
    augment_frame(frame, AugmentConfig(), np.random.default_rng(3))
    np.testing.assert_array_equal(frame.image, image)
    np.testing.assert_array_equal(frame.depth_m, depth)


def test_bad_scale_range_is_a_config_error():
    with pytest.raises(ConfigError, match="scale range"):
        augment_frame(_frame(), AugmentConfig(scale=(1.5, 1.0)), np.random.default_rng(0))


def test_photometric_jitter_off_draws_nothing_so_older_runs_replay_exactly():
    """With brightness/contrast/saturation at 0 the RNG stream and the result are what they were
    before the jitter existed; the next draw from the generator is the same too."""
    cfg = AugmentConfig()
    rng_a, rng_b = np.random.default_rng(5), np.random.default_rng(5)
    params = sample_params(cfg, rng_a, H, W)
    assert (params.brightness, params.contrast, params.saturation) == (1.0, 1.0, 1.0)
    old = AugmentParams(*[getattr(params, f) for f in ("scale", "angle_deg", "crop_yx", "crop_hw",
                                                        "gains", "flip")])
    assert sample_params(cfg, rng_b, H, W) == old
    assert rng_a.random() == rng_b.random()


def test_photometric_jitter_changes_colour_only():
    """Brightness, contrast and saturation change the image, never depth or intrinsics; a
    saturation of 0 makes every pixel grey."""
    frame = _frame(holes=0.1)
    out = apply_params(frame, AugmentParams(1.0, 0.0, (0, 0), (H, W), (1.0, 1.0, 1.0), False,
                                            brightness=1.2, contrast=0.7, saturation=0.0))
    np.testing.assert_array_equal(out.depth_m, frame.depth_m)
    assert out.intrinsics == frame.intrinsics
    spread = out.image.astype(int).max(axis=2) - out.image.astype(int).min(axis=2)
    assert spread.max() <= 1  # grey up to rounding
    drawn = sample_params(AugmentConfig(brightness=0.3, contrast=0.3, saturation=0.4),
                          np.random.default_rng(1), H, W)
    assert 0.7 <= drawn.brightness <= 1.3 and 0.6 <= drawn.saturation <= 1.4


def test_blur_and_noise_off_draw_nothing():
    """blur_sigma = noise_std = 0 (the default) leave the RNG stream as it was before they existed."""
    rng_a, rng_b = np.random.default_rng(9), np.random.default_rng(9)
    params = sample_params(AugmentConfig(brightness=0.2), rng_a, H, W)
    assert (params.blur_sigma, params.noise_std) == (0.0, 0.0)
    sample_params(AugmentConfig(brightness=0.2, blur_sigma=0.0, noise_std=0.0), rng_b, H, W)
    assert rng_a.random() == rng_b.random()


def test_blur_and_noise_change_the_image_only_and_replay_exactly():
    """A camera's blur smooths the image and its noise perturbs it; depth and intrinsics stay,
    and the same parameters give the same pixels (the noise is seeded by the draw)."""
    frame = _frame(holes=0.1)
    checks = ((np.indices((H, W)).sum(axis=0) // 4) % 2 * 200 + 20).astype(np.uint8)  # 4 px squares
    frame = RGBDFrame(np.repeat(checks[..., None], 3, axis=2), frame.depth_m, frame.intrinsics, "c")
    blurred = apply_params(frame, AugmentParams(1.0, 0.0, (0, 0), (H, W), (1.0, 1.0, 1.0), False,
                                                blur_sigma=2.0))
    np.testing.assert_array_equal(blurred.depth_m, frame.depth_m)
    assert blurred.intrinsics == frame.intrinsics
    step = lambda im: np.abs(np.diff(im[..., 0].astype(int), axis=1)).mean()  # noqa: E731
    assert step(blurred.image) < 0.5 * step(frame.image)  # the squares' sharp edges soften
    noisy = AugmentParams(1.0, 0.0, (0, 0), (H, W), (1.0, 1.0, 1.0), False, noise_std=6.0, noise_seed=3)
    a, b = apply_params(frame, noisy), apply_params(frame, noisy)
    np.testing.assert_array_equal(a.image, b.image)
    diff = a.image.astype(float) - frame.image.astype(float)
    assert 4.0 < diff.std() < 8.0  # 20..220 grey: the noise is never clipped
    np.testing.assert_array_equal(a.depth_m, frame.depth_m)
    drawn = sample_params(AugmentConfig(blur_sigma=1.5, noise_std=4.0), np.random.default_rng(2), H, W)
    assert 0.0 <= drawn.blur_sigma <= 1.5 and 0.0 <= drawn.noise_std <= 4.0
