"""NYU Depth V2 labeled set (``nyu_depth_v2_labeled.mat``, MATLAB v7.3 = HDF5) and ``splits.mat``.

h5py sees MATLAB arrays with their axes reversed: ``images`` is (N, 3, W, H) and ``depths`` /
``rawDepths`` are (N, W, H), so one frame is ``images[k].transpose(2, 1, 0)`` -> (H, W, 3) RGB
and ``depths[k].T`` -> (H, W).
"""
from __future__ import annotations

import os
from pathlib import Path

import h5py
import numpy as np

from depth_unet_ros.datasets.base import NYU_INTRINSICS, RGBDFrame
from depth_unet_ros.errors import DatasetError

SPLITS = ("all", "train", "test")
DEPTH_KINDS = {"dense": "depths", "raw": "rawDepths"}
_HEIGHT, _WIDTH = NYU_INTRINSICS.height, NYU_INTRINSICS.width
_GET_DATA = "download nyu_depth_v2_labeled.mat (2.8 GB, MATLAB v7.3) from the NYU Depth V2 page"


def read_splits(path: str | os.PathLike) -> dict[str, np.ndarray]:
    """The official Eigen split: 1-based ``trainNdxs`` / ``testNdxs`` -> 0-based int64 indices."""
    import scipy.io  # only this function needs scipy

    path = Path(path)
    if not path.is_file():
        raise DatasetError(f"splits file {path} does not exist; pass the official splits.mat "
                           "(trainNdxs 795, testNdxs 654) that ships with NYU Depth V2")
    try:
        mat = scipy.io.loadmat(str(path))
    except (ValueError, NotImplementedError, OSError) as exc:
        raise DatasetError(f"{path} is not a MATLAB v5 splits.mat ({exc}); pass the official "
                           "splits.mat with trainNdxs/testNdxs") from exc
    splits = {}
    for name, key in (("train", "trainNdxs"), ("test", "testNdxs")):
        if key not in mat:
            raise DatasetError(f"{path} has no '{key}' array; pass the official splits.mat "
                               "with trainNdxs/testNdxs")
        idx = np.asarray(mat[key]).reshape(-1).astype(np.int64)
        if idx.size and idx.min() < 1:
            raise DatasetError(f"{path}: '{key}' holds index {idx.min()}, but MATLAB indices are "
                               "1-based; pass the official splits.mat")
        splits[name] = idx - 1
    return splits


def _check_layout(path: Path, f: h5py.File) -> int:
    """Number of frames, after checking the datasets have NYU's shapes and dtypes."""
    for key in ("images", *DEPTH_KINDS.values()):
        if key not in f or not isinstance(f[key], h5py.Dataset):
            raise DatasetError(f"{path} has no '{key}' dataset, so it is not "
                               f"nyu_depth_v2_labeled.mat; {_GET_DATA}")
    images = f["images"]
    if images.dtype != np.uint8 or images.ndim != 4 or images.shape[1:] != (3, _WIDTH, _HEIGHT):
        raise DatasetError(f"{path}: 'images' is {images.shape} {images.dtype}, expected "
                           f"(N, 3, {_WIDTH}, {_HEIGHT}) uint8 (h5py's view of MATLAB's "
                           f"{_HEIGHT}x{_WIDTH}x3xN); {_GET_DATA}")
    n = images.shape[0]
    for key in DEPTH_KINDS.values():
        ds = f[key]
        if ds.shape != (n, _WIDTH, _HEIGHT) or ds.dtype.kind != "f":
            raise DatasetError(f"{path}: '{key}' is {ds.shape} {ds.dtype}, expected "
                               f"({n}, {_WIDTH}, {_HEIGHT}) float metres; {_GET_DATA}")
    return n


def _open_checked(path: Path) -> h5py.File:
    """Open the .mat read-only with errors that say what the file actually is."""
    if not path.is_file():
        raise DatasetError(f"NYU file {path} does not exist; {_GET_DATA} and pass its path")
    if not h5py.is_hdf5(str(path)):
        with open(path, "rb") as fh:
            head = fh.read(20)
        if head.startswith(b"MATLAB 5.0 MAT-file"):
            raise DatasetError(f"{path} is a MATLAB v5 .mat file, not v7.3 (HDF5): if it is "
                               "splits.mat pass it as the splits file; the frames are in "
                               "nyu_depth_v2_labeled.mat")
        raise DatasetError(f"{path} is not an HDF5 (MATLAB v7.3) file; {_GET_DATA} "
                           "(a partial download is a common cause: check its size)")
    try:
        return h5py.File(path, "r")
    except OSError as exc:
        raise DatasetError(f"cannot open {path} as HDF5 ({exc}); re-download it") from exc


class NyuLabeledDataset:
    """Frames of ``nyu_depth_v2_labeled.mat`` as :class:`RGBDFrame`, optionally one split.

    Lazy and worker-safe: the HDF5 handle is opened on first access in each process (h5py
    handles must not cross ``fork`` or pickling), so DataLoader workers each read their own.
    ``depth="raw"`` gives the Kinect depth with holes (0); ``"dense"`` the in-painted maps.
    """

    def __init__(self, mat_path: str | os.PathLike, splits_path: str | os.PathLike | None = None,
                 split: str = "all", depth: str = "dense") -> None:
        if split not in SPLITS:
            raise DatasetError(f"unknown split '{split}' for {mat_path}; use one of {SPLITS}")
        if depth not in DEPTH_KINDS:
            raise DatasetError(f"unknown depth kind '{depth}' for {mat_path}; use one of "
                               f"{tuple(DEPTH_KINDS)}")
        self.mat_path = Path(mat_path)
        self.depth_key = DEPTH_KINDS[depth]
        with _open_checked(self.mat_path) as f:
            num_total = _check_layout(self.mat_path, f)
        if split == "all":
            self.indices = np.arange(num_total, dtype=np.int64)
        elif splits_path is None:
            raise DatasetError(f"split '{split}' of {mat_path} needs the splits file; pass "
                               "splits.mat (or use split='all')")
        else:
            self.indices = read_splits(splits_path)[split]
            if self.indices.size and self.indices.max() >= num_total:
                raise DatasetError(
                    f"{splits_path} indexes frame {self.indices.max() + 1} (1-based) but "
                    f"{mat_path} holds only {num_total} frames; use the full "
                    "nyu_depth_v2_labeled.mat (1449 frames) or splits made for this file")
        self._file: h5py.File | None = None
        self._pid: int | None = None

    def __len__(self) -> int:
        return int(self.indices.size)

    def _handle(self) -> h5py.File:
        if self._file is None or self._pid != os.getpid():
            # A handle inherited through fork belongs to the parent: never close or reuse it.
            self._file = _open_checked(self.mat_path)
            self._pid = os.getpid()
        return self._file

    def __getitem__(self, i: int) -> RGBDFrame:
        if not -len(self) <= i < len(self):
            raise IndexError(f"frame {i} out of range for {len(self)} frames of {self.mat_path}")
        k = int(self.indices[i])
        f = self._handle()
        image = np.ascontiguousarray(f["images"][k].transpose(2, 1, 0))  # (H, W, 3) RGB
        depth_m = np.asarray(f[self.depth_key][k].T, dtype=np.float32)  # (H, W) metres
        depth_m = np.where(np.isfinite(depth_m) & (depth_m > 0), depth_m, 0).astype(np.float32)
        return RGBDFrame(image=image, depth_m=depth_m, intrinsics=NYU_INTRINSICS,
                         name=f"nyu_{k:05d}")

    def close(self) -> None:
        """Close this process's handle (safe to call again; the next access reopens)."""
        if self._file is not None and self._pid == os.getpid():
            self._file.close()
        self._file, self._pid = None, None

    def __enter__(self) -> "NyuLabeledDataset":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def __getstate__(self) -> dict:
        state = self.__dict__.copy()
        state["_file"], state["_pid"] = None, None  # h5py handles do not pickle
        return state
