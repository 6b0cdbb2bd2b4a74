"""The depth node's pure logic: settings, newest-frame slot, statistics, scaling, diagnostics."""
from __future__ import annotations

import math
import threading
import time

import numpy as np
import pytest

from depth_unet_ros import node_core
from depth_unet_ros.errors import ConfigError
from depth_unet_ros.node_core import LatestSlot, NodeSettings, NodeStats, QosChoice


def test_default_settings_subscribe_best_effort_depth_one_and_publish_reliable():
    """Defaults receive from both kinds of camera (best-effort, newest only); outputs are reliable."""
    settings = NodeSettings.from_params({})
    assert node_core.subscription_qos(settings) == QosChoice("best_effort", 1)
    assert node_core.PUBLISHER_QOS.reliability == "reliable"
    assert settings.output_size == "input" and settings.publish_features and not settings.focal_scaling


def test_auto_and_fixed_reliabilities_start_as_chosen():
    """auto (the default) starts best-effort so it hears any camera; the fixed choices stay."""
    assert NodeSettings().qos_reliability == "auto"
    for value, start in [("auto", "best_effort"), ("best_effort", "best_effort"),
                         ("reliable", "reliable")]:
        settings = NodeSettings.from_params({"qos_reliability": value, "qos_depth": 2})
        assert node_core.subscription_qos(settings) == QosChoice(start, 2)


@pytest.mark.parametrize("offered, current, wanted", [
    (["reliable"], "best_effort", "reliable"),
    (["reliable", "reliable"], "best_effort", "reliable"),
    (["reliable", "best_effort"], "reliable", "best_effort"),
    (["best_effort"], "reliable", "best_effort"),
    (["unknown"], "reliable", "best_effort"),
    (["reliable"], "reliable", "reliable"),
    ([], "reliable", "reliable"),
    ([], "best_effort", "best_effort"),
])
def test_auto_reliability_is_reliable_only_while_every_publisher_is(offered, current, wanted):
    """All publishers reliable -> reliable; any best-effort or unknown -> best-effort; none ->
    unchanged (a restarting camera does not make the subscription flap)."""
    assert node_core.followed_reliability(offered, current) == wanted


@pytest.mark.parametrize("values, match", [
    ({"backend": "cuda"}, "backend"),
    ({"qos_reliability": "best_available"}, "qos_reliability"),
    ({"output_size": "full"}, "output_size"),
    ({"qos_depth": 0}, "qos_depth"),
    ({"num_threads": -1}, "num_threads"),
    ({"min_depth_m": -1.0}, "min_depth_m"),
    ({"min_depth_m": 5.0, "max_depth_m": 2.0}, "below"),
])
def test_invalid_parameters_raise_config_error_naming_the_parameter(values, match):
    """Each bad value is refused with the parameter's name (and allowed values) in the message."""
    with pytest.raises(ConfigError, match=match):
        NodeSettings.from_params(values)


def test_from_params_ignores_parameters_the_node_does_not_own():
    """use_sim_time and other ROS-declared parameters do not reach the settings."""
    assert NodeSettings.from_params({"use_sim_time": True, "backend": "torch"}).backend == "torch"


def test_runtime_update_validates_and_leaves_the_old_settings_untouched():
    """A bad runtime update raises; a good one returns a new object (frozen settings)."""
    settings = NodeSettings()
    assert settings.updated({"max_depth_m": 4.0}).max_depth_m == 4.0
    with pytest.raises(ConfigError):
        settings.updated({"output_size": "huge"})
    assert settings.max_depth_m == 0.0


def test_slot_keeps_only_the_newest_item_and_counts_replaced_ones_as_drops():
    """Three puts before a take: the worker sees the third; two were dropped."""
    slot: LatestSlot[int] = LatestSlot()
    assert slot.put(1) is False
    assert slot.put(2) is True
    assert slot.put(3) is True
    assert slot.take(0.1) == 3 and slot.dropped == 2
    assert slot.take(0.01) is None  # empty again: nothing is processed twice
    assert slot.put(4) is False  # taken items are not drops


def test_slot_take_blocks_until_a_put_and_close_wakes_the_worker():
    """The worker sleeps on an empty slot, wakes for a frame, and ends on close()."""
    slot: LatestSlot[str] = LatestSlot()
    got: list = []
    worker = threading.Thread(target=lambda: got.extend([slot.take(), slot.take()]))
    worker.start()
    time.sleep(0.05)
    slot.put("frame")
    time.sleep(0.05)
    slot.close()
    worker.join(2.0)
    assert not worker.is_alive() and got == ["frame", None]


def test_stats_snapshot_reports_period_rates_percentiles_and_totals_then_resets():
    """Rates are per period, latency percentiles cover the period, totals keep counting."""
    now = [100.0]
    stats = NodeStats(clock=lambda: now[0])
    stats.count("received", 20)
    stats.count("dropped", 5)
    stats.count("malformed")
    for latency in range(1, 11):  # 1..10 ms
        stats.record_processed(float(latency), 0.5)
    now[0] = 102.0
    snap = stats.snapshot()
    assert snap.input_rate_hz == pytest.approx(10.0) and snap.output_rate_hz == pytest.approx(5.0)
    assert snap.latency_p50_ms == pytest.approx(5.5) and snap.latency_p90_ms == pytest.approx(9.1)
    assert snap.latency_max_ms == 10.0 and snap.inference_p50_ms == 0.5
    assert (snap.dropped_period, snap.dropped_total, snap.malformed_total) == (5, 5, 1)
    now[0] = 103.0
    stats.count("dropped", 2)
    snap = stats.snapshot()
    assert snap.input_rate_hz == 0.0 and math.isnan(snap.latency_p50_ms)
    assert (snap.dropped_period, snap.dropped_total, snap.processed_total) == (2, 7, 10)


def test_diagnostics_warn_only_when_frames_arrive_but_nothing_is_published():
    """Drops are normal (camera faster than model); receiving without publishing is a warning."""
    def snap(rate_in: float, rate_out: float) -> node_core.StatsSnapshot:
        return node_core.StatsSnapshot(1.0, rate_in, rate_out, 1.0, 2.0, 3.0, 0.5, 10, 10, 0, 0, 5)
    level, _, values = node_core.diagnostics_values(snap(30.0, 10.0), "onnxruntime", "/m.onnx", 1.25)
    keys = dict(values)
    assert level == 0 and keys["dropped_frames"] == "10" and keys["backend"] == "onnxruntime"
    assert keys["model_path"] == "/m.onnx" and keys["focal_scale"] == "1.2500"
    assert {"input_rate_hz", "output_rate_hz", "latency_p50_ms", "latency_p90_ms", "latency_max_ms"} <= set(keys)
    assert node_core.diagnostics_values(snap(30.0, 0.0), "x", "y", 1.0)[0] == 1


def test_diagnostics_report_frames_skipped_for_lack_of_subscribers_as_ok_no_subscribers():
    """Idle by design: frames arrive, nobody subscribes, nothing is computed -> OK, "no subscribers"."""
    stats = NodeStats()
    stats.count("received", 10)
    stats.count("skipped_no_subscribers", 10)
    snap = stats.snapshot()
    assert snap.skipped_no_subscribers_period == 10
    level, message, values = node_core.diagnostics_values(snap, "x", "y", 1.0)
    assert (level, message) == (0, "no subscribers")
    assert dict(values)["skipped_no_subscribers"] == "10"
    assert stats.snapshot().skipped_no_subscribers_period == 0  # per period; the total keeps counting


def test_depth_limits_default_to_the_model_range_times_the_focal_scale():
    """0 parameters mean the model's range (scaled); set parameters are used as given."""
    assert node_core.depth_limits_m(NodeSettings(), 0.1, 10.0, 2.0) == (0.2, 20.0)
    assert node_core.depth_limits_m(NodeSettings(min_depth_m=0.5, max_depth_m=4.0), 0.1, 10.0, 2.0) == (0.5, 4.0)


def test_finalize_depth_scales_and_sets_nan_outside_the_range_without_touching_the_input():
    """Depth x scale; NaN outside [min, max] and where the model gave NaN/inf."""
    depth = np.array([[0.05, 0.5, 2.0], [9.0, np.nan, np.inf]], np.float32)
    original = depth.copy()
    out = node_core.finalize_depth(depth, 2.0, 0.2, 10.0)
    expected = np.array([[np.nan, 1.0, 4.0], [np.nan, np.nan, np.nan]], np.float32)
    np.testing.assert_array_equal(out, expected)
    assert out.dtype == np.float32
    np.testing.assert_array_equal(depth, original)


def test_finalize_depth_writes_into_the_given_buffer():
    """With ``out`` (the outgoing message's pixels) the result lands there and nothing new is made."""
    depth = np.array([[0.05, 0.5], [2.0, 30.0]], np.float32)
    buffer = np.full((2, 2), -1.0, np.dtype("<f4"))
    assert node_core.finalize_depth(depth, 1.0, 0.1, 10.0, out=buffer) is buffer
    np.testing.assert_array_equal(buffer, [[np.nan, 0.5], [2.0, np.nan]])


def test_recent_keys_pass_each_message_once_while_two_subscriptions_overlap():
    """A frame that arrives through the old and the new subscription is passed on once; keys
    beyond the capacity are forgotten, and clear() forgets all."""
    from depth_unet_ros.node_core import RecentKeys

    recent = RecentKeys(capacity=3)
    assert [recent.first_time(k) for k in (1, 2, 1, 3, 2)] == [True, True, False, True, False]
    assert recent.first_time(4) and recent.first_time(1)  # 1 fell out after 2, 3, 4
    recent.clear()
    assert recent.first_time(3)
