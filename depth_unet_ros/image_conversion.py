"""sensor_msgs Image / CompressedImage <-> numpy, without rclpy or cv_bridge.

Works on any object with the Image fields (height, width, encoding, is_bigendian, step, data),
so it is unit-tested without a ROS graph and runs where cv_bridge is missing (pip installs).
Incoming images become views on the message buffer (no copy) unless the byte order differs
from the host's; outgoing arrays are copied once into an ``array.array('B')``, the one value
the generated ``data`` setter accepts without a per-byte type check (Humble checks every byte
of a ``bytes`` value, about 60 ms for a 640x480 float image).
"""
from __future__ import annotations

import array
import re
import sys
from typing import Any, Callable

import cv2
import numpy as np

from depth_unet_ros.errors import ImageFormatError

# Named encodings from sensor_msgs/image_encodings.hpp -> (numpy dtype, channels)
_NAMED: dict[str, tuple[str, int]] = {
    "rgb8": ("u1", 3), "bgr8": ("u1", 3), "rgba8": ("u1", 4), "bgra8": ("u1", 4),
    "mono8": ("u1", 1), "mono16": ("u2", 1),
    "rgb16": ("u2", 3), "bgr16": ("u2", 3), "rgba16": ("u2", 4), "bgra16": ("u2", 4),
}
# Generic OpenCV-style encodings: <bits><U|S|F>C<channels>, e.g. 16UC1, 32FC1, 32FC32
_GENERIC = re.compile(r"^(8|16|32|64)([USF])C(\d+)$")
_GENERIC_DTYPES = {("8", "U"): "u1", ("8", "S"): "i1", ("16", "U"): "u2", ("16", "S"): "i2",
                   ("32", "S"): "i4", ("32", "F"): "f4", ("64", "F"): "f8"}
_HOST_BIG_ENDIAN = sys.byteorder == "big"


class MalformedImageError(ImageFormatError):
    """A message whose fields contradict each other or its data (a sender bug, not ours)."""


def encoding_layout(encoding: str) -> tuple[np.dtype, int]:
    """(native dtype, channels) of a ROS image ``encoding``; MalformedImageError if unknown."""
    if encoding in _NAMED:
        code, channels = _NAMED[encoding]
        return np.dtype(code), channels
    match = _GENERIC.match(encoding)
    if match and (match.group(1), match.group(2)) in _GENERIC_DTYPES and 0 < int(match.group(3)) <= 512:
        return np.dtype(_GENERIC_DTYPES[(match.group(1), match.group(2))]), int(match.group(3))
    raise MalformedImageError(
        f"unknown image encoding {encoding!r}; expected one of {', '.join(_NAMED)} or "
        "<bits><U|S|F>C<n> such as 16UC1, 32FC1 (fix the publisher's encoding field)")


def image_msg_to_array(msg: Any) -> np.ndarray:
    """A sensor_msgs/Image as (H, W) or (H, W, C) in native byte order.

    Honours ``step`` (rows padded beyond width x bytes per pixel) and ``is_bigendian``. The
    result is a view on ``msg.data`` (no copy) unless a byte swap is needed.
    """
    height, width, step = int(msg.height), int(msg.width), int(msg.step)
    dtype, channels = encoding_layout(msg.encoding)
    pixel_bytes = dtype.itemsize * channels
    if height <= 0 or width <= 0:
        raise MalformedImageError(f"image has zero size {width}x{height} (width x height)")
    if step < width * pixel_bytes:
        raise MalformedImageError(
            f"step {step} is below width x bytes per pixel = {width} x {pixel_bytes} for "
            f"{msg.encoding}; the publisher must set step to the row length in bytes")
    size = len(msg.data)
    if size < step * height:
        raise MalformedImageError(
            f"image data has {size} bytes, step x height = {step} x {height} needs {step * height}")
    big = bool(msg.is_bigendian) and dtype.itemsize > 1
    wire_dtype = dtype.newbyteorder(">" if big else "<") if dtype.itemsize > 1 else dtype
    shape = (height, width, channels)
    strides = (step, pixel_bytes, dtype.itemsize)
    out = np.ndarray(shape=shape, dtype=wire_dtype, buffer=np.frombuffer(msg.data, np.uint8),
                     strides=strides)
    if not wire_dtype.isnative:
        out = out.astype(dtype)  # one copy, to host order
    return out[:, :, 0] if channels == 1 else out


def float_encoding(channels: int) -> str:
    """The ``32FC<C>`` encoding of a float32 image with ``channels`` channels."""
    return f"32FC{int(channels)}"


def as_hwc(image: np.ndarray, encoding: str, channels_first: bool = True) -> np.ndarray:
    """``image`` as (H, W) or (H, W, C) (a view), checked against the channels of ``encoding``;
    a 3-D array is (C, H, W) unless ``channels_first=False``."""
    channels = encoding_layout(encoding)[1]
    image = np.asarray(image)
    if image.ndim == 3 and channels_first:
        image = image.transpose(1, 2, 0)  # (C, H, W) -> (H, W, C)
    have = 1 if image.ndim == 2 else (image.shape[2] if image.ndim == 3 else -1)
    if have != channels:
        raise ImageFormatError(f"encoding {encoding!r} has {channels} channel(s), the array has "
                               f"shape {image.shape} (channels_first={channels_first})")
    return image


def array_to_image_msg(image: np.ndarray, encoding: str, header: Any,
                       msg_cls: Callable[[], Any], channels_first: bool = True) -> Any:
    """A message of ``msg_cls`` (sensor_msgs.msg.Image or a stand-in) holding ``image``.

    ``image`` is (H, W) for one channel; a 3-D array is (C, H, W) (the network's layout, e.g.
    decoder features for ``32FC<C>``) unless ``channels_first=False`` says (H, W, C). Values
    are cast to the encoding's dtype and written in host byte order; rows are unpadded.
    """
    dtype, channels = encoding_layout(encoding)
    image = as_hwc(image, encoding, channels_first)
    if image.shape[0] == 0 or image.shape[1] == 0:
        raise ImageFormatError(f"cannot publish an empty image of shape {image.shape}")
    pixels = np.ascontiguousarray(image, dtype=dtype)  # the one copy (transpose + cast together)
    msg = msg_cls()
    msg.header = header
    msg.height, msg.width = int(pixels.shape[0]), int(pixels.shape[1])
    msg.encoding = encoding
    msg.is_bigendian = int(_HOST_BIG_ENDIAN and dtype.itemsize > 1)
    msg.step = int(msg.width * dtype.itemsize * channels)
    msg.data = _byte_array(pixels)
    return msg


def _byte_array(pixels: np.ndarray) -> array.array:
    data = array.array("B")
    data.frombytes(memoryview(pixels).cast("B"))  # C-contiguous, so a flat byte view exists
    return data


def compressed_msg_to_array(msg: Any) -> tuple[np.ndarray, str]:
    """A sensor_msgs/CompressedImage (jpeg, png) -> (image, encoding) as OpenCV decodes it.

    Colour comes back as ``bgr8``/``bgra8`` (OpenCV's order), grey as ``mono8``, 16-bit PNG as
    ``mono16``/``bgr16``; pass the pair to ``preprocessing.to_rgb`` for 8-bit images.
    """
    raw = np.frombuffer(msg.data, np.uint8)
    if raw.size == 0:
        raise MalformedImageError(f"compressed image (format {msg.format!r}) has no data")
    image = cv2.imdecode(raw, cv2.IMREAD_UNCHANGED)
    if image is None:
        raise MalformedImageError(
            f"could not decode a compressed image of {raw.size} bytes (format {msg.format!r}); "
            "only jpeg and png are supported (image_transport's compressed plugin)")
    channels = 1 if image.ndim == 2 else image.shape[2]
    names = {(np.uint8, 1): "mono8", (np.uint8, 3): "bgr8", (np.uint8, 4): "bgra8",
             (np.uint16, 1): "mono16", (np.uint16, 3): "bgr16", (np.uint16, 4): "bgra16"}
    encoding = names.get((image.dtype.type, channels))
    if encoding is None:
        raise MalformedImageError(f"decoded compressed image has unsupported dtype {image.dtype} "
                                  f"with {channels} channel(s)")
    return image, encoding


def array_to_compressed_msg(image_bgr: np.ndarray, fmt: str, header: Any,
                            msg_cls: Callable[[], Any]) -> Any:
    """Encode an OpenCV-order image (BGR, BGRA or grey) as a CompressedImage ("jpeg" or "png")."""
    if fmt not in ("jpeg", "png"):
        raise ImageFormatError(f"compressed format must be 'jpeg' or 'png', got {fmt!r}")
    ok, encoded = cv2.imencode(".jpg" if fmt == "jpeg" else ".png", image_bgr)
    if not ok:
        raise ImageFormatError(f"OpenCV could not encode an image of shape {image_bgr.shape} as {fmt}")
    msg = msg_cls()
    msg.header = header
    msg.format = fmt
    msg.data = _byte_array(np.ascontiguousarray(encoded))
    return msg
