"""sensor_msgs/Image written straight into its serialized (CDR) form, without rclpy.

The node's outputs are megabyte float images. Built as a Python message they are copied three
times before DDS sees them (into an ``array.array``, into the C message, into the CDR buffer);
``rclpy`` publishes a ``bytes`` value as an already serialized message (``publish_raw``, since
Humble), so the node writes the pixels once into a CDR buffer and copies that once into bytes.

The layout is the standard ROS 2 one (XCDR1, little endian, as rmw_fastrtps, rmw_cyclonedds
and rosbag2 write it): a 4-byte encapsulation header, then the fields in order, each aligned to
its own size counted from the end of that header.
"""
from __future__ import annotations

import struct

import numpy as np

from depth_unet_ros.errors import ImageFormatError
from depth_unet_ros.image_conversion import as_hwc, encoding_layout

CDR_LE_HEADER = b"\x00\x01\x00\x00"  # encapsulation kind CDR_LE, options 0
_UINT32 = struct.Struct("<I")
_STAMP = struct.Struct("<iI")  # builtin_interfaces/Time: int32 sec, uint32 nanosec


def _string(text: str) -> bytes:
    """A CDR string: uint32 length counting the terminating NUL, the UTF-8 bytes, the NUL."""
    raw = text.encode("utf-8")
    return _UINT32.pack(len(raw) + 1) + raw + b"\x00"


def _pad4(body: bytearray) -> None:
    body.extend(b"\x00" * (-len(body) % 4))


class SerializedImage:
    """One sensor_msgs/Image in CDR: write the pixels into ``pixels``, publish ``to_bytes()``.

    ``pixels`` is a (H, W) or (H, W, C) view into the message buffer, little-endian in the
    encoding's dtype (so ``is_bigendian`` is 0 on every host), rows unpadded.
    """

    def __init__(self, height: int, width: int, encoding: str, stamp: tuple[int, int],
                 frame_id: str):
        dtype, channels = encoding_layout(encoding)
        if height <= 0 or width <= 0:
            raise ImageFormatError(f"cannot serialize an empty image of {width}x{height} pixels")
        step = width * channels * dtype.itemsize
        body = bytearray(_STAMP.pack(*stamp))
        body += _string(frame_id)
        _pad4(body)
        body += _UINT32.pack(height) + _UINT32.pack(width) + _string(encoding)
        body += b"\x00"  # is_bigendian
        _pad4(body)
        body += _UINT32.pack(step) + _UINT32.pack(step * height)  # step, data length
        prefix = CDR_LE_HEADER + bytes(body)
        self._buffer = np.empty(len(prefix) + step * height, dtype=np.uint8)
        self._buffer[:len(prefix)] = np.frombuffer(prefix, dtype=np.uint8)
        shape = (height, width) if channels == 1 else (height, width, channels)
        self.pixels: np.ndarray = self._buffer[len(prefix):].view(dtype.newbyteorder("<")).reshape(shape)

    @classmethod
    def of(cls, image: np.ndarray, encoding: str, stamp: tuple[int, int], frame_id: str,
           channels_first: bool = False) -> "SerializedImage":
        """The message holding ``image`` ((H, W), or (H, W, C); (C, H, W) with
        ``channels_first``), cast to the encoding's dtype in the one copy."""
        image = as_hwc(image, encoding, channels_first)
        out = cls(image.shape[0], image.shape[1], encoding, stamp, frame_id)
        np.copyto(out.pixels, image.reshape(out.pixels.shape), casting="same_kind")
        return out

    def to_bytes(self) -> bytes:
        """The serialized message, for ``Publisher.publish``."""
        return self._buffer.tobytes()
