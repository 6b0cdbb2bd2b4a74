"""vo_node's counters and latencies, and the /diagnostics values made of them (no rclpy)."""
from __future__ import annotations

import math
import threading
import time
from dataclasses import dataclass, field
from typing import Any

from depth_unet_ros.latency import percentile
from depth_unet_ros.odometry.exact_pairing import PairingCounts

COUNTERS = ("paired", "tracked", "failed", "keyframes", "busy_dropped", "malformed", "restarts")


@dataclass
class VoStats:
    """Thread-safe counts (totals, and per diagnostics period) and per-frame timings."""

    clock: Any = time.monotonic
    totals: dict[str, int] = field(default_factory=lambda: dict.fromkeys(COUNTERS, 0))
    _period: dict[str, int] = field(default_factory=lambda: dict.fromkeys(COUNTERS, 0))
    _latencies_ms: list = field(default_factory=list)
    _track_ms: list = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)
    _period_start: float = 0.0

    def __post_init__(self) -> None:
        self._period_start = self.clock()

    def count(self, what: str, n: int = 1) -> None:
        with self._lock:
            self.totals[what] += n
            self._period[what] += n

    def record(self, latency_ms: float, track_ms: float) -> None:
        """One published pose: set complete -> odometry published, and the tracker alone."""
        with self._lock:
            self._latencies_ms.append(latency_ms)
            self._track_ms.append(track_ms)

    def diagnostics(self, pairing: PairingCounts) -> tuple[int, str, list[tuple[str, str]]]:
        """(level, message, key/value pairs) for this period, which then starts anew.

        WARN when frames arrive but every one fails to track, or when frames arrive but none
        pairs (a topic is missing); OK otherwise.
        """
        with self._lock:
            now = self.clock()
            period_s = max(now - self._period_start, 1e-9)
            period, lat, trk = dict(self._period), self._latencies_ms, self._track_ms
            self._period = dict.fromkeys(COUNTERS, 0)
            self._latencies_ms, self._track_ms, self._period_start = [], [], now
            totals = dict(self.totals)
        level, message = 0, "ok"
        if period["paired"] == 0:
            message = "waiting for depth, features and camera_info"
        elif period["tracked"] == 0 and period["failed"] > 0:
            level, message = 1, "tracking fails on every frame"
        values = [
            ("input_rate_hz", f"{period['paired'] / period_s:.2f}"),
            ("odometry_rate_hz", f"{period['tracked'] / period_s:.2f}"),
            ("latency_p50_ms", f"{percentile(lat, 50):.2f}"),
            ("latency_max_ms", f"{max(lat) if lat else math.nan:.2f}"),
            ("track_p50_ms", f"{percentile(trk, 50):.2f}"),
            ("tracking_failures", str(totals["failed"])),
            ("tracking_failures_period", str(period["failed"])),
            ("keyframes", str(totals["keyframes"])),
            ("published_poses", str(totals["tracked"])),
            ("dropped_busy", str(totals["busy_dropped"])),
            ("dropped_incomplete", str(pairing.incomplete + pairing.overflow)),
            ("dropped_stale", str(pairing.stale)),
            ("malformed_messages", str(totals["malformed"])),
            ("restarts", str(totals["restarts"])),
        ]
        return level, message, values
