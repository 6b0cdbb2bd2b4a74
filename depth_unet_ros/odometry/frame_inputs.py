"""The depth node's three messages of one frame -> the tracker's numpy inputs, checked.

Works on any objects with the sensor_msgs fields (no rclpy), so it is unit-tested without a
graph. Depth must be ``32FC1`` metres (REP 118, NaN invalid); features ``32FC<C>`` (HWC, at the
network size / stride); the depth camera_info must describe the depth image's size, since the
tracker projects depth pixels through its K. The camera's own image, when the node pairs it
too, is any 8-bit encoding the depth node takes. A contradiction raises MalformedFrameError (an
ImageFormatError), which the node counts and drops.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

import numpy as np

from depth_unet_ros.bags.clock import stamp_ns_of
from depth_unet_ros.errors import ImageFormatError
from depth_unet_ros.image_conversion import encoding_layout, image_msg_to_array
from depth_unet_ros.preprocessing import to_rgb


class MalformedFrameError(ImageFormatError):
    """A depth, features or camera_info message the tracker cannot use as it is."""


@dataclass(frozen=True)
class FrameInputs:
    """What ``FeatureTracker.track`` takes for one frame."""

    stamp_ns: int
    frame_id: str
    depth_m: np.ndarray  # (H, W) float32, NaN invalid
    features: np.ndarray  # (h, w, C) float32, HWC as the message's bytes
    k: np.ndarray  # (3, 3) float64 at the depth image's size
    image_rgb: np.ndarray | None = None  # (H', W', 3) uint8, the camera's image, when paired


def depth_of(msg: Any) -> np.ndarray:
    """A ``32FC1`` depth Image -> (H, W) float32 metres (a view unless byte-swapped)."""
    if msg.encoding != "32FC1":
        raise MalformedFrameError(f"depth image has encoding {msg.encoding!r}; expected 32FC1 "
                                  "metres (REP 118), as depth_node publishes")
    return image_msg_to_array(msg)


def features_of(msg: Any) -> np.ndarray:
    """A ``32FC<C>`` features Image -> (h, w, C) float32 (HWC; a view unless byte-swapped)."""
    encoding = str(msg.encoding)
    try:
        dtype, channels = encoding_layout(encoding)
    except ImageFormatError as exc:
        raise MalformedFrameError(f"features: {exc}") from exc
    if dtype != np.float32 or not encoding.startswith("32FC"):
        raise MalformedFrameError(f"features have encoding {encoding!r}; expected 32FC<C> (HWC "
                                  "float32 decoder features, as depth_node publishes)")
    features = image_msg_to_array(msg)
    return features[:, :, None] if channels == 1 else features


def intrinsics_of(msg: Any, depth_hw: tuple[int, int]) -> np.ndarray:
    """The (3, 3) K of a depth camera_info, which must be at the depth image's size ``(H, W)``
    with finite, positive focal lengths."""
    if (int(msg.height), int(msg.width)) != tuple(depth_hw):
        raise MalformedFrameError(
            f"depth camera_info is for {msg.width}x{msg.height} but the depth image is "
            f"{depth_hw[1]}x{depth_hw[0]}; its K must be scaled to the depth size")
    k = np.asarray(msg.k, dtype=np.float64)
    if k.size != 9 or not np.all(np.isfinite(k)):
        raise MalformedFrameError(f"depth camera_info K must be 9 finite values, got {list(k)}")
    k = k.reshape(3, 3)
    if not (k[0, 0] > 0 and k[1, 1] > 0):
        raise MalformedFrameError(f"depth camera_info has focal lengths fx={k[0, 0]}, "
                                  f"fy={k[1, 1]}; both must be positive")
    return k


def image_rgb_of(msg: Any) -> np.ndarray:
    """The camera's Image (rgb8, bgr8, rgba8, bgra8, mono8) -> (H, W, 3) uint8 RGB."""
    return _named("camera image", lambda m: np.ascontiguousarray(
        to_rgb(image_msg_to_array(m), str(m.encoding))), msg)


def _named(what: str, convert: Callable[[Any], np.ndarray], msg: Any) -> np.ndarray:
    """``convert(msg)``; an ImageFormatError from the conversion comes out as a
    MalformedFrameError that names which message it was (ours pass as they are)."""
    try:
        return convert(msg)
    except MalformedFrameError:
        raise
    except ImageFormatError as exc:
        raise MalformedFrameError(f"{what}: {exc}") from exc


def frame_inputs(depth_msg: Any, features_msg: Any, info_msg: Any,
                 image_msg: Any = None) -> FrameInputs:
    """The messages of one stamp (as paired by ExactPairing) -> FrameInputs; ``image_msg``
    (the camera's image of that stamp) is optional."""
    depth = _named("depth image", depth_of, depth_msg)
    features = _named("features", features_of, features_msg)
    image_rgb = None if image_msg is None else image_rgb_of(image_msg)
    return FrameInputs(stamp_ns_of(depth_msg.header), str(depth_msg.header.frame_id), depth,
                       features, intrinsics_of(info_msg, depth.shape[:2]), image_rgb)
