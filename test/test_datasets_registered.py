"""Depth registration into another camera, and the registered sequence dataset (ranges, repeats)."""
from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest

from depth_unet_ros.datasets.base import Intrinsics, RGBDFrame
from depth_unet_ros.datasets.folder import write_folder_frame
from depth_unet_ros.datasets.registered import FrameRange, RegisteredSequence, resample_to_focal
from depth_unet_ros.datasets.registration import RigCalibration, fill_cracks, register_depth
from depth_unet_ros.errors import DatasetError

DEPTH_K = Intrinsics(585.0, 585.0, 320.0, 240.0, 640, 480)  # Kinect v1 depth camera
COLOUR_K = Intrinsics(530.0, 530.0, 320.0, 240.0, 640, 480)  # a wider colour lens
SEVEN_SCENES = Path(__file__).resolve().parents[1] / ".." / "shared" / "data" / "real_handheld_7scenes"


def test_same_camera_and_no_shift_is_the_identity():
    """Registering into the same camera with t = 0 returns the depth unchanged."""
    depth = np.random.default_rng(0).uniform(0.5, 5.0, (480, 640)).astype(np.float32)
    depth[100:120, 200:260] = 0  # holes stay holes
    np.testing.assert_allclose(register_depth(depth, DEPTH_K, DEPTH_K), depth, rtol=1e-6)


def test_plane_lands_where_geometry_says():
    """A wall at 2 m keeps z = 2 m and its image edges move to fx_c (x + t) / z + cx_c."""
    depth = np.full((480, 640), 2.0, np.float32)
    shift = (-0.02, 0.0, 0.0)
    out = register_depth(depth, DEPTH_K, COLOUR_K, shift)
    valid = out > 0
    np.testing.assert_allclose(out[valid], 2.0, rtol=1e-6)
    cols = np.nonzero(valid[240])[0]
    left = COLOUR_K.fx * ((0 - DEPTH_K.cx) / DEPTH_K.fx * 2.0 + shift[0]) / 2.0 + COLOUR_K.cx
    right = COLOUR_K.fx * ((639 - DEPTH_K.cx) / DEPTH_K.fx * 2.0 + shift[0]) / 2.0 + COLOUR_K.cx
    assert abs(cols.min() - left) <= 1 and abs(cols.max() - right) <= 1
    # A shorter colour focal shrinks the depth camera's view: every target pixel inside is hit.
    assert valid[240, cols.min():cols.max() + 1].all()


def test_z_buffer_keeps_the_nearest_surface():
    """Where a near and a far point project to one colour pixel, the near one wins (occlusion)."""
    depth = np.full((480, 640), 3.0, np.float32)
    depth[:, :320] = 1.0  # a near object on the left, a far wall on the right
    out = register_depth(depth, DEPTH_K, DEPTH_K, (0.102, 0.0, 0.0))
    # Shifted right by 0.102 m, the near edge moves 59.7 px (fx t / z), the far one 19.9 px, so
    # the near object covers colour columns that far points also reach.
    edge_near = 320 + 585.0 * 0.102 / 1.0
    assert np.all(out[240, 345:int(edge_near) - 1] == 1.0)
    assert np.all(out[240, int(edge_near) + 2:600] == 3.0)


def test_registered_points_reproject_into_the_depth_image():
    """Each registered pixel, back-projected from the colour camera and moved back by -t, lands
    on a depth pixel of the same depth (the registration's defining property)."""
    rng = np.random.default_rng(1)
    depth = np.repeat(np.repeat(rng.uniform(0.8, 4.0, (48, 64)), 10, 0), 10, 1).astype(np.float32)
    t = (-0.025, 0.004, 0.001)
    out = register_depth(depth, DEPTH_K, COLOUR_K, t)
    v, u = np.nonzero(out > 0)
    z = out[v, u]
    x = (u - COLOUR_K.cx) / COLOUR_K.fx * z - t[0]
    y = (v - COLOUR_K.cy) / COLOUR_K.fy * z - t[1]
    zd = z - t[2]
    ud = np.clip(np.rint(x / zd * DEPTH_K.fx + DEPTH_K.cx).astype(int), 0, 639)
    vd = np.clip(np.rint(y / zd * DEPTH_K.fy + DEPTH_K.cy).astype(int), 0, 479)
    agree = np.abs(depth[vd, ud] - zd) < 0.01 * zd
    assert agree.mean() > 0.97  # the rest: pixels at the 10-px cell edges, one pixel off


def test_fill_cracks_fills_pinholes_but_not_depth_edges():
    """A one-pixel hole between equal neighbours is filled; one between 1 m and 3 m is not."""
    depth = np.full((5, 7), 2.0, np.float32)
    depth[2, 3] = 0
    assert fill_cracks(depth)[2, 3] == pytest.approx(2.0)
    step = np.full((5, 7), 1.0, np.float32)
    step[:, 4:] = 3.0
    step[2, 3] = 0
    step[1:4, 3] = 0  # a vertical slit at the edge: neither axis has close neighbours
    assert fill_cracks(step)[2, 3] == 0


def test_resample_to_focal_scales_about_the_principal_point():
    """A point at radius r from the centre moves to r * f_target / f_source."""
    image = np.zeros((480, 640, 3), np.uint8)
    image[240, 320 + 200] = 255
    target = Intrinsics(500.0, 500.0, 320.0, 240.0, 640, 480)
    out = resample_to_focal(image, COLOUR_K, target)
    col = int(np.argmax(out[240, :, 0]))
    assert abs(col - (320 + 200 * 500.0 / 530.0)) <= 1


def _sequence(tmp_path: Path, count: int = 6) -> Path:
    rng = np.random.default_rng(2)
    for i in range(count):
        image = rng.integers(0, 256, (48, 64, 3), dtype=np.uint8)
        depth = rng.uniform(0.5, 4.0, (48, 64)).astype(np.float32)
        k = Intrinsics(58.5, 58.5, 32.0, 24.0, 64, 48)
        write_folder_frame(tmp_path / f"frame_{i:06d}", RGBDFrame(image, depth, k, str(i)))
    # frame 3 is a byte copy of frame 2, as a sensor that repeated a frame writes it
    for name in ("rgb.png", "depth_mm.png"):
        shutil.copy(tmp_path / "frame_000002" / name, tmp_path / "frame_000003" / name)
    return tmp_path


def test_ranges_and_repeats(tmp_path):
    """A range selects [start, stop); drop_duplicates removes byte copies of the previous frame,
    also when the previous frame is just outside the range."""
    root = _sequence(tmp_path)
    assert len(RegisteredSequence(root, frames=FrameRange(1, 5))) == 4
    kept = RegisteredSequence(root, frames=FrameRange(0, 6), drop_duplicates=True)
    assert kept.indices == [0, 1, 2, 4, 5]
    assert RegisteredSequence(root, frames=FrameRange(3, 6), drop_duplicates=True).indices == [4, 5]
    with pytest.raises(DatasetError, match="outside"):
        RegisteredSequence(root, frames=FrameRange(4, 9))
    assert FrameRange(0, 400).overlaps(FrameRange(399, 500))
    assert not FrameRange(0, 400).overlaps(FrameRange(420, 500))


def test_frames_come_at_the_target_focal(tmp_path):
    """With a rig and a target focal, frames carry the target intrinsics and registered depth."""
    root = _sequence(tmp_path)
    rig = RigCalibration(Intrinsics(53.0, 53.0, 32.0, 24.0, 64, 48), (-0.02, 0.0, 0.0))
    frame = RegisteredSequence(root, rig, target_fx=51.9)[0]
    assert frame.intrinsics.fx == pytest.approx(51.9) and frame.intrinsics.cx == 32.0
    assert frame.image.shape == (48, 64, 3) and frame.depth_m.shape == (48, 64)
    assert 0.3 < float((frame.depth_m > 0).mean()) <= 1.0


@pytest.mark.skipif(not SEVEN_SCENES.is_dir(), reason="../shared/data/real_handheld_7scenes absent")
def test_seven_scenes_registration_aligns_depth_edges_with_colour_edges():
    """On the real Kinect frames, the shipped rig (fx 530, 2 cm) puts depth edges nearer colour
    edges than using the depth image as if registered, and nearer than a neighbouring rig."""
    from training.config import load_config
    from training.rig_calibration import alignment_score, colour_edge_distance
    from depth_unet_ros.datasets.folder import FolderDataset

    config = Path(__file__).resolve().parents[1] / "config" / "train_real_default.yaml"
    data = load_config(config).data
    fx, fy, cx, cy = data.register_colour
    source = FolderDataset(SEVEN_SCENES)
    frames = [source[i] for i in range(0, 400, 80)]
    distances = [colour_edge_distance(f.image) for f in frames]
    shipped = alignment_score(frames, distances, Intrinsics(fx, fy, cx, cy, 640, 480),
                              data.register_shift_m)
    as_is = alignment_score(frames, distances, frames[0].intrinsics, (0.0, 0.0, 0.0))
    other = alignment_score(frames, distances, Intrinsics(fx + 30, fy + 30, cx, cy, 640, 480),
                            data.register_shift_m)
    assert shipped < as_is - 0.3 and shipped < other


@pytest.mark.skipif(not SEVEN_SCENES.is_dir(), reason="../shared/data/real_handheld_7scenes absent")
def test_seven_scenes_training_and_validation_frames_never_overlap():
    """The shipped recipe's training frames (repeats dropped) and validation frames are disjoint
    and at least 20 frames apart, so near-identical neighbours are not on both sides."""
    from training.config import load_config
    from training.data import open_frames

    data = load_config(Path(__file__).resolve().parents[1] / "config" / "train_real_default.yaml").data
    train = open_frames(data.train, data, "train", 0, 0, data.train_frames)
    val = open_frames(data.val, data, "test", 0, 0, data.val_frames)
    assert isinstance(train, RegisteredSequence) and isinstance(val, RegisteredSequence)
    assert set(train.indices).isdisjoint(val.indices)
    assert max(train.indices) + 20 <= min(val.indices)
    assert len(train) < data.train_frames[1] - data.train_frames[0]  # the repeats were dropped
