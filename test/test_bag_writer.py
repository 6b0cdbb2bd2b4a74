"""`depth-unet nyu-to-bag` and depth_unet_ros.bag_writer: frames -> rosbag2 -> frames, no rclpy."""
from __future__ import annotations

import numpy as np
import pytest
import yaml

from depth_unet_ros import bag_writer as bw
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
    got = list(bw.read_bag_frames(out))
    assert len(got) == len(dataset) == 4
    for i, (stamp, rgb, depth_m, k) in enumerate(got):
        assert stamp == bw.START_NS + i * 200_000_000  # 1 / 5 Hz apart
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
            i = (t - bw.START_NS) // 100_000_000  # default 10 Hz
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
    got = list(bw.read_bag_frames(out))
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
    assert not (out / "keep.txt").exists() and len(list(bw.read_bag_frames(out))) == 2


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
            t = bw.stamp_ns(i, 10.0)
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
    (_, rgb0, d0, _), (_, rgb1, _, _) = bw.read_bag_frames(out)
    np.testing.assert_array_equal(rgb0, rgb)
    np.testing.assert_array_equal(rgb1, np.repeat(rgb[..., :1], 3, axis=2))
    np.testing.assert_allclose(d0, depth_mm / 1000.0, rtol=1e-6)
    assert d0[0, 0] == 0
