"""Score a running depth_node over DDS on a rosbag2 recording: play the bag (or listen while
``ros2 bag play`` plays it), pair each depth image the node publishes with the bag's ground
truth by the exact header stamp, and measure quality and end-to-end latency.

Latency is measured in this process on one clock: from the moment the input image is published
(our player) or arrives here (another player) to the moment its depth arrives. rclpy is
imported only inside the evaluator, so this module imports where ROS is absent; the
bookkeeping lives in ``stream_pairing`` (no ROS) and the bag access in ``bag_reader``.

QoS: the depth subscription is reliable (the node publishes reliable, REP 2003), so an answer
the node sent is never lost in transport and "missing" counts only frames the node dropped:
in its newest-first slot (its diagnostics count those) or, when its executor falls behind the
player, in its depth-1 input queue (they count nowhere but here).
"""
from __future__ import annotations

import os
import queue
import threading
import time
from contextlib import closing
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import numpy as np

from depth_unet_ros.bags import reader as bag_reader
from depth_unet_ros.bags.clock import stamp_ns_of
from depth_unet_ros.bags.replay import BagPlayer, ReplayOptions
from depth_unet_ros.errors import DepthUnetError
from depth_unet_ros.evaluation.metrics import EvalProtocol
from depth_unet_ros.evaluation.offline import EvaluationResult
from depth_unet_ros.latency import latency_summary_ms
from depth_unet_ros.node_core import QOS_CHECK_PERIOD_S, starting_qos
from depth_unet_ros.streaming_eval.pairing import (DiagnosticsTracker, StampPairer, diagnostics_of,
                                                   stamp_from_ns)
from depth_unet_ros.streaming_eval.results import (BagPlan, ScoredFrame, Scoring, StreamResult,
                                           StreamStats)

WARMUP_PERIOD_S = 0.5  # resend period of the warm-up frame (discovery races, best-effort loss)
# A node with qos_reliability auto re-creates its image subscription (reliable) at its first QoS
# check that sees our reliable player, and a frame sent while the new one is being matched is
# lost. Three check periods after the first answer that check has run; a second warm-up frame
# then proves the path through whichever subscription the node ended with.
QOS_SETTLE_S = 3 * QOS_CHECK_PERIOD_S
POLL_S = 0.05


class StreamTimeoutError(DepthUnetError):
    """The node was not found, or did not answer, within the time allowed."""


@dataclass(frozen=True)
class StreamConfig:
    """Topics, playback and time limits of one evaluation over DDS."""

    image_topic: str = bag_reader.IMAGE_TOPIC  # in the bag, and what the node subscribes to
    ground_truth_topic: str = bag_reader.GROUND_TRUTH_TOPIC  # in the bag; read, never published
    depth_topic: str = "/depth/image"  # the node's output; "/<ns>/depth/image" when namespaced
    play: bool = True  # False: another player (``ros2 bag play``) publishes the bag
    replay: ReplayOptions = ReplayOptions()
    discovery_timeout_s: float = 30.0  # node start-up: model load, TensorRT engine build
    answer_timeout_s: float = 30.0  # for the first answer, and for late answers at the end
    idle_timeout_s: float = 5.0  # another player: the stream is over after this much silence
    diagnostics_wait_s: float = 1.5  # after the stream, for the node's final counters
    protocol: EvalProtocol = EvalProtocol()
    max_unscored: int = 64  # answers held before scoring (scoring is deferred so it does not
    # steal CPU from the node and distort latency; this bounds the memory)

    def __post_init__(self) -> None:
        if min(self.discovery_timeout_s, self.answer_timeout_s, self.idle_timeout_s) <= 0:
            raise ValueError("timeouts must be positive")

    @property
    def namespace(self) -> str:
        """The node's namespace, from the depth topic ("/cam1/depth/image" -> "/cam1")."""
        return self.depth_topic.rsplit("/depth/image", 1)[0] if self.depth_topic.endswith(
            "/depth/image") else ""


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


class StreamEvaluator:
    """A bag player (or an input listener) and a depth consumer in one rclpy node, on a context
    of its own. ``abort_check`` is called while waiting; it raises to stop early (e.g. when the
    node process this evaluator talks to has exited)."""

    def __init__(self, bag: str | os.PathLike, config: StreamConfig = StreamConfig(),
                 abort_check: Callable[[], None] | None = None, plan: BagPlan | None = None):
        self.bag, self.config = Path(bag), config
        self.plan = plan or BagPlan.of(bag, config.image_topic, config.ground_truth_topic)
        self._abort_check = abort_check or (lambda: None)
        # ("in", stamp, t) when an input arrives here; ("out", stamp, depth, t) per answer; one
        # queue keeps the two in the order they happened
        self._events: queue.Queue[tuple] = queue.Queue()
        self._diag_lock = threading.Lock()
        self._diagnostics = DiagnosticsTracker()
        self._ros: dict[str, Any] | None = None

    # --- ROS plumbing ------------------------------------------------------------------------
    def open(self) -> "StreamEvaluator":
        """Create the context, node, player or input listener and subscriptions; spin them."""
        if self._ros is not None:
            return self
        import rclpy
        from diagnostic_msgs.msg import DiagnosticArray
        from rclpy.context import Context
        from rclpy.executors import SingleThreadedExecutor
        from rclpy.qos import QoSProfile, ReliabilityPolicy
        from sensor_msgs.msg import Image

        cfg = self.config
        context = Context()
        rclpy.init(args=[], context=context)
        node = rclpy.create_node(f"depth_unet_bag_eval_{os.getpid()}", context=context)
        reliable = QoSProfile(depth=10, reliability=ReliabilityPolicy.RELIABLE)
        ros: dict[str, Any] = {"context": context, "node": node, "player": None}
        if cfg.play:
            topics = bag_reader.bag_topics(self.bag)
            topics.pop(cfg.ground_truth_topic, None)  # the node must not see the answers
            ros["player"] = BagPlayer(node, topics)
        # Another player: the input listener is created only once the node subscribes
        # (wait_for_node), so a player that waits for a subscriber waits for the node.
        ros["listener"] = None
        node.create_subscription(Image, cfg.depth_topic, self._on_depth, reliable)
        node.create_subscription(DiagnosticArray, "/diagnostics", self._on_diagnostics, reliable)
        executor = SingleThreadedExecutor(context=context)
        executor.add_node(node)
        thread = threading.Thread(target=self._spin, args=(executor,), name="bag_eval", daemon=True)
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

    @property
    def skipped_topics(self) -> dict[str, str]:
        """Bag topics the player cannot publish here (message package not installed)."""
        player = self._ros["player"] if self._ros else None
        return dict(player.skipped) if player is not None else {}

    # --- callbacks (executor thread) ---------------------------------------------------------
    def _on_input(self, data: bytes) -> None:
        self._events.put(("in", bag_reader.header_stamp_ns(data), time.monotonic()))

    def _on_depth(self, msg: Any) -> None:
        from depth_unet_ros.image_conversion import image_msg_to_array

        received_s = time.monotonic()
        depth_m = np.array(image_msg_to_array(msg), dtype=np.float32)  # copy off the message buffer
        stamp = stamp_ns_of(msg.header)
        self._events.put(("out", stamp, depth_m.reshape(depth_m.shape[:2]), received_s))

    def _on_diagnostics(self, msg: Any) -> None:
        with self._diag_lock:
            for values in diagnostics_of(msg, self.config.namespace):
                self._diagnostics.add(values)

    # --- the stream --------------------------------------------------------------------------
    def _image_subscribers(self) -> int:
        ros, topic = self._ros, self.config.image_topic
        if ros["player"] is not None:
            return ros["player"].subscriber_count(topic)
        ours = ros["listener"].subscription_count if ros["listener"] is not None else 0
        return max(0, ros["node"].count_subscribers(topic) - ours)

    def _listen_to_inputs(self) -> None:
        """Record when each input arrives here (another player publishes them).

        Created after the node subscribed, never before: `replay --wait-for` and any player
        that waits for a subscriber would otherwise take this listener for the node and play
        the bag before the node exists. Its reliability follows the player's, as the node's
        input does (a best-effort listener heard 1 of 5 VGA frames of a reliable `ros2 bag
        play` on stock transports); raw, since only the stamp is read.
        """
        ros = self._ros
        if ros["listener"] is not None:
            return
        from sensor_msgs.msg import CompressedImage, Image

        from depth_unet_ros.following_subscription import FollowingSubscription

        ros["listener"] = FollowingSubscription(
            ros["node"], CompressedImage if self.plan.compressed else Image,
            self.config.image_topic, self._on_input, starting_qos("auto", 10),
            raw=True, key=bag_reader.header_stamp_ns)
        ros["node"].create_timer(QOS_CHECK_PERIOD_S, ros["listener"].follow_publishers)

    def wait_for_node(self) -> None:
        """Return once a node publishes the depth topic and subscribes to the images; else raise
        StreamTimeoutError with what the graph showed."""
        self.open()
        cfg, start = self.config, time.monotonic()
        while True:
            self._abort_check()
            depth_pubs = self._ros["node"].count_publishers(cfg.depth_topic)
            image_subs = self._image_subscribers()
            if depth_pubs > 0 and image_subs > 0:
                if not cfg.play:
                    self._listen_to_inputs()
                return
            waited = time.monotonic() - start
            if waited > cfg.discovery_timeout_s:
                raise StreamTimeoutError(diagnose_no_node(waited, cfg, depth_pubs, image_subs))
            time.sleep(POLL_S)

    def _warm_up(self) -> float:
        """Resend the bag's first image under a stamp no frame has until the node answers it,
        twice, ``QOS_SETTLE_S`` apart; seconds it took. Proves the whole path before the clock
        starts, lets the node settle its input QoS, and keeps the first inference (slow on every
        backend) out of the latency figures."""
        with closing(bag_reader.iter_raw_messages(self.bag, [self.config.image_topic])) as images:
            first = next(images)  # closing: the bag file is released now, not at exit
        start = time.monotonic()
        sent: set[int] = set()  # warm-up stamps across both rounds, so none is answered twice
        self._answer_warm_up_frame(first, sent)
        time.sleep(QOS_SETTLE_S)
        self._drain_events()
        self._answer_warm_up_frame(first, sent)
        return time.monotonic() - start

    def _answer_warm_up_frame(self, first: Any, sent: set[int]) -> None:
        """Resend ``first`` under fresh stamps until the node answers one of them."""
        start = next_send = time.monotonic()
        earlier = set(sent)  # earlier rounds' stamps: their late copies do not count
        while True:
            self._abort_check()
            now = time.monotonic()
            if now - start > self.config.answer_timeout_s:
                raise StreamTimeoutError(
                    f"the node on {self.config.depth_topic} was found but answered none of "
                    f"{len(sent - earlier)} frames sent to {self.config.image_topic} in "
                    f"{self.config.answer_timeout_s:.0f} s: see its log; a best-effort link of "
                    "large images needs FASTDDS_BUILTIN_TRANSPORTS=LARGE_DATA in every process")
            if now >= next_send:
                stamp = len(sent) + 1  # 1 ns, 2 ns, ... after 1970: in no real recording
                self._ros["player"].publish(first._replace(
                    data=bag_reader.with_header_stamp(first.data, stamp)))
                sent.add(stamp)
                next_send = now + WARMUP_PERIOD_S
            try:
                event = self._events.get(timeout=POLL_S)
            except queue.Empty:
                continue
            if event[0] == "out" and event[1] in sent - earlier:
                return

    def run(self, on_scored: Callable[[ScoredFrame], None] | None = None) -> StreamResult:
        """Play (or await) the bag through the node and score every answer.

        Waits for the node first (StreamTimeoutError when absent), and at the end for late
        answers; every wait is bounded by the config's timeouts.
        """
        cfg = self.config
        self.wait_for_node()
        warmup_s = self._warm_up() if cfg.play else 0.0
        self._drain_events()  # late copies of the warm-up frame
        with self._diag_lock:
            self._diagnostics.mark_start()
        session = _Session(self.bag, cfg, self.plan, self._events, self._abort_check, on_scored)
        if cfg.play:
            session.play(self._ros["player"])
        else:
            session.listen()
        session.finish()
        self._wait_for_final_diagnostics()
        session.scoring.score(session.answered)
        return self._result(session, warmup_s)

    def _drain_events(self) -> None:
        while True:
            try:
                self._events.get_nowait()
            except queue.Empty:
                return

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

    def _result(self, session: "_Session", warmup_s: float) -> StreamResult:
        scoring, pairer = session.scoring, session.pairer
        if scoring.averager.count == 0:
            raise StreamTimeoutError(
                f"the node answered none of the {session.sent} frames with a scorable depth "
                f"({scoring.received} answers, {len(scoring.skipped)} without valid "
                f"pixels); waited {self.config.answer_timeout_s:.0f} s after the stream")
        evaluation = EvaluationResult(
            num_images=scoring.averager.count, metrics=scoring.averager.mean(),
            per_image=scoring.averager.per_image, latency_ms=scoring.latency_ms,
            skipped=scoring.skipped)
        span_s = session.last_sent_s - session.start_s
        with self._diag_lock:
            diag = self._diagnostics
            stats = StreamStats(
                sent=session.sent, received=scoring.received, missing=len(pairer.missing),
                unmatched=pairer.unmatched,
                without_ground_truth=len(self.plan.image_stamps) - len(self.plan.scored),
                rate_hz=self.plan.image_rate_hz * (self.config.replay.rate if self.config.play else 1.0),
                send_rate_hz=(session.sent - 1) / span_s if span_s > 0 else 0.0,
                duration_s=session.end_s - session.start_s, warmup_s=warmup_s,
                player="depth-unet replay" if self.config.play else "external (e.g. ros2 bag play)",
                missing_names=[bag_reader.frame_name(session.index_of[s], s)
                               for s in pairer.missing],
                nan_fraction_mean=float(np.mean(scoring.nan_fractions)) if scoring.nan_fractions else 0.0,
                node_inference_ms=latency_summary_ms(diag.inference_p50_ms),
                node_latency_ms=latency_summary_ms(diag.node_latency_p50_ms),
                node_dropped=diag.dropped, backend=diag.backend, node_model_path=diag.model_path)
        return StreamResult(evaluation, stats)


class _Session:
    """One pass: which frames were sent, which answers came, which ground truth is waiting.

    It is handed what it uses (the bag, its plan, the evaluator's event queue and abort check)
    rather than the evaluator, so the ROS side and the bookkeeping stay apart.
    """

    def __init__(self, bag: Path, config: StreamConfig, plan: BagPlan, events: queue.Queue,
                 abort_check: Callable[[], None], on_scored: Callable[[ScoredFrame], None] | None):
        self.bag, self.cfg, self.plan = bag, config, plan
        self._events, self._abort_check = events, abort_check
        self.index_of = {s: i for i, s in enumerate(plan.image_stamps)}
        self.pairer: StampPairer[int] = StampPairer()  # payload: the image stamp (ns)
        self.truth: dict[int, bytes] = {}  # stamp -> serialized ground-truth Image, until scored
        self.answered: list[tuple[Any, np.ndarray, float]] = []  # (Pending, depth_m, latency_ms)
        self.scoring = Scoring(self.cfg.protocol, on_scored, self.truth, plan)
        self.sent = 0
        self.start_s = self.last_sent_s = self.end_s = time.monotonic()
        self._timed = 0  # frames registered with a known send time
        self._given_up = 0

    def _register(self, stamp: int, sent_s: float) -> None:
        """An input frame went out (or arrived here) at ``sent_s``; NaN: when is unknown."""
        if stamp not in self.plan.scored:
            return
        try:
            self.pairer.add(stamp_from_ns(stamp), self.index_of[stamp], stamp, sent_s)
        except ValueError:  # played twice (a looping player): score its first pass only
            return
        self.sent += 1
        if np.isnan(sent_s):
            return
        if self._timed == 0:
            self.start_s = sent_s
        self._timed += 1
        self.last_sent_s = sent_s

    def _release_given_up(self) -> None:
        for stamp in self.pairer.missing[self._given_up:]:
            self.truth.pop(stamp, None)
        self._given_up = len(self.pairer.missing)

    def collect(self, until_s: float) -> bool:
        """Handle events until ``until_s`` (monotonic); True if any arrived."""
        got = False
        while True:
            remaining = until_s - time.monotonic()
            try:
                event = (self._events.get(timeout=remaining) if remaining > 0
                         else self._events.get_nowait())
            except queue.Empty:
                break
            got = True
            if event[0] == "in":
                self._register(event[1], event[2])
                continue
            _, stamp, depth_m, received_s = event
            key = stamp_from_ns(stamp)
            if not self.cfg.play and not self.pairer.knows(key):
                # Another player's frame that our listener missed (it may still be settling
                # its QoS): the answer is scored all the same, without a latency.
                self._register(stamp, float("nan"))
            pending = self.pairer.match(key)
            if pending is not None:
                self.end_s = received_s
                self.answered.append((pending, depth_m, (received_s - pending.sent_s) * 1e3))
        self._release_given_up()
        if len(self.answered) >= self.cfg.max_unscored:
            self.scoring.score(self.answered)
        return got

    def play(self, player: BagPlayer) -> None:
        """Our player publishes the bag; ground truth is kept as it streams past."""
        truth_topic, image_topic = self.cfg.ground_truth_topic, self.cfg.image_topic

        def before_publish(message: bag_reader.RawMessage, now_s: float) -> None:
            self._abort_check()
            if message.topic == image_topic:
                self._register(bag_reader.header_stamp_ns(message.data), now_s)
            elif message.topic == truth_topic:
                stamp = bag_reader.header_stamp_ns(message.data)
                if stamp in self.plan.scored:
                    self.truth[stamp] = message.data

        messages = bag_reader.iter_raw_messages(
            self.bag, [*player.topics, truth_topic],
            start_offset_ns=int(self.cfg.replay.start_offset_s * 1e9))
        player.play(messages, self.cfg.replay, before_publish=before_publish,
                    wait=lambda until_s: self.collect(until_s))
        deadline = time.monotonic() + self.cfg.answer_timeout_s
        while self.pairer.outstanding and time.monotonic() < deadline:
            self._abort_check()
            self.collect(min(deadline, time.monotonic() + 0.2))

    def listen(self) -> None:
        """Another player publishes: all ground truth is loaded first, then inputs and answers
        are taken until every frame is in and answered, or nothing arrived for a while."""
        for _, stamp, data in bag_reader.iter_stamped(self.bag, self.cfg.ground_truth_topic):
            if stamp in self.plan.scored:
                self.truth[stamp] = data
        print(f"waiting for a player (e.g. ros2 bag play {self.bag}) to publish "
              f"{self.cfg.image_topic}, up to {self.cfg.answer_timeout_s:.0f} s", flush=True)
        last_event = time.monotonic()
        idle_limit = self.cfg.answer_timeout_s
        while True:
            self._abort_check()
            if self.collect(min(time.monotonic() + 0.2, last_event + idle_limit)):
                last_event, idle_limit = time.monotonic(), self.cfg.idle_timeout_s
            done = self.sent == len(self.plan.scored) and not self.pairer.outstanding
            if done or time.monotonic() - last_event > idle_limit:
                break
        if self.sent == 0:
            raise StreamTimeoutError(
                f"no image from the bag arrived on {self.cfg.image_topic} in "
                f"{self.cfg.answer_timeout_s:.0f} s; start `ros2 bag play {self.bag}` (same "
                "ROS_DOMAIN_ID and FASTDDS_BUILTIN_TRANSPORTS), or drop --no-play")

    def finish(self) -> None:
        self.pairer.give_up()
        self._release_given_up()


