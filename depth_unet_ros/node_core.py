"""The depth node's logic that needs no ROS: settings, the newest-frame slot, statistics,
the QoS choice as plain data, depth post-processing, and the diagnostics values (camera
geometry is in ``camera_geometry``).

``node.py`` only wires these to rclpy, so everything here is unit-tested without a graph.
"""
from __future__ import annotations

import math
import threading
import time
from collections import deque
from dataclasses import dataclass, field, replace
from typing import Any, Generic, Hashable, Mapping, Sequence, TypeVar

import numpy as np

from depth_unet_ros.errors import ConfigError
from depth_unet_ros.latency import percentile
from depth_unet_ros.node_parameters import (BACKEND_CHOICES, OUTPUT_SIZE_CHOICES,  # noqa: F401
                                            RELIABILITY_CHOICES, RUNTIME_PARAMETERS, default)

# How often qos_reliability auto looks at the input's publishers (a graph query of ~55 us): until
# it switches, a reliable camera's frames arrive best-effort and most VGA frames are lost.
QOS_CHECK_PERIOD_S = 0.2
# A QoS switch subscribes anew before it unsubscribes: the old subscription keeps hearing the
# camera at least this long, and until every publisher has matched the new one (where rclpy
# can count matches, Iron and newer), so no frame falls in between: on a loaded machine
# matching took longer than 1 s, and the frames between were lost uncounted.
QOS_SWITCH_OVERLAP_S = 1.0
QOS_SWITCH_MAX_OVERLAP_S = 10.0  # ... but no longer than this (a publisher that never matches)

T = TypeVar("T")


@dataclass(frozen=True)
class NodeSettings:
    """The node's parameters, validated; the defaults are node_parameters' table.

    ``model_path`` "" means the model bundled with the package. Depth limits of 0 mean "the
    model's range" (from its metadata, times the focal scale when ``focal_scaling`` is on).
    """

    model_path: str = default("model_path")
    backend: str = default("backend")
    num_threads: int = default("num_threads")  # CPU threads; 0 = the backend's default
    qos_reliability: str = default("qos_reliability")  # follows the camera (auto)
    qos_depth: int = default("qos_depth")  # 1: older frames are stale for a real-time consumer
    output_size: str = default("output_size")  # depth at the camera's size, or the network's
    min_depth_m: float = default("min_depth_m")
    max_depth_m: float = default("max_depth_m")
    publish_features: bool = default("publish_features")
    compressed_input: bool = default("compressed_input")
    focal_scaling: bool = default("focal_scaling")
    diagnostics_period_s: float = default("diagnostics_period_s")  # <= 0 turns /diagnostics off
    frame_id_override: str = default("frame_id_override")

    @classmethod
    def from_params(cls, values: Mapping[str, Any]) -> "NodeSettings":
        """Build from parameter name -> value; unknown names are ignored (use_sim_time, ...)."""
        names = set(cls.__dataclass_fields__)
        return cls(**{k: v for k, v in values.items() if k in names}).validate()

    def validate(self) -> "NodeSettings":
        """Raise ConfigError naming the parameter and its allowed values; return self."""
        _one_of("backend", self.backend, BACKEND_CHOICES)
        _one_of("qos_reliability", self.qos_reliability, RELIABILITY_CHOICES)
        _one_of("output_size", self.output_size, OUTPUT_SIZE_CHOICES)
        if self.qos_depth < 1:
            raise ConfigError(f"qos_depth must be >= 1, got {self.qos_depth}")
        if self.num_threads < 0:
            raise ConfigError(f"num_threads must be >= 0 (0 = backend default), got {self.num_threads}")
        if self.min_depth_m < 0 or self.max_depth_m < 0:
            raise ConfigError(f"min_depth_m and max_depth_m must be >= 0 (0 = the model's range), "
                              f"got {self.min_depth_m}, {self.max_depth_m}")
        if self.max_depth_m and self.min_depth_m >= self.max_depth_m:
            raise ConfigError(f"min_depth_m ({self.min_depth_m}) must be below max_depth_m "
                              f"({self.max_depth_m})")
        return self

    def updated(self, values: Mapping[str, Any]) -> "NodeSettings":
        """A validated copy with some parameters changed (for runtime parameter updates)."""
        return replace(self, **values).validate()


def _one_of(name: str, value: str, choices: Sequence[str]) -> None:
    if value not in choices:
        raise ConfigError(f"parameter {name} must be one of {', '.join(choices)}, got {value!r}")


@dataclass(frozen=True)
class QosChoice:
    """A QoS profile as plain data; ``following_subscription.qos_profile`` maps it onto rclpy's."""

    reliability: str  # "best_effort" | "reliable"
    depth: int  # KEEP_LAST history depth; durability is always volatile


def subscription_qos(settings: NodeSettings) -> QosChoice:
    """The depth node's input QoS at start (``starting_qos`` of its parameters)."""
    return starting_qos(settings.qos_reliability, settings.qos_depth)


def starting_qos(qos_reliability: str, depth: int) -> QosChoice:
    """A camera subscription's QoS at start, for a RELIABILITY_CHOICES setting. ``auto`` starts
    best-effort, which matches a reliable or best-effort camera whichever starts first, and then
    follows the publishers (``followed_reliability``). BEST_AVAILABLE is not offered because it
    fixes its choice when the subscription is created and then misses a best-effort camera that
    starts later."""
    reliability = "best_effort" if qos_reliability == "auto" else qos_reliability
    return QosChoice(reliability, depth)


def followed_reliability(offered: Sequence[str], current: str) -> str:
    """The input reliability ``qos_reliability: auto`` wants, from what the publishers offer.

    Reliable only when every publisher offers "reliable": over Fast DDS's default transports a
    best-effort subscription loses most VGA frames of a reliable camera (2 of 300 measured),
    while a reliable subscription cannot hear a best-effort camera at all, so any best-effort
    (or unknown) publisher means best-effort. With no publisher the current choice stays, so a
    camera that restarts does not make the subscription flap.
    """
    if not offered:
        return current
    return "reliable" if all(r == "reliable" for r in offered) else "best_effort"


class RecentKeys:
    """The last ``capacity`` keys seen: tells a message that arrives twice (through an old and a
    new subscription of the same topic while they overlap) from a new one."""

    def __init__(self, capacity: int = 16) -> None:
        self._keys: deque[Hashable] = deque(maxlen=capacity)

    def first_time(self, key: Hashable) -> bool:
        """True, and remembered, unless ``key`` is among the recent ones."""
        if key in self._keys:
            return False
        self._keys.append(key)
        return True

    def clear(self) -> None:
        self._keys.clear()


# Outputs are reliable (REP 2003) so reliable and best-effort consumers both connect; depth 1
# because the node itself only ever has the newest frame to offer. Measured (README,
# Performance): on Fast DDS's defaults a history of 5 made 98-100 % of answers whole instead of
# 75-88 %, but raised p90 at 4 Hz from 48 to ~300 ms; the node's own Fast DDS profile made all
# of them whole at either depth, so the newest-first depth 1 stays.
PUBLISHER_QOS = QosChoice("reliable", 1)
DIAGNOSTICS_QOS = QosChoice("reliable", 10)


# The node's first answer waits (once, this long at most) until every consumer matched at that
# moment has acknowledged it. Discovery matches each pair of endpoints on its own: a consumer's
# reader can match the node's camera_info writer after its depth writer. A sample the node sent
# before then is repaired only from history (Fast DDS's reader sends its first acknack 70 ms
# after matching), and at depth 1 the next answer may have replaced it: the likely way a CI run
# lost its first answer's camera_info (in 40 runs under load the node's side had matched every
# consumer by then). A matched consumer acknowledges within milliseconds: no cost otherwise.
FIRST_ANSWER_ACK_WAIT_S = 1.0


class LatestSlot(Generic[T]):
    """A one-item buffer between the subscription callback and the inference worker.

    ``put`` never blocks (the callback returns at once); a frame replaced before the worker
    took it counts as dropped, which keeps latency bounded when inference is slower than the
    camera.
    """

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._item: T | None = None
        self._closed = False
        self.dropped = 0

    def put(self, item: T) -> bool:
        """Store ``item``; True when it replaced an unprocessed one (a drop)."""
        with self._cond:
            replaced = self._item is not None
            if replaced:
                self.dropped += 1
            self._item = item
            self._cond.notify()
            return replaced

    def take(self, timeout_s: float | None = None) -> T | None:
        """The newest item, emptying the slot; None on timeout or once closed."""
        with self._cond:
            self._cond.wait_for(lambda: self._item is not None or self._closed, timeout=timeout_s)
            if self._closed:
                return None
            item, self._item = self._item, None
            return item

    def close(self) -> None:
        """Wake the worker for good (shutdown)."""
        with self._cond:
            self._closed = True
            self._cond.notify_all()

    @property
    def closed(self) -> bool:
        return self._closed


@dataclass
class StatsSnapshot:
    """What happened in one diagnostics period (rates over ``period_s``) plus running totals."""

    period_s: float
    input_rate_hz: float
    output_rate_hz: float
    latency_p50_ms: float  # receipt in the callback -> outputs published
    latency_p90_ms: float
    latency_max_ms: float
    inference_p50_ms: float  # estimator.predict alone
    dropped_period: int
    dropped_total: int
    malformed_total: int
    skipped_no_subscribers_total: int
    processed_total: int
    skipped_no_subscribers_period: int = 0


@dataclass
class NodeStats:
    """Thread-safe counters and latencies; ``snapshot`` reports and starts a new period."""

    clock: Any = time.monotonic
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)
    received: int = 0
    processed: int = 0
    dropped: int = 0
    malformed: int = 0
    skipped_no_subscribers: int = 0
    _latencies_ms: list = field(default_factory=list)
    _inference_ms: list = field(default_factory=list)
    _period_start: float | None = None
    _period_received: int = 0
    _period_processed: int = 0
    _period_dropped: int = 0
    _period_skipped: int = 0

    def __post_init__(self) -> None:
        self._period_start = self.clock()

    def count(self, what: str, n: int = 1) -> None:
        """Add ``n`` to ``received``, ``dropped``, ``malformed`` or ``skipped_no_subscribers``."""
        with self._lock:
            setattr(self, what, getattr(self, what) + n)
            if what == "received":
                self._period_received += n
            elif what == "dropped":
                self._period_dropped += n
            elif what == "skipped_no_subscribers":
                self._period_skipped += n

    def record_processed(self, latency_ms: float, inference_ms: float) -> None:
        with self._lock:
            self.processed += 1
            self._period_processed += 1
            self._latencies_ms.append(latency_ms)
            self._inference_ms.append(inference_ms)

    def snapshot(self) -> StatsSnapshot:
        with self._lock:
            now = self.clock()
            period = max(now - self._period_start, 1e-9)
            lat, inf = self._latencies_ms, self._inference_ms
            snap = StatsSnapshot(
                period_s=period,
                input_rate_hz=self._period_received / period,
                output_rate_hz=self._period_processed / period,
                latency_p50_ms=percentile(lat, 50), latency_p90_ms=percentile(lat, 90),
                latency_max_ms=max(lat) if lat else math.nan,
                inference_p50_ms=percentile(inf, 50),
                dropped_period=self._period_dropped, dropped_total=self.dropped,
                malformed_total=self.malformed,
                skipped_no_subscribers_total=self.skipped_no_subscribers,
                processed_total=self.processed, skipped_no_subscribers_period=self._period_skipped)
            self._latencies_ms, self._inference_ms = [], []
            self._period_start = now
            self._period_received = self._period_processed = self._period_dropped = 0
            self._period_skipped = 0
            return snap


def diagnostics_values(snap: StatsSnapshot, backend: str, model_path: str,
                       focal_scale: float) -> tuple[int, str, list[tuple[str, str]]]:
    """(level, message, key/value pairs) for one DiagnosticStatus.

    Level 0 (OK), or 1 (WARN) when frames arrive but none is published for a reason other than
    nobody subscribing: skipping inference without consumers is idle by design, and dropping
    frames is normal when the camera is faster than the model, so both are reported, not warned
    about.
    """
    level, message = 0, "ok"
    if snap.input_rate_hz > 0 and snap.output_rate_hz == 0:
        if snap.skipped_no_subscribers_period > 0:
            message = "no subscribers"
        else:
            level, message = 1, "frames arrive but no depth is published"
    elif snap.input_rate_hz == 0:
        message = "waiting for images (or for a subscriber)"
    values = [
        ("input_rate_hz", f"{snap.input_rate_hz:.2f}"),
        ("output_rate_hz", f"{snap.output_rate_hz:.2f}"),
        ("latency_p50_ms", f"{snap.latency_p50_ms:.2f}"),
        ("latency_p90_ms", f"{snap.latency_p90_ms:.2f}"),
        ("latency_max_ms", f"{snap.latency_max_ms:.2f}"),
        ("inference_p50_ms", f"{snap.inference_p50_ms:.2f}"),
        ("dropped_frames", str(snap.dropped_total)),
        ("dropped_frames_period", str(snap.dropped_period)),
        ("malformed_messages", str(snap.malformed_total)),
        ("skipped_no_subscribers", str(snap.skipped_no_subscribers_total)),
        ("published_frames", str(snap.processed_total)),
        ("backend", backend),
        ("model_path", model_path),
        ("focal_scale", f"{focal_scale:.4f}"),
    ]
    return level, message, values


def depth_limits_m(settings: NodeSettings, model_min_m: float, model_max_m: float,
                   scale: float) -> tuple[float, float]:
    """(min, max) published depth in metres: the parameters, or the model's range x ``scale``."""
    low = settings.min_depth_m or model_min_m * scale
    high = settings.max_depth_m or model_max_m * scale
    return low, high


def finalize_depth(depth_m: np.ndarray, scale: float, min_m: float, max_m: float,
                   out: np.ndarray | None = None) -> np.ndarray:
    """(H, W) depth x ``scale`` as float32, NaN outside [min_m, max_m] (REP 118: NaN = no
    reading; non-finite predictions become NaN too); written into ``out`` when given (the
    pixels of the outgoing message), else into a new array."""
    out = np.multiply(depth_m, np.float32(scale), dtype=np.float32, out=out)
    with np.errstate(invalid="ignore"):
        invalid = ~((out >= min_m) & (out <= max_m))  # also catches NaN
    out[invalid] = np.nan
    return out


# What a user changes when the model does not load: appended to the node's ModelLoadError.
MODEL_FIX_HINT = "Set the node parameter model_path (launch argument model:=/path/to/model.onnx)"
