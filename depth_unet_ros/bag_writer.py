"""RGB-D frames <-> rosbag2 (MCAP or sqlite3) with the rosbags library; no rclpy.

A bag holds, per frame, ``/camera/image_raw`` (rgb8), ``/camera/camera_info`` and
``/camera/depth/ground_truth`` (32FC1 metres, NaN where invalid) with one shared header stamp,
which is also the bag timestamp, so exact-time pairing works in the bag and on replay.

Metadata is written as rosbag2 version 8: its ``offered_qos_profiles`` is a YAML string, which
both Humble (version 5 reader, string only) and Jazzy or newer read; version 9's list form
breaks Humble's ``ros2 bag info``.
"""
from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path
from typing import Any, Iterable, Iterator

import numpy as np

from depth_unet_ros.datasets.base import Intrinsics, RGBDFrame
from depth_unet_ros.errors import DatasetError, DepthUnetError

IMAGE_TOPIC = "/camera/image_raw"
CAMERA_INFO_TOPIC = "/camera/camera_info"
DEPTH_TOPIC = "/camera/depth/ground_truth"
IMAGE_TYPE = "sensor_msgs/msg/Image"
CAMERA_INFO_TYPE = "sensor_msgs/msg/CameraInfo"
DEFAULT_FRAME_ID = "camera_rgb_optical_frame"
START_NS = 1_700_000_000 * 10**9  # a fixed epoch, so the same input gives the same bag
STORAGES = ("mcap", "sqlite3")
BAG_VERSION = 8  # see the module docstring


def make_typestore() -> Any:
    """The Humble message definitions (Image, CameraInfo, Header are the same in later distros)."""
    from rosbags.typesys import Stores, get_typestore

    return get_typestore(Stores.ROS2_HUMBLE)


def stamp_ns(index: int, rate_hz: float, start_ns: int = START_NS) -> int:
    """The stamp of frame ``index`` at ``rate_hz`` frames per second, in nanoseconds."""
    return int(start_ns + round(index * 1e9 / rate_hz))


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


def depth_to_ros(typestore: Any, depth_m: np.ndarray, header: Any) -> Any:
    """(H, W) metres, 0 or non-finite = invalid -> sensor_msgs/Image 32FC1 with NaN (REP 118)."""
    depth_m = np.asarray(depth_m, dtype=np.float32)
    if depth_m.ndim != 2:
        raise DepthUnetError(f"depth must be (H, W) metres, got shape {depth_m.shape}")
    depth = np.where(np.isfinite(depth_m) & (depth_m > 0), depth_m, np.float32(np.nan))
    h, w = depth.shape
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


def live_qos() -> list:
    """The QoS a camera driver offers: reliable, keep_last 10, volatile, no deadlines."""
    from rosbags.interfaces import (Qos, QosDurability, QosHistory, QosLiveliness,
                                    QosReliability, QosTime)

    zero = QosTime(0, 0)  # RMW_DURATION_UNSPECIFIED: the middleware's default (infinite)
    return [Qos(QosHistory.KEEP_LAST, 10, QosReliability.RELIABLE, QosDurability.VOLATILE,
                zero, zero, QosLiveliness.AUTOMATIC, zero, False)]


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


def write_bag(frames: Iterable[RGBDFrame], out: str | os.PathLike, storage: str = "mcap",
              rate_hz: float = 10.0, frame_id: str = DEFAULT_FRAME_ID,
              overwrite: bool = False, total: int | None = None, progress: bool = True) -> Path:
    """Write ``frames`` as a rosbag2 directory at ``out``; returns ``out``.

    The bag is written into a temporary folder beside ``out`` and renamed into place when
    complete, so an error or Ctrl-C leaves neither a half bag nor a damaged old one.
    """
    from rosbags.rosbag2 import StoragePlugin, Writer
    from tqdm import tqdm

    if storage not in STORAGES:
        raise DepthUnetError(f"unknown bag storage {storage!r}; use one of {STORAGES}")
    if not rate_hz > 0:
        raise DepthUnetError(f"--rate must be positive, got {rate_hz}")
    out = Path(out)
    _check_out(out, overwrite)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp_dir = Path(tempfile.mkdtemp(prefix=f".{out.name}.", suffix=".tmp", dir=out.parent))
    try:
        bag_path = tmp_dir / out.name  # rosbags names the storage file after the folder
        typestore, qos = make_typestore(), live_qos()
        count = 0
        with Writer(bag_path, version=BAG_VERSION,
                    storage_plugin=StoragePlugin[storage.upper()]) as writer:
            conns = {topic: writer.add_connection(topic, msgtype, typestore=typestore,
                                                  offered_qos_profiles=qos)
                     for topic, msgtype in ((IMAGE_TOPIC, IMAGE_TYPE),
                                            (CAMERA_INFO_TOPIC, CAMERA_INFO_TYPE),
                                            (DEPTH_TOPIC, IMAGE_TYPE))}
            for frame in tqdm(frames, total=total, unit="frame", desc=out.name,
                              disable=not progress):
                t = stamp_ns(count, rate_hz)
                header = make_header(typestore, t, frame_id)
                for topic, msg in ((IMAGE_TOPIC, image_to_ros(typestore, frame.image, header)),
                                   (CAMERA_INFO_TOPIC,
                                    camera_info_to_ros(typestore, frame.intrinsics, header)),
                                   (DEPTH_TOPIC, depth_to_ros(typestore, frame.depth_m, header))):
                    writer.write(conns[topic], t, typestore.serialize_cdr(msg, msg.__msgtype__))
                count += 1
            if count == 0:
                raise DatasetError(f"no frames to write into {out}; the dataset is empty")
        _check_out(out, overwrite)  # someone may have created it meanwhile
        _replace(bag_path, out)
    finally:
        shutil.rmtree(tmp_dir, ignore_errors=True)
    return out


def _image_rgb(msg: Any) -> np.ndarray:
    from depth_unet_ros.image_conversion import image_msg_to_array
    from depth_unet_ros.preprocessing import to_rgb

    return np.array(to_rgb(image_msg_to_array(msg), msg.encoding))  # own copy, (H, W, 3)


def _depth_m(msg: Any) -> np.ndarray:
    """32FC1 metres or 16UC1 millimetres -> (H, W) float32 metres, 0 = invalid (RGBDFrame's rule)."""
    from depth_unet_ros.image_conversion import image_msg_to_array

    raw = image_msg_to_array(msg)
    if msg.encoding == "32FC1":
        depth = raw.astype(np.float32)
    elif msg.encoding in ("16UC1", "mono16"):
        depth = raw.astype(np.float32) / 1000.0
    else:
        raise DepthUnetError(f"ground-truth depth has encoding {msg.encoding!r}; expected 32FC1 "
                             "(metres) or 16UC1 (millimetres)")
    return np.where(np.isfinite(depth) & (depth > 0), depth, 0).astype(np.float32)


def _intrinsics(msg: Any) -> Intrinsics:
    k = [float(v) for v in msg.k]
    return Intrinsics(fx=k[0], fy=k[4], cx=k[2], cy=k[5], width=int(msg.width),
                      height=int(msg.height))


def read_bag_frames(path: str | os.PathLike, image_topic: str = IMAGE_TOPIC,
                    camera_info_topic: str = CAMERA_INFO_TOPIC, depth_topic: str = DEPTH_TOPIC,
                    ) -> Iterator[tuple[int, np.ndarray, np.ndarray, Intrinsics]]:
    """(stamp_ns, rgb (H, W, 3) uint8, depth_m (H, W) float32 with 0 = invalid, intrinsics).

    Image, camera info and ground truth are paired by exact header stamp; a stamp that lacks
    one of the three is skipped. Works on MCAP and sqlite3 bags (rosbags' AnyReader).
    """
    from rosbags.highlevel import AnyReader

    path = Path(path)
    if not (path / "metadata.yaml").is_file():
        raise DatasetError(f"{path} is not a rosbag2 folder (no metadata.yaml); pass the folder "
                           "that `depth-unet nyu-to-bag` or `ros2 bag record` wrote")
    topics = {image_topic: "image", camera_info_topic: "info", depth_topic: "depth"}
    with AnyReader([path], default_typestore=make_typestore()) as reader:
        conns = [c for c in reader.connections if c.topic in topics]
        missing = set(topics) - {c.topic for c in conns}
        if missing:
            raise DatasetError(f"bag {path} lacks topic(s) {', '.join(sorted(missing))}; it has "
                               f"{', '.join(sorted({c.topic for c in reader.connections}))}")
        pending: dict[int, dict[str, Any]] = {}
        for conn, _, raw in reader.messages(connections=conns):
            msg = reader.deserialize(raw, conn.msgtype)
            stamp = int(msg.header.stamp.sec) * 10**9 + int(msg.header.stamp.nanosec)
            kind = topics[conn.topic]
            parts = pending.setdefault(stamp, {})
            parts[kind] = (_image_rgb(msg) if kind == "image" else
                           _depth_m(msg) if kind == "depth" else _intrinsics(msg))
            if len(parts) == 3:
                del pending[stamp]
                yield stamp, parts["image"], parts["depth"], parts["info"]
