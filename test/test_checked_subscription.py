"""checked_subscription: serialized bytes become a message or a MalformedMessageError that says
why, never a silent drop inside the middleware."""
from __future__ import annotations

import pytest

pytest.importorskip("rclpy", reason="rclpy not installed (pip install .[ros])")

from rclpy.serialization import serialize_message  # noqa: E402
from sensor_msgs.msg import CameraInfo, Image  # noqa: E402

from depth_unet_ros.checked_subscription import checked_callback, deserialize_checked  # noqa: E402
from depth_unet_ros.errors import MalformedMessageError  # noqa: E402


def _image() -> Image:
    msg = Image(height=4, width=5, encoding="rgb8", step=15, data=bytes(range(60)))
    msg.header.frame_id = "camera_optical"
    return msg


def test_a_serialized_message_comes_back_equal():
    assert deserialize_checked(serialize_message(_image()), Image) == _image()


@pytest.mark.parametrize("data, match", [
    (b"", "0-byte payload has no CDR header"),
    (b"\x00\x01", "2-byte payload has no CDR header"),
    (b"\x00\x01\x00\x00\x05", "5 bytes do not deserialize as Image"),
])
def test_empty_short_or_truncated_bytes_are_malformed(data, match):
    with pytest.raises(MalformedMessageError, match=match):
        deserialize_checked(data, Image)


def test_a_message_cut_short_is_malformed():
    data = serialize_message(_image())
    with pytest.raises(MalformedMessageError, match="do not deserialize as Image"):
        deserialize_checked(data[: len(data) // 2], Image)


def test_the_callback_gets_messages_and_on_malformed_gets_the_rest():
    got, bad = [], []
    deliver = checked_callback(CameraInfo, got.append, bad.append)
    info = CameraInfo(width=640, height=480)
    deliver(serialize_message(info))
    deliver(b"\x00\x01\x00\x00")
    assert [(m.width, m.height) for m in got] == [(640, 480)]
    assert len(bad) == 1 and isinstance(bad[0], MalformedMessageError)
