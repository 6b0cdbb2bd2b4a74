"""Streaming evaluation: exact-stamp pairing and scoring without ROS, and a bag replayed through
the real node over DDS scoring exactly what offline evaluation of the same frames scores."""
from __future__ import annotations

import time
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

from ros_helpers import stock_fastdds
from depth_unet_ros.evaluation.metrics import evaluate_frame
from depth_unet_ros.streaming_eval.evaluator import StreamConfig, diagnose_no_node
from depth_unet_ros.streaming_eval.pairing import (DiagnosticsTracker, StampPairer, diagnostics_of,
                                           score_depth, stamp_from_ns, stamp_to_ns)


# --- pure bookkeeping --------------------------------------------------------------------------
def test_stamps_round_trip_through_sec_and_nanosec():
    """ns -> (sec, nanosec) -> ns is exact, including the second boundary."""
    for ns in (0, 999_999_999, 1_000_000_000, 1_732_500_000_123_456_789):
        assert stamp_to_ns(stamp_from_ns(ns)) == ns
    assert stamp_from_ns(1_000_000_001) == (1, 1)
    with pytest.raises(ValueError):
        stamp_from_ns(-1)


def test_answers_pair_by_exact_stamp_only():
    """An answer 1 ns off any sent stamp pairs with nothing and is counted as unmatched."""
    pairer: StampPairer[str] = StampPairer()
    base = 1_700_000_000_000_000_000
    for i in range(3):
        pairer.add(stamp_from_ns(base + i * 100_000_000), i, f"f{i}", sent_s=float(i))
    assert pairer.match(stamp_from_ns(base + 1)) is None
    assert pairer.unmatched == 1 and pairer.outstanding == 3
    found = pairer.match(stamp_from_ns(base + 100_000_000))
    assert (found.index, found.payload, found.sent_s) == (1, "f1", 1.0)


def test_an_answer_gives_up_the_earlier_unanswered_frames_and_a_repeat_is_unmatched():
    """The node answers in order, so frames before an answered one were dropped (missing);
    a second answer with the same stamp is not paired again."""
    pairer: StampPairer[str] = StampPairer()
    for i in range(4):
        pairer.add((100 + i, 0), i, f"f{i}")
    assert pairer.match((102, 0)).payload == "f2"
    assert pairer.missing == ["f0", "f1"] and pairer.outstanding == 1
    assert pairer.match((100, 0)) is None and pairer.match((102, 0)) is None
    assert pairer.unmatched == 2
    pairer.give_up()
    assert pairer.missing == ["f0", "f1", "f3"] and pairer.outstanding == 0


def test_two_frames_with_one_stamp_are_refused():
    """A repeated stamp could never be told apart, so registering it raises."""
    pairer: StampPairer[int] = StampPairer()
    pairer.add((5, 7), 0, 0)
    with pytest.raises(ValueError, match="two frames"):
        pairer.add((5, 7), 1, 1)


def test_score_without_nan_is_exactly_the_offline_metric():
    """A published depth without NaN scores exactly as metrics.evaluate_frame."""
    rng = np.random.default_rng(0)
    gt = rng.uniform(0.5, 8.0, (48, 64)).astype(np.float32)
    gt[:5] = 0.0
    pred = (gt * rng.uniform(0.8, 1.2, gt.shape)).astype(np.float32) + 0.01
    metrics, nan_fraction = score_depth(pred, gt)
    assert metrics == evaluate_frame(pred, gt) and nan_fraction == 0.0


def test_nan_pixels_are_left_out_of_the_score_and_their_share_reported():
    """NaN (the node's 'no reading') pixels are excluded like invalid ground truth."""
    gt = np.full((40, 40), 2.0, np.float32)
    pred = np.full((40, 40), 2.0, np.float32)
    pred[:10] = np.nan  # a quarter of the pixels
    gt_bad = gt.copy()
    gt_bad[:10] = 9.0  # would ruin the score if the NaN pixels counted
    metrics, nan_fraction = score_depth(pred, gt_bad)
    assert metrics["abs_rel"] == pytest.approx(0.0) and metrics["delta1"] == 1.0
    assert nan_fraction == pytest.approx(0.25)
    with pytest.raises(ValueError):
        score_depth(np.full((40, 40), np.nan, np.float32), gt)


def test_diagnostics_count_drops_since_the_stream_started_and_only_periods_with_output():
    """Drops before mark_start (an attached node's history) are not counted; idle periods add
    no inference latency."""
    tracker = DiagnosticsTracker()
    tracker.add({"dropped_frames": "7", "output_rate_hz": "5.0", "inference_p50_ms": "99",
                 "backend": "onnxruntime"})
    tracker.mark_start()
    tracker.add({"dropped_frames": "9", "output_rate_hz": "10.0", "inference_p50_ms": "12.5",
                 "latency_p50_ms": "15.0"})
    tracker.add({"dropped_frames": "10", "output_rate_hz": "0.00", "inference_p50_ms": "nan"})
    assert tracker.dropped == 3
    assert tracker.inference_p50_ms == [12.5] and tracker.node_latency_p50_ms == [15.0]
    assert tracker.backend == "onnxruntime"
    assert DiagnosticsTracker().dropped is None


def test_diagnostics_are_taken_from_the_depth_node_of_our_namespace_only():
    """Statuses of other hardware or of a node in another namespace are ignored."""
    def status(name: str, hw: str = "depth_unet_ros") -> SimpleNamespace:
        return SimpleNamespace(name=name, hardware_id=hw,
                               values=[SimpleNamespace(key="backend", value=name)])
    msg = SimpleNamespace(status=[status("/depth_node: depth"), status("/cam1/depth_node: depth"),
                                  status("/motor: temp", hw="motor")])
    assert diagnostics_of(msg) == [{"backend": "/depth_node: depth"}]
    assert diagnostics_of(msg, "/cam1") == [{"backend": "/cam1/depth_node: depth"}]
    assert StreamConfig(depth_topic="/cam1/depth/image").namespace == "/cam1"
    assert StreamConfig().namespace == ""


def test_the_no_node_diagnosis_names_domain_transport_and_topic():
    """The timeout message says what was missing and which settings to compare."""
    text = diagnose_no_node(30.0, StreamConfig(), 0, 0,
                            {"ROS_DOMAIN_ID": "42", "FASTDDS_BUILTIN_TRANSPORTS": "LARGE_DATA"})
    assert "no depth_node publishing /depth/image after 30 s" in text
    assert "ROS_DOMAIN_ID" in text and "42" in text and "LARGE_DATA" in text
    assert "remap" in diagnose_no_node(5.0, StreamConfig(), 1, 0, {})


# --- the real node over DDS --------------------------------------------------------------------
@pytest.mark.ros
@pytest.mark.slow
def test_replaying_a_bag_through_the_node_scores_what_offline_evaluation_scores(
        tiny_onnx_model, small_bag, tmp_path, monkeypatch):
    """A bag's VGA frames replayed to a depth_node subprocess come back at input size and score
    within 1e-4 of evaluate_dataset on the same model and bag: transport and conversions are
    lossless, every frame is answered, latency is measured, /diagnostics are read.

    Played at 0.4x (4 Hz): the node keeps one frame in its input queue (newest first, by
    design), and at the bag's 10 Hz a machine loaded by two other test sessions once starved
    its executor long enough for one of 5 frames to be replaced in that queue, unanswered."""
    pytest.importorskip("rclpy", reason="rclpy not installed (pip install .[ros])")
    from depth_unet_ros.bags.replay import ReplayOptions
    from depth_unet_ros.datasets.bag import BagDataset
    from depth_unet_ros.evaluation.offline import evaluate_dataset
    from depth_unet_ros.inference import load_estimator
    from depth_unet_ros.streaming_eval.node_process import NodeProcess, node_command
    from depth_unet_ros.streaming_eval.evaluator import StreamEvaluator

    # Stock settings: the node takes its own Fast DDS profile (a discovery range would make
    # rmw_fastrtps replace it by localhost UDP).
    stock_fastdds(monkeypatch)
    offline = evaluate_dataset(load_estimator(tiny_onnx_model, "onnxruntime"),
                               BagDataset(small_bag), progress=False)

    kept = []
    config = StreamConfig(discovery_timeout_s=30.0, answer_timeout_s=20.0, diagnostics_wait_s=1.5,
                          replay=ReplayOptions(rate=0.4))
    command = node_command(tiny_onnx_model, params={"diagnostics_period_s": 0.5})
    with NodeProcess(command, tmp_path / "node.log") as node:
        with StreamEvaluator(small_bag, config, abort_check=node.check_alive) as evaluator:
            start = time.monotonic()
            result = evaluator.run(on_scored=kept.append)
            took_s = time.monotonic() - start
        assert node.stop() == 0, node.log()

    stats, streamed = result.stats, result.evaluation
    assert (stats.sent, stats.received, stats.missing, stats.unmatched) == (5, 5, 0, 0), stats
    assert [row["name"] for row in streamed.per_image] == [row["name"] for row in offline.per_image]
    for name, value in offline.metrics.items():
        assert streamed.metrics[name] == pytest.approx(value, abs=1e-4), name
    for got, want in zip(streamed.per_image, offline.per_image):
        for name in offline.metrics:
            assert got[name] == pytest.approx(want[name], abs=1e-4), (got["name"], name)
    assert kept[0].depth_m.shape == (480, 640) and kept[0].index == 0
    assert kept[0].gt_depth_m.shape == (480, 640)
    assert len(streamed.latency_ms) == 5 and all(0 < ms < 5000 for ms in streamed.latency_ms)
    assert stats.backend == "onnxruntime" and stats.node_dropped == 0
    assert stats.node_inference_ms["median"] is not None
    assert stats.rate_hz == pytest.approx(4.0) and 3.0 < stats.send_rate_hz < 5.0
    assert took_s < 25.0 and stats.player == "depth-unet replay"
    assert result.to_json_dict()["stream"]["received"] == 5


def test_another_players_frame_our_listener_missed_is_scored_without_a_latency():
    """With --no-play the listener only times inputs: an answer to a bag frame it did not hear
    (it may still be settling its QoS, or the link is lossy) is paired all the same, counted as
    sent, and left out of the latency figures, instead of being called unmatched and missing."""
    import queue

    from depth_unet_ros.streaming_eval.evaluator import _Session
    from depth_unet_ros.streaming_eval.results import BagPlan

    stamps = [1_000_000_000 + i * 100_000_000 for i in range(3)]
    plan = BagPlan(image_stamps=stamps, scored=frozenset(stamps), image_rate_hz=10.0)
    events: queue.Queue = queue.Queue()
    session = _Session(Path("unused.bag"), StreamConfig(play=False), plan, events, lambda: None, None)
    depth = np.ones((4, 4), np.float32)
    events.put(("in", stamps[0], 10.0))
    events.put(("out", stamps[0], depth, 10.05))
    events.put(("out", stamps[1], depth, 10.15))  # its input was never heard here
    events.put(("in", stamps[2], 10.2))
    events.put(("out", stamps[2], depth, 10.26))
    session.collect(0.0)
    assert session.sent == 3 and session.pairer.unmatched == 0 and not session.pairer.missing
    latencies = [latency for _, _, latency in session.answered]
    assert latencies[0] == pytest.approx(50.0) and latencies[2] == pytest.approx(60.0)
    assert np.isnan(latencies[1])
    assert (session.start_s, session.last_sent_s) == (10.0, 10.2)
