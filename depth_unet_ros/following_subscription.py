"""A subscription whose reliability follows its topic's publishers (``qos_reliability: auto``).

Many camera drivers publish best-effort (sensor-data QoS), others reliable; a reliable
subscription never hears a best-effort camera, and a best-effort one loses most VGA frames of a
reliable camera over Fast DDS's default transports. ``FollowingSubscription`` starts with a
given choice (``node_core.subscription_qos``: auto starts best-effort) and, each time its node's
timer calls ``follow_publishers``, re-subscribes as ``node_core.followed_reliability`` says.
Used by depth_node for its camera inputs and by vo_node for the camera's image.
"""
from __future__ import annotations

import time
from dataclasses import replace
from typing import Any, Callable, Hashable

from rclpy.node import Node
from rclpy.qos import DurabilityPolicy, HistoryPolicy, QoSProfile, ReliabilityPolicy

from depth_unet_ros import node_core
from depth_unet_ros.checked_subscription import checked_callback
from depth_unet_ros.errors import MalformedMessageError
from depth_unet_ros.node_core import QosChoice


def qos_profile(choice: QosChoice) -> QoSProfile:
    """rclpy's profile of a ``QosChoice``: keep-last ``depth``, volatile."""
    reliability = (ReliabilityPolicy.RELIABLE if choice.reliability == "reliable"
                   else ReliabilityPolicy.BEST_EFFORT)
    return QoSProfile(history=HistoryPolicy.KEEP_LAST, depth=choice.depth,
                      reliability=reliability, durability=DurabilityPolicy.VOLATILE)


def reliability_name(policy: ReliabilityPolicy) -> str:
    """"reliable", "best_effort" or "unknown" (what ``followed_reliability`` reads)."""
    return {ReliabilityPolicy.RELIABLE: "reliable",
            ReliabilityPolicy.BEST_EFFORT: "best_effort"}.get(policy, "unknown")


def _header_key(msg: Any) -> Hashable:
    stamp = msg.header.stamp
    return stamp.sec, stamp.nanosec, msg.header.frame_id


class FollowingSubscription:
    """One input subscription whose reliability can follow its publishers (qos_reliability auto).

    rclpy cannot change a subscription's QoS, so a switch creates a new subscription and keeps
    the old one until publishers have matched the new one (see node_core's QOS_SWITCH_*); a message
    that arrives through both meanwhile (same header stamp and frame_id) is passed on once.
    ``follow_publishers`` must run in the node's executor (a timer in the default, mutually
    exclusive callback group), never during a callback of the same subscription. With a fixed
    reliability nobody calls it and this is a plain subscription.
    """

    def __init__(self, node: Node, msg_type: Any, topic: str, callback: Callable[[Any], None],
                 choice: QosChoice, raw: bool = False,
                 key: Callable[[Any], Hashable] | None = None,
                 on_malformed: Callable[[MalformedMessageError], None] | None = None):
        """``raw``: deliver serialized bytes (rclpy's ``raw``); ``key`` then names a message for
        the overlap's de-duplication (default: header stamp and frame_id). ``on_malformed``:
        take bytes and deserialize them here (``checked_subscription``), passing messages that
        do not deserialize to it instead of the callback."""
        self._node, self._args, self.choice = node, (msg_type, topic), choice
        self._callback = callback
        checked = on_malformed is not None and not raw
        self._take: Callable[[Any], None] = (
            checked_callback(msg_type, self._deliver, on_malformed) if checked else self._deliver)
        self._take_raw = raw or checked
        self._key = key or _header_key
        self._sub = self._subscribe(topic)
        self.topic_name: str = self._sub.topic_name  # resolved (namespace, remapping), fixed
        self._retiring: Any = None  # the subscription before the last switch, while it overlaps
        self._retire_at_s = 0.0
        self._recent = node_core.RecentKeys()

    @property
    def subscription_count(self) -> int:
        """Subscriptions this holds now: 2 while a switch overlaps, else 1."""
        return 1 + (self._retiring is not None)

    def _subscribe(self, topic: str) -> Any:
        return self._node.create_subscription(self._args[0], topic, self._take,
                                              qos_profile(self.choice),
                                              raw=self._take_raw)

    def _deliver(self, msg: Any) -> None:
        if self._retiring is not None and not self._recent.first_time(self._key(msg)):
            return
        self._callback(msg)

    def follow_publishers(self) -> None:
        """Re-subscribe when the publishers of the (remapped, resolved) topic want another
        reliability; logged once per switch."""
        topic = self.topic_name
        offered = [reliability_name(info.qos_profile.reliability)
                   for info in self._node.get_publishers_info_by_topic(topic)]
        if self._retiring is not None and self._new_one_has_matched(len(offered)):
            self._retire()
        wanted = node_core.followed_reliability(offered, self.choice.reliability)
        if wanted == self.choice.reliability:
            return
        self._retire()  # a switch back within the overlap: the oldest one goes at once
        self.choice = replace(self.choice, reliability=wanted)
        self._retiring = self._sub
        self._retire_at_s = time.monotonic() + node_core.QOS_SWITCH_OVERLAP_S
        self._sub = self._subscribe(self._args[1])
        self._node.get_logger().info(f"{topic}: publishers offer {', '.join(sorted(set(offered)))}; "
                                     f"subscription is now {wanted}")

    def _new_one_has_matched(self, publishers: int) -> bool:
        """True once the overlap is over: QOS_SWITCH_OVERLAP_S have passed and every publisher
        has matched the new subscription (not counted on Humble, whose rclpy cannot), or
        QOS_SWITCH_MAX_OVERLAP_S have passed."""
        now = time.monotonic()
        if now < self._retire_at_s:
            return False
        count = getattr(self._sub, "get_publisher_count", None)
        if count is None or now >= self._retire_at_s + node_core.QOS_SWITCH_MAX_OVERLAP_S:
            return True
        return count() >= publishers

    def _retire(self) -> None:
        if self._retiring is not None:
            self._node.destroy_subscription(self._retiring)
            self._retiring = None
            self._recent.clear()

    def close(self) -> None:
        """Unsubscribe (both subscriptions while a switch overlaps)."""
        self._retire()
        self._node.destroy_subscription(self._sub)
