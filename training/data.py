"""Frames -> tensors at the network size, and the data loaders of a training run.

Every random choice is a pure function of (seed, epoch, frame index): augmentation draws from
an RNG built from those three numbers and the frame order comes from a sampler seeded with
(seed + epoch). So a resumed run sees exactly the batches an uninterrupted run would have seen,
whatever the number of loader workers.
"""
from __future__ import annotations

import random
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset, DistributedSampler

from depth_unet_ros.datasets.base import RGBDFrame
from depth_unet_ros.errors import DatasetError
from depth_unet_ros.preprocessing import resize_depth_nearest, resize_image
from training.augment import AugmentConfig, augment_frame
from training.config import SYNTHETIC, DataConfig, TrainConfig

# Offset between the synthetic training and validation seeds: validation scenes are never
# among the training scenes, so the validation metrics measure generalisation.
SYNTHETIC_VAL_SEED_OFFSET = 1000


class TrainingFrames(Dataset):
    """A frame dataset as dicts of tensors at ``size_hw``, optionally augmented.

    Items: ``image`` (H, W, 3) uint8 RGB, ``depth`` (1, H, W) float32 metres (0 = invalid),
    ``valid`` (1, H, W) bool, ``index`` int64 (position in the wrapped dataset).
    """

    def __init__(self, dataset: Sequence[RGBDFrame], size_hw: tuple[int, int],
                 augment_cfg: AugmentConfig | None = None, seed: int = 0) -> None:
        self.dataset = dataset
        self.size_hw = (int(size_hw[0]), int(size_hw[1]))
        self.augment_cfg = augment_cfg
        self.seed = int(seed)
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        """Pick the augmentation draws of ``epoch``; loader workers copy this at iter() time."""
        self.epoch = int(epoch)

    def __len__(self) -> int:
        return len(self.dataset)

    def frame_rng(self, index: int) -> np.random.Generator:
        """The augmentation RNG of frame ``index`` in the current epoch (independent streams)."""
        return np.random.default_rng([self.seed, self.epoch, int(index)])

    def __getitem__(self, index: int) -> dict[str, torch.Tensor]:
        frame = self.dataset[index]
        if self.augment_cfg is not None:
            frame = augment_frame(frame, self.augment_cfg, self.frame_rng(index))
        image = resize_image(frame.image, self.size_hw)  # (H, W, 3) uint8
        depth_m = resize_depth_nearest(frame.depth_m, self.size_hw)  # (H, W) float32
        with np.errstate(invalid="ignore"):
            valid = np.isfinite(depth_m) & (depth_m > 0)
        depth_m = np.where(valid, depth_m, 0.0).astype(np.float32)
        return {
            "image": torch.from_numpy(np.ascontiguousarray(image)),  # (H, W, 3) uint8
            "depth": torch.from_numpy(depth_m)[None],  # (1, H, W) float32
            "valid": torch.from_numpy(valid)[None],  # (1, H, W) bool
            "index": torch.tensor(int(index), dtype=torch.int64),
        }


@dataclass
class Loaders:
    train: DataLoader
    train_frames: TrainingFrames
    train_sampler: DistributedSampler
    val: DataLoader | None  # None when data.val is null


def open_frames(source: str, data: DataConfig, split: str, synthetic_frames: int,
                synthetic_seed: int, frames: tuple[int, int] | None = None) -> Sequence[RGBDFrame]:
    """The frame dataset behind ``data.train`` or ``data.val`` (``frames``: its range)."""
    if source == SYNTHETIC:
        from depth_unet_ros.datasets.synthetic.scenes import SyntheticIndoorDataset

        return SyntheticIndoorDataset(synthetic_frames, seed=synthetic_seed,
                                      height=data.synthetic_height, width=data.synthetic_width,
                                      variant=data.synthetic_variant)
    if uses_sequence_options(source, data, frames):
        return open_sequence(source, data, frames)
    from depth_unet_ros.datasets import open_dataset

    # Without a splits file a .mat has no named splits: use every frame it holds.
    return open_dataset(source, splits=data.splits, split=split if data.splits else "all",
                        depth=data.depth)


def uses_sequence_options(source: str, data: DataConfig, frames: tuple[int, int] | None) -> bool:
    """Whether ``source`` is a frame folder that needs RegisteredSequence (registration, focal,
    range, repeats); a .mat file or a bag is read as it is."""
    path = Path(source)
    if not path.is_dir() or (path / "metadata.yaml").is_file():
        return False
    return (data.register_colour is not None or data.target_focal_px is not None
            or frames is not None or data.drop_duplicates)


def open_sequence(source: str, data: DataConfig, frames: tuple[int, int] | None) -> Sequence[RGBDFrame]:
    """A folder sequence registered, resampled and cut as the data section says."""
    from depth_unet_ros.datasets.base import Intrinsics
    from depth_unet_ros.datasets.registered import FrameRange, RegisteredSequence
    from depth_unet_ros.datasets.registration import RigCalibration

    rig = None
    if data.register_colour is not None:
        fx, fy, cx, cy = data.register_colour
        first = RegisteredSequence(source).source[0].intrinsics  # the stored size
        rig = RigCalibration(Intrinsics(fx, fy, cx, cy, first.width, first.height),
                             data.register_shift_m)
    span = FrameRange(*frames) if frames is not None else None
    return RegisteredSequence(source, rig, span, data.target_focal_px, data.drop_duplicates)


class _Concat(Dataset):
    """Frames of several datasets, one after another (real frames, then synthetic rooms)."""

    def __init__(self, parts: Sequence[Sequence[RGBDFrame]]) -> None:
        self.parts = list(parts)
        self.offsets = np.cumsum([0] + [len(p) for p in self.parts])

    def __len__(self) -> int:
        return int(self.offsets[-1])

    def __getitem__(self, index: int) -> RGBDFrame:
        part = int(np.searchsorted(self.offsets, index, side="right")) - 1
        return self.parts[part][index - int(self.offsets[part])]


def _maybe_cached(frames: Sequence[RGBDFrame], data: DataConfig) -> Sequence[RGBDFrame]:
    return _InMemory(frames) if data.cache_frames else frames


class _Subset(Dataset):
    """The first ``count`` frames of a dataset (val_max_frames)."""

    def __init__(self, dataset: Sequence[RGBDFrame], count: int) -> None:
        self.dataset, self.count = dataset, min(count, len(dataset))

    def __len__(self) -> int:
        return self.count

    def __getitem__(self, index: int) -> RGBDFrame:
        return self.dataset[index]


class _InMemory(Dataset):
    """Every frame read once, up front (data.cache_frames).

    Eager, so loader workers fork with the frames already in memory; a lazy cache would die
    with the workers at the end of each epoch.
    """

    def __init__(self, dataset: Sequence[RGBDFrame]) -> None:
        self.frames = [dataset[i] for i in range(len(dataset))]

    def __len__(self) -> int:
        return len(self.frames)

    def __getitem__(self, index: int) -> RGBDFrame:
        return self.frames[index]


def seed_worker(worker_id: int) -> None:
    """Seed numpy and random in a loader worker from torch's per-worker seed.

    Our augmentation has its own per-frame RNG; this keeps any other library code that uses
    the global RNGs from producing the same numbers in every worker.
    """
    seed = torch.initial_seed() % 2 ** 32
    np.random.seed(seed)
    random.seed(seed)


def build_dataloaders(cfg: TrainConfig, rank: int = 0, world_size: int = 1) -> Loaders:
    """Training loader (each rank a disjoint shard, reshuffled per epoch) and validation loader.

    One DistributedSampler serves both the single-process and the torchrun case, so the frame
    order is a function of (run.seed, epoch) alone; call ``train_sampler.set_epoch`` and
    ``train_frames.set_epoch`` before each epoch. Validation is unsharded: rank 0 runs it.
    """
    data, size_hw = cfg.data, (cfg.model.input_height, cfg.model.input_width)
    train_set = open_frames(data.train, data, data.train_split, data.synthetic_train_frames,
                            data.synthetic_seed, data.train_frames)
    if data.synthetic_mix_frames > 0:
        from depth_unet_ros.datasets.synthetic.scenes import SyntheticIndoorDataset

        train_set = _Concat([train_set, SyntheticIndoorDataset(
            data.synthetic_mix_frames, seed=data.synthetic_seed, height=data.synthetic_height,
            width=data.synthetic_width, variant=data.synthetic_variant)])
    augment_cfg = cfg.augment if data.augment_train else None
    train_frames = TrainingFrames(_maybe_cached(train_set, data), size_hw, augment_cfg,
                                  seed=cfg.run.seed)
    global_batch = cfg.optim.batch_size * world_size
    if len(train_frames) < global_batch:
        raise DatasetError(
            f"the training set {data.train} has {len(train_frames)} frames, fewer than one batch of "
            f"{global_batch} (optim.batch_size={cfg.optim.batch_size} x {world_size} processes); "
            "lower optim.batch_size or add frames")
    sampler = DistributedSampler(train_frames, num_replicas=world_size, rank=rank, shuffle=True,
                                 seed=cfg.run.seed, drop_last=True)
    common: dict[str, Any] = {"num_workers": data.num_workers, "worker_init_fn": seed_worker,
                              "pin_memory": torch.cuda.is_available(),
                              # fresh workers each epoch copy the new epoch set by set_epoch
                              "persistent_workers": False}
    # drop_last: a one-frame last batch would give batch norm meaningless statistics.
    train = DataLoader(train_frames, batch_size=cfg.optim.batch_size, sampler=sampler,
                       drop_last=True, **common)
    val = None
    if data.val is not None:
        val_set = open_frames(data.val, data, data.val_split, data.synthetic_val_frames,
                              data.synthetic_seed + SYNTHETIC_VAL_SEED_OFFSET, data.val_frames)
        if data.val_max_frames is not None:
            val_set = _Subset(val_set, data.val_max_frames)
        val_set = _maybe_cached(val_set, data)
        if len(val_set) == 0:
            raise DatasetError(f"the validation set {data.val} has no frames; set data.val to a "
                               "dataset with frames, or data.val=null to skip validation")
        val = DataLoader(TrainingFrames(val_set, size_hw, None, seed=cfg.run.seed),
                         batch_size=cfg.optim.batch_size, shuffle=False, **common)
    return Loaders(train=train, train_frames=train_frames, train_sampler=sampler, val=val)
