"""A rosbag2 recording as an RGB-D dataset: every image on the image topic that has a ground-
truth depth with the same header stamp is one frame, in recorded order.

This is what lets ``depth-unet evaluate --data BAG`` score exactly the frames that ``bag-eval``
streams through the node, so the two can be compared number for number. Frames are decoded on
demand while reading forward (the evaluation order), so a long bag is never held in memory.
"""
from __future__ import annotations

import os
from collections import deque
from pathlib import Path
from typing import Any, Iterator

import numpy as np

from depth_unet_ros.bags import reader as bag_reader
from depth_unet_ros.datasets.base import NYU_INTRINSICS, Intrinsics, RGBDFrame
from depth_unet_ros.errors import DatasetError


class BagDataset:
    """Frames of a rosbag2 folder: (image, ground truth, camera_info) paired by exact stamp.

    The intrinsics are the camera_info of the same stamp, else the latest one before it, else
    NYU's Kinect scaled to the image (a bag without camera_info; the metrics do not use them).
    Whichever order the three were recorded in, a frame waits for its own camera_info.
    """

    def __init__(self, path: str | os.PathLike, image_topic: str = bag_reader.IMAGE_TOPIC,
                 ground_truth_topic: str = bag_reader.GROUND_TRUTH_TOPIC,
                 camera_info_topic: str = bag_reader.CAMERA_INFO_TOPIC):
        self.path = Path(path)
        self.topics = (image_topic, ground_truth_topic, camera_info_topic)
        found = bag_reader.require_topics(self.path, {
            image_topic: (bag_reader.CAMERA_IMAGE_TYPES, "--image-topic"),
            ground_truth_topic: (bag_reader.IMAGE_TYPE, "--ground-truth-topic")})
        self._has_info = camera_info_topic in found
        stamps = bag_reader.header_stamps(self.path, self.topics if self._has_info
                                          else self.topics[:2])
        truths = set(stamps[ground_truth_topic])
        self._info_stamps = set(stamps.get(camera_info_topic, ()))
        # (position of the image in the bag, stamp) of every frame that has ground truth
        self._frames = [(i, s) for i, s in enumerate(stamps[image_topic]) if s in truths]
        if not self._frames:
            raise DatasetError(f"bag {self.path}: no image on {image_topic} has a ground-truth "
                               f"depth with the same header stamp on {ground_truth_topic}")
        self._cursor: Iterator[RGBDFrame] | None = None
        self._next = 0

    def __len__(self) -> int:
        return len(self._frames)

    @property
    def stamps_ns(self) -> list[int]:
        """The header stamp of each frame, in order."""
        return [stamp for _, stamp in self._frames]

    def __getitem__(self, index: int) -> RGBDFrame:
        if not 0 <= index < len(self._frames):
            raise IndexError(f"bag frame {index} out of range for {len(self._frames)} frames")
        if self._cursor is None or index < self._next:  # backwards: read again from the start
            self._cursor, self._next = self._read(), 0
        while True:
            frame = next(self._cursor)
            self._next += 1
            if self._next - 1 == index:
                if self._next == len(self._frames):
                    self.close()  # read to the end: release the file now
                return frame

    def close(self) -> None:
        """Close the bag file (reading again reopens it)."""
        if self._cursor is not None:
            self._cursor.close()
            self._cursor = None

    def _read(self) -> Iterator[RGBDFrame]:
        """Every frame in image order, decoding only the messages of frames and camera_info."""
        image_topic, truth_topic, info_topic = self.topics
        order = deque(s for _, s in self._frames)
        position = {s: i for i, s in self._frames}
        topics = [image_topic, truth_topic] + ([info_topic] if self._has_info else [])
        parts: dict[int, dict[str, Any]] = {}
        done: dict[int, RGBDFrame] = {}
        latest_info: Intrinsics | None = None
        for topic, stamp, msg in bag_reader.decode(self.path, topics):
            if topic == info_topic:
                latest_info = bag_reader.intrinsics_of(msg)
                if stamp in position:
                    parts.setdefault(stamp, {})["info"] = latest_info
            elif stamp in position:
                parts.setdefault(stamp, {})["image" if topic == image_topic else "depth"] = (
                    bag_reader.rgb_of(msg) if topic == image_topic else bag_reader.depth_m_of(msg))
            if stamp not in parts:
                continue
            entry = parts[stamp]
            if "info" not in entry and stamp not in self._info_stamps:
                entry["info"] = latest_info
            if "image" in entry and "depth" in entry and "info" in entry:
                del parts[stamp]
                done[stamp] = self._frame(entry, position[stamp], stamp)
            while order and order[0] in done:  # in image order, whatever the recorded order
                yield done.pop(order.popleft())

    @staticmethod
    def _frame(entry: dict[str, Any], position: int, stamp: int) -> RGBDFrame:
        image = entry["image"]
        k = entry.get("info") or NYU_INTRINSICS
        if (k.width, k.height) != (image.shape[1], image.shape[0]):
            k = k.scaled(image.shape[1], image.shape[0])
        return RGBDFrame(image=image, depth_m=entry["depth"], intrinsics=k,
                         name=bag_reader.frame_name(position, stamp))


def read_bag_frames(path: str | os.PathLike, image_topic: str = bag_reader.IMAGE_TOPIC,
                    camera_info_topic: str = bag_reader.CAMERA_INFO_TOPIC,
                    depth_topic: str = bag_reader.GROUND_TRUTH_TOPIC,
                    ) -> Iterator[tuple[int, np.ndarray, np.ndarray, Intrinsics]]:
    """(stamp_ns, rgb (H, W, 3) uint8, depth_m (H, W) float32 with 0 = invalid, intrinsics) of
    every frame of a bag, in order: the BagDataset frames with their stamps."""
    dataset = BagDataset(path, image_topic, depth_topic, camera_info_topic)
    for index, stamp in enumerate(dataset.stamps_ns):
        frame = dataset[index]
        yield stamp, frame.image, frame.depth_m, frame.intrinsics
