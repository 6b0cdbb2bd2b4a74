"""Reading bags for replay and evaluation without ROS: stamps from serialized bytes, the bag as
a dataset (whatever tool wrote it), the replay schedule and QoS, and clear errors for bags that
cannot be scored."""
from __future__ import annotations

import numpy as np
import pytest

from bag_helpers import millimetre_frames, write_foreign_bag
from depth_unet_ros.bags import clock
from depth_unet_ros.bags import reader as bag_reader
from depth_unet_ros.bags import writer as bw
from depth_unet_ros.bags.replay import ReplayOptions, _recorded_profile, due_time_s, message_class
from depth_unet_ros.datasets import open_dataset
from depth_unet_ros.datasets.bag import BagDataset
from depth_unet_ros.datasets.base import Intrinsics, RGBDFrame
from depth_unet_ros.errors import ConfigError, DatasetError
from depth_unet_ros.streaming_eval.results import BagPlan

H, W = 48, 64
K = Intrinsics(fx=52.0, fy=53.0, cx=31.5, cy=23.5, width=W, height=H)


def _frames(n: int = 4, seed: int = 0) -> list[RGBDFrame]:
    rng = np.random.default_rng(seed)
    out = []
    for i in range(n):
        depth = (0.5 + 5 * rng.random((H, W))).astype(np.float32)
        depth[rng.random((H, W)) < 0.1] = 0.0
        out.append(RGBDFrame(rng.integers(0, 256, (H, W, 3), dtype=np.uint8), depth, K, f"f{i}"))
    return out


@pytest.fixture
def own_bag(tmp_path):
    return bw.write_bag(_frames(), tmp_path / "own", rate_hz=5.0, progress=False)


def test_header_stamps_are_read_and_rewritten_in_the_serialized_bytes(own_bag):
    """The stamp at bytes 4..12 of a CDR message equals the decoded header's, and rewriting it
    changes nothing else."""
    message = next(bag_reader.iter_raw_messages(own_bag, [bag_reader.IMAGE_TOPIC]))
    decoded = bag_reader.deserialize(message.data, bag_reader.IMAGE_TYPE)
    assert bag_reader.header_stamp_ns(message.data) == clock.START_NS == message.time_ns
    assert decoded.header.stamp.sec * 10**9 + decoded.header.stamp.nanosec == clock.START_NS
    moved = bag_reader.with_header_stamp(message.data, 3 * 10**9 + 7)
    again = bag_reader.deserialize(moved, bag_reader.IMAGE_TYPE)
    assert (again.header.stamp.sec, again.header.stamp.nanosec) == (3, 7)
    assert np.array_equal(again.data, decoded.data) and len(moved) == len(message.data)


def test_big_endian_cdr_stamps_are_read_too():
    """A CDR_BE encapsulation (byte 1 = 0) stores the stamp big-endian."""
    data = bytes([0, 0, 0, 0]) + (5).to_bytes(4, "big") + (9).to_bytes(4, "big")
    assert bag_reader.header_stamp_ns(data) == 5 * 10**9 + 9
    with pytest.raises(DatasetError):
        bag_reader.header_stamp_ns(b"\x00\x01")


@pytest.mark.parametrize("storage", ["mcap", "sqlite3"])
def test_a_foreign_bag_reads_as_the_frames_it_holds(tmp_path, storage):
    """bgr8 colour, 16UC1 millimetres, depth recorded before the image, other topics and frame
    id, rosbags' newest metadata: the dataset gives back RGB, metres (0 = invalid) and K."""
    frames = _frames()
    bag = write_foreign_bag(tmp_path / "rs", frames, storage=storage)
    dataset = BagDataset(bag, "/cam/color/image_raw", "/cam/aligned_depth/image_raw",
                         "/cam/color/camera_info")
    assert len(dataset) == 4
    for i, want in enumerate(millimetre_frames(frames)):
        got = dataset[i]
        np.testing.assert_array_equal(got.image, want.image)
        np.testing.assert_allclose(got.depth_m, want.depth_m, atol=1e-6)
        assert (got.depth_m == 0).sum() == (want.depth_m == 0).sum() and got.intrinsics == K
        assert got.name == bag_reader.frame_name(i, clock.stamp_ns(i, 10.0))
    assert dataset[1].name == dataset[1].name  # going back re-reads from the start


def test_a_bag_of_png_compressed_images_reads_back_pixel_for_pixel(tmp_path):
    """CompressedImage topics (image_transport's <camera>/compressed) are decoded as the node
    decodes them: lossless png gives the RGB back exactly, and the plan says compressed."""
    frames = _frames(2)
    bag = write_foreign_bag(tmp_path / "png", frames, compressed="png")
    dataset = BagDataset(bag, "/cam/color/image_raw/compressed", "/cam/aligned_depth/image_raw",
                         "/cam/color/camera_info")
    for i, want in enumerate(frames):
        np.testing.assert_array_equal(dataset[i].image, want.image)
    assert BagPlan.of(bag, "/cam/color/image_raw/compressed", "/cam/aligned_depth/image_raw").compressed
    assert not BagPlan.of(write_foreign_bag(tmp_path / "raw", frames), "/cam/color/image_raw",
                          "/cam/aligned_depth/image_raw").compressed


def test_open_dataset_takes_a_bag_folder_and_reads_our_bags_exactly(own_bag):
    """`evaluate --data BAG` sees the written frames pixel for pixel, in order."""
    dataset = open_dataset(own_bag)
    assert isinstance(dataset, BagDataset) and len(dataset) == 4
    for got, want in zip((dataset[i] for i in range(4)), _frames()):
        np.testing.assert_array_equal(got.image, want.image)
        np.testing.assert_array_equal(got.depth_m, want.depth_m)


def test_a_bag_without_the_topics_names_what_it_has_and_the_option(own_bag):
    """A missing topic is an error listing the bag's topics and the option to choose another."""
    with pytest.raises(DatasetError) as info:
        BagPlan.of(own_bag, image="/camera/color/image_raw")
    text = str(info.value)
    assert "/camera/color/image_raw" in text and "--image-topic" in text
    assert "/camera/image_raw [sensor_msgs/msg/Image, 4]" in text


def test_a_bag_whose_stamps_never_match_is_refused_before_anything_starts(tmp_path):
    """Ground truth 1 ms off every image stamp: an error naming both topics and the rule."""
    bag = write_foreign_bag(tmp_path / "off", _frames(), depth_stamp_shift_ns=1_000_000)
    with pytest.raises(DatasetError, match="exact header stamp") as info:
        BagPlan.of(bag, "/cam/color/image_raw", "/cam/aligned_depth/image_raw")
    assert "/cam/color/image_raw" in str(info.value) and "/cam/aligned_depth" in str(info.value)


def test_the_plan_counts_frames_and_the_recorded_rate(own_bag):
    """Four images 0.2 s apart, all with ground truth: 5 Hz."""
    plan = BagPlan.of(own_bag)
    assert len(plan.image_stamps) == 4 and plan.scored == frozenset(plan.image_stamps)
    assert plan.image_rate_hz == pytest.approx(5.0)


def test_corrupt_and_missing_bags_say_what_to_do(own_bag, tmp_path):
    """A truncated storage file, a folder without metadata and a missing path: DatasetErrors."""
    storage_file = own_bag / f"{own_bag.name}.mcap"
    storage_file.write_bytes(storage_file.read_bytes()[: storage_file.stat().st_size // 2])
    with pytest.raises(DatasetError, match="corrupt"):
        BagPlan.of(own_bag)
    (tmp_path / "empty").mkdir()
    with pytest.raises(DatasetError, match="metadata.yaml"):
        bag_reader.bag_topics(tmp_path / "empty")
    with pytest.raises(DatasetError, match="does not exist"):
        bag_reader.bag_topics(tmp_path / "nope")


def test_the_schedule_scales_with_the_rate_and_options_are_checked():
    """A message 1 s into the bag is due after 0.5 s at rate 2; bad options are ConfigErrors."""
    assert due_time_s(3 * 10**9, 2 * 10**9, 2.0) == pytest.approx(0.5)
    assert due_time_s(2 * 10**9, 2 * 10**9, 0.1) == 0.0
    for bad in ({"rate": 0.0}, {"start_offset_s": -1.0}):
        with pytest.raises(ConfigError):
            ReplayOptions(**bad)


def test_the_recorded_qos_is_offered_again(own_bag):
    """Our bags record reliable volatile; YAML text (Humble's bags) and no profile are read too;
    tf_static's transient local is kept."""
    info = bag_reader.bag_topics(own_bag)[bag_reader.IMAGE_TOPIC]
    assert _recorded_profile(info.offered_qos) == (True, False, 10)
    yaml_text = ("- history: 1\n  depth: 1\n  reliability: 2\n  durability: 1\n")
    assert _recorded_profile(yaml_text) == (False, True, 10)
    assert _recorded_profile(None) == (True, False, 10) and _recorded_profile("") == (True, False, 10)


def test_message_classes_are_found_or_reported_missing():
    """sensor_msgs is importable where rclpy is; an unknown package gives None (skipped)."""
    pytest.importorskip("sensor_msgs.msg", reason="ROS message packages not installed")
    from sensor_msgs.msg import Image

    assert message_class("sensor_msgs/msg/Image") is Image
    assert message_class("no_such_msgs/msg/Thing") is None
