"""Publish a rosbag2's messages over DDS with their recorded timing: ``ros2 bag play`` for
machines that lack it (pip installs), and the player of ``bag-eval``.

Messages go out as the serialized bytes the bag holds, never decoded and re-encoded, so what
the node receives is exactly what was recorded (any encoding, frame_id or stamp). Each topic is
offered with the QoS it was recorded with (reliable camera streams, transient-local
``/tf_static``). rclpy is imported inside the player only; the schedule is plain arithmetic.
"""
from __future__ import annotations

import importlib
import threading
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable, Mapping

from depth_unet_ros.bags.reader import RawMessage, TopicInfo
from depth_unet_ros.errors import ConfigError
from depth_unet_ros.publisher_acks import unacknowledged_publishers

DEFAULT_QOS_DEPTH = 10


@dataclass(frozen=True)
class ReplayOptions:
    """How to play: like ``ros2 bag play``'s --rate, --start-offset and --loop."""

    rate: float = 1.0  # playback speed factor: 2 = twice as fast
    start_offset_s: float = 0.0  # skip the bag's first seconds
    loop: bool = False

    def __post_init__(self) -> None:
        if not self.rate > 0:
            raise ConfigError(f"the playback rate must be positive, got {self.rate}")
        if self.start_offset_s < 0:
            raise ConfigError(f"the start offset must be >= 0 s, got {self.start_offset_s}")


def due_time_s(message_ns: int, first_ns: int, rate: float) -> float:
    """Seconds after the first message at which a message recorded at ``message_ns`` is due."""
    return (message_ns - first_ns) / 1e9 / rate


@dataclass
class ReplayStats:
    """What one pass over the bag published."""

    published: dict[str, int] = field(default_factory=dict)  # topic -> messages
    duration_s: float = 0.0
    max_lateness_ms: float = 0.0  # worst delay behind the recorded schedule

    @property
    def total(self) -> int:
        return sum(self.published.values())


def message_class(msgtype: str) -> type | None:
    """The generated Python class of "pkg/msg/Name", or None when that package is not installed."""
    package, _, name = msgtype.rpartition("/")
    try:
        return getattr(importlib.import_module(package.replace("/", ".")), name)
    except (ImportError, AttributeError):
        return None


def _recorded_profile(offered: Any) -> tuple[bool, bool, int]:
    """(reliable, transient_local, depth) of the first offered QoS profile (rosbags Qos objects
    or the YAML text of older bags); reliable volatile when the bag records none."""
    if isinstance(offered, str):
        import yaml

        offered = yaml.safe_load(offered) or []
    if not offered:
        return True, False, DEFAULT_QOS_DEPTH
    first = offered[0]
    get = (lambda k: first.get(k)) if isinstance(first, dict) else (lambda k: getattr(first, k, None))
    reliability, durability, depth = get("reliability"), get("durability"), get("depth")
    # rmw enums: reliability 1 = reliable, 2 = best effort; durability 1 = transient local
    reliable = int(getattr(reliability, "value", reliability) or 1) != 2
    transient = int(getattr(durability, "value", durability) or 2) == 1
    return reliable, transient, max(int(depth or 0), DEFAULT_QOS_DEPTH)


class BagPlayer:
    """Publishers for a bag's topics on an rclpy ``node``, and a paced ``play`` loop.

    Topics whose message package is not installed here (e.g. tf2_msgs in a pip-only venv) are
    listed in ``skipped`` and not published.
    """

    def __init__(self, node: Any, topics: Mapping[str, TopicInfo]):
        from rclpy.qos import DurabilityPolicy, QoSProfile, ReliabilityPolicy

        self._node = node
        self._publishers: dict[str, Any] = {}
        self.skipped: dict[str, str] = {}  # topic -> message type
        for name, info in topics.items():
            cls = message_class(info.msgtype)
            if cls is None:
                self.skipped[name] = info.msgtype
                continue
            reliable, transient, depth = _recorded_profile(info.offered_qos)
            qos = QoSProfile(depth=depth, reliability=ReliabilityPolicy.RELIABLE if reliable
                             else ReliabilityPolicy.BEST_EFFORT,
                             durability=DurabilityPolicy.TRANSIENT_LOCAL if transient
                             else DurabilityPolicy.VOLATILE)
            self._publishers[name] = node.create_publisher(cls, name, qos)

    @property
    def topics(self) -> list[str]:
        return list(self._publishers)

    def subscriber_count(self, topic: str) -> int:
        publisher = self._publishers.get(topic)
        return publisher.get_subscription_count() if publisher is not None else 0

    def graph_summary(self, topic: str) -> str:
        """What this participant's graph shows, for a diagnosis when subscribers are missing:
        no other node at all means discovery failed (domain, transports, discovery range);
        subscriptions in the graph that do not match mean incompatible QoS."""
        nodes = [f"{ns.rstrip('/')}/{name}" for name, ns in self._node.get_node_names_and_namespaces()
                 if name != self._node.get_name()]
        shown = ", ".join(sorted(nodes)[:8]) + (" ..." if len(nodes) > 8 else "")
        return (f"this player sees {len(nodes)} other node(s){': ' + shown if nodes else ''}; "
                f"{self._node.count_subscribers(topic)} subscription(s) on {topic} in the graph, "
                f"{self.subscriber_count(topic)} matched")

    def publish(self, message: RawMessage) -> bool:
        """Publish one message now; False when its topic is not played."""
        publisher = self._publishers.get(message.topic)
        if publisher is None:
            return False
        publisher.publish(message.data)
        return True

    def wait_for_acks(self, timeout_s: float) -> bool:
        """Block until every reliable subscriber has acknowledged everything published (or
        ``timeout_s`` passed); False on timeout. A player that exits at once would otherwise
        take its last messages with it (``ros2 bag play --wait-for-all-acked``)."""
        return unacknowledged_publishers(self._publishers.values(), timeout_s) == 0

    def play(self, messages: Iterable[RawMessage], options: ReplayOptions = ReplayOptions(),
             before_publish: Callable[[RawMessage, float], None] | None = None,
             wait: Callable[[float], None] | None = None,
             stop: threading.Event | None = None) -> ReplayStats:
        """Publish ``messages`` on their recorded schedule (scaled by ``options.rate``).

        ``before_publish(message, t)`` sees every message (played or not) just before it is
        published at monotonic time ``t``, so a fast answer finds its frame registered.
        ``wait(until_s)`` is how the loop waits between messages (default: sleep); a caller that
        has its own work (collecting answers) passes it. Never bursts: a late message goes out
        at once, and the schedule does not run ahead to catch up.
        """
        wait = wait or (lambda until_s: time.sleep(max(0.0, until_s - time.monotonic())))
        stats = ReplayStats()
        start_s = first_ns = None
        for message in messages:
            if stop is not None and stop.is_set():
                break
            if first_ns is None:
                first_ns, start_s = message.time_ns, time.monotonic()
            due_s = start_s + due_time_s(message.time_ns, first_ns, options.rate)
            if due_s > time.monotonic():
                wait(due_s)
            now = time.monotonic()
            stats.max_lateness_ms = max(stats.max_lateness_ms, (now - due_s) * 1e3)
            if before_publish is not None:
                before_publish(message, now)
            if self.publish(message):
                stats.published[message.topic] = stats.published.get(message.topic, 0) + 1
        if start_s is not None:
            stats.duration_s = time.monotonic() - start_s
        return stats
