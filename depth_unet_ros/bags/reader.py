"""Read rosbag2 recordings (MCAP or sqlite3, written by ``ros2 bag record``, this package or any
other tool) with the pure-Python ``rosbags``; no rclpy.

Replay needs the messages as recorded (serialized CDR, published without decoding, so nothing
is lost or re-encoded); evaluation needs the ground-truth depth and, for a few frames, the
image, keyed by the exact header stamp. Every rosbags failure (a truncated file, a damaged
database, missing metadata) becomes a ``DatasetError`` that names the bag and what to do.
"""
from __future__ import annotations

import os
import struct
import sys
from contextlib import contextmanager
from functools import lru_cache
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Collection, Iterator, NamedTuple

import numpy as np

from depth_unet_ros.bags import clock
from depth_unet_ros.datasets.base import Intrinsics
from depth_unet_ros.errors import DatasetError, DepthUnetError

IMAGE_TYPE = "sensor_msgs/msg/Image"
COMPRESSED_IMAGE_TYPE = "sensor_msgs/msg/CompressedImage"  # image_transport's "compressed"
CAMERA_IMAGE_TYPES = (IMAGE_TYPE, COMPRESSED_IMAGE_TYPE)  # what a camera topic may hold
COMPRESSED_SUFFIX = "/compressed"  # image_transport's name for the compressed topic of an image
CAMERA_INFO_TYPE = "sensor_msgs/msg/CameraInfo"
IMAGE_TOPIC = "/camera/image_raw"  # the topics `depth-unet nyu-to-bag` writes
CAMERA_INFO_TOPIC = "/camera/camera_info"
GROUND_TRUTH_TOPIC = "/camera/depth/ground_truth"
_HEADER_STAMP = struct.Struct("<iI")  # std_msgs/Header.stamp (sec int32, nanosec uint32) ...
_HEADER_STAMP_BE = struct.Struct(">iI")  # ... right after the 4-byte CDR encapsulation header


class RawMessage(NamedTuple):
    """One recorded message: topic, type ("pkg/msg/Name"), bag time (ns) and CDR bytes."""

    topic: str
    msgtype: str
    time_ns: int
    data: bytes


@dataclass(frozen=True)
class TopicInfo:
    """A topic as the bag's metadata describes it."""

    name: str
    msgtype: str
    count: int
    offered_qos: Any = None  # rosbags Qos list (or the YAML string of older bags), None if absent


@lru_cache(maxsize=1)
def _typestore() -> Any:
    """Humble's message definitions: the fallback for bags without type definitions, and the
    decoder of Image and CameraInfo, which are the same in every ROS 2 distribution."""
    from rosbags.typesys import Stores, get_typestore

    return get_typestore(Stores.ROS2_HUMBLE)


def deserialize(data: bytes, msgtype: str) -> Any:
    """Decode a serialized (CDR) message of a standard type such as sensor_msgs/msg/Image."""
    return _typestore().deserialize_cdr(data, msgtype)


def frame_name(index: int, stamp_ns: int) -> str:
    """How reports name the frame at position ``index`` of a bag: index and header stamp."""
    sec, nanosec = divmod(int(stamp_ns), 1_000_000_000)
    return f"{index:05d}@{sec}.{nanosec:09d}"


def _unreadable(path: Path, exc: Exception) -> DatasetError:
    return DatasetError(f"cannot read the bag {path}: {type(exc).__name__}: {exc}. It may be "
                        "truncated or corrupt (a recording that was killed?); re-record it, or "
                        "convert it again with `depth-unet nyu-to-bag`")


@contextmanager
def open_bag(path: str | os.PathLike) -> Iterator[Any]:
    """A rosbags ``AnyReader`` on the rosbag2 folder ``path``, with errors made readable."""
    from rosbags.highlevel import AnyReader

    path = Path(path)
    if not path.exists():
        raise DatasetError(f"bag {path} does not exist; pass the rosbag2 folder (the one holding "
                           "metadata.yaml)")
    if not (path / "metadata.yaml").is_file():
        raise DatasetError(f"{path} is not a rosbag2 folder (no metadata.yaml); pass the folder "
                           "that `ros2 bag record` or `depth-unet nyu-to-bag` wrote")
    try:
        reader = AnyReader([path], default_typestore=_typestore())
        reader.open()
    except DepthUnetError:
        raise
    except Exception as exc:  # rosbags, sqlite3, zstd and YAML errors alike
        raise _unreadable(path, exc) from exc
    try:
        yield reader
    except DepthUnetError:
        raise
    except Exception as exc:  # damage found while reading messages
        if type(exc).__module__.split(".")[0] in ("rosbags", "sqlite3", "zstandard", "struct"):
            raise _unreadable(path, exc) from exc
        raise
    finally:
        try:
            reader.close()
        except ImportError:  # a reader left open until interpreter exit cannot import any more
            if not sys.is_finalizing():
                raise


def bag_topics(path: str | os.PathLike) -> dict[str, TopicInfo]:
    """Topic name -> TopicInfo for every topic in the bag."""
    with open_bag(path) as reader:
        topics: dict[str, TopicInfo] = {}
        for conn in reader.connections:
            old = topics.get(conn.topic)
            qos = getattr(conn.ext, "offered_qos_profiles", None)
            topics[conn.topic] = TopicInfo(conn.topic, conn.msgtype,
                                           conn.msgcount + (old.count if old else 0), qos)
        return topics


def require_topics(path: str | os.PathLike,
                   wanted: dict[str, tuple[str | tuple[str, ...], str]]) -> dict[str, TopicInfo]:
    """Check that the bag has each wanted topic with an accepted type; raise a DatasetError that
    lists what the bag has and the option to pass otherwise.

    ``wanted``: topic -> (message type or types, the command-line option that chooses it).
    """
    topics = bag_topics(path)
    problems = []
    for topic, (msgtypes, option) in wanted.items():
        accepted = (msgtypes,) if isinstance(msgtypes, str) else msgtypes
        found = topics.get(topic)
        if found is None:
            problems.append(f"no topic {topic} (choose another with {option})")
        elif found.msgtype not in accepted:
            problems.append(f"{topic} is {found.msgtype}, not {' or '.join(accepted)}")
        elif found.count == 0:
            problems.append(f"{topic} has no messages")
    if problems:
        have = ", ".join(f"{t.name} [{t.msgtype}, {t.count}]" for t in topics.values()) or "nothing"
        raise DatasetError(f"bag {path}: {'; '.join(problems)}. The bag has: {have}")
    return topics


def header_stamp_ns(data: bytes) -> int:
    """The header stamp (ns) of a serialized message whose first field is a std_msgs/Header
    (Image, CameraInfo, PoseStamped, ...), read without decoding the rest."""
    if len(data) < 12:
        raise DatasetError(f"a serialized message of {len(data)} bytes is too short for a header")
    layout = _HEADER_STAMP if data[1] & 1 else _HEADER_STAMP_BE  # CDR_LE / CDR_BE encapsulation
    sec, nanosec = layout.unpack_from(data, 4)
    return sec * 1_000_000_000 + nanosec


def with_header_stamp(data: bytes, stamp_ns: int) -> bytes:
    """A copy of a serialized header-first message with its stamp set to ``stamp_ns``."""
    layout = _HEADER_STAMP if data[1] & 1 else _HEADER_STAMP_BE
    out = bytearray(data)
    layout.pack_into(out, 4, *divmod(int(stamp_ns), 1_000_000_000))
    return bytes(out)


def iter_raw_messages(path: str | os.PathLike, topics: Collection[str] | None = None,
                      start_offset_ns: int = 0) -> Iterator[RawMessage]:
    """The bag's messages in recorded order, serialized as recorded; ``topics`` None = all,
    ``start_offset_ns`` skips the bag's first nanoseconds."""
    with open_bag(path) as reader:
        conns = [c for c in reader.connections if topics is None or c.topic in topics]
        start = reader.start_time + start_offset_ns if start_offset_ns > 0 else None
        if not conns:
            return
        for conn, time_ns, data in reader.messages(connections=conns, start=start):
            yield RawMessage(conn.topic, conn.msgtype, int(time_ns), bytes(data))


def iter_stamped(path: str | os.PathLike, topic: str) -> Iterator[tuple[str, int, bytes]]:
    """(topic, header stamp ns, serialized message) of a header-first topic, in recorded order."""
    for message in iter_raw_messages(path, [topic]):
        yield message.topic, header_stamp_ns(message.data), message.data


def header_stamps(path: str | os.PathLike, topics: Collection[str]) -> dict[str, list[int]]:
    """Topic -> the header stamps of its messages in recorded order (nothing is decoded)."""
    out: dict[str, list[int]] = {topic: [] for topic in topics}
    for message in iter_raw_messages(path, topics):
        out[message.topic].append(header_stamp_ns(message.data))
    return out


def decode(path: str | os.PathLike, topics: Collection[str],
           stamps: Collection[int] | None = None) -> Iterator[tuple[str, int, Any]]:
    """(topic, header stamp ns, decoded message) for ``topics``, in recorded order; with
    ``stamps``, only messages whose header stamp is one of them (others are not decoded)."""
    with open_bag(path) as reader:
        conns = [c for c in reader.connections if c.topic in topics]
        for conn, _, data in reader.messages(connections=conns):
            if stamps is not None and header_stamp_ns(data) not in stamps:
                continue
            msg = reader.deserialize(data, conn.msgtype)
            yield conn.topic, clock.stamp_ns_of(msg.header), msg


def rgb_of(msg: Any) -> np.ndarray:
    """An 8-bit colour or mono sensor_msgs/Image, or a jpeg/png CompressedImage -> its own
    (H, W, 3) uint8 RGB copy."""
    from depth_unet_ros.image_conversion import compressed_msg_to_array, image_msg_to_array
    from depth_unet_ros.preprocessing import to_rgb

    if hasattr(msg, "format"):  # CompressedImage: decoded as the node decodes it
        image, encoding = compressed_msg_to_array(msg)
        return np.array(to_rgb(image, encoding))
    return np.array(to_rgb(image_msg_to_array(msg), msg.encoding))


def depth_m_of(msg: Any) -> np.ndarray:
    """A depth sensor_msgs/Image, 32FC1 metres (REP 118) or 16UC1/mono16 millimetres ->
    (H, W) float32 metres with 0 = invalid (the rule of RGBDFrame and the metrics)."""
    from depth_unet_ros.image_conversion import image_msg_to_array

    raw = image_msg_to_array(msg)
    if raw.ndim == 3 and raw.shape[2] != 1:
        raise DatasetError("ground-truth depth must have one channel, got encoding "
                           f"{msg.encoding!r}")
    raw = raw.reshape(raw.shape[:2])
    if msg.encoding == "32FC1":
        depth = raw.astype(np.float32)
    elif msg.encoding in ("16UC1", "mono16"):
        depth = raw.astype(np.float32) / 1000.0
    else:
        raise DatasetError(f"ground-truth depth has encoding {msg.encoding!r}; expected 32FC1 "
                           "(metres) or 16UC1 (millimetres)")
    with np.errstate(invalid="ignore"):
        return np.where(np.isfinite(depth) & (depth > 0), depth, 0).astype(np.float32)


def intrinsics_of(msg: Any) -> Intrinsics:
    """The pinhole intrinsics of a sensor_msgs/CameraInfo (its K matrix)."""
    k = [float(v) for v in msg.k]
    return Intrinsics(fx=k[0], fy=k[4], cx=k[2], cy=k[5], width=int(msg.width),
                      height=int(msg.height))
