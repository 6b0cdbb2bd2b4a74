"""Bags for the replay and evaluation tests, written with rosbags directly the way other tools
write them (any encoding, storage, topic names, frame ids, metadata version), not only through
this package's writer."""
from __future__ import annotations

from pathlib import Path
from typing import Sequence

import cv2
import numpy as np

from depth_unet_ros.bags import clock
from depth_unet_ros.bags import writer as bw
from depth_unet_ros.datasets.base import RGBDFrame


def write_foreign_bag(out: Path, frames: Sequence[RGBDFrame], storage: str = "sqlite3",
                      image_encoding: str = "bgr8", depth_encoding: str = "16UC1",
                      image_topic: str = "/cam/color/image_raw",
                      depth_topic: str = "/cam/aligned_depth/image_raw",
                      info_topic: str = "/cam/color/camera_info", frame_id: str = "cam_color_optical",
                      rate_hz: float = 10.0, depth_stamp_shift_ns: int = 0,
                      depth_first: bool = True, compressed: str | None = None) -> Path:
    """A bag as a RealSense-style driver records it: bgr8 colour, 16UC1 millimetre depth with
    0 = no reading, its own topic names and frame id, metadata version 9 (Jazzy's ros2 bag record).

    ``depth_stamp_shift_ns`` offsets the depth stamps (a bag whose stamps never match);
    ``depth_first`` records each depth before its image (other recorders' order varies);
    ``compressed`` ("jpeg" or "png") records CompressedImage on ``image_topic + "/compressed"``
    instead of raw images, as image_transport's compressed plugin does.
    """
    from rosbags.rosbag2 import StoragePlugin, Writer

    ts = bw.make_typestore()
    image_type = ts.types[bw.IMAGE_TYPE]
    camera_type = "sensor_msgs/msg/CompressedImage" if compressed else bw.IMAGE_TYPE
    if compressed:
        image_topic += "/compressed"
    with Writer(out, version=9, storage_plugin=StoragePlugin[storage.upper()]) as writer:
        conns = {topic: writer.add_connection(topic, msgtype, typestore=ts)
                 for topic, msgtype in ((image_topic, camera_type), (depth_topic, bw.IMAGE_TYPE),
                                        (info_topic, bw.CAMERA_INFO_TYPE))}
        for i, frame in enumerate(frames):
            t = clock.stamp_ns(i, rate_hz)
            header = bw.make_header(ts, t, frame_id)
            h, w = frame.image.shape[:2]
            if image_encoding == "bgr8":
                pixels = np.ascontiguousarray(frame.image[..., ::-1])
            elif image_encoding == "rgb8":
                pixels = np.ascontiguousarray(frame.image)
            else:
                raise ValueError(image_encoding)
            if compressed:
                ok, data = cv2.imencode(f".{compressed.replace('jpeg', 'jpg')}",
                                        np.ascontiguousarray(frame.image[..., ::-1]))
                assert ok
                image = ts.types[camera_type](header=header, format=f"bgr8; {compressed} "
                                              "compressed bgr8", data=data.reshape(-1))
            else:
                image = image_type(header=header, height=h, width=w, encoding=image_encoding,
                                   is_bigendian=0, step=3 * w, data=pixels.reshape(-1))
            if depth_encoding == "16UC1":
                mm = np.round(frame.depth_m * 1000.0).astype("<u2")
                depth_data, step = mm.view(np.uint8).reshape(-1), 2 * w
            else:
                depth_data = np.where(frame.depth_m > 0, frame.depth_m, np.nan).astype("<f4")
                depth_data, step = depth_data.view(np.uint8).reshape(-1), 4 * w
            depth_header = bw.make_header(ts, t + depth_stamp_shift_ns, frame_id)
            depth = image_type(header=depth_header, height=h, width=w, encoding=depth_encoding,
                               is_bigendian=0, step=step, data=depth_data)
            info = bw.camera_info_to_ros(ts, frame.intrinsics, header)
            order = [(depth_topic, depth), (image_topic, image)]
            order = order if depth_first else order[::-1]
            for topic, msg in order + [(info_topic, info)]:
                writer.write(conns[topic], t, ts.serialize_cdr(msg, msg.__msgtype__))
    return out


def millimetre_frames(frames: Sequence[RGBDFrame]) -> list[RGBDFrame]:
    """``frames`` with depth rounded to whole millimetres, as a 16UC1 bag stores it."""
    return [RGBDFrame(f.image, (np.round(f.depth_m * 1000.0) / 1000.0).astype(np.float32),
                      f.intrinsics, f.name) for f in frames]
