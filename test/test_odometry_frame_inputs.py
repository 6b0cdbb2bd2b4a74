"""odometry.frame_inputs: the depth node's depth, features and camera_info become the tracker's
arrays exactly (features HWC as the bytes), and any contradiction is a MalformedFrameError."""
from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest

from depth_unet_ros.errors import ImageFormatError
from depth_unet_ros.image_conversion import array_to_image_msg
from depth_unet_ros.odometry.frame_inputs import (MalformedFrameError, features_of, frame_inputs,
                                                  intrinsics_of)


def _header(stamp_ns: int = 1_700_000_000_123_456_789, frame_id: str = "cam_optical"):
    sec, nanosec = divmod(stamp_ns, 1_000_000_000)
    return SimpleNamespace(stamp=SimpleNamespace(sec=sec, nanosec=nanosec), frame_id=frame_id)


def _image(array: np.ndarray, encoding: str, channels_first: bool = False):
    return array_to_image_msg(array, encoding, _header(), SimpleNamespace, channels_first)


def _info(width: int, height: int, k=(100.0, 0, 31.5, 0, 100.0, 23.5, 0, 0, 1)):
    return SimpleNamespace(width=width, height=height, k=list(k), header=_header())


@pytest.mark.parametrize("channels", [1, 3, 8, 32])
def test_features_round_trip_from_the_networks_chw_to_hwc(channels):
    """The node publishes (C, h, w) as 32FC<C> HWC: decoding gives (h, w, C) with every value."""
    chw = np.random.default_rng(channels).normal(size=(channels, 12, 16)).astype(np.float32)
    msg = array_to_image_msg(chw, f"32FC{channels}", _header(), SimpleNamespace, channels_first=True)
    features = features_of(msg)
    assert features.shape == (12, 16, channels) and features.dtype == np.float32
    np.testing.assert_array_equal(features, chw.transpose(1, 2, 0))


def test_frame_inputs_carry_stamp_frame_depth_features_and_k():
    depth = np.full((48, 64), 2.0, np.float32)
    depth[0, 0] = np.nan
    features = np.ones((12, 16, 8), np.float32)
    inputs = frame_inputs(_image(depth, "32FC1"), _image(features, "32FC8"), _info(64, 48))
    assert inputs.stamp_ns == 1_700_000_000_123_456_789 and inputs.frame_id == "cam_optical"
    np.testing.assert_array_equal(inputs.depth_m, depth)
    assert inputs.features.shape == (12, 16, 8)
    np.testing.assert_array_equal(inputs.k, [[100, 0, 31.5], [0, 100, 23.5], [0, 0, 1]])


def test_single_channel_features_still_have_a_channel_axis():
    """32FC1 features are (h, w, 1), the tracker's HWC, not (h, w)."""
    assert features_of(_image(np.zeros((4, 4), np.float32), "32FC1")).shape == (4, 4, 1)


@pytest.mark.parametrize("encoding, array", [
    ("mono8", np.zeros((4, 4), np.uint8)),
    ("16UC3", np.zeros((4, 4, 3), np.uint16)),
    ("64FC2", np.zeros((4, 4, 2), np.float64)),
])
def test_features_that_are_not_float32_are_refused(encoding, array):
    with pytest.raises(MalformedFrameError, match="32FC<C>"):
        features_of(_image(array, encoding))


def test_truncated_or_mislabelled_messages_are_image_format_errors():
    """Too few bytes, an unknown encoding, a 16UC1 depth: refused, never misread."""
    features = _image(np.zeros((12, 16, 8), np.float32), "32FC8")
    features.data = features.data[:100]
    with pytest.raises(ImageFormatError):
        features_of(features)
    bogus = _image(np.zeros((12, 16, 8), np.float32), "32FC8")
    bogus.encoding = "32FCx"
    with pytest.raises(MalformedFrameError):
        features_of(bogus)
    depth_mm = _image(np.zeros((48, 64), np.uint16), "16UC1")
    with pytest.raises(MalformedFrameError, match="32FC1"):
        frame_inputs(depth_mm, _image(np.zeros((12, 16, 8), np.float32), "32FC8"), _info(64, 48))


def test_camera_info_must_match_the_depth_size_and_have_positive_focals():
    intrinsics_of(_info(64, 48), (48, 64))
    with pytest.raises(MalformedFrameError, match="scaled to the depth size"):
        intrinsics_of(_info(640, 480), (48, 64))
    with pytest.raises(MalformedFrameError, match="positive"):
        intrinsics_of(_info(64, 48, k=(0, 0, 0, 0, 0, 0, 0, 0, 1)), (48, 64))
    with pytest.raises(MalformedFrameError, match="finite"):
        intrinsics_of(_info(64, 48, k=(np.nan,) * 9), (48, 64))


def test_the_cameras_image_becomes_rgb_and_an_unknown_encoding_is_malformed():
    """With use_image the camera's frame joins the set: bgr8 is turned to RGB, mono8 to three
    equal channels, and a 16-bit image is refused as a MalformedFrameError naming the image."""
    from depth_unet_ros.odometry.frame_inputs import image_rgb_of

    bgr = np.zeros((4, 6, 3), np.uint8)
    bgr[..., 0] = 255  # blue
    np.testing.assert_array_equal(image_rgb_of(_image(bgr, "bgr8"))[0, 0], [0, 0, 255])
    grey = np.full((4, 6), 7, np.uint8)
    assert image_rgb_of(_image(grey, "mono8")).shape == (4, 6, 3)
    with pytest.raises(MalformedFrameError, match="camera image"):
        image_rgb_of(_image(np.zeros((4, 6), np.uint16), "mono16"))
    depth = np.full((48, 64), 2.0, np.float32)
    inputs = frame_inputs(_image(depth, "32FC1"), _image(np.ones((12, 16, 8), np.float32), "32FC8"),
                          _info(64, 48), _image(bgr, "bgr8"))
    assert inputs.image_rgb.shape == (4, 6, 3)
