"""odometry.vo_stats: /diagnostics of vo_node report rates per period, totals, and warn only when
frames arrive and every one fails to track."""
from __future__ import annotations

from depth_unet_ros.odometry.exact_pairing import PairingCounts
from depth_unet_ros.odometry.vo_stats import VoStats


class _Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_rates_totals_and_levels_over_two_periods():
    clock = _Clock()
    stats = VoStats(clock=clock)
    for _ in range(10):
        stats.count("paired")
        stats.count("tracked")
        stats.record(latency_ms=20.0, track_ms=15.0)
    stats.count("keyframes", 2)
    clock.now = 2.0
    level, message, values = stats.diagnostics(PairingCounts(incomplete=1, overflow=2, stale=3))
    values = dict(values)
    assert (level, message) == (0, "ok")
    assert values["input_rate_hz"] == "5.00" and values["odometry_rate_hz"] == "5.00"
    assert values["latency_p50_ms"] == "20.00" and values["track_p50_ms"] == "15.00"
    assert values["keyframes"] == "2" and values["dropped_incomplete"] == "3"
    assert values["dropped_stale"] == "3"
    for _ in range(4):
        stats.count("paired")
        stats.count("failed")
    clock.now = 3.0
    level, message, values = stats.diagnostics(PairingCounts())
    values = dict(values)
    assert (level, message) == (1, "tracking fails on every frame")
    assert values["tracking_failures"] == "4" and values["published_poses"] == "10"
    assert values["odometry_rate_hz"] == "0.00" and values["latency_p50_ms"] == "nan"
    clock.now = 4.0
    assert stats.diagnostics(PairingCounts())[:2] == (0, "waiting for depth, features and camera_info")
