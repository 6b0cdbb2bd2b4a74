"""What a streaming evaluation of a bag produces and checks, without ROS: the plan of a bag
(which frames can be scored, found before anything starts), the scoring of each answer against
the bag's ground truth, and the result with its stream statistics.

``stream_eval`` wires these to rclpy; here they are plain Python, so they are tested alone.
"""
from __future__ import annotations

import os
from dataclasses import asdict, dataclass, field
from typing import Callable

import numpy as np

from depth_unet_ros.bags import reader as bag_reader
from depth_unet_ros.errors import DatasetError
from depth_unet_ros.evaluation.offline import EvaluationResult
from depth_unet_ros.evaluation.metrics import EvalProtocol, MetricAverager
from depth_unet_ros.streaming_eval.pairing import score_depth


@dataclass
class StreamStats:
    """How the stream went: counts, rates, and what the node's /diagnostics said."""

    sent: int = 0  # frames with ground truth that were played (or that arrived here)
    received: int = 0  # answers paired with a frame of this stream
    missing: int = 0  # frames never answered (dropped by the node, or late)
    unmatched: int = 0  # answers with a stamp the bag does not hold
    without_ground_truth: int = 0  # images in the bag whose stamp no ground truth has
    rate_hz: float = 0.0  # the bag's image rate times the playback rate
    send_rate_hz: float = 0.0  # achieved
    duration_s: float = 0.0  # first frame sent -> last answer received
    warmup_s: float = 0.0  # until the first answer (discovery excluded)
    player: str = ""
    missing_names: list[str] = field(default_factory=list)
    nan_fraction_mean: float = 0.0  # share of scored pixels the node left NaN (out of range)
    node_inference_ms: dict = field(default_factory=dict)  # median/p90 of per-period medians
    node_latency_ms: dict = field(default_factory=dict)  # node receive -> publish
    node_dropped: int | None = None  # the node's own count since the stream started
    backend: str | None = None
    node_model_path: str | None = None

    def to_json_dict(self) -> dict:
        return asdict(self)


@dataclass
class StreamResult:
    """Quality (``evaluation``: latency_ms is end to end) and stream stats."""

    evaluation: EvaluationResult
    stats: StreamStats

    def to_json_dict(self) -> dict:
        """DESIGN.md's evaluation JSON, plus ``"stream"``."""
        return {**self.evaluation.to_json_dict(), "stream": self.stats.to_json_dict()}


@dataclass
class ScoredFrame:
    """One answered frame, handed to ``on_scored`` (e.g. to keep a few for comparison images)."""

    index: int  # position of its image in the bag
    name: str
    stamp_ns: int
    depth_m: np.ndarray  # (H, W) float32 as the node published it, NaN = no reading
    gt_depth_m: np.ndarray  # (H, W) float32, 0 = invalid
    metrics: dict[str, float]
    latency_ms: float


@dataclass(frozen=True)
class BagPlan:
    """What the bag offers an evaluation, found by one pass over its headers before anything
    starts, so a bag that cannot be scored fails at once and writes nothing."""

    image_stamps: list[int]  # header stamps of the images, in recorded order
    scored: frozenset[int]  # image stamps that have ground truth
    image_rate_hz: float  # the bag's image rate (0 for a single frame)
    compressed: bool = False  # the images are sensor_msgs/CompressedImage (jpeg, png)

    @classmethod
    def of(cls, bag: str | os.PathLike, image: str = bag_reader.IMAGE_TOPIC,
           truth: str = bag_reader.GROUND_TRUTH_TOPIC) -> "BagPlan":
        """The plan for scoring images on topic ``image`` against depth on topic ``truth``."""
        topics = bag_reader.require_topics(bag, {
            image: (bag_reader.CAMERA_IMAGE_TYPES, "--image-topic"),
            truth: (bag_reader.IMAGE_TYPE, "--ground-truth-topic")})
        compressed = topics[image].msgtype == bag_reader.COMPRESSED_IMAGE_TYPE
        if compressed and not image.endswith(bag_reader.COMPRESSED_SUFFIX):
            raise DatasetError(f"bag {bag}: {image} holds compressed images but its name does not "
                               f"end in {bag_reader.COMPRESSED_SUFFIX}, image_transport's "
                               "convention the node is remapped by; rename it in the bag")
        stamps = bag_reader.header_stamps(bag, (image, truth))
        images, truths = stamps[image], set(stamps[truth])
        if len(set(images)) != len(images):
            raise DatasetError(f"bag {bag}: several images on {image} share a header stamp, so "
                               "their depth answers could not be told apart; give every frame "
                               "its own stamp")
        scored = frozenset(s for s in images if s in truths)
        if not scored:
            raise DatasetError(
                f"bag {bag}: no image stamp on {image} equals a ground-truth stamp on {truth} "
                f"(images {_span(images)}, ground truth {_span(sorted(truths))}); each ground-"
                "truth depth must carry its image's exact header stamp")
        span_s = (images[-1] - images[0]) / 1e9 if len(images) > 1 else 0.0
        return cls(images, scored, (len(images) - 1) / span_s if span_s > 0 else 0.0, compressed)


def _span(stamps: list[int]) -> str:
    if not stamps:
        return "none"
    return f"{len(stamps)} from {stamps[0] / 1e9:.3f} s to {stamps[-1] / 1e9:.3f} s"


class Scoring:
    """Scores answers in stream order; ValueError (no valid pixel) skips a frame, as offline."""

    def __init__(self, protocol: EvalProtocol, on_scored: Callable[[ScoredFrame], None] | None,
                 truth: dict[int, bytes], plan: BagPlan):
        self.protocol, self.on_scored, self.truth, self.plan = protocol, on_scored, truth, plan
        self.averager = MetricAverager()
        self.received = 0  # answers taken, with or without a known send time
        self.latency_ms: list[float] = []  # end to end, where the send time is known
        self.skipped: list[str] = []
        self.nan_fractions: list[float] = []

    def score(self, answered: list) -> None:
        for pending, depth_m, latency_ms in answered:
            stamp: int = pending.payload
            name = bag_reader.frame_name(pending.index, stamp)
            self.received += 1
            if np.isfinite(latency_ms):  # NaN: another player's frame this process did not hear
                self.latency_ms.append(latency_ms)
            data = self.truth.pop(stamp, None)
            if data is None:  # its ground truth comes later in the bag than we waited
                self.skipped.append(name)
                continue
            gt_m = bag_reader.depth_m_of(bag_reader.deserialize(data, bag_reader.IMAGE_TYPE))
            try:
                metrics, nan_fraction = score_depth(depth_m, gt_m, self.protocol)
            except ValueError:
                self.skipped.append(name)
                continue
            self.averager.add(metrics, name)
            self.nan_fractions.append(nan_fraction)
            if self.on_scored is not None:
                self.on_scored(ScoredFrame(pending.index, name, stamp, depth_m, gt_m, metrics,
                                           latency_ms))
        answered.clear()
