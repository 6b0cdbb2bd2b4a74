"""A part of a recorded RGB-D sequence, with depth registered into the colour camera.

For sequences like 7-Scenes whose depth is stored in the depth camera: each frame's depth is
registered into the colour camera (registration.py), and both are optionally resampled to a
target focal length, so that every training frame has one focal length (NYU's, which the model
records as ``depth_unet.focal_px``). A frame range selects a contiguous part (training and
validation take disjoint parts of one sequence), and byte-identical repeats of the previous
frame (a sensor that re-sent a frame) can be dropped so they do not count twice.
"""
from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from depth_unet_ros.datasets.base import Intrinsics, RGBDFrame
from depth_unet_ros.datasets.folder import DEPTH_NAME, FolderDataset, _rgb_path
from depth_unet_ros.datasets.registration import RigCalibration, fill_cracks, register_depth
from depth_unet_ros.errors import DatasetError


@dataclass(frozen=True)
class FrameRange:
    """Frames ``start <= i < stop`` of a sequence, by sorted folder name."""

    start: int
    stop: int

    def overlaps(self, other: "FrameRange") -> bool:
        return self.start < other.stop and other.start < self.stop


def _frame_digest(folder: Path) -> str:
    """SHA-1 of the colour and depth files: equal digests = a byte-identical repeat."""
    digest = hashlib.sha1()
    for path in (_rgb_path(folder), folder / DEPTH_NAME):
        digest.update(Path(path).read_bytes())
    return digest.hexdigest()


class RegisteredSequence:
    """Frames of a folder dataset in ``frames``, registered by ``rig``, at ``target_fx``.

    ``rig`` None: the depth is already registered (only range, duplicates and focal apply).
    ``target_fx``: focal length in pixels at the stored width to resample to (None: keep the
    colour camera's). Frames are (H, W, 3) uint8 RGB and (H, W) float32 metres, 0 = invalid.
    """

    def __init__(self, root: str | os.PathLike, rig: RigCalibration | None = None,
                 frames: FrameRange | None = None, target_fx: float | None = None,
                 drop_duplicates: bool = False) -> None:
        self.source = FolderDataset(root)
        self.rig, self.target_fx = rig, target_fx
        count = len(self.source)
        frames = frames or FrameRange(0, count)
        if not 0 <= frames.start < frames.stop <= count:
            raise DatasetError(f"frame range [{frames.start}, {frames.stop}) is outside {root}, "
                               f"which has {count} frames")
        self.indices = list(range(frames.start, frames.stop))
        if drop_duplicates:
            self.indices = self._without_repeats(frames)

    def _without_repeats(self, frames: FrameRange) -> list[int]:
        folders = self.source.folders
        previous = _frame_digest(folders[frames.start - 1]) if frames.start > 0 else None
        kept = []
        for index in range(frames.start, frames.stop):
            digest = _frame_digest(folders[index])
            if digest != previous:
                kept.append(index)
            previous = digest
        return kept

    def __len__(self) -> int:
        return len(self.indices)

    def __getitem__(self, i: int) -> RGBDFrame:
        frame = self.source[self.indices[i]]
        h, w = frame.depth_m.shape
        colour = self.rig.colour if self.rig else frame.intrinsics
        target = colour
        if self.target_fx is not None:
            scale = self.target_fx / colour.fx
            target = Intrinsics(colour.fx * scale, colour.fy * scale, colour.cx, colour.cy, w, h)
        image = frame.image
        if target != colour:
            image = resample_to_focal(image, colour, target)
        if self.rig is None and target == colour:
            depth_m = frame.depth_m
        else:
            shift = self.rig.colour_from_depth_m if self.rig else (0.0, 0.0, 0.0)
            depth_m = fill_cracks(register_depth(frame.depth_m, frame.intrinsics, target, shift))
        return RGBDFrame(image=image, depth_m=depth_m, intrinsics=target, name=frame.name)


def resample_to_focal(image: np.ndarray, source: Intrinsics, target: Intrinsics) -> np.ndarray:
    """``image`` of camera ``source`` as seen by ``target`` (same size and centre, other focal).

    A shorter target focal needs a little more field of view than the source has: the border
    strip (a few pixels for a 2 % change) repeats the edge pixels.
    """
    s = target.fx / source.fx
    sy = target.fy / source.fy
    m = np.array([[s, 0.0, target.cx - s * source.cx], [0.0, sy, target.cy - sy * source.cy]])
    return cv2.warpAffine(image, m, (target.width, target.height), flags=cv2.INTER_LINEAR,
                          borderMode=cv2.BORDER_REPLICATE)
