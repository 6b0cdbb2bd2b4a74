"""The plain folder dataset: one sub-folder per frame with rgb, 16-bit depth and intrinsics.

A frame folder holds ``rgb.png`` or ``rgb.jpg`` (8-bit colour), ``depth_mm.png`` (uint16
millimetres, 0 = invalid) and ``camera.json`` (``fx, fy, cx, cy, width, height``). It serves
raw sequences, synthetic data and users' own captures with the same reader.
"""
from __future__ import annotations

import json
import os
from pathlib import Path

import cv2
import numpy as np

from depth_unet_ros.datasets.base import Intrinsics, RGBDFrame
from depth_unet_ros.errors import DatasetError

RGB_NAMES = ("rgb.png", "rgb.jpg")  # png first: lossless wins when both exist
DEPTH_NAME = "depth_mm.png"
CAMERA_NAME = "camera.json"
_CAMERA_KEYS = ("fx", "fy", "cx", "cy", "width", "height")
_FORMAT = "each frame folder needs rgb.png or rgb.jpg, depth_mm.png (uint16 mm) and camera.json"


def _is_frame_folder(path: Path) -> bool:
    return (path / DEPTH_NAME).is_file() or any((path / n).is_file() for n in RGB_NAMES)


def _rgb_path(folder: Path) -> Path | None:
    return next((folder / n for n in RGB_NAMES if (folder / n).is_file()), None)


def _read_camera(path: Path) -> Intrinsics:
    try:
        data = json.loads(path.read_text())
        return Intrinsics(**{k: (int if k in ("width", "height") else float)(data[k])
                             for k in _CAMERA_KEYS})
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise DatasetError(f"{path} is not a valid camera file ({exc!r}); it must be JSON with "
                           f"numbers {', '.join(_CAMERA_KEYS)}") from exc


class FolderDataset:
    """Frames of a folder dataset, sorted by folder name; ``root`` may also be one frame folder."""

    def __init__(self, root: str | os.PathLike) -> None:
        self.root = Path(root)
        if not self.root.is_dir():
            raise DatasetError(f"dataset folder {self.root} does not exist; pass a folder of "
                               f"frame folders ({_FORMAT})")
        if _is_frame_folder(self.root):
            self.folders = [self.root]
        else:
            self.folders = sorted((p for p in self.root.iterdir()
                                   if p.is_dir() and not p.name.startswith(".")),
                                  key=lambda p: p.name)
        if not self.folders:
            raise DatasetError(f"{self.root} has no frame folders; {_FORMAT}")
        for folder in self.folders:
            missing = [n for n in (DEPTH_NAME, CAMERA_NAME) if not (folder / n).is_file()]
            if _rgb_path(folder) is None:
                missing.insert(0, " or ".join(RGB_NAMES))
            if missing:
                raise DatasetError(f"frame folder {folder} lacks {', '.join(missing)}; {_FORMAT}")

    def __len__(self) -> int:
        return len(self.folders)

    def __getitem__(self, i: int) -> RGBDFrame:
        folder = self.folders[i]
        rgb_path = _rgb_path(folder)
        bgr = cv2.imread(str(rgb_path), cv2.IMREAD_COLOR)
        if bgr is None:
            raise DatasetError(f"cannot read image {rgb_path}; re-save it as an 8-bit PNG or JPEG")
        depth_path = folder / DEPTH_NAME
        depth_raw = cv2.imread(str(depth_path), cv2.IMREAD_UNCHANGED)
        if depth_raw is None:
            raise DatasetError(f"cannot read depth {depth_path}; re-save it as a 16-bit PNG")
        if depth_raw.dtype != np.uint16 or depth_raw.ndim != 2:
            raise DatasetError(f"{depth_path} is {depth_raw.dtype} with shape {depth_raw.shape}; "
                               "it must be a single-channel 16-bit PNG of millimetres")
        if depth_raw.shape != bgr.shape[:2]:
            raise DatasetError(f"{depth_path} is {depth_raw.shape[1]}x{depth_raw.shape[0]} but "
                               f"{rgb_path} is {bgr.shape[1]}x{bgr.shape[0]}; the depth must be "
                               "registered to the colour image at the same size")
        intrinsics = _read_camera(folder / CAMERA_NAME)
        if (intrinsics.height, intrinsics.width) != bgr.shape[:2]:
            raise DatasetError(f"{folder / CAMERA_NAME} says {intrinsics.width}x"
                               f"{intrinsics.height} but {rgb_path} is {bgr.shape[1]}x"
                               f"{bgr.shape[0]}; write the intrinsics of the image as stored "
                               "(Intrinsics.scaled after a resize)")
        image = cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)  # (H, W, 3) RGB
        depth_m = depth_raw.astype(np.float32) / 1000.0  # (H, W), 0 stays 0 = invalid
        return RGBDFrame(image=image, depth_m=depth_m, intrinsics=intrinsics, name=folder.name)


def write_folder_frame(folder: str | os.PathLike, frame: RGBDFrame, jpeg: bool = False) -> Path:
    """Write ``frame`` as one frame folder (depth rounded to mm, 0 where invalid); returns it."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    if frame.image.dtype != np.uint8 or frame.image.ndim != 3 or frame.image.shape[2] != 3:
        raise DatasetError(f"frame {frame.name}: image must be (H, W, 3) uint8 RGB, got "
                           f"{frame.image.shape} {frame.image.dtype}")
    if frame.depth_m.shape != frame.image.shape[:2]:
        raise DatasetError(f"frame {frame.name}: depth {frame.depth_m.shape} does not match "
                           f"image {frame.image.shape[:2]}; resize one to the other first")
    if (frame.intrinsics.height, frame.intrinsics.width) != frame.image.shape[:2]:
        raise DatasetError(f"frame {frame.name}: intrinsics are for {frame.intrinsics.width}x"
                           f"{frame.intrinsics.height} but the image is {frame.image.shape[1]}x"
                           f"{frame.image.shape[0]}; use Intrinsics.scaled(width, height)")
    rgb_name = RGB_NAMES[1] if jpeg else RGB_NAMES[0]
    for stale in RGB_NAMES:  # one colour file per folder, or readers would disagree
        if stale != rgb_name:
            (folder / stale).unlink(missing_ok=True)
    bgr = cv2.cvtColor(frame.image, cv2.COLOR_RGB2BGR)
    params = [cv2.IMWRITE_JPEG_QUALITY, 95] if jpeg else []
    depth = np.asarray(frame.depth_m, dtype=np.float64)
    valid = np.isfinite(depth) & (depth > 0)
    depth_mm = np.where(valid, np.clip(np.round(np.where(valid, depth, 0) * 1000.0), 0, 65535), 0)
    ok = cv2.imwrite(str(folder / rgb_name), bgr, params)
    ok = cv2.imwrite(str(folder / DEPTH_NAME), depth_mm.astype(np.uint16)) and ok
    if not ok:
        raise DatasetError(f"OpenCV could not write the images into {folder}; check that the "
                           "folder is writable")
    (folder / CAMERA_NAME).write_text(json.dumps(frame.intrinsics.as_dict()) + "\n")
    return folder
