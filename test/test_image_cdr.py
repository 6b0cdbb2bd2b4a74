"""Images serialized by hand (image_cdr) decode, in rclpy and in rosbags, to the message rclpy
would have serialized itself."""
from __future__ import annotations

import numpy as np
import pytest

from depth_unet_ros.errors import ImageFormatError
from depth_unet_ros.image_cdr import SerializedImage
from depth_unet_ros.image_conversion import image_msg_to_array

SIZES = [(1, 1), (3, 5), (17, 31), (480, 640)]
# Every frame_id length mod 4 moves the alignment of the fields after it; one is not ASCII.
FRAME_IDS = ["", "a", "ab", "abc", "camera", "camera_optical_frame", "kamera_ä"]
ENCODINGS = {"32FC1": (np.float32, 1), "32FC32": (np.float32, 32), "16UC1": (np.uint16, 1),
             "rgb8": (np.uint8, 3), "mono8": (np.uint8, 1)}


def _pixels(shape_hw: tuple[int, int], dtype: type, channels: int) -> np.ndarray:
    rng = np.random.default_rng(shape_hw[0] * 1000 + channels)
    shape = shape_hw if channels == 1 else (*shape_hw, channels)
    if np.issubdtype(dtype, np.floating):
        return rng.normal(2.0, 1.0, shape).astype(dtype)
    return rng.integers(0, np.iinfo(dtype).max, shape, dtype=dtype, endpoint=True)


def _rosbags_decode(data: bytes):
    from depth_unet_ros.bags.reader import deserialize

    return deserialize(data, "sensor_msgs/msg/Image")


@pytest.mark.parametrize("frame_id", FRAME_IDS)
@pytest.mark.parametrize("encoding", ENCODINGS)
def test_serialized_image_decodes_to_every_field_and_pixel_for_any_frame_id(encoding, frame_id):
    """Header, size, encoding, step and pixels all read back through an independent CDR decoder."""
    dtype, channels = ENCODINGS[encoding]
    pixels = _pixels((3, 5), dtype, channels)
    msg = _rosbags_decode(SerializedImage.of(pixels, encoding, (1_700_000_000, 999_999_999),
                                             frame_id).to_bytes())
    assert (msg.header.stamp.sec, msg.header.stamp.nanosec) == (1_700_000_000, 999_999_999)
    assert msg.header.frame_id == frame_id
    assert (msg.height, msg.width, msg.encoding, msg.is_bigendian) == (3, 5, encoding, 0)
    assert msg.step == 5 * channels * np.dtype(dtype).itemsize
    np.testing.assert_array_equal(image_msg_to_array(msg), pixels)


@pytest.mark.parametrize("shape_hw", SIZES)
@pytest.mark.parametrize("frame_id", ["", "abc", "camera"])
def test_serialized_image_equals_what_rclpy_serializes(shape_hw, frame_id):
    """rclpy decodes our bytes to a message equal to the one it serializes to the same length."""
    serialization = pytest.importorskip("rclpy.serialization")
    Image = pytest.importorskip("sensor_msgs.msg").Image
    Header = pytest.importorskip("std_msgs.msg").Header
    from depth_unet_ros.image_conversion import array_to_image_msg

    depth = _pixels(shape_hw, np.float32, 1)
    header = Header(frame_id=frame_id)
    header.stamp.sec, header.stamp.nanosec = -5, 7  # a negative sec is valid ROS time
    ours = SerializedImage.of(depth, "32FC1", (-5, 7), frame_id).to_bytes()
    reference = array_to_image_msg(depth, "32FC1", header, Image)
    assert len(ours) == len(serialization.serialize_message(reference))
    assert serialization.deserialize_message(ours, Image) == reference


def test_channels_first_features_are_written_as_hwc():
    """(C, H, W) decoder features become a 32FC<C> image of H x W pixels with C values each."""
    features = _pixels((4, 6), np.float32, 8).transpose(2, 0, 1)  # (8, 4, 6)
    msg = _rosbags_decode(SerializedImage.of(features, "32FC8", (1, 2), "cam",
                                             channels_first=True).to_bytes())
    assert (msg.height, msg.width) == (4, 6)
    np.testing.assert_array_equal(image_msg_to_array(msg), features.transpose(1, 2, 0))


def test_pixels_written_in_place_are_what_the_bytes_hold():
    """Writing into ``pixels`` (as the node's depth post-processing does) needs no other copy."""
    image = SerializedImage(2, 3, "32FC1", (0, 0), "cam")
    assert image.pixels.dtype == np.dtype("<f4") and image.pixels.shape == (2, 3)
    image.pixels[...] = np.arange(6, dtype=np.float32).reshape(2, 3)
    image.pixels[1, 2] = np.nan
    out = image_msg_to_array(_rosbags_decode(image.to_bytes()))
    np.testing.assert_array_equal(out[0], [0, 1, 2])
    assert out[1, 1] == 4 and np.isnan(out[1, 2])


def test_wrong_channel_count_or_empty_image_is_refused():
    """A (H, W) array is not 32FC3, and an image without pixels is not serialized."""
    with pytest.raises(ImageFormatError, match="3 channel"):
        SerializedImage.of(np.zeros((2, 2), np.float32), "32FC3", (0, 0), "")
    with pytest.raises(ImageFormatError, match="empty"):
        SerializedImage(0, 4, "32FC1", (0, 0), "")
    with pytest.raises(ImageFormatError, match="unknown image encoding"):
        SerializedImage(2, 2, "32FC", (0, 0), "")
