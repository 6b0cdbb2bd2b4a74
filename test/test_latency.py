"""The one latency summary: median and p90 by linear interpolation, null without samples."""
import math

from depth_unet_ros.latency import latency_summary_ms, percentile


def test_percentile_interpolates_linearly_and_is_nan_when_empty():
    assert percentile([10.0, 20.0], 50) == 15.0
    assert percentile([0.0, 10.0], 90) == 9.0
    assert math.isnan(percentile([], 50))


def test_summary_is_median_and_p90_or_nulls():
    values = [float(v) for v in range(1, 11)]  # 1 .. 10 ms
    assert latency_summary_ms(values) == {"median": 5.5, "p90": 9.1}
    assert latency_summary_ms([]) == {"median": None, "p90": None}
