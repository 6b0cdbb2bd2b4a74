"""Bookkeeping of a streaming evaluation that needs no ROS: stamps, pairing answers with the
frames they answer, the node's /diagnostics, and scoring a published depth map.

``stream_eval`` wires these to rclpy; here they are plain Python, so they are unit-tested
without a graph.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Generic, Mapping, TypeVar

import numpy as np

from depth_unet_ros.evaluation.metrics import EvalProtocol, evaluate_frame
from depth_unet_ros.preprocessing import resize_depth

StampKey = tuple[int, int]  # (sec, nanosec) of a std_msgs/Header stamp
T = TypeVar("T")


def stamp_from_ns(stamp_ns: int) -> StampKey:
    """Nanoseconds since the epoch -> (sec, nanosec) as a Header stamp holds them."""
    if stamp_ns < 0:
        raise ValueError(f"a ROS stamp cannot be negative, got {stamp_ns} ns")
    sec, nanosec = divmod(int(stamp_ns), 1_000_000_000)
    return sec, nanosec


def stamp_to_ns(key: StampKey) -> int:
    return int(key[0]) * 1_000_000_000 + int(key[1])


@dataclass
class Pending(Generic[T]):
    """A sent frame waiting for its depth: its position in the stream and what to score it with."""

    index: int
    payload: T
    sent_s: float  # monotonic clock at publish


class StampPairer(Generic[T]):
    """Pairs each answer with the frame it answers by the EXACT header stamp.

    The node copies the input's stamp into its output, so equality is the pairing rule; no
    nearest-in-time guessing that could credit an answer to the wrong frame. The node keeps only
    the newest frame and answers in order, so once frame i is answered every earlier frame still
    waiting was dropped: it is given up at once (``missing``), which also bounds the memory held
    for unanswered frames on long streams.
    """

    def __init__(self) -> None:
        self._pending: dict[StampKey, Pending[T]] = {}
        self._used: set[StampKey] = set()
        self.missing: list[T] = []  # payloads of frames that were never answered
        self.unmatched = 0  # answers whose stamp is unknown or already answered

    def add(self, key: StampKey, index: int, payload: T, sent_s: float = 0.0) -> Pending[T]:
        """Register a frame about to be published (set ``sent_s`` on the result at the publish
        instant); a repeated stamp is an error, since its answers could not be told apart."""
        if key in self._pending or key in self._used:
            raise ValueError(f"stamp {key} is used by two frames; every frame needs its own stamp "
                             "so its depth can be paired with it")
        pending = Pending(index, payload, sent_s)
        self._pending[key] = pending
        return pending

    def knows(self, key: StampKey) -> bool:
        """Whether a frame with this stamp was registered (waiting, answered or given up)."""
        return key in self._pending or key in self._used

    def match(self, key: StampKey) -> Pending[T] | None:
        """The frame an answer with stamp ``key`` belongs to, or None (counted as unmatched)."""
        found = self._pending.pop(key, None)
        if found is None:
            self.unmatched += 1
            return None
        self._used.add(key)
        stale = [k for k, p in self._pending.items() if p.index < found.index]
        for k in stale:
            self._used.add(k)
            self.missing.append(self._pending.pop(k).payload)
        return found

    @property
    def outstanding(self) -> int:
        """Frames sent and neither answered nor given up yet."""
        return len(self._pending)

    def give_up(self) -> None:
        """The stream is over: every frame still waiting is missing."""
        for key in sorted(self._pending, key=lambda k: self._pending[k].index):
            self._used.add(key)
            self.missing.append(self._pending.pop(key).payload)


def score_depth(pred_m: np.ndarray, gt_m: np.ndarray,
                protocol: EvalProtocol = EvalProtocol()) -> tuple[dict[str, float], float]:
    """(metrics, fraction of scored pixels the node left NaN) for one published depth map.

    The node publishes NaN where its depth leaves the model's range (REP 118). Those pixels carry
    no prediction, so they are left out of the score like invalid ground truth, and their share
    is reported beside it. Without NaN this is exactly ``metrics.evaluate_frame``.
    """
    pred = resize_depth(pred_m, np.shape(gt_m))  # identity when the node answered at input size
    no_reading = ~np.isfinite(pred)
    if not no_reading.any():
        return evaluate_frame(pred, gt_m, protocol), 0.0
    gt = np.array(gt_m, dtype=np.float32)
    gt_valid = protocol.valid_mask(gt)
    nan_fraction = float((no_reading & gt_valid).sum() / max(int(gt_valid.sum()), 1))
    gt[no_reading] = 0.0  # 0 = invalid ground truth: the pixel is not scored
    return evaluate_frame(np.where(no_reading, 1.0, pred).astype(np.float32), gt, protocol), nan_fraction


def _float(values: Mapping[str, str], key: str) -> float | None:
    try:
        value = float(values[key])
    except (KeyError, ValueError):
        return None
    return value if math.isfinite(value) else None


@dataclass
class DiagnosticsTracker:
    """What the node's /diagnostics say about the stream: inference latency, drops, backend.

    The node reports per-period medians and running totals; ``mark_start`` records the totals
    before the first scored frame, so drops of an attached node's earlier clients do not count.
    """

    inference_p50_ms: list[float] = field(default_factory=list)  # one per period with output
    node_latency_p50_ms: list[float] = field(default_factory=list)  # node receive -> publish
    backend: str | None = None
    model_path: str | None = None
    messages: int = 0
    latest: dict[str, str] = field(default_factory=dict)
    _dropped_at_start: int | None = None
    _streaming: bool = False

    def mark_start(self) -> None:
        self._dropped_at_start = int(_float(self.latest, "dropped_frames") or 0)
        self._streaming = True

    def add(self, values: Mapping[str, str]) -> None:
        """One DiagnosticStatus's key/value pairs from the node."""
        self.messages += 1
        self.latest = dict(values)
        self.backend = values.get("backend", self.backend)
        self.model_path = values.get("model_path", self.model_path)
        if not self._streaming or not (_float(values, "output_rate_hz") or 0.0) > 0:
            return
        for key, out in (("inference_p50_ms", self.inference_p50_ms),
                         ("latency_p50_ms", self.node_latency_p50_ms)):
            value = _float(values, key)
            if value is not None:
                out.append(value)

    @property
    def dropped(self) -> int | None:
        """Frames the node dropped since ``mark_start`` (None without diagnostics)."""
        total = _float(self.latest, "dropped_frames")
        if total is None:
            return None
        return int(total) - (self._dropped_at_start or 0)


def diagnostics_of(array_msg: Any, namespace: str = "") -> list[dict[str, str]]:
    """Key/value dicts of the depth_node statuses in a DiagnosticArray (``namespace`` e.g. "/cam1")."""
    out = []
    for status in array_msg.status:
        if status.hardware_id != "depth_unet_ros":
            continue
        node_name = status.name.split(":", 1)[0]
        if node_name.rsplit("/", 1)[0] != namespace.rstrip("/"):
            continue
        out.append({kv.key: kv.value for kv in status.values})
    return out
