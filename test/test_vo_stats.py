"""odometry.vo_stats: /diagnostics of vo_node report rates per period, totals and which frames had
the camera image, and warn only when frames arrive and every one fails to track, or when they
go without the image for a while although use_image is on."""
from __future__ import annotations

from depth_unet_ros.odometry.exact_pairing import PairingCounts
from depth_unet_ros.odometry.vo_stats import IMAGE_MISSING_WARN_S, VoStats


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


def test_frames_with_and_without_the_image_are_counted_and_a_long_absence_warns():
    """Each frame counts with or without the camera image (share per period, totals). With
    use_image on, frames going without it for IMAGE_MISSING_WARN_S are a WARN that names the
    topic and a likely wrong remapping; one frame with the image is OK again."""
    clock = _Clock()
    stats = VoStats(clock=clock, image_topic="/camera/image_raw")
    for with_image in (True, True, True, False):
        stats.count("paired")
        stats.count("tracked")
        stats.frame(with_image)
    clock.now = 1.0
    level, message, values = stats.diagnostics(PairingCounts())
    values = dict(values)
    assert (level, message) == (0, "ok")
    assert values["image_share_period"] == "0.75" and values["frames_without_image"] == "1"
    assert values["image_topic"] == "/camera/image_raw"
    for _ in range(3):  # missing since t = 0 (the last frame above): 7 s at the end
        clock.now += 2.0
        stats.count("paired")
        stats.count("tracked")
        stats.frame(with_image=False)
    assert stats.image_missing_s() == clock.now == 7.0 > IMAGE_MISSING_WARN_S
    level, message, values = stats.diagnostics(PairingCounts())
    values = dict(values)
    assert level == 1 and "/camera/image_raw" in message and "remapping" in message
    assert values["image_share_period"] == "0.00" and values["frames_with_image"] == "3"
    assert "/camera/image_raw" in stats.image_missing_warning()
    stats.count("paired")
    stats.frame(with_image=True)
    assert stats.image_missing_s() == 0.0 and stats.image_missing_warning() is None
    assert stats.diagnostics(PairingCounts())[:2] == (0, "ok")


def test_without_use_image_no_frame_has_the_image_and_nothing_warns():
    clock = _Clock()
    stats = VoStats(clock=clock)
    stats.count("paired")
    stats.frame(with_image=False)
    clock.now = 60.0
    level, message, values = stats.diagnostics(PairingCounts())
    assert (level, message) == (0, "ok") and stats.image_missing_warning() is None
    assert dict(values)["image_topic"] == "off (use_image false)"
