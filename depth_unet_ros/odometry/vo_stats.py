"""vo_node's counters and latencies, and the /diagnostics values made of them (no rclpy).

Each frame handed to the tracker is counted with or without the camera image, so /diagnostics
says which mode odometry runs in; with use_image on, frames going without it for
``IMAGE_MISSING_WARN_S`` raise a WARN (features alone track several times worse on real frames).
"""
from __future__ import annotations

import math
import threading
import time
from dataclasses import dataclass, field
from typing import Any

from depth_unet_ros.latency import percentile
from depth_unet_ros.odometry.exact_pairing import PairingCounts

COUNTERS = ("paired", "tracked", "failed", "keyframes", "busy_dropped", "malformed", "restarts",
            "with_image", "without_image")
# Frames without the camera image for this long, with use_image on, is a WARN: longer than the
# 2.5-3 s reliable-repair stalls measured between processes here, so a stall alone does not
# read as a misconfiguration.
IMAGE_MISSING_WARN_S = 5.0


@dataclass
class VoStats:
    """Thread-safe counts (totals, and per diagnostics period) and per-frame timings.

    ``image_topic``: the camera image topic the node listens to (use_image), None when off.
    """

    clock: Any = time.monotonic
    image_topic: str | None = None
    totals: dict[str, int] = field(default_factory=lambda: dict.fromkeys(COUNTERS, 0))
    _period: dict[str, int] = field(default_factory=lambda: dict.fromkeys(COUNTERS, 0))
    _latencies_ms: list = field(default_factory=list)
    _track_ms: list = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)
    _period_start: float = 0.0
    _without_image_since: float | None = None  # start of the current run of frames without it

    def __post_init__(self) -> None:
        self._period_start = self.clock()

    def count(self, what: str, n: int = 1) -> None:
        with self._lock:
            self.totals[what] += n
            self._period[what] += n

    def frame(self, with_image: bool) -> None:
        """One frame handed to the tracker, with or without the camera image."""
        self.count("with_image" if with_image else "without_image")
        with self._lock:
            if with_image:
                self._without_image_since = None
            elif self._without_image_since is None:
                self._without_image_since = self.clock()

    def image_missing_s(self) -> float:
        """Seconds since frames started going without the camera image (0 while they have it)."""
        with self._lock:
            since = self._without_image_since
            return 0.0 if since is None else self.clock() - since

    def image_missing_warning(self) -> str | None:
        """Why the image is worth a WARN (use_image on, missing for IMAGE_MISSING_WARN_S), else
        None."""
        missing_s = self.image_missing_s()
        if self.image_topic is None or missing_s < IMAGE_MISSING_WARN_S:
            return None
        return (f"no camera image from {self.image_topic} has matched a depth stamp for "
                f"{missing_s:.0f} s: tracking on features alone (less accurate). A remapping is "
                "likely wrong (it must be the depth node's input image), or image_qos_reliability "
                "is fixed to reliable while the camera publishes best-effort")

    def record(self, latency_ms: float, track_ms: float) -> None:
        """One published pose: set complete -> odometry published, and the tracker alone."""
        with self._lock:
            self._latencies_ms.append(latency_ms)
            self._track_ms.append(track_ms)

    def diagnostics(self, pairing: PairingCounts) -> tuple[int, str, list[tuple[str, str]]]:
        """(level, message, key/value pairs) for this period, which then starts anew.

        WARN when frames arrive but every one fails to track, or when they keep arriving
        without the camera image although use_image is on (``image_missing_warning``); OK
        otherwise (the message says when nothing pairs: a depth topic is missing).
        """
        with self._lock:
            now = self.clock()
            period_s = max(now - self._period_start, 1e-9)
            period, lat, trk = dict(self._period), self._latencies_ms, self._track_ms
            self._period = dict.fromkeys(COUNTERS, 0)
            self._latencies_ms, self._track_ms, self._period_start = [], [], now
            totals = dict(self.totals)
        warnings = []
        if period["tracked"] == 0 and period["failed"] > 0:
            warnings.append("tracking fails on every frame")
        image_warning = self.image_missing_warning() if period["without_image"] else None
        if image_warning:
            warnings.append(image_warning)
        if period["paired"] == 0:
            level, message = 0, "waiting for depth, features and camera_info"
        else:
            level, message = (1, "; ".join(warnings)) if warnings else (0, "ok")
        framed = period["with_image"] + period["without_image"]
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
            ("image_topic", self.image_topic or "off (use_image false)"),
            ("frames_with_image", str(totals["with_image"])),
            ("frames_without_image", str(totals["without_image"])),
            ("image_share_period", f"{period['with_image'] / framed if framed else math.nan:.2f}"),
        ]
        return level, message, values
