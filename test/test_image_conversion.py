"""Image message <-> numpy conversion, on real sensor_msgs messages (no ROS graph needed)."""
from __future__ import annotations

import array
import sys

import numpy as np
import pytest

from depth_unet_ros.errors import ImageFormatError
from depth_unet_ros.image_conversion import (MalformedImageError, array_to_compressed_msg,
                                             array_to_image_msg, compressed_msg_to_array,
                                             encoding_layout, image_msg_to_array)

msg = pytest.importorskip("sensor_msgs.msg", reason="sensor_msgs (ROS 2 messages) not installed")
Image, CompressedImage = msg.Image, msg.CompressedImage
Header = pytest.importorskip("std_msgs.msg").Header

SIZES = [(1, 1), (1, 7), (5, 1), (3, 5), (17, 31), (120, 160), (480, 640)]
ENCODINGS = {"rgb8": (np.uint8, 3), "bgr8": (np.uint8, 3), "rgba8": (np.uint8, 4),
             "bgra8": (np.uint8, 4), "mono8": (np.uint8, 1), "mono16": (np.uint16, 1),
             "16UC1": (np.uint16, 1), "32FC1": (np.float32, 1)}


def _pixels(shape_hw: tuple[int, int], dtype: type, channels: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    shape = shape_hw if channels == 1 else (*shape_hw, channels)
    if np.issubdtype(dtype, np.floating):
        return rng.normal(2.0, 1.0, shape).astype(dtype)
    return rng.integers(0, np.iinfo(dtype).max, shape, dtype=dtype, endpoint=True)


def _raw_msg(pixels: np.ndarray, encoding: str, pad: int = 0, big_endian: bool = False,
             as_bytes: bool = False) -> Image:
    """An Image built by hand (as a camera driver would), rows padded by ``pad`` bytes."""
    h, w = pixels.shape[:2]
    wire = pixels.astype(pixels.dtype.newbyteorder(">" if big_endian else "<"))
    rows = np.ascontiguousarray(wire).reshape(h, -1).view(np.uint8)
    padded = np.full((h, rows.shape[1] + pad), 0xAB, np.uint8)
    padded[:, :rows.shape[1]] = rows
    image = Image(height=h, width=w, encoding=encoding, is_bigendian=int(big_endian),
                  step=padded.shape[1])
    image.data = padded.tobytes() if as_bytes else array.array("B", padded.tobytes())
    return image


@pytest.mark.parametrize("encoding", ENCODINGS)
@pytest.mark.parametrize("shape_hw", SIZES)
@pytest.mark.parametrize("pad", [0, 3, 64])
def test_image_msg_to_array_recovers_pixels_for_every_size_encoding_and_row_padding(encoding, shape_hw, pad):
    """Every supported encoding reads back exactly, whatever the size and step padding."""
    dtype, channels = ENCODINGS[encoding]
    pixels = _pixels(shape_hw, dtype, channels)
    out = image_msg_to_array(_raw_msg(pixels, encoding, pad=pad))
    assert out.dtype == dtype and out.shape == pixels.shape
    np.testing.assert_array_equal(out, pixels)


@pytest.mark.parametrize("encoding", ["mono16", "16UC1", "32FC1", "32FC3"])
@pytest.mark.parametrize("pad", [0, 4])
def test_big_endian_data_is_byteswapped_to_host_order(encoding, pad):
    """is_bigendian=1 data means the same values as little-endian data (multi-byte types)."""
    dtype, channels = encoding_layout(encoding)
    pixels = _pixels((7, 9), dtype.type, channels, seed=1)
    out = image_msg_to_array(_raw_msg(pixels, encoding, pad=pad, big_endian=True))
    assert out.dtype.isnative
    np.testing.assert_array_equal(out, pixels)


def test_is_bigendian_is_ignored_for_one_byte_types():
    """Byte order cannot change 8-bit data, so a big-endian flag on rgb8 reads the same."""
    pixels = _pixels((4, 6), np.uint8, 3)
    np.testing.assert_array_equal(image_msg_to_array(_raw_msg(pixels, "rgb8", big_endian=True)), pixels)


def test_conversion_is_a_view_on_the_message_buffer_without_copy():
    """Host-order data is not copied: the array shares memory with msg.data (padded or not)."""
    for pad in (0, 8):
        image = _raw_msg(_pixels((6, 10), np.uint8, 3), "rgb8", pad=pad)
        out = image_msg_to_array(image)
        assert np.shares_memory(out, np.frombuffer(image.data, np.uint8))


def test_bytes_data_works_like_array_data():
    """``data`` may be bytes (user-built messages) or array.array (what rclpy delivers)."""
    pixels = _pixels((5, 4), np.float32, 1)
    np.testing.assert_array_equal(image_msg_to_array(_raw_msg(pixels, "32FC1", as_bytes=True)), pixels)


@pytest.mark.parametrize("shape_hw", SIZES)
def test_depth_round_trip_32fc1_including_nan(shape_hw):
    """(H, W) float32 depth -> 32FC1 message -> the same array, NaN where it was NaN."""
    depth = _pixels(shape_hw, np.float32, 1)
    depth.flat[::3] = np.nan
    header = Header(frame_id="cam")
    header.stamp.sec, header.stamp.nanosec = 12, 345
    out_msg = array_to_image_msg(depth, "32FC1", header, Image)
    assert (out_msg.encoding, out_msg.height, out_msg.width) == ("32FC1", *shape_hw)
    assert out_msg.step == shape_hw[1] * 4 and out_msg.is_bigendian == int(sys.byteorder == "big")
    assert out_msg.header is header
    np.testing.assert_array_equal(image_msg_to_array(out_msg), depth)


@pytest.mark.parametrize("channels", [1, 2, 3, 4, 8, 16, 32, 64])
@pytest.mark.parametrize("shape_hw", [(1, 1), (3, 5), (30, 40), (60, 80)])
def test_features_chw_round_trip_through_32fc_c_in_hwc_order(channels, shape_hw):
    """(C, H, W) features publish as 32FC<C> with HWC pixels, and read back as (H, W, C)."""
    features = _pixels((channels, *shape_hw), np.float32, 1)
    out_msg = array_to_image_msg(features, f"32FC{channels}", Header(), Image)
    assert out_msg.encoding == f"32FC{channels}" and out_msg.step == shape_hw[1] * 4 * channels
    back = image_msg_to_array(out_msg)
    expected = features.transpose(1, 2, 0) if channels > 1 else features[0]
    np.testing.assert_array_equal(back, expected)
    # The first pixel's C values come first on the wire (interleaved, not planar).
    first = np.frombuffer(out_msg.data, np.float32, count=channels)
    np.testing.assert_array_equal(first, features[:, 0, 0])


@pytest.mark.parametrize("encoding", ["rgb8", "bgra8", "mono16"])
def test_channels_last_arrays_round_trip(encoding):
    """channels_first=False takes (H, W, C) images as cameras produce them."""
    dtype, channels = encoding_layout(encoding)
    pixels = _pixels((9, 11), dtype.type, channels)
    out_msg = array_to_image_msg(pixels, encoding, Header(), Image, channels_first=False)
    np.testing.assert_array_equal(image_msg_to_array(out_msg), pixels)


def _checked_image() -> Image:
    try:
        return Image(check_fields=True)  # Jazzy and newer: type-check every field, as Humble always does
    except (AssertionError, TypeError):
        return Image()


def test_outgoing_data_is_an_array_of_bytes_so_the_setter_skips_per_byte_checks():
    """msg.data is array.array('B'), the setter's fast path even with field checks on."""
    out_msg = array_to_image_msg(np.zeros((480, 640), np.float32), "32FC1", Header(), _checked_image)
    assert isinstance(out_msg.data, array.array) and out_msg.data.typecode == "B"
    assert len(out_msg.data) == 480 * 640 * 4


def test_array_to_image_msg_rejects_channel_mismatch_and_empty_arrays():
    """The encoding's channel count must match the array; empty images are refused."""
    with pytest.raises(ImageFormatError, match="channel"):
        array_to_image_msg(np.zeros((3, 4, 5), np.float32), "32FC4", Header(), Image)
    with pytest.raises(ImageFormatError, match="empty"):
        array_to_image_msg(np.zeros((0, 4), np.float32), "32FC1", Header(), Image)


def _valid_rgb_msg() -> Image:
    return _raw_msg(_pixels((4, 5), np.uint8, 3), "rgb8")


@pytest.mark.parametrize("breakage, match", [
    (lambda m: setattr(m, "data", m.data[:-1]), "bytes"),
    (lambda m: setattr(m, "step", m.width * 3 - 1), "step"),
    (lambda m: setattr(m, "width", 0), "zero size"),
    (lambda m: setattr(m, "height", 0), "zero size"),
    (lambda m: setattr(m, "encoding", "yuv422_weird"), "unknown image encoding"),
    (lambda m: setattr(m, "encoding", ""), "unknown image encoding"),
    (lambda m: setattr(m, "encoding", "32FC0"), "unknown image encoding"),
])
def test_malformed_messages_raise_malformed_image_error(breakage, match):
    """Short data, a too-small step, zero size and unknown encodings are MalformedImageError."""
    image = _valid_rgb_msg()
    breakage(image)
    with pytest.raises(MalformedImageError, match=match):
        image_msg_to_array(image)
    assert issubclass(MalformedImageError, ImageFormatError)


def test_extra_trailing_data_beyond_step_times_height_is_ignored():
    """A buffer longer than step x height (a sloppy driver) still reads the right pixels."""
    pixels = _pixels((4, 5), np.uint8, 3)
    image = _raw_msg(pixels, "rgb8")
    image.data = array.array("B", bytes(image.data) + b"\x00" * 10)
    np.testing.assert_array_equal(image_msg_to_array(image), pixels)


@pytest.mark.parametrize("fmt", ["png", "jpeg"])
@pytest.mark.parametrize("channels", [1, 3])
def test_compressed_round_trip(fmt, channels):
    """jpeg/png CompressedImage decodes to OpenCV order with the matching encoding name."""
    shape = (24, 32) if channels == 1 else (24, 32, 3)
    pixels = np.zeros(shape, np.uint8)
    pixels[6:18, 8:24] = 200  # a flat block, so jpeg is near exact
    out_msg = array_to_compressed_msg(pixels, fmt, Header(), CompressedImage)
    assert out_msg.format == fmt
    image, encoding = compressed_msg_to_array(out_msg)
    assert encoding == ("mono8" if channels == 1 else "bgr8")
    assert image.shape == pixels.shape
    tolerance = 0 if fmt == "png" else 40
    assert np.abs(image.astype(int) - pixels.astype(int)).max() <= tolerance


def test_compressed_16bit_png_decodes_as_mono16():
    """16-bit PNG (depth cameras) comes back as uint16 mono16, values exact."""
    pixels = _pixels((10, 12), np.uint16, 1)
    image, encoding = compressed_msg_to_array(array_to_compressed_msg(pixels, "png", Header(), CompressedImage))
    assert encoding == "mono16"
    np.testing.assert_array_equal(image, pixels)


@pytest.mark.parametrize("data", [b"", b"not an image at all"])
def test_undecodable_compressed_data_is_malformed(data):
    """Empty or garbage CompressedImage data raises MalformedImageError, not a cv2 crash."""
    bad = CompressedImage(format="jpeg")
    bad.data = array.array("B", data)
    with pytest.raises(MalformedImageError):
        compressed_msg_to_array(bad)
