"""Score a running depth_node over DDS: publish RGB-D frames as a camera, pair each depth answer
with its frame by the exact header stamp, and measure quality and end-to-end latency.

The frame source is any iterable of ``RGBDFrame`` (a dataset for ``demo``, a bag's decoded
frames for ``bag-eval``), each with an optional stamp. rclpy is imported only inside the
evaluator, so this module imports where ROS is absent; the bookkeeping lives in
``stream_pairing`` (no ROS).

QoS: the camera publisher is reliable (configurable), like most drivers; the depth subscription
is reliable too (the node publishes reliable, REP 2003), so an answer the node sent is never
lost in transport and "missing" counts only frames the node itself dropped.
"""
from __future__ import annotations

import itertools
import os
import queue
import threading
import time
from dataclasses import asdict, dataclass, field
from typing import Any, Callable, Iterable, Iterator

import numpy as np

from depth_unet_ros.datasets.base import Intrinsics, RGBDFrame
from depth_unet_ros.errors import DatasetError, DepthUnetError
from depth_unet_ros.evaluation import EvaluationResult
from depth_unet_ros.metrics import EvalProtocol, MetricAverager
from depth_unet_ros.stream_pairing import (DiagnosticsTracker, StampKey, StampPairer,
                                           diagnostics_of, latency_summary_ms, score_depth,
                                           stamp_from_ns)

WARMUP_PERIOD_S = 0.5  # resend period of the warm-up frame (discovery races, best-effort loss)
POLL_S = 0.05


class StreamTimeoutError(DepthUnetError):
    """The node was not found, or did not answer, within the time allowed."""


@dataclass(frozen=True)
class StreamConfig:
    """Topics, pacing and time limits of one streaming evaluation."""

    image_topic: str = "/camera/image_raw"
    camera_info_topic: str = "/camera/camera_info"
    depth_topic: str = "/depth/image"  # "/<ns>/depth/image" for a namespaced node
    frame_id: str = "camera_optical_frame"
    rate_hz: float = 10.0  # camera rate; a model slower than this makes the node drop frames
    reliable: bool = True  # camera publisher QoS; False = best effort (needs LARGE_DATA for VGA)
    discovery_timeout_s: float = 30.0  # node start-up: model load, TensorRT engine build
    answer_timeout_s: float = 30.0  # for the first answer, and for late answers at the end
    diagnostics_wait_s: float = 1.5  # after the stream, for the node's final counters
    protocol: EvalProtocol = EvalProtocol()
    max_unscored: int = 64  # answers held before scoring (scoring waits until after the stream
    # so it does not steal CPU from the node and distort latency; this bounds the memory)

    def __post_init__(self) -> None:
        if not self.rate_hz > 0:
            raise ValueError(f"rate_hz must be positive, got {self.rate_hz}")
        if self.discovery_timeout_s <= 0 or self.answer_timeout_s <= 0:
            raise ValueError("timeouts must be positive")

    @property
    def namespace(self) -> str:
        """The node's namespace, from the depth topic ("/cam1/depth/image" -> "/cam1")."""
        return self.depth_topic.rsplit("/depth/image", 1)[0] if self.depth_topic.endswith(
            "/depth/image") else ""


@dataclass
class StreamStats:
    """How the stream went: counts, rates, and what the node's /diagnostics said."""

    sent: int = 0
    received: int = 0  # answers paired with a frame of this stream
    missing: int = 0  # frames never answered (dropped by the node, or late)
    unmatched: int = 0  # answers with a stamp this stream never sent
    rate_hz: float = 0.0  # requested
    send_rate_hz: float = 0.0  # achieved
    duration_s: float = 0.0  # first publish -> last answer (or end of waiting)
    warmup_s: float = 0.0  # until the first answer (discovery excluded)
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
    """Quality (``evaluation``: latency_ms is end to end, publish -> answer) and stream stats."""

    evaluation: EvaluationResult
    stats: StreamStats

    def to_json_dict(self) -> dict:
        """DESIGN.md's evaluation JSON, plus ``"stream"``."""
        return {**self.evaluation.to_json_dict(), "stream": self.stats.to_json_dict()}


@dataclass
class ScoredFrame:
    """One answered frame, handed to ``on_scored`` (e.g. to keep a few for comparison images)."""

    index: int
    frame: RGBDFrame
    depth_m: np.ndarray  # (H, W) float32 as the node published it, NaN = no reading
    metrics: dict[str, float]
    latency_ms: float


def diagnose_no_node(waited_s: float, config: StreamConfig, depth_publishers: int,
                     image_subscribers: int, environ: dict[str, str] | None = None) -> str:
    """Why no node was found, and what to check, from what the graph showed."""
    env = os.environ if environ is None else environ
    if depth_publishers > 0:
        return (f"a node publishes {config.depth_topic} but none subscribes to "
                f"{config.image_topic} after {waited_s:.0f} s: remap its input "
                f"(image_topic:={config.image_topic} in the launch file)")
    what = (f"no depth_node publishing {config.depth_topic} after {waited_s:.0f} s: is it running "
            "(ros2 launch depth_unet_ros depth.launch.py)? ")
    if image_subscribers > 0:
        what = (f"something subscribes to {config.image_topic} but nothing publishes "
                f"{config.depth_topic} after {waited_s:.0f} s: is the node in another namespace "
                "(pass its depth topic)? ")
    return what + (
        f"is ROS_DOMAIN_ID the same (here {env.get('ROS_DOMAIN_ID', 'unset = 0')})? "
        f"is FASTDDS_BUILTIN_TRANSPORTS the same (here {env.get('FASTDDS_BUILTIN_TRANSPORTS', 'unset')})? "
        f"ROS_AUTOMATIC_DISCOVERY_RANGE here: {env.get('ROS_AUTOMATIC_DISCOVERY_RANGE', 'unset')}")


def camera_info_values(intrinsics: Intrinsics, width: int, height: int) -> dict[str, Any]:
    """CameraInfo fields (no distortion) for ``intrinsics`` at an image of ``width`` x ``height``."""
    k = intrinsics if (intrinsics.width, intrinsics.height) == (width, height) else \
        intrinsics.scaled(width, height)
    return {"width": int(width), "height": int(height), "distortion_model": "plumb_bob",
            "d": [0.0] * 5, "k": [k.fx, 0.0, k.cx, 0.0, k.fy, k.cy, 0.0, 0.0, 1.0],
            "r": [1.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 1.0],
            "p": [k.fx, 0.0, k.cx, 0.0, 0.0, k.fy, k.cy, 0.0, 0.0, 0.0, 1.0, 0.0]}


class StreamEvaluator:
    """A camera and a depth consumer in one rclpy node, on a context of its own.

    ``abort_check`` is called while waiting; it raises to stop early (e.g. when the node
    process this evaluator talks to has exited).
    """

    def __init__(self, config: StreamConfig = StreamConfig(),
                 abort_check: Callable[[], None] | None = None):
        self.config = config
        self._abort_check = abort_check or (lambda: None)
        self._answers: queue.Queue[tuple[StampKey, np.ndarray, float]] = queue.Queue()
        self._diag_lock = threading.Lock()
        self._diagnostics = DiagnosticsTracker()
        self._ros: dict[str, Any] | None = None

    # --- ROS plumbing ------------------------------------------------------------------------
    def open(self) -> "StreamEvaluator":
        """Create the context, node, publishers and subscriptions, and spin them in a thread."""
        if self._ros is not None:
            return self
        import rclpy
        from diagnostic_msgs.msg import DiagnosticArray
        from rclpy.context import Context
        from rclpy.executors import SingleThreadedExecutor
        from rclpy.qos import QoSProfile, ReliabilityPolicy
        from sensor_msgs.msg import CameraInfo, Image

        cfg = self.config
        context = Context()
        rclpy.init(args=[], context=context)
        node = rclpy.create_node(f"depth_unet_stream_eval_{os.getpid()}", context=context)
        camera = QoSProfile(depth=10, reliability=ReliabilityPolicy.RELIABLE if cfg.reliable
                            else ReliabilityPolicy.BEST_EFFORT)
        reliable = QoSProfile(depth=10, reliability=ReliabilityPolicy.RELIABLE)
        ros = {"context": context, "node": node, "Image": Image, "CameraInfo": CameraInfo,
               "image_pub": node.create_publisher(Image, cfg.image_topic, camera),
               "info_pub": node.create_publisher(CameraInfo, cfg.camera_info_topic, camera)}
        node.create_subscription(Image, cfg.depth_topic, self._on_depth, reliable)
        node.create_subscription(DiagnosticArray, "/diagnostics", self._on_diagnostics, reliable)
        executor = SingleThreadedExecutor(context=context)
        executor.add_node(node)
        thread = threading.Thread(target=self._spin, args=(executor,), name="stream_eval", daemon=True)
        ros.update(executor=executor, thread=thread)
        self._ros = ros
        thread.start()
        return self

    @staticmethod
    def _spin(executor: Any) -> None:
        try:
            executor.spin()
        except Exception:  # the context was shut down under the executor: we are closing
            pass

    def close(self) -> None:
        if self._ros is None:
            return
        import rclpy

        ros, self._ros = self._ros, None
        ros["executor"].shutdown(timeout_sec=2.0)
        ros["thread"].join(timeout=2.0)
        ros["node"].destroy_node()
        rclpy.try_shutdown(context=ros["context"])

    def __enter__(self) -> "StreamEvaluator":
        return self.open()

    def __exit__(self, *exc: Any) -> None:
        self.close()

    # --- callbacks (executor thread) ---------------------------------------------------------
    def _on_depth(self, msg: Any) -> None:
        from depth_unet_ros.image_conversion import image_msg_to_array

        received_s = time.monotonic()
        depth_m = np.array(image_msg_to_array(msg), dtype=np.float32)  # copy off the message buffer
        self._answers.put(((int(msg.header.stamp.sec), int(msg.header.stamp.nanosec)),
                           depth_m.reshape(depth_m.shape[:2]), received_s))

    def _on_diagnostics(self, msg: Any) -> None:
        with self._diag_lock:
            for values in diagnostics_of(msg, self.config.namespace):
                self._diagnostics.add(values)

    # --- the stream --------------------------------------------------------------------------
    def wait_for_node(self) -> None:
        """Return once a node publishes the depth topic and subscribes to our camera; else raise
        StreamTimeoutError with what the graph showed."""
        self.open()
        cfg, ros = self.config, self._ros
        start = time.monotonic()
        while True:
            self._abort_check()
            depth_pubs = ros["node"].count_publishers(cfg.depth_topic)
            image_subs = ros["image_pub"].get_subscription_count()
            if depth_pubs > 0 and image_subs > 0:
                return
            waited = time.monotonic() - start
            if waited > cfg.discovery_timeout_s:
                raise StreamTimeoutError(diagnose_no_node(waited, cfg, depth_pubs, image_subs))
            time.sleep(POLL_S)

    def _messages(self, frame: RGBDFrame, stamp_ns: int) -> tuple[Any, Any]:
        from std_msgs.msg import Header

        from depth_unet_ros.image_conversion import array_to_image_msg

        header = Header(frame_id=self.config.frame_id)
        header.stamp.sec, header.stamp.nanosec = stamp_from_ns(stamp_ns)
        height, width = frame.image.shape[:2]
        image = array_to_image_msg(frame.image, "rgb8", header, self._ros["Image"], channels_first=False)
        info = self._ros["CameraInfo"](**camera_info_values(frame.intrinsics, width, height))
        info.header = header
        return image, info

    def _publish(self, image: Any, info: Any) -> float:
        self._ros["info_pub"].publish(info)
        sent_s = time.monotonic()
        self._ros["image_pub"].publish(image)
        return sent_s

    def _warm_up(self, frame: RGBDFrame) -> float:
        """Resend ``frame`` (unscored) until the node answers one copy; seconds it took.

        Proves the whole path (our camera -> node -> our subscriber) before the clock starts, and
        keeps the first inference (slow on every backend) out of the latency figures.
        """
        start = time.monotonic()
        stamps: set[StampKey] = set()
        next_send = start
        while True:
            self._abort_check()
            now = time.monotonic()
            if now - start > self.config.answer_timeout_s:
                raise StreamTimeoutError(
                    f"the node on {self.config.depth_topic} was found but answered none of "
                    f"{len(stamps)} frames sent to {self.config.image_topic} in "
                    f"{self.config.answer_timeout_s:.0f} s: see its log; a best-effort link of "
                    "large images needs FASTDDS_BUILTIN_TRANSPORTS=LARGE_DATA in every process")
            if now >= next_send:
                stamp_ns = time.time_ns()
                image, info = self._messages(frame, stamp_ns)
                stamps.add(stamp_from_ns(stamp_ns))
                self._publish(image, info)
                next_send = now + WARMUP_PERIOD_S
            try:
                key, _, _ = self._answers.get(timeout=POLL_S)
            except queue.Empty:
                continue
            if key in stamps:
                return time.monotonic() - start

    def run(self, frames: Iterable[RGBDFrame], stamps_ns: Iterable[int] | None = None,
            on_scored: Callable[[ScoredFrame], None] | None = None) -> StreamResult:
        """Stream ``frames`` at ``config.rate_hz`` through the node and score every answer.

        ``stamps_ns``: one header stamp per frame (e.g. a bag's); None = the wall clock at
        publish. Waits for the node first (StreamTimeoutError when absent), and at the end for
        late answers; every wait is bounded by the config's timeouts.
        """
        cfg = self.config
        frame_iter: Iterator[RGBDFrame] = iter(frames)
        first = next(frame_iter, None)
        if first is None:
            raise DatasetError("no frames to stream; check the dataset and --frames")
        self.wait_for_node()
        warmup_s = self._warm_up(first)
        self._drain_answers()  # late copies of the warm-up frame
        with self._diag_lock:
            self._diagnostics.mark_start()

        pairer: StampPairer[RGBDFrame] = StampPairer()
        answered: list[tuple[Any, np.ndarray, float]] = []  # (Pending, depth_m, latency_ms)
        scoring = _Scoring(cfg.protocol, on_scored)
        stamp_iter = iter(stamps_ns) if stamps_ns is not None else None
        period_s = 1.0 / cfg.rate_hz
        start_s = next_s = time.monotonic()
        last_sent_s = start_s
        for index, frame in enumerate(itertools.chain([first], frame_iter)):
            stamp_ns = next(stamp_iter) if stamp_iter is not None else None
            self._abort_check()
            self._collect(pairer, answered, until_s=next_s)
            if len(answered) >= cfg.max_unscored:
                scoring.score(answered)
            stamp = stamp_ns if stamp_ns is not None else time.time_ns()
            image, info = self._messages(frame, stamp)
            pending = pairer.add(stamp_from_ns(stamp), index, frame)  # before: a fast answer
            last_sent_s = pending.sent_s = self._publish(image, info)  # finds it registered
            next_s = max(next_s + period_s, time.monotonic())  # late: no burst to catch up
        sent = index + 1
        deadline = time.monotonic() + cfg.answer_timeout_s
        while pairer.outstanding and time.monotonic() < deadline:
            self._abort_check()
            self._collect(pairer, answered, until_s=min(deadline, time.monotonic() + 0.2))
        end_s = time.monotonic()
        pairer.give_up()
        self._wait_for_final_diagnostics()
        scoring.score(answered)
        return self._result(scoring, pairer, sent, warmup_s, start_s, last_sent_s, end_s)

    def _drain_answers(self) -> None:
        while True:
            try:
                self._answers.get_nowait()
            except queue.Empty:
                return

    def _collect(self, pairer: StampPairer, answered: list, until_s: float) -> None:
        """Take answers until ``until_s`` (monotonic), pairing each with its frame."""
        while True:
            remaining = until_s - time.monotonic()
            try:
                key, depth_m, received_s = (self._answers.get(timeout=remaining) if remaining > 0
                                            else self._answers.get_nowait())
            except queue.Empty:
                return
            pending = pairer.match(key)
            if pending is not None:
                answered.append((pending, depth_m, (received_s - pending.sent_s) * 1e3))

    def _wait_for_final_diagnostics(self) -> None:
        with self._diag_lock:
            seen = self._diagnostics.messages
        if seen == 0:  # diagnostics off (or not ours): nothing to wait for
            return
        deadline = time.monotonic() + self.config.diagnostics_wait_s
        while time.monotonic() < deadline:
            with self._diag_lock:
                if self._diagnostics.messages > seen:
                    return
            time.sleep(POLL_S)

    def _result(self, scoring: "_Scoring", pairer: StampPairer, sent: int, warmup_s: float,
                start_s: float, last_sent_s: float, end_s: float) -> StreamResult:
        if scoring.averager.count == 0:
            raise StreamTimeoutError(
                f"the node answered none of the {sent} frames with a scorable depth "
                f"({len(scoring.latency_ms)} answers, {len(scoring.skipped)} without valid "
                f"pixels) within {self.config.answer_timeout_s:.0f} s after the stream")
        evaluation = EvaluationResult(
            num_images=scoring.averager.count, metrics=scoring.averager.mean(),
            per_image=scoring.averager.per_image, latency_ms=scoring.latency_ms,
            skipped=scoring.skipped)
        with self._diag_lock:
            diag = self._diagnostics
            stats = StreamStats(
                sent=sent, received=len(scoring.latency_ms), missing=len(pairer.missing),
                unmatched=pairer.unmatched, rate_hz=self.config.rate_hz,
                send_rate_hz=(sent - 1) / (last_sent_s - start_s) if last_sent_s > start_s else 0.0,
                duration_s=end_s - start_s, warmup_s=warmup_s,
                missing_names=[frame.name for frame in pairer.missing],
                nan_fraction_mean=float(np.mean(scoring.nan_fractions)) if scoring.nan_fractions else 0.0,
                node_inference_ms=latency_summary_ms(diag.inference_p50_ms),
                node_latency_ms=latency_summary_ms(diag.node_latency_p50_ms),
                node_dropped=diag.dropped, backend=diag.backend, node_model_path=diag.model_path)
        return StreamResult(evaluation, stats)


class _Scoring:
    """Scores answers in stream order; ValueError (no valid pixel) skips a frame, as offline."""

    def __init__(self, protocol: EvalProtocol, on_scored: Callable[[ScoredFrame], None] | None):
        self.protocol, self.on_scored = protocol, on_scored
        self.averager = MetricAverager()
        self.latency_ms: list[float] = []
        self.skipped: list[str] = []
        self.nan_fractions: list[float] = []

    def score(self, answered: list) -> None:
        for pending, depth_m, latency_ms in answered:
            frame: RGBDFrame = pending.payload
            self.latency_ms.append(latency_ms)
            try:
                metrics, nan_fraction = score_depth(depth_m, frame.depth_m, self.protocol)
            except ValueError:
                self.skipped.append(frame.name)
                continue
            self.averager.add(metrics, frame.name)
            self.nan_fractions.append(nan_fraction)
            if self.on_scored is not None:
                self.on_scored(ScoredFrame(pending.index, frame, depth_m, metrics, latency_ms))
        answered.clear()
