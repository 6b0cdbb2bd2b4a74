"""RGB-D dataset readers (NYU Depth V2 labeled .mat, folder datasets, synthetic scenes).

numpy only, so evaluation and bag conversion run where torch is absent; training wraps these
in torch datasets.
"""
from __future__ import annotations

import os
from pathlib import Path

from depth_unet_ros.errors import DatasetError


def open_dataset(path: str | os.PathLike, splits: str | os.PathLike | None = None,
                 split: str = "test", depth: str = "dense"):
    """The reader for ``path``: NyuLabeledDataset for a ``.mat`` file, BagDataset for a rosbag2
    folder (its default topics), FolderDataset for a folder of frame folders.

    For a ``.mat`` without ``splits``, a ``splits.mat`` beside it is used when present; with
    neither, only ``split="all"`` is accepted, so a train/test mix-up cannot pass silently.
    Folder datasets have no splits (``split`` and ``depth`` are ignored; ``splits`` is an error).
    """
    path = Path(path)
    if (path / "metadata.yaml").is_file():  # a rosbag2 folder
        from depth_unet_ros.datasets.bag import BagDataset

        return BagDataset(path)
    if path.is_dir():
        if splits is not None:
            raise DatasetError(f"{path} is a folder dataset, which has no splits; drop the "
                               f"splits file {splits} or pass nyu_depth_v2_labeled.mat")
        from depth_unet_ros.datasets.folder import FolderDataset

        return FolderDataset(path)
    if path.suffix.lower() == ".mat":
        from depth_unet_ros.datasets.nyu_mat import NyuLabeledDataset

        if splits is None and split != "all" and (path.parent / "splits.mat").is_file():
            splits = path.parent / "splits.mat"
        return NyuLabeledDataset(path, splits_path=splits, split=split, depth=depth)
    if not path.exists():
        raise DatasetError(f"dataset {path} does not exist; pass nyu_depth_v2_labeled.mat or a "
                           "folder of frame folders (rgb.png/jpg, depth_mm.png, camera.json)")
    raise DatasetError(f"cannot tell what dataset {path} is; pass nyu_depth_v2_labeled.mat or a "
                       "folder of frame folders (rgb.png/jpg, depth_mm.png, camera.json)")
