"""FolderDataset and write_folder_frame: the real sample frames, round trips and error messages."""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import cv2
import numpy as np
import pytest

from depth_unet_ros.datasets.base import NYU_INTRINSICS, Intrinsics, RGBDFrame
from depth_unet_ros.datasets.folder import FolderDataset, write_folder_frame
from depth_unet_ros.errors import DatasetError

SAMPLES = Path(__file__).resolve().parents[2] / "shared" / "data" / "nyu_samples"


def _frame(h=24, w=32, seed=0, name="f") -> RGBDFrame:
    rng = np.random.default_rng(seed)
    rows, cols = np.mgrid[0:h, 0:w]  # smooth, so JPEG keeps it close; distinct per channel
    image = np.stack([rows * 200 // h, cols * 250 // w, 255 - (rows + cols) * 100 // (h + w)],
                     axis=-1).astype(np.uint8)
    image[0, 0] = rng.integers(0, 256, 3)  # seed-dependent
    depth = rng.uniform(0.3, 9.0, (h, w)).astype(np.float32)
    depth[rng.random((h, w)) < 0.2] = 0.0
    return RGBDFrame(image, depth, NYU_INTRINSICS.scaled(w, h), name)


@pytest.fixture
def samples():
    if not SAMPLES.is_dir():
        pytest.skip(f"{SAMPLES} not present")
    return SAMPLES


def test_real_samples_load_with_shapes_and_plausible_depth(samples):
    """The NYU sample folders read as RGB uint8 + metres, sorted, with their own intrinsics."""
    ds = FolderDataset(samples)
    names = [ds[i].name for i in range(len(ds))]
    assert names == ["basement_0001a_00000", "basement_0001a_00050", "basement_0001a_00100",
                     "bedroom_0004_crop"]
    for i in range(len(ds)):
        frame = ds[i]
        h, w = (427, 565) if frame.name == "bedroom_0004_crop" else (480, 640)
        assert frame.image.shape == (h, w, 3) and frame.image.dtype == np.uint8
        assert frame.depth_m.shape == (h, w) and frame.depth_m.dtype == np.float32
        assert (frame.intrinsics.width, frame.intrinsics.height) == (w, h)
        valid = frame.depth_m[frame.depth_m > 0]
        assert valid.size > 0.3 * h * w  # raw Kinect frames are ~70 % valid
        assert 0.3 < valid.min() and valid.max() < 10.5 and 0.7 < np.median(valid) < 6.0


def test_rgb_is_converted_from_opencv_bgr(samples):
    """The image is RGB: the same as OpenCV's BGR read with the channels reversed."""
    frame = FolderDataset(samples / "bedroom_0004_crop")[0]
    bgr = cv2.imread(str(samples / "bedroom_0004_crop" / "rgb.jpg"), cv2.IMREAD_COLOR)
    np.testing.assert_array_equal(frame.image, bgr[:, :, ::-1])


def test_root_may_be_a_single_frame_folder(samples):
    ds = FolderDataset(samples / "bedroom_0004_crop")
    assert len(ds) == 1 and ds[0].name == "bedroom_0004_crop"
    assert ds[0].intrinsics.cx == pytest.approx(282.5824)


@pytest.mark.parametrize("jpeg", [False, True])
def test_write_read_round_trip(tmp_path, jpeg):
    """Depth comes back within 0.5 mm with zeros kept; PNG colour exactly, JPEG closely."""
    frame = _frame()
    write_folder_frame(tmp_path / "root" / "a", frame, jpeg=jpeg)
    back = FolderDataset(tmp_path / "root")[0]
    assert back.name == "a" and back.intrinsics == frame.intrinsics
    assert np.all((back.depth_m == 0) == (frame.depth_m == 0))
    assert np.abs(back.depth_m - frame.depth_m).max() <= 0.0005 + 1e-6
    if jpeg:
        assert (tmp_path / "root" / "a" / "rgb.jpg").is_file()
        assert np.abs(back.image.astype(int) - frame.image.astype(int)).mean() < 4
    else:
        np.testing.assert_array_equal(back.image, frame.image)


def test_write_invalid_and_out_of_range_depth(tmp_path):
    """NaN and negative depth write as 0; depth beyond 65.535 m clips to 65535 mm."""
    frame = _frame(4, 4)
    frame.depth_m[0, :3] = [np.nan, -2.0, 100.0]
    write_folder_frame(tmp_path / "f", frame)
    raw = cv2.imread(str(tmp_path / "f" / "depth_mm.png"), cv2.IMREAD_UNCHANGED)
    assert raw.dtype == np.uint16 and list(raw[0, :3]) == [0, 0, 65535]


def test_rewrite_as_png_removes_stale_jpeg(tmp_path):
    """A folder holds one colour file, so readers cannot disagree about which is current."""
    write_folder_frame(tmp_path / "f", _frame(seed=1), jpeg=True)
    write_folder_frame(tmp_path / "f", _frame(seed=2))
    assert not (tmp_path / "f" / "rgb.jpg").exists()
    np.testing.assert_array_equal(FolderDataset(tmp_path / "f")[0].image, _frame(seed=2).image)


def test_frames_sorted_by_folder_name(tmp_path):
    for name in ["b", "a", "c"]:
        write_folder_frame(tmp_path / name, _frame(name=name))
    assert [FolderDataset(tmp_path)[i].name for i in range(3)] == ["a", "b", "c"]


# --- errors: each names the path and the fix -------------------------------------------


def test_missing_root(tmp_path):
    with pytest.raises(DatasetError, match=r"nowhere does not exist; pass a folder"):
        FolderDataset(tmp_path / "nowhere")


def test_root_without_frames(tmp_path):
    with pytest.raises(DatasetError, match=r"has no frame folders; each frame folder needs"):
        FolderDataset(tmp_path)


@pytest.mark.parametrize("remove", ["rgb.png", "depth_mm.png", "camera.json"])
def test_frame_missing_a_file(tmp_path, remove):
    write_folder_frame(tmp_path / "a", _frame())
    write_folder_frame(tmp_path / "b", _frame())
    (tmp_path / "b" / remove).unlink()
    expected = "rgb.png or rgb.jpg" if remove == "rgb.png" else remove.replace(".", r"\.")
    with pytest.raises(DatasetError, match=rf"frame folder .*b lacks {expected}"):
        FolderDataset(tmp_path)


def test_image_depth_size_mismatch(tmp_path):
    write_folder_frame(tmp_path / "a", _frame())
    cv2.imwrite(str(tmp_path / "a" / "depth_mm.png"), np.ones((10, 10), np.uint16))
    with pytest.raises(DatasetError, match=r"depth_mm\.png is 10x10 but .*rgb\.png is 32x24"):
        FolderDataset(tmp_path)[0]


def test_camera_size_mismatch(tmp_path):
    write_folder_frame(tmp_path / "a", _frame())
    cam = NYU_INTRINSICS.as_dict()
    (tmp_path / "a" / "camera.json").write_text(json.dumps(cam))
    with pytest.raises(DatasetError, match=r"camera\.json says 640x480 but .*32x24.*scaled"):
        FolderDataset(tmp_path)[0]


def test_camera_json_malformed(tmp_path):
    write_folder_frame(tmp_path / "a", _frame())
    (tmp_path / "a" / "camera.json").write_text('{"fx": 1}')
    with pytest.raises(DatasetError, match=r"camera\.json is not a valid camera file"):
        FolderDataset(tmp_path)[0]


def test_unreadable_image(tmp_path):
    write_folder_frame(tmp_path / "a", _frame())
    (tmp_path / "a" / "rgb.png").write_bytes(b"not a png")
    with pytest.raises(DatasetError, match=r"cannot read image .*rgb\.png"):
        FolderDataset(tmp_path)[0]


def test_depth_png_not_16_bit(tmp_path):
    write_folder_frame(tmp_path / "a", _frame())
    cv2.imwrite(str(tmp_path / "a" / "depth_mm.png"), np.ones((24, 32), np.uint8))
    with pytest.raises(DatasetError, match=r"depth_mm\.png is uint8 .*16-bit PNG"):
        FolderDataset(tmp_path)[0]


def test_write_rejects_intrinsics_of_another_size(tmp_path):
    frame = _frame()
    bad = RGBDFrame(frame.image, frame.depth_m, Intrinsics(1, 1, 0, 0, 64, 48), "x")
    with pytest.raises(DatasetError, match=r"intrinsics are for 64x48 .*32x24"):
        write_folder_frame(tmp_path / "x", bad)


def test_copied_sample_folder_is_a_dataset(samples, tmp_path):
    """A user's copy of one sample frame inside their own root reads the same frame."""
    shutil.copytree(samples / "basement_0001a_00000", tmp_path / "mine" / "0001")
    frame = FolderDataset(tmp_path / "mine")[0]
    assert frame.name == "0001" and frame.image.shape == (480, 640, 3)
