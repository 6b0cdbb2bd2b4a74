"""`depth-unet nyu-to-bag` and depth_unet_ros.bags.writer: frames -> rosbag2 -> frames, no rclpy."""
from __future__ import annotations

import numpy as np
import pytest
import yaml

from depth_unet_ros.bags import clock
from depth_unet_ros.bags import writer as bw
from depth_unet_ros.datasets.bag import read_bag_frames
from depth_unet_ros.cli import main
from depth_unet_ros.datasets.base import Intrinsics, RGBDFrame
from depth_unet_ros.datasets.folder import FolderDataset, write_folder_frame
from depth_unet_ros.datasets.nyu_mat import NyuLabeledDataset
from depth_unet_ros.errors import DatasetError
from nyu_layout import patterned_frames, write_nyu_mat, write_splits_mat

H, W = 48, 64
K = Intrinsics(fx=52.0, fy=53.0, cx=31.25, cy=23.75, width=W, height=H)
TOPICS = (bw.IMAGE_TOPIC, bw.CAMERA_INFO_TOPIC, bw.DEPTH_TOPIC)


@pytest.fixture
def folder_data(tmp_path):
    """Four 64x48 frames with invalid (0) depth holes, as a folder dataset."""
    rng = np.random.default_rng(3)
    for i in range(4):
        depth = (0.5 + 4 * rng.random((H, W))).astype(np.float32)
        depth[rng.random((H, W)) < 0.2] = 0
        image = rng.integers(0, 256, (H, W, 3), dtype=np.uint8)
        write_folder_frame(tmp_path / "data" / f"{i:03d}", RGBDFrame(image, depth, K, str(i)))
    return tmp_path / "data"


def _convert(data, out, *extra) -> int:
    return main(["nyu-to-bag", "--data", str(data), "--out", str(out), *extra])


@pytest.mark.parametrize("storage", ["mcap", "sqlite3"])
def test_bag_round_trips_frames_pixel_for_pixel(folder_data, tmp_path, storage):
    """Both storages give back the dataset's rgb, depth (0 = invalid) and intrinsics exactly."""
    out = tmp_path / f"bag_{storage}"
    assert _convert(folder_data, out, "--storage", storage, "--rate", "5") == 0
    dataset = FolderDataset(folder_data)
    got = list(read_bag_frames(out))
    assert len(got) == len(dataset) == 4
    for i, (stamp, rgb, depth_m, k) in enumerate(got):
        assert stamp == clock.START_NS + i * 200_000_000  # 1 / 5 Hz apart
        np.testing.assert_array_equal(rgb, dataset[i].image)
        np.testing.assert_array_equal(depth_m, dataset[i].depth_m)
        assert k == K
    assert (out / f"{out.name}.{'mcap' if storage == 'mcap' else 'db3'}").is_file()


def test_messages_share_stamp_and_carry_ros_conventions(folder_data, tmp_path):
    """Per frame the three topics share header stamp = bag time and frame_id; rgb8/32FC1 NaN; K, P."""
    from rosbags.rosbag2 import Reader

    out = tmp_path / "bag"
    assert _convert(folder_data, out, "--frame-id", "cam") == 0
    dataset, typestore = FolderDataset(folder_data), bw.make_typestore()
    seen: dict[int, set] = {}
    with Reader(out) as reader:
        for conn, t, raw in reader.messages():
            msg = typestore.deserialize_cdr(raw, conn.msgtype)
            assert msg.header.stamp.sec * 10**9 + msg.header.stamp.nanosec == t
            assert msg.header.frame_id == "cam"
            i = (t - clock.START_NS) // 100_000_000  # default 10 Hz
            seen.setdefault(t, set()).add(conn.topic)
            if conn.topic == bw.IMAGE_TOPIC:
                assert (msg.encoding, msg.step, msg.height, msg.width) == ("rgb8", 3 * W, H, W)
            elif conn.topic == bw.DEPTH_TOPIC:
                assert (msg.encoding, msg.step, msg.is_bigendian) == ("32FC1", 4 * W, 0)
                depth = np.frombuffer(msg.data, "<f4").reshape(H, W)
                gt = dataset[i].depth_m
                assert np.isnan(depth[gt == 0]).all()
                np.testing.assert_array_equal(depth[gt > 0], gt[gt > 0])
            else:
                assert msg.distortion_model == "plumb_bob" and not msg.d.any()
                np.testing.assert_array_equal(msg.k, [52, 0, 31.25, 0, 53, 23.75, 0, 0, 1])
                np.testing.assert_array_equal(msg.p, [52, 0, 31.25, 0, 0, 53, 23.75, 0, 0, 0, 1, 0])
                np.testing.assert_array_equal(msg.r, np.eye(3).reshape(-1))
                assert (msg.width, msg.height) == (W, H)
    assert len(seen) == 4 and all(topics == set(TOPICS) for topics in seen.values())


def test_metadata_has_storage_and_qos_string_per_topic(folder_data, tmp_path):
    """metadata.yaml: version 8, storage id, cdr, and a reliable keep-last-10 QoS YAML string per topic."""
    out = tmp_path / "bag"
    assert _convert(folder_data, out, "--storage", "sqlite3") == 0
    info = yaml.safe_load((out / "metadata.yaml").read_text())["rosbag2_bagfile_information"]
    assert info["version"] == 8 and info["storage_identifier"] == "sqlite3"
    assert info["message_count"] == 12
    topics = {t["topic_metadata"]["name"]: t for t in info["topics_with_message_count"]}
    assert set(topics) == set(TOPICS)
    for entry in topics.values():
        meta = entry["topic_metadata"]
        assert entry["message_count"] == 4 and meta["serialization_format"] == "cdr"
        assert isinstance(meta["offered_qos_profiles"], str)  # Humble reads only the string form
        (qos,) = yaml.safe_load(meta["offered_qos_profiles"])
        assert (qos["reliability"], qos["history"], qos["depth"]) == (1, 1, 10)


def test_mat_split_and_raw_depth_reach_the_bag(tmp_path):
    """A labeled .mat with splits.mat: only the chosen split, raw depth holes stay invalid."""
    images, dense, raw = patterned_frames(3)
    mat = write_nyu_mat(tmp_path / "nyu.mat", images, dense, raw)
    splits = write_splits_mat(tmp_path / "splits.mat", [2], [1, 3])
    out = tmp_path / "bag"
    assert _convert(mat, out, "--splits", str(splits), "--split", "test", "--depth", "raw") == 0
    expected = NyuLabeledDataset(mat, splits, split="test", depth="raw")
    got = list(read_bag_frames(out))
    assert len(got) == 2
    for (_, rgb, depth_m, k), i in zip(got, (0, 1)):
        np.testing.assert_array_equal(rgb, expected[i].image)
        np.testing.assert_array_equal(depth_m, expected[i].depth_m)
        assert (depth_m == 0).any() and k.width == 640


def test_existing_out_is_refused_unless_overwrite(folder_data, tmp_path, capsys):
    """--out that exists is an error naming it; --overwrite replaces it."""
    out = tmp_path / "bag"
    out.mkdir()
    (out / "keep.txt").write_text("old")
    assert _convert(folder_data, out) == 1
    assert "--overwrite" in capsys.readouterr().err and (out / "keep.txt").is_file()
    assert _convert(folder_data, out, "--overwrite", "--limit", "2") == 0
    assert not (out / "keep.txt").exists() and len(list(read_bag_frames(out))) == 2


@pytest.mark.parametrize("error", [DatasetError, KeyboardInterrupt])
def test_failure_midway_leaves_no_bag_and_keeps_old(folder_data, tmp_path, monkeypatch, error):
    """A dataset error or Ctrl-C after 2 frames leaves no new --out and the old one untouched."""
    real = FolderDataset.__getitem__

    def flaky(self, i):
        if i >= 2:
            raise error("boom")
        return real(self, i)

    monkeypatch.setattr(FolderDataset, "__getitem__", flaky)
    out = tmp_path / "bag"
    assert _convert(folder_data, out) in (1, 130)
    assert not out.exists()
    old = tmp_path / "old"
    old.mkdir()
    (old / "keep.txt").write_text("old")
    assert _convert(folder_data, old, "--overwrite") in (1, 130)
    assert (old / "keep.txt").read_text() == "old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["data", "old"]  # no temp left


def test_missing_or_empty_input_names_the_path(tmp_path, capsys):
    """A missing data path or an empty dataset is a DatasetError that names it."""
    missing = tmp_path / "nope"
    assert _convert(missing, tmp_path / "bag") == 1
    assert str(missing) in capsys.readouterr().err
    (tmp_path / "empty").mkdir()
    assert _convert(tmp_path / "empty", tmp_path / "bag") == 1
    assert str(tmp_path / "empty") in capsys.readouterr().err
    assert main(["nyu-to-bag", "--synthetic", "0", "--out", str(tmp_path / "bag")]) == 1
    assert "no frames" in capsys.readouterr().err and not (tmp_path / "bag").exists()


def test_reader_accepts_bgr8_mono8_and_16uc1_millimetres(tmp_path):
    """read_bag_frames converts bgr8/mono8 to RGB and 16UC1 mm to metres (0 stays invalid)."""
    from rosbags.rosbag2 import StoragePlugin, Writer

    ts = bw.make_typestore()
    rgb = np.random.default_rng(0).integers(0, 256, (H, W, 3), dtype=np.uint8)
    depth_mm = np.arange(H * W, dtype=np.uint16).reshape(H, W)  # pixel 0 is 0 = invalid
    out = tmp_path / "bag"
    with Writer(out, version=8, storage_plugin=StoragePlugin.MCAP) as writer:
        conns = {t: writer.add_connection(t, m, typestore=ts) for t, m in
                 ((bw.IMAGE_TOPIC, bw.IMAGE_TYPE), (bw.CAMERA_INFO_TOPIC, bw.CAMERA_INFO_TYPE),
                  (bw.DEPTH_TOPIC, bw.IMAGE_TYPE))}
        for i, (enc, pixels) in enumerate((("bgr8", rgb[..., ::-1]), ("mono8", rgb[..., 0]))):
            t = clock.stamp_ns(i, 10.0)
            header = bw.make_header(ts, t, "cam")
            image = bw.image_to_ros(ts, rgb, header)
            image.encoding, image.step = enc, pixels.shape[1] * (3 if pixels.ndim == 3 else 1)
            image.data = np.ascontiguousarray(pixels).reshape(-1)
            depth = ts.types[bw.IMAGE_TYPE](header=header, height=H, width=W, encoding="16UC1",
                                             is_bigendian=0, step=2 * W,
                                             data=depth_mm.astype("<u2").view(np.uint8).reshape(-1))
            for topic, msg in ((bw.DEPTH_TOPIC, depth), (bw.IMAGE_TOPIC, image),
                               (bw.CAMERA_INFO_TOPIC, bw.camera_info_to_ros(ts, K, header))):
                writer.write(conns[topic], t, ts.serialize_cdr(msg, msg.__msgtype__))
    (_, rgb0, d0, _), (_, rgb1, _, _) = read_bag_frames(out)
    np.testing.assert_array_equal(rgb0, rgb)
    np.testing.assert_array_equal(rgb1, np.repeat(rgb[..., :1], 3, axis=2))
    np.testing.assert_allclose(d0, depth_mm / 1000.0, rtol=1e-6)
    assert d0[0, 0] == 0


@pytest.fixture(scope="module")
def walk():
    """Four 80x60 frames of a handheld sequence and their ground-truth poses."""
    from depth_unet_ros.datasets.synthetic.handheld import HandheldSequence

    seq = HandheldSequence(4, seed=1, rate_hz=30.0, height=60, width=80)
    return seq, [seq[i] for i in range(4)], seq.poses()


def _messages(path, topic):
    from rosbags.highlevel import AnyReader

    with AnyReader([path], default_typestore=bw.make_typestore()) as reader:
        conns = [c for c in reader.connections if c.topic == topic]
        return [(t, reader.deserialize(raw, c.msgtype))
                for c, t, raw in reader.messages(connections=conns)]


def _qos(info, topic):
    (entry,) = [t for t in info["topics_with_message_count"]
                if t["topic_metadata"]["name"] == topic]
    (qos,) = yaml.safe_load(entry["topic_metadata"]["offered_qos_profiles"])
    return entry["message_count"], qos


@pytest.mark.parametrize("storage, compress", [("mcap", False), ("sqlite3", True)])
def test_poses_round_trip_through_pose_tf_and_tf_static(walk, tmp_path, storage, compress):
    """With poses the bag holds /camera/pose (optical frame in odom) and /tf (odom -> camera_link)
    equal to the generator's at the frame stamps; /tf_static once (camera_link -> optical,
    transient_local); composing the two tf transforms gives the pose; frames still read back."""
    from depth_unet_ros.rotations import quaternion_xyzw_to_rotation as to_rot

    seq, frames, poses = walk
    out = bw.write_bag(frames, tmp_path / "bag", storage=storage, rate_hz=30.0, poses=poses,
                       compress=compress, progress=False)
    got = list(read_bag_frames(out))
    assert [g[0] for g in got] == [seq.stamp_ns(i) for i in range(4)]
    for (_, rgb, depth, _), frame in zip(got, frames):
        np.testing.assert_array_equal(rgb, frame.image)
        np.testing.assert_array_equal(depth, frame.depth_m)
    pose_msgs, tf_msgs = _messages(out, bw.POSE_TOPIC), _messages(out, bw.TF_TOPIC)
    (t_static, static), = _messages(out, bw.TF_STATIC_TOPIC)
    assert t_static == seq.stamp_ns(0)
    (link_to_optical,) = static.transforms
    assert (link_to_optical.header.frame_id, link_to_optical.child_frame_id) == \
        ("camera_link", "camera_rgb_optical_frame")
    r = link_to_optical.transform.rotation
    np.testing.assert_allclose([r.x, r.y, r.z, r.w], [-0.5, 0.5, -0.5, 0.5])
    for i, ((t, pose_msg), (t_tf, tf_msg)) in enumerate(zip(pose_msgs, tf_msgs)):
        stamp = pose_msg.header.stamp.sec * 10**9 + pose_msg.header.stamp.nanosec
        assert t == t_tf == stamp == seq.stamp_ns(i) and pose_msg.header.frame_id == "odom"
        p, q = pose_msg.pose.position, pose_msg.pose.orientation
        np.testing.assert_array_equal([p.x, p.y, p.z], poses[i].position_m)
        np.testing.assert_array_equal([q.x, q.y, q.z, q.w], poses[i].quaternion_xyzw)
        (odom_to_link,) = tf_msg.transforms
        assert (odom_to_link.header.frame_id, odom_to_link.child_frame_id) == \
            ("odom", "camera_link")
        tr, rq = odom_to_link.transform.translation, odom_to_link.transform.rotation
        np.testing.assert_array_equal([tr.x, tr.y, tr.z], poses[i].position_m)
        chained = to_rot([rq.x, rq.y, rq.z, rq.w]) @ to_rot([r.x, r.y, r.z, r.w])
        np.testing.assert_allclose(chained, poses[i].rotation, atol=1e-12)
    assert len(pose_msgs) == len(tf_msgs) == 4
    info = yaml.safe_load((out / "metadata.yaml").read_text())["rosbag2_bagfile_information"]
    count, qos = _qos(info, bw.TF_STATIC_TOPIC)
    assert count == 1 and (qos["durability"], qos["reliability"], qos["depth"]) == (1, 1, 1)
    assert _qos(info, bw.TF_TOPIC)[1]["durability"] == 2  # volatile, like tf2 broadcasters
    if compress:
        assert (info["compression_mode"], info["compression_format"]) == ("message", "zstd")


def test_mcap_compression_is_chunk_zstd_and_reads_back(walk, tmp_path):
    """compress=True on MCAP: zstd chunks inside the file (metadata says no bag-level
    compression, as `ros2 bag record --storage-preset-profile zstd_fast` writes), smaller, and
    read back by AnyReader unchanged."""
    _, frames, _ = walk
    plain = bw.write_bag(frames, tmp_path / "plain", progress=False)
    packed = bw.write_bag(frames, tmp_path / "packed", compress=True, progress=False)
    info = yaml.safe_load((packed / "metadata.yaml").read_text())["rosbag2_bagfile_information"]
    assert info["compression_mode"] == "" and info["storage_identifier"] == "mcap"
    assert b"zstd" in (packed / "packed.mcap").read_bytes()
    assert (packed / "packed.mcap").stat().st_size < 0.9 * (plain / "plain.mcap").stat().st_size
    for (_, rgb, depth, _), frame in zip(read_bag_frames(packed), frames):
        np.testing.assert_array_equal(rgb, frame.image)
        np.testing.assert_array_equal(depth, frame.depth_m)


def test_depth_in_millimetres_reads_back_to_half_a_millimetre(walk, tmp_path):
    """depth_encoding='16UC1' stores millimetres (0 = invalid) that read back within 0.5 mm."""
    _, frames, _ = walk
    out = bw.write_bag(frames, tmp_path / "bag", depth_encoding="16UC1", progress=False)
    (t, msg), *_ = _messages(out, bw.DEPTH_TOPIC)
    assert (msg.encoding, msg.step) == ("16UC1", 2 * 80)
    for (_, _, depth, _), frame in zip(read_bag_frames(out), frames):
        assert np.abs(depth - frame.depth_m).max() <= 0.0005 + 1e-6
    from depth_unet_ros.errors import DepthUnetError

    with pytest.raises(DepthUnetError, match="depth encoding"):
        bw.write_bag(frames, tmp_path / "bad", depth_encoding="16UC2", progress=False)


def test_poses_must_match_frames_and_rate(walk, tmp_path):
    """Fewer poses than frames, or poses stamped at another rate, are errors and leave no bag."""
    from depth_unet_ros.errors import DepthUnetError

    _, frames, poses = walk
    with pytest.raises(DatasetError, match="fewer poses"):
        bw.write_bag(frames, tmp_path / "a", rate_hz=30.0, poses=poses[:2], progress=False)
    with pytest.raises(DepthUnetError, match="rate_hz"):
        bw.write_bag(frames, tmp_path / "b", rate_hz=10.0, poses=poses, progress=False)
    assert not any(tmp_path.iterdir())
