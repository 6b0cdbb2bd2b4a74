"""NyuLabeledDataset and read_splits against tiny files in the real NYU layout."""
from __future__ import annotations

import multiprocessing
import os
import pickle
from pathlib import Path

import h5py
import numpy as np
import pytest

from depth_unet_ros.datasets import open_dataset
from depth_unet_ros.datasets.base import NYU_INTRINSICS
from depth_unet_ros.datasets.folder import FolderDataset
from depth_unet_ros.datasets.nyu_mat import NyuLabeledDataset, read_splits
from depth_unet_ros.errors import DatasetError
from nyu_layout import patterned_frames, write_nyu_mat, write_splits_mat

SAMPLES = Path(__file__).resolve().parents[2] / "shared" / "data" / "nyu_samples"
N = 3


@pytest.fixture(scope="module")
def frames():
    return patterned_frames(N)


@pytest.fixture(scope="module")
def mat_path(tmp_path_factory, frames):
    path = tmp_path_factory.mktemp("nyu") / "nyu_depth_v2_labeled.mat"
    return write_nyu_mat(path, *frames)


@pytest.fixture(scope="module")
def splits_path(tmp_path_factory):
    return write_splits_mat(tmp_path_factory.mktemp("splits") / "splits.mat", [1, 3], [2])


def test_helper_writes_matlab_73_header_and_reversed_axes(mat_path):
    """The fake file looks like MATLAB's: text header in the user block, axes reversed."""
    assert mat_path.read_bytes()[:19] == b"MATLAB 7.3 MAT-file"
    with h5py.File(mat_path, "r") as f:
        assert f.userblock_size == 512
        assert f["images"].shape == (N, 3, 640, 480) and f["images"].dtype == np.uint8
        assert f["depths"].shape == (N, 640, 480) and f["rawDepths"].dtype == np.float32


@pytest.mark.parametrize("kind", ["dense", "raw"])
def test_frames_round_trip_pixel_for_pixel(mat_path, frames, kind):
    """Image and depth come back exactly as written, in (H, W) order, for dense and raw depth."""
    images, dense, raw = frames
    with NyuLabeledDataset(mat_path, depth=kind) as ds:
        assert len(ds) == N
        for k in range(N):
            frame = ds[k]
            assert frame.image.shape == (480, 640, 3) and frame.image.dtype == np.uint8
            assert frame.depth_m.dtype == np.float32
            np.testing.assert_array_equal(frame.image, images[k])
            np.testing.assert_array_equal(frame.depth_m, (dense if kind == "dense" else raw)[k])
            assert frame.name == f"nyu_{k:05d}"
            assert frame.intrinsics == NYU_INTRINSICS


def test_nan_and_nonpositive_depth_become_invalid_zero(tmp_path, frames):
    """NaN, negative and zero depths read as 0 (invalid); valid values are untouched."""
    images, dense, raw = (a[:1].copy() for a in frames)
    raw[0, 0, :3] = [np.nan, -1.0, 0.0]
    raw[0, 1, 0] = np.inf
    ds = NyuLabeledDataset(write_nyu_mat(tmp_path / "nan.mat", images, dense, raw), depth="raw")
    depth = ds[0].depth_m
    assert list(depth[0, :3]) == [0.0, 0.0, 0.0] and depth[1, 0] == 0.0
    assert depth[0, 3] == raw[0, 0, 3]


def test_splits_one_based_become_zero_based(splits_path):
    """trainNdxs [1, 3] / testNdxs [2] read as 0-based int64 [0, 2] / [1]."""
    splits = read_splits(splits_path)
    assert splits["train"].dtype == np.int64
    assert splits["train"].tolist() == [0, 2] and splits["test"].tolist() == [1]


def test_split_selects_frames_and_keeps_labeled_index_names(mat_path, splits_path, frames):
    """split='train' yields labeled frames 0 and 2, named by their index in the labeled set."""
    ds = NyuLabeledDataset(mat_path, splits_path, split="train")
    assert len(ds) == 2
    assert [ds[i].name for i in range(2)] == ["nyu_00000", "nyu_00002"]
    np.testing.assert_array_equal(ds[1].image, frames[0][2])
    assert NyuLabeledDataset(mat_path, splits_path, split="test")[0].name == "nyu_00001"


def test_real_splits_file_has_795_train_654_test():
    """The official splits.mat gives 795 train / 654 test disjoint indices in [0, 1449)."""
    path = SAMPLES / "splits.mat"
    if not path.is_file():
        pytest.skip(f"{path} not present")
    splits = read_splits(path)
    assert len(splits["train"]) == 795 and len(splits["test"]) == 654
    both = np.concatenate([splits["train"], splits["test"]])
    assert both.min() >= 0 and both.max() < 1449 and len(np.unique(both)) == 1449


def test_dataset_pickles_without_handle_and_copy_reads(mat_path, frames):
    """A used dataset pickles (the h5py handle is dropped) and the copy reads the same frames."""
    ds = NyuLabeledDataset(mat_path)
    ds[0]
    copy = pickle.loads(pickle.dumps(ds))
    assert copy._file is None
    np.testing.assert_array_equal(copy[2].image, frames[0][2])
    np.testing.assert_array_equal(ds[2].depth_m, copy[2].depth_m)


def _summary(frame):
    return frame.name, float(frame.depth_m.sum()), int(frame.image.sum())


def _forked_reader(ds, queue):
    queue.put(([_summary(ds[i]) for i in range(len(ds))], ds._pid == os.getpid()))


@pytest.mark.skipif("fork" not in multiprocessing.get_all_start_methods(), reason="needs fork")
def test_forked_worker_reopens_inherited_dataset(mat_path):
    """A process forked after the parent opened the file opens its own handle and reads right."""
    ds = NyuLabeledDataset(mat_path)
    expected = [_summary(ds[i]) for i in range(N)]  # the parent's handle is open now
    ctx = multiprocessing.get_context("fork")
    queue = ctx.Queue()
    workers = [ctx.Process(target=_forked_reader, args=(ds, queue)) for _ in range(2)]
    for w in workers:
        w.start()
    results = [queue.get(timeout=60) for _ in workers]
    for w in workers:
        w.join(timeout=60)
    assert all(got == expected and own_handle for got, own_handle in results)
    assert ds._pid == os.getpid() and ds[0].name == "nyu_00000"  # parent's handle still works


def test_close_then_read_reopens(mat_path):
    """close() drops the handle and a later read reopens it."""
    ds = NyuLabeledDataset(mat_path)
    ds[0]
    ds.close()
    assert ds._file is None
    assert ds[1].name == "nyu_00001"
    ds.close()


def test_open_dataset_picks_reader_by_path(mat_path, splits_path, tmp_path):
    """.mat -> NyuLabeledDataset (splits.mat beside it used), folder -> FolderDataset."""
    nyu = open_dataset(mat_path, splits=splits_path, split="test")
    assert isinstance(nyu, NyuLabeledDataset) and len(nyu) == 1
    assert len(open_dataset(mat_path, split="all")) == N
    beside = tmp_path / "nyu.mat"
    beside.write_bytes(mat_path.read_bytes())
    write_splits_mat(tmp_path / "splits.mat", [1], [2, 3])
    assert len(open_dataset(beside)) == 2  # test split from the splits.mat next to it
    if SAMPLES.is_dir():
        assert isinstance(open_dataset(SAMPLES), FolderDataset)
    with pytest.raises(DatasetError, match="does not exist"):
        open_dataset(tmp_path / "missing.h5")
    (tmp_path / "notes.txt").write_text("x")
    with pytest.raises(DatasetError, match="cannot tell"):
        open_dataset(tmp_path / "notes.txt")


# --- errors: each names the file and says what to do ------------------------------------


def test_missing_mat_file(tmp_path):
    with pytest.raises(DatasetError, match=r"missing\.mat does not exist.*download"):
        NyuLabeledDataset(tmp_path / "missing.mat")


def test_not_hdf5_file(tmp_path):
    bad = tmp_path / "truncated.mat"
    bad.write_bytes(b"\0" * 2048)
    with pytest.raises(DatasetError, match=r"truncated\.mat is not an HDF5"):
        NyuLabeledDataset(bad)


def test_matlab_v5_file_given_as_data(splits_path):
    """Passing splits.mat (MATLAB v5) as the data file says so and points to the right file."""
    with pytest.raises(DatasetError, match=r"splits\.mat is a MATLAB v5 .*not v7\.3"):
        NyuLabeledDataset(splits_path)


@pytest.mark.parametrize("missing", ["images", "depths", "rawDepths"])
def test_missing_dataset_in_file(tmp_path, frames, missing):
    path = write_nyu_mat(tmp_path / "partial.mat", *(a[:1] for a in frames))
    with h5py.File(path, "r+") as f:
        del f[missing]
    with pytest.raises(DatasetError, match=rf"partial\.mat has no '{missing}' dataset"):
        NyuLabeledDataset(path)


def test_wrong_image_shape(tmp_path):
    path = write_nyu_mat(tmp_path / "small.mat", np.zeros((1, 48, 64, 3), np.uint8),
                         np.ones((1, 48, 64)), np.ones((1, 48, 64)))
    with pytest.raises(DatasetError, match=r"small\.mat: 'images' is \(1, 3, 64, 48\)"):
        NyuLabeledDataset(path)


def test_wrong_depth_dtype(tmp_path, frames):
    path = write_nyu_mat(tmp_path / "intdepth.mat", *(a[:1] for a in frames))
    with h5py.File(path, "r+") as f:
        del f["depths"]
        f.create_dataset("depths", data=np.zeros((1, 640, 480), np.uint16))
    with pytest.raises(DatasetError, match=r"intdepth\.mat: 'depths' is .*uint16.*float"):
        NyuLabeledDataset(path)


def test_split_index_beyond_file(mat_path, tmp_path):
    """Splits made for 1449 frames on a 3-frame file name both files and the fix."""
    big = write_splits_mat(tmp_path / "splits.mat", [1, 795], [1449])
    with pytest.raises(DatasetError, match=r"frame 1449 .*holds only 3 frames"):
        NyuLabeledDataset(mat_path, big, split="test")


def test_unknown_split_and_depth_kind(mat_path, splits_path):
    with pytest.raises(DatasetError, match="unknown split 'val'"):
        NyuLabeledDataset(mat_path, splits_path, split="val")
    with pytest.raises(DatasetError, match="unknown depth kind 'filled'"):
        NyuLabeledDataset(mat_path, depth="filled")


def test_split_without_splits_file(mat_path):
    with pytest.raises(DatasetError, match="needs the splits file"):
        NyuLabeledDataset(mat_path, split="test")


def test_bad_splits_file(tmp_path, mat_path):
    with pytest.raises(DatasetError, match=r"nosplits\.mat does not exist"):
        read_splits(tmp_path / "nosplits.mat")
    import scipy.io

    scipy.io.savemat(str(tmp_path / "other.mat"), {"idx": np.arange(3)})
    with pytest.raises(DatasetError, match=r"other\.mat has no 'trainNdxs'"):
        read_splits(tmp_path / "other.mat")
    with pytest.raises(DatasetError, match="not a MATLAB v5 splits.mat"):
        read_splits(mat_path)


def test_index_out_of_range(mat_path):
    with pytest.raises(IndexError):
        NyuLabeledDataset(mat_path)[N]
