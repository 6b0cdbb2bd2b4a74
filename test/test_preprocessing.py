"""Image/depth resizing and encoding conversion (depth_unet_ros.preprocessing)."""
from pathlib import Path

import cv2
import numpy as np
import pytest

from depth_unet_ros.errors import ImageFormatError
from depth_unet_ros.preprocessing import (
    check_rgb_image, resize_depth, resize_depth_nearest, resize_image, to_rgb)

NYU_SAMPLES = Path(__file__).resolve().parents[2] / "shared" / "data" / "nyu_samples"


def _image(h=6, w=8, seed=0):
    return np.random.default_rng(seed).integers(0, 256, (h, w, 3), dtype=np.uint8)


@pytest.mark.parametrize("size_hw", [(3, 4), (12, 16), (5, 11), (1, 1)])
def test_resize_image_gives_requested_shape_and_dtype(size_hw):
    out = resize_image(_image(), size_hw)
    assert out.shape == (*size_hw, 3) and out.dtype == np.uint8


def test_resize_image_same_size_returns_input_without_copy():
    img = _image()
    assert resize_image(img, (6, 8)) is img


def test_resize_image_uses_area_when_shrinking_and_linear_when_enlarging():
    img = _image(8, 8)
    np.testing.assert_array_equal(resize_image(img, (4, 4)),
                                  cv2.resize(img, (4, 4), interpolation=cv2.INTER_AREA))
    np.testing.assert_array_equal(resize_image(img, (16, 16)),
                                  cv2.resize(img, (16, 16), interpolation=cv2.INTER_LINEAR))


def test_resize_image_area_shrink_averages_blocks():
    """Halving with INTER_AREA gives each 2x2 block's mean (no aliasing)."""
    img = np.zeros((2, 2, 3), np.uint8)
    img[0, 0] = 200
    img[1, 1] = 100
    assert resize_image(img, (1, 1))[0, 0, 0] == 75


@pytest.mark.parametrize("bad", [np.zeros((4, 4), np.uint8), np.zeros((4, 4, 4), np.uint8),
                                 np.zeros((4, 4, 3), np.float32)])
def test_resize_image_rejects_non_rgb_uint8(bad):
    with pytest.raises(ImageFormatError):
        resize_image(bad, (2, 2))


def test_check_rgb_image_accepts_rgb_and_names_the_problem():
    check_rgb_image(_image())
    with pytest.raises(ImageFormatError, match="float64"):
        check_rgb_image(np.zeros((2, 2, 3)))
    with pytest.raises(ImageFormatError, match="to_rgb"):
        check_rgb_image(np.zeros((2, 2, 4), np.uint8))
    with pytest.raises(ImageFormatError):
        check_rgb_image([[0, 0, 0]])


def test_resize_depth_is_bilinear_float32():
    depth = np.array([[1.0, 3.0]], np.float32)
    out = resize_depth(depth, (1, 4))
    assert out.dtype == np.float32 and out.shape == (1, 4)
    # Pixel-centre bilinear: edges replicate, interior interpolates monotonically.
    np.testing.assert_allclose(out[0], [1.0, 1.5, 2.5, 3.0])


def test_resize_depth_nearest_keeps_invalid_zero_and_creates_no_new_values():
    depth = np.array([[0.0, 2.0], [3.0, 0.0]], np.float32)
    out = resize_depth_nearest(depth, (4, 4))
    assert set(np.unique(out)) <= {0.0, 2.0, 3.0}
    assert out[0, 0] == 0.0 and out[3, 3] == 0.0 and out[0, 3] == 2.0
    down = resize_depth_nearest(np.kron(depth, np.ones((2, 2), np.float32)), (2, 2))
    np.testing.assert_array_equal(down, depth)


def test_resize_depth_rejects_non_2d():
    with pytest.raises(ImageFormatError):
        resize_depth(np.zeros((2, 2, 1), np.float32), (4, 4))


def test_to_rgb_rgb8_returns_input_without_copy():
    img = _image()
    assert to_rgb(img, "rgb8") is img


@pytest.mark.parametrize("h,w", [(1, 1), (3, 5), (480, 640)])
def test_to_rgb_converts_each_encoding_to_the_same_rgb(h, w):
    rgb = _image(h, w, seed=h)
    bgr = np.ascontiguousarray(rgb[:, :, ::-1])
    alpha = np.full((h, w, 1), 7, np.uint8)
    np.testing.assert_array_equal(to_rgb(bgr, "bgr8"), rgb)
    np.testing.assert_array_equal(to_rgb(np.concatenate([rgb, alpha], 2), "rgba8"), rgb)
    np.testing.assert_array_equal(to_rgb(np.concatenate([bgr, alpha], 2), "bgra8"), rgb)


@pytest.mark.parametrize("shape", [(3, 4), (3, 4, 1)])
def test_to_rgb_mono8_replicates_the_channel(shape):
    mono = np.arange(12, dtype=np.uint8).reshape(shape)
    out = to_rgb(mono, "mono8")
    assert out.shape == (3, 4, 3)
    for c in range(3):
        np.testing.assert_array_equal(out[:, :, c], mono.reshape(3, 4))


def test_to_rgb_rejects_unknown_encoding_wrong_channels_and_dtype():
    with pytest.raises(ImageFormatError, match="yuv422"):
        to_rgb(_image(), "yuv422")
    with pytest.raises(ImageFormatError, match="4 channel"):
        to_rgb(_image(), "rgba8")
    with pytest.raises(ImageFormatError, match="uint8"):
        to_rgb(np.zeros((2, 2, 3), np.uint16), "rgb8")
    with pytest.raises(ImageFormatError):
        to_rgb(np.zeros((2, 2, 3), np.uint8), "mono8")


def test_real_nyu_frame_resizes_to_network_size():
    """A real 640x480 Kinect frame (BGR on disk) goes through to_rgb and resize_image."""
    path = NYU_SAMPLES / "basement_0001a_00000" / "rgb.jpg"
    if not path.exists():
        pytest.skip(f"{path} not present")
    bgr = cv2.imread(str(path), cv2.IMREAD_COLOR)
    rgb = to_rgb(bgr, "bgr8")
    small = resize_image(rgb, (240, 320))
    assert small.shape == (240, 320, 3)
    # Area shrink preserves the mean colour closely.
    np.testing.assert_allclose(small.mean(axis=(0, 1)), rgb.mean(axis=(0, 1)), atol=1.0)
