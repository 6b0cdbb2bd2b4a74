"""HandheldSequence: a walking, hand-held camera in one synthetic room, with ground-truth poses."""
from __future__ import annotations

import json
import math
import pickle

import cv2
import numpy as np
import pytest

from depth_unet_ros.cli import main
from depth_unet_ros.datasets.folder import FolderDataset
from depth_unet_ros.datasets.synthetic.handheld import POSE_NAME, CameraPose, HandheldSequence
from depth_unet_ros.errors import DatasetError
from depth_unet_ros.rotations import (LINK_FROM_OPTICAL, link_rotation, quaternion_xyzw_to_rotation,
                                      rotation_to_quaternion_xyzw)

SMALL = dict(height=60, width=80)
MINUTE = 1800  # frames at 30 Hz


@pytest.fixture(scope="module")
def walks():
    """Three one-minute walks (poses only; frames are rendered where a test needs them)."""
    return {seed: HandheldSequence(MINUTE, seed=seed, **SMALL) for seed in (0, 3, 5)}


def _trajectory(seq: HandheldSequence) -> tuple[np.ndarray, np.ndarray]:
    poses = seq.poses()
    return np.array([p.position_m for p in poses]), np.array([p.rotation for p in poses])


def test_frames_and_poses_depend_only_on_seed_and_index():
    """Frame i and pose i are pure functions of (seed, i): a longer sequence, read out of
    order, agrees bit for bit; another seed is another room."""
    short, long = HandheldSequence(12, seed=9, **SMALL), HandheldSequence(900, seed=9, **SMALL)
    for i in (11, 0, 5):
        np.testing.assert_array_equal(short[i].image, long[i].image)
        np.testing.assert_array_equal(short[i].depth_m, long[i].depth_m)
        np.testing.assert_array_equal(short.pose(i).position_m, long.pose(i).position_m)
        np.testing.assert_array_equal(short.pose(i).rotation, long.pose(i).rotation)
    assert short[3].name == "handheld_9_00003"
    other = HandheldSequence(1, seed=10, **SMALL)
    assert not np.array_equal(other.scene.room_m, short.scene.room_m)
    copy = pickle.loads(pickle.dumps(short))
    assert copy._bank is None
    np.testing.assert_array_equal(copy[4].image, short[4].image)


def test_stamps_follow_the_rate():
    """stamp_ns(i) is the bag writer's stamp of frame i at rate_hz, and the pose carries it."""
    from depth_unet_ros.bags.clock import stamp_ns

    seq = HandheldSequence(31, seed=1, rate_hz=15.0, **SMALL)
    assert seq.stamp_ns(30) == stamp_ns(30, 15.0) == seq.stamp_ns(0) + 2 * 10**9
    assert seq.pose(30).stamp_ns == seq.stamp_ns(30)


def test_walk_speed_turn_rate_and_acceleration_are_human(walks):
    """Walking 0.3-0.8 m/s on average below 0.8 (plus bob and shake), no jumps between frames,
    turning below 150 deg/s, accelerations of a walking hand (< 8 m/s^2)."""
    for seq in walks.values():
        pos, rot = _trajectory(seq)
        vel = np.diff(pos, axis=0) * seq.rate_hz  # (N-1, 3) m/s
        horizontal = np.linalg.norm(vel[:, :2], axis=1)
        assert horizontal.max() < 0.95 and 0.2 < horizontal.mean() < 0.8
        assert np.linalg.norm(np.diff(pos, axis=0), axis=1).max() < 0.04  # no jumps
        acc = np.diff(vel, axis=0) * seq.rate_hz
        assert np.linalg.norm(acc, axis=1).max() < 8.0
        rel = np.einsum("nji,njk->nik", rot[:-1], rot[1:])
        angle = np.arccos(np.clip((np.trace(rel, axis1=1, axis2=2) - 1) / 2, -1, 1))
        assert np.degrees(angle).max() * seq.rate_hz < 150


def test_hand_height_upright_camera_and_step_bob(walks):
    """Hand height 1.1-1.7 m; the camera stays upright (image down within 40 deg of world down);
    the height oscillates at the walking cadence (~1.8 Hz) by a few centimetres."""
    for seq in walks.values():
        pos, rot = _trajectory(seq)
        assert 1.1 < pos[:, 2].min() and pos[:, 2].max() < 1.7
        assert (-rot[:, 2, 1] > math.cos(math.radians(40))).all()  # optical y (down) . world -z
        z = pos[:, 2] - pos[:, 2].mean()
        spectrum = np.abs(np.fft.rfft(z * np.hanning(len(z))))
        freq = np.fft.rfftfreq(len(z), 1 / seq.rate_hz)
        band = freq > 0.5  # above the slow pitch and pan
        assert 1.6 < freq[band][np.argmax(spectrum[band])] < 2.0
        assert 0.005 < np.ptp(z) < 0.1


def _footprint_distance(solid, xy: np.ndarray) -> np.ndarray:
    """Horizontal distance (N,) from points (N, 2) to a solid's footprint (0 inside)."""
    d = xy - solid.center[:2]
    if solid.cylinder:
        return np.maximum(np.linalg.norm(d, axis=1) - solid.half[0], 0)
    c, s = math.cos(solid.yaw), math.sin(solid.yaw)
    local = np.abs(np.stack([c * d[:, 0] + s * d[:, 1], -s * d[:, 0] + c * d[:, 1]], axis=1))
    return np.linalg.norm(np.maximum(local - solid.half[:2], 0), axis=1)


def test_camera_stays_in_the_room_and_clear_of_furniture(walks):
    """Over a minute the camera keeps >= 0.4 m from walls and furniture footprints; every pixel
    of the frames has valid depth above 0.3 m."""
    for seq in walks.values():
        pos, _ = _trajectory(seq)
        room = seq.scene.room_m
        assert (pos[:, :2] > 0.4).all() and (pos[:, :2] < room[:2] - 0.4).all()
        for solid in seq.scene.solids[1:]:
            assert _footprint_distance(solid, pos[:, :2]).min() >= 0.4
        for i in range(0, MINUTE, 360):
            depth = seq[i].depth_m
            assert np.isfinite(depth).all() and depth.min() > 0.3


def _reproject(frame_a, pose_a, frame_b, pose_b) -> tuple[float, float]:
    """Fractions of frame a's pixels that land in frame b with b's depth (within 1 %) and
    colour (within 12 levels), moving them with the two poses."""
    k = frame_a.intrinsics
    h, w = frame_a.depth_m.shape
    v, u = np.mgrid[0:h, 0:w].astype(np.float64)
    z = frame_a.depth_m.astype(np.float64)
    in_a = np.stack([(u - k.cx) / k.fx * z, (v - k.cy) / k.fy * z, z], axis=-1)  # optical frame
    world = in_a @ pose_a.rotation.T + pose_a.position_m
    in_b = (world - pose_b.position_m) @ pose_b.rotation  # R^T (p - t), row vectors
    ub = k.fx * in_b[..., 0] / in_b[..., 2] + k.cx
    vb = k.fy * in_b[..., 1] / in_b[..., 2] + k.cy
    inside = (in_b[..., 2] > 0.1) & (ub >= 0) & (ub <= w - 1) & (vb >= 0) & (vb <= h - 1)
    assert inside.mean() > 0.5
    mx, my = ub.astype(np.float32), vb.astype(np.float32)
    depth_b = cv2.remap(frame_b.depth_m, mx, my, cv2.INTER_NEAREST)
    colour_b = cv2.remap(frame_b.image, mx, my, cv2.INTER_LINEAR).astype(int)
    depth_ok = np.abs(depth_b - in_b[..., 2]) < 0.01 * in_b[..., 2]
    colour_ok = np.abs(colour_b - frame_a.image.astype(int)).max(axis=-1) <= 12
    return float(depth_ok[inside].mean()), float(colour_ok[inside].mean())


PAIRS = ((0, 10, 11), (0, 150, 165), (5, 100, 101), (5, 100, 108))


@pytest.mark.parametrize("seed, a, b", PAIRS)
def test_frames_reproject_onto_each_other_with_the_ground_truth_poses(seed, a, b):
    """Frame a's depth, moved by the poses (optical x right, y down, z forward; rotation =
    world-from-optical), lands on frame b's depth and colour: the poses, the z-depth and the
    intrinsics are in the conventions claimed, and lighting and textures do not flicker."""
    seq = HandheldSequence(b + 1, seed=seed, height=120, width=160)
    depth_ok, colour_ok = _reproject(seq[a], seq.pose(a), seq[b], seq.pose(b))
    assert depth_ok > 0.97 and colour_ok > 0.9


def test_wrong_conventions_fail_the_reprojection():
    """The reprojection check has teeth: a camera assumed still, or rotations read transposed
    (camera-from-world), disagree on most pixels over a 0.5 s baseline."""
    seq = HandheldSequence(166, seed=0, height=120, width=160)
    a, b = seq[150], seq[165]
    pa, pb = seq.pose(150), seq.pose(165)
    transposed = [CameraPose(p.stamp_ns, p.position_m, p.rotation.T) for p in (pa, pb)]
    assert _reproject(a, pa, b, pa)[0] < 0.5
    assert _reproject(a, transposed[0], b, transposed[1])[0] < 0.5


def test_quaternions_and_the_optical_frame_turn():
    """Quaternions round-trip (also near 180 deg); camera_link -> optical is REP 103's
    (-0.5, 0.5, -0.5, 0.5); camera_link's x is the optical z (forward), its z the optical -y
    (up)."""
    rng = np.random.default_rng(0)
    for q in [*rng.normal(size=(50, 4)), np.array([1.0, 0, 0, 1e-9]), np.array([0, 0, 1.0, 0])]:
        q = q / np.linalg.norm(q) * np.sign(q[3] or 1)
        np.testing.assert_allclose(rotation_to_quaternion_xyzw(quaternion_xyzw_to_rotation(q)),
                                   q, atol=1e-9)
    np.testing.assert_allclose(rotation_to_quaternion_xyzw(LINK_FROM_OPTICAL),
                               [-0.5, 0.5, -0.5, 0.5])
    optical = HandheldSequence(1, seed=2, **SMALL).pose(0).rotation
    link = link_rotation(optical)
    np.testing.assert_allclose(link[:, 0], optical[:, 2], atol=1e-12)
    np.testing.assert_allclose(link[:, 2], -optical[:, 1], atol=1e-12)


def test_bad_arguments_are_dataset_errors():
    with pytest.raises(DatasetError, match="rate_hz > 0"):
        HandheldSequence(3, rate_hz=0)
    with pytest.raises(DatasetError, match="8x8"):
        HandheldSequence(3, height=4)
    with pytest.raises(IndexError):
        HandheldSequence(2, **SMALL).pose(2)


def test_synth_handheld_writes_frames_with_pose_json(tmp_path):
    """`depth-unet synth --handheld` writes a folder dataset that FolderDataset reads (pose.json
    beside each frame is ignored by it) and pose.json holds the generator's pose, in odom."""
    out = tmp_path / "seq"
    assert main(["synth", "--handheld", "--out", str(out), "--frames", "3", "--seed", "2",
                 "--rate", "15", "--height", "48", "--width", "64"]) == 0
    ds, seq = FolderDataset(out), HandheldSequence(3, seed=2, rate_hz=15, height=48, width=64)
    assert [ds[i].name for i in range(3)] == [f"handheld_2_0000{i}" for i in range(3)]
    np.testing.assert_array_equal(ds[2].image, seq[2].image)
    record = json.loads((out / "handheld_2_00002" / POSE_NAME).read_text())
    assert (record["frame_id"], record["child_frame_id"]) == ("odom", "camera_rgb_optical_frame")
    assert record["stamp_ns"] == seq.stamp_ns(2)
    pose = CameraPose.from_json(record)
    np.testing.assert_allclose(pose.position_m, seq.pose(2).position_m, atol=1e-12)
    np.testing.assert_allclose(pose.rotation, seq.pose(2).rotation, atol=1e-12)


def test_synth_handheld_bag_with_poses(tmp_path):
    """`synth --handheld --bag` writes a compressed bag whose frames and /camera/pose match the
    generator (the bag format itself is tested in test_bag_writer)."""
    from rosbags.highlevel import AnyReader

    from depth_unet_ros.bags import writer as bw
    from depth_unet_ros.datasets.bag import read_bag_frames

    bag = tmp_path / "bag"
    assert main(["synth", "--handheld", "--bag", str(bag), "--frames", "2", "--seed", "2",
                 "--height", "48", "--width", "64", "--compress", "--storage", "sqlite3"]) == 0
    seq = HandheldSequence(2, seed=2, height=48, width=64)
    frames = list(read_bag_frames(bag))
    assert [f[0] for f in frames] == [seq.stamp_ns(0), seq.stamp_ns(1)]
    np.testing.assert_array_equal(frames[1][1], seq[1].image)
    with AnyReader([bag], default_typestore=bw.make_typestore()) as reader:
        conns = [c for c in reader.connections if c.topic == bw.POSE_TOPIC]
        got = [reader.deserialize(raw, c.msgtype).pose.position
               for c, _, raw in reader.messages(connections=conns)]
    assert [(p.x, p.y, p.z) for p in got] == [tuple(seq.pose(i).position_m) for i in range(2)]


@pytest.mark.parametrize("argv, message", [
    (["--frames", "2"], "--out FOLDER, --bag BAG"),
    (["--frames", "2", "--out", "X", "--compress"], "--bag"),
    (["--frames", "2", "--out", "X", "--handheld", "--rate", "0"], "--rate"),
    (["--frames", "0", "--out", "X"], "--frames"),
])
def test_synth_refuses_bad_arguments_with_a_message(tmp_path, capsys, argv, message):
    """Bad synth options exit 1 with a message naming the option; nothing is written."""
    argv = [str(tmp_path / a) if a == "X" else a for a in argv]
    assert main(["synth", *argv]) == 1
    assert message in capsys.readouterr().err
    assert not any(tmp_path.iterdir())
