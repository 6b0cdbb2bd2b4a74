"""RGB-D frames -> rosbag2 (MCAP or sqlite3) with the rosbags library; no rclpy. Reading is in
``bag_reader`` and ``datasets.bag``.

A bag holds, per frame, ``/camera/image_raw`` (rgb8), ``/camera/camera_info`` and
``/camera/depth/ground_truth`` (32FC1 metres, NaN where invalid) with one shared header stamp,
which is also the bag timestamp, so exact-time pairing works in the bag and on replay.

With ground-truth poses it also holds, at the same stamps, ``/camera/pose`` (PoseStamped of the
optical frame in ``odom``) and ``/tf`` (odom -> camera_link, REP 103: x forward, y left, z up),
and once ``/tf_static`` (camera_link -> optical frame), offered transient_local as ``ros2 bag
record`` stores it, so ``ros2 bag play`` latches it for late subscribers.

Metadata is written as rosbag2 version 8: its ``offered_qos_profiles`` is a YAML string, which
both Humble (version 5 reader, string only) and Jazzy or newer read; version 9's list form
breaks Humble's ``ros2 bag info``.
"""
from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path
from typing import Any, Iterable, Protocol

import numpy as np

from depth_unet_ros.bags.clock import stamp_ns
from depth_unet_ros.bags.reader import (CAMERA_INFO_TOPIC, CAMERA_INFO_TYPE, IMAGE_TOPIC,  # noqa: F401
                                       IMAGE_TYPE)
from depth_unet_ros.bags.reader import GROUND_TRUTH_TOPIC as DEPTH_TOPIC
from depth_unet_ros.datasets.base import Intrinsics, RGBDFrame
from depth_unet_ros.errors import DatasetError, DepthUnetError
from depth_unet_ros.rotations import (LINK_FROM_OPTICAL, link_rotation,
                                      quaternion_xyzw_to_rotation, rotation_to_quaternion_xyzw)

DEFAULT_FRAME_ID = "camera_rgb_optical_frame"
POSE_TOPIC = "/camera/pose"
TF_TOPIC = "/tf"
TF_STATIC_TOPIC = "/tf_static"
POSE_TYPE = "geometry_msgs/msg/PoseStamped"
TF_TYPE = "tf2_msgs/msg/TFMessage"
ODOM_FRAME_ID = "odom"
LINK_FRAME_ID = "camera_link"
STORAGES = ("mcap", "sqlite3")
DEPTH_ENCODINGS = ("32FC1", "16UC1")
BAG_VERSION = 8  # see the module docstring


def make_typestore() -> Any:
    """The Humble message definitions (Image, CameraInfo, Header are the same in later distros)."""
    from rosbags.typesys import Stores, get_typestore

    return get_typestore(Stores.ROS2_HUMBLE)


def make_header(typestore: Any, stamp: int, frame_id: str) -> Any:
    """A std_msgs/Header for ``stamp`` nanoseconds since the epoch."""
    types = typestore.types
    time = types["builtin_interfaces/msg/Time"](sec=int(stamp // 10**9), nanosec=int(stamp % 10**9))
    return types["std_msgs/msg/Header"](stamp=time, frame_id=frame_id)


def image_to_ros(typestore: Any, rgb: np.ndarray, header: Any) -> Any:
    """(H, W, 3) uint8 RGB -> sensor_msgs/Image rgb8 (step = 3 * width)."""
    rgb = np.asarray(rgb)
    if rgb.dtype != np.uint8 or rgb.ndim != 3 or rgb.shape[2] != 3:
        raise DepthUnetError(f"image must be (H, W, 3) uint8 RGB, got {rgb.shape} {rgb.dtype}")
    h, w = rgb.shape[:2]
    return typestore.types[IMAGE_TYPE](
        header=header, height=h, width=w, encoding="rgb8", is_bigendian=0, step=3 * w,
        data=np.ascontiguousarray(rgb).reshape(-1))


def depth_to_ros(typestore: Any, depth_m: np.ndarray, header: Any, encoding: str = "32FC1") -> Any:
    """(H, W) metres, 0 or non-finite = invalid -> sensor_msgs/Image 32FC1 with NaN (REP 118),
    or 16UC1 millimetres with 0 = invalid (a tenth of the size once compressed: float depth's
    low mantissa bits are noise to zstd)."""
    depth_m = np.asarray(depth_m, dtype=np.float32)
    if depth_m.ndim != 2:
        raise DepthUnetError(f"depth must be (H, W) metres, got shape {depth_m.shape}")
    if encoding not in DEPTH_ENCODINGS:
        raise DepthUnetError(f"unknown depth encoding {encoding!r}; use one of {DEPTH_ENCODINGS}")
    h, w = depth_m.shape
    if encoding == "16UC1":
        valid = np.isfinite(depth_m) & (depth_m > 0)
        mm = np.clip(np.round(np.where(valid, depth_m, 0) * 1000.0), 0, 65535).astype("<u2")
        return typestore.types[IMAGE_TYPE](
            header=header, height=h, width=w, encoding="16UC1", is_bigendian=0, step=2 * w,
            data=np.ascontiguousarray(mm).view(np.uint8).reshape(-1))
    depth = np.where(np.isfinite(depth_m) & (depth_m > 0), depth_m, np.float32(np.nan))
    data = np.ascontiguousarray(depth, dtype="<f4").view(np.uint8).reshape(-1)  # little-endian
    return typestore.types[IMAGE_TYPE](
        header=header, height=h, width=w, encoding="32FC1", is_bigendian=0, step=4 * w, data=data)


def camera_info_to_ros(typestore: Any, intrinsics: Intrinsics, header: Any) -> Any:
    """sensor_msgs/CameraInfo of an undistorted pinhole camera (plumb_bob, D = 0, R = I)."""
    k = intrinsics
    types = typestore.types
    roi = types["sensor_msgs/msg/RegionOfInterest"](x_offset=0, y_offset=0, height=0, width=0,
                                                     do_rectify=False)
    return types[CAMERA_INFO_TYPE](
        header=header, height=int(k.height), width=int(k.width), distortion_model="plumb_bob",
        d=np.zeros(5, np.float64),
        k=np.array([k.fx, 0, k.cx, 0, k.fy, k.cy, 0, 0, 1], np.float64),
        r=np.eye(3, dtype=np.float64).reshape(-1),
        p=np.array([k.fx, 0, k.cx, 0, 0, k.fy, k.cy, 0, 0, 0, 1, 0], np.float64),
        binning_x=0, binning_y=0, roi=roi)


def live_qos(depth: int = 10, transient_local: bool = False) -> list:
    """The QoS a camera driver offers: reliable, keep_last ``depth``, volatile, no deadlines.

    tf2 broadcasters offer depth 100 on /tf; the static broadcaster offers depth 1,
    transient_local on /tf_static.
    """
    from rosbags.interfaces import (Qos, QosDurability, QosHistory, QosLiveliness,
                                    QosReliability, QosTime)

    zero = QosTime(0, 0)  # RMW_DURATION_UNSPECIFIED: the middleware's default (infinite)
    durability = QosDurability.TRANSIENT_LOCAL if transient_local else QosDurability.VOLATILE
    return [Qos(QosHistory.KEEP_LAST, depth, QosReliability.RELIABLE, durability,
                zero, zero, QosLiveliness.AUTOMATIC, zero, False)]


class PoseLike(Protocol):
    """A ground-truth camera pose: the optical frame in odom (e.g. handheld.CameraPose)."""

    @property
    def position_m(self) -> np.ndarray: ...  # (3,) metres

    @property
    def quaternion_xyzw(self) -> np.ndarray: ...  # (4,) world-from-optical


def _transform(typestore: Any, header: Any, child: str, translation: Iterable[float],
               q_xyzw: Iterable[float]) -> Any:
    types = typestore.types
    x, y, z = (float(v) for v in translation)
    qx, qy, qz, qw = (float(v) for v in q_xyzw)
    return types["geometry_msgs/msg/TransformStamped"](
        header=header, child_frame_id=child,
        transform=types["geometry_msgs/msg/Transform"](
            translation=types["geometry_msgs/msg/Vector3"](x=x, y=y, z=z),
            rotation=types["geometry_msgs/msg/Quaternion"](x=qx, y=qy, z=qz, w=qw)))


def pose_to_ros(typestore: Any, pose: PoseLike, header: Any) -> Any:
    """geometry_msgs/PoseStamped of the optical frame; ``header.frame_id`` is the world frame."""
    types = typestore.types
    x, y, z = (float(v) for v in pose.position_m)
    qx, qy, qz, qw = (float(v) for v in pose.quaternion_xyzw)
    return types[POSE_TYPE](header=header, pose=types["geometry_msgs/msg/Pose"](
        position=types["geometry_msgs/msg/Point"](x=x, y=y, z=z),
        orientation=types["geometry_msgs/msg/Quaternion"](x=qx, y=qy, z=qz, w=qw)))


def odom_tf_to_ros(typestore: Any, pose: PoseLike, header: Any, link_frame: str) -> Any:
    """tf2_msgs/TFMessage: ``header.frame_id`` -> ``link_frame`` (camera_link, x forward, z up),
    the same camera as ``pose`` (whose optical frame shares camera_link's origin)."""
    q_link = rotation_to_quaternion_xyzw(link_rotation(
        quaternion_xyzw_to_rotation(pose.quaternion_xyzw)))
    return typestore.types[TF_TYPE](
        transforms=[_transform(typestore, header, link_frame, pose.position_m, q_link)])


def static_tf_to_ros(typestore: Any, header: Any, optical_frame: str) -> Any:
    """tf2_msgs/TFMessage: ``header.frame_id`` (camera_link) -> the optical frame, the standard
    REP 103 turn (quaternion -0.5, 0.5, -0.5, 0.5) and no offset."""
    q = rotation_to_quaternion_xyzw(LINK_FROM_OPTICAL)
    return typestore.types[TF_TYPE](
        transforms=[_transform(typestore, header, optical_frame, (0.0, 0.0, 0.0), q)])


def _check_out(out: Path, overwrite: bool) -> None:
    if out.exists() and not overwrite:
        raise DepthUnetError(f"{out} exists already; pass --overwrite to replace it or choose "
                             "another --out")


def _replace(src: Path, out: Path) -> None:
    """Move the finished bag ``src`` to ``out``, replacing an old ``out`` only at the end."""
    old = None
    if out.exists() or out.is_symlink():
        old = out.with_name(f".{out.name}.old.{os.getpid()}")
        os.replace(out, old)
    os.replace(src, out)
    if old is not None and old.is_dir() and not old.is_symlink():
        shutil.rmtree(old)
    elif old is not None:
        old.unlink()


def _open_writer(bag_path: Path, storage: str, compress: bool) -> Any:
    """A rosbags Writer; ``compress``: zstd as ``ros2 bag`` reads it without options (MCAP:
    compressed chunks inside the file; sqlite3: each message, via rosbag2_compression_zstd)."""
    from rosbags.rosbag2 import CompressionFormat, CompressionMode, StoragePlugin, Writer

    writer = Writer(bag_path, version=BAG_VERSION, storage_plugin=StoragePlugin[storage.upper()])
    if compress:
        mode = CompressionMode.STORAGE if storage == "mcap" else CompressionMode.MESSAGE
        writer.set_compression(mode, CompressionFormat.ZSTD)
    return writer


def _frame_messages(typestore: Any, frame: RGBDFrame, header: Any,
                    depth_encoding: str) -> list[tuple[str, Any]]:
    return [(IMAGE_TOPIC, image_to_ros(typestore, frame.image, header)),
            (CAMERA_INFO_TOPIC, camera_info_to_ros(typestore, frame.intrinsics, header)),
            (DEPTH_TOPIC, depth_to_ros(typestore, frame.depth_m, header, depth_encoding))]


def _pose_messages(typestore: Any, pose: PoseLike, index: int, t: int,
                   link_frame: str) -> list[tuple[str, Any]]:
    stamped = getattr(pose, "stamp_ns", None)
    if stamped is not None and int(stamped) != t:
        raise DepthUnetError(f"pose {index} is stamped {stamped} ns but its frame is written at "
                             f"{t} ns; pass write_bag the rate_hz the poses were made at")
    header = make_header(typestore, t, ODOM_FRAME_ID)
    return [(POSE_TOPIC, pose_to_ros(typestore, pose, header)),
            (TF_TOPIC, odom_tf_to_ros(typestore, pose, header, link_frame))]


def write_bag(frames: Iterable[RGBDFrame], out: str | os.PathLike, storage: str = "mcap",
              rate_hz: float = 10.0, frame_id: str = DEFAULT_FRAME_ID,
              overwrite: bool = False, total: int | None = None, progress: bool = True,
              poses: Iterable[PoseLike] | None = None, link_frame: str = LINK_FRAME_ID,
              compress: bool = False, depth_encoding: str = "32FC1") -> Path:
    """Write ``frames`` as a rosbag2 directory at ``out``; returns ``out``.

    ``poses`` (one per frame, the optical frame ``frame_id`` in odom) add /camera/pose, /tf
    (odom -> ``link_frame``) and /tf_static (``link_frame`` -> ``frame_id``); ``compress``
    writes zstd (see ``_open_writer``); ``depth_encoding`` "16UC1" stores millimetres (see
    ``depth_to_ros``). The bag is written into a temporary folder beside
    ``out`` and renamed into place when complete, so an error or Ctrl-C leaves neither a half
    bag nor a damaged old one.
    """
    from tqdm import tqdm

    if storage not in STORAGES:
        raise DepthUnetError(f"unknown bag storage {storage!r}; use one of {STORAGES}")
    if not rate_hz > 0:
        raise DepthUnetError(f"--rate must be positive, got {rate_hz}")
    if depth_encoding not in DEPTH_ENCODINGS:
        raise DepthUnetError(f"unknown depth encoding {depth_encoding!r}; use one of "
                             f"{DEPTH_ENCODINGS}")
    out = Path(out)
    _check_out(out, overwrite)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp_dir = Path(tempfile.mkdtemp(prefix=f".{out.name}.", suffix=".tmp", dir=out.parent))
    pose_iter = None if poses is None else iter(poses)
    try:
        bag_path = tmp_dir / out.name  # rosbags names the storage file after the folder
        typestore, qos = make_typestore(), live_qos()
        topics = [(IMAGE_TOPIC, IMAGE_TYPE, qos), (CAMERA_INFO_TOPIC, CAMERA_INFO_TYPE, qos),
                  (DEPTH_TOPIC, IMAGE_TYPE, qos)]
        if pose_iter is not None:
            topics += [(POSE_TOPIC, POSE_TYPE, qos), (TF_TOPIC, TF_TYPE, live_qos(100)),
                       (TF_STATIC_TOPIC, TF_TYPE, live_qos(1, transient_local=True))]
        count = 0
        with _open_writer(bag_path, storage, compress) as writer:
            conns = {topic: writer.add_connection(topic, msgtype, typestore=typestore,
                                                  offered_qos_profiles=offered)
                     for topic, msgtype, offered in topics}
            for frame in tqdm(frames, total=total, unit="frame", desc=out.name,
                              disable=not progress):
                t = stamp_ns(count, rate_hz)
                header = make_header(typestore, t, frame_id)
                messages = _frame_messages(typestore, frame, header, depth_encoding)
                if pose_iter is not None:
                    pose = next(pose_iter, None)
                    if pose is None:
                        raise DatasetError(f"fewer poses than frames: no pose for frame {count}")
                    messages += _pose_messages(typestore, pose, count, t, link_frame)
                    if count == 0:  # once, at the first stamp
                        messages.insert(0, (TF_STATIC_TOPIC, static_tf_to_ros(
                            typestore, make_header(typestore, t, link_frame), frame_id)))
                for topic, msg in messages:
                    writer.write(conns[topic], t, typestore.serialize_cdr(msg, msg.__msgtype__))
                count += 1
            if count == 0:
                raise DatasetError(f"no frames to write into {out}; the dataset is empty")
        _check_out(out, overwrite)  # someone may have created it meanwhile
        _replace(bag_path, out)
    finally:
        shutil.rmtree(tmp_dir, ignore_errors=True)
    return out
