"""FollowingSubscription's switch, without DDS: a fake node stands for rclpy's graph so the
overlap rule (keep the old subscription until the new one has matched every publisher) is
checked at exact times."""
from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import pytest

pytest.importorskip("rclpy", reason="rclpy not installed (pip install .[ros])")

from rclpy.qos import ReliabilityPolicy  # noqa: E402

from depth_unet_ros import following_subscription, node_core  # noqa: E402
from depth_unet_ros.following_subscription import FollowingSubscription  # noqa: E402
from depth_unet_ros.node_core import QosChoice  # noqa: E402


class FakeSubscription:
    def __init__(self, topic: str, qos: Any, callback: Any, matched: int | None, raw: bool = False):
        self.topic_name, self.qos, self.callback, self.matched = topic, qos, callback, matched
        self.raw = raw
        if matched is None:  # Humble's rclpy: no match count
            return
        self.get_publisher_count = lambda: self.matched


class FakeNode:
    """create/destroy_subscription and the graph query FollowingSubscription uses."""

    def __init__(self, publishers: list[ReliabilityPolicy], counts_matches: bool = True):
        self.publishers = publishers
        self.counts_matches = counts_matches
        self.alive: list[FakeSubscription] = []

    def create_subscription(self, msg_type: Any, topic: str, callback: Any, qos: Any,
                            raw: bool = False) -> Any:
        sub = FakeSubscription(topic, qos, callback, 0 if self.counts_matches else None, raw)
        self.alive.append(sub)
        return sub

    def destroy_subscription(self, sub: Any) -> None:
        self.alive.remove(sub)

    def get_publishers_info_by_topic(self, topic: str) -> list[Any]:
        return [SimpleNamespace(qos_profile=SimpleNamespace(reliability=r)) for r in self.publishers]

    def get_logger(self) -> Any:
        return SimpleNamespace(info=lambda text: None)


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> SimpleNamespace:
    now = SimpleNamespace(t=100.0)
    monkeypatch.setattr(following_subscription.time, "monotonic", lambda: now.t)
    return now


def _switched(node: FakeNode) -> FollowingSubscription:
    sub = FollowingSubscription(node, object, "/camera/image_raw", lambda msg: None,
                                QosChoice("best_effort", 1))
    sub.follow_publishers()  # sees reliable publishers: subscribes reliable beside the old one
    assert sub.choice.reliability == "reliable" and len(node.alive) == 2
    return sub


def test_the_old_subscription_stays_until_every_publisher_matched_the_new_one(clock):
    node = FakeNode([ReliabilityPolicy.RELIABLE] * 2)
    sub = _switched(node)
    new = node.alive[-1]
    clock.t += node_core.QOS_SWITCH_OVERLAP_S + 1.0  # past the overlap, nothing matched yet
    sub.follow_publishers()
    assert len(node.alive) == 2
    new.matched = 1  # one of two publishers
    sub.follow_publishers()
    assert len(node.alive) == 2
    new.matched = 2
    sub.follow_publishers()
    assert node.alive == [new]


def test_matching_early_still_keeps_the_overlap(clock):
    node = FakeNode([ReliabilityPolicy.RELIABLE])
    sub = _switched(node)
    node.alive[-1].matched = 1
    clock.t += node_core.QOS_SWITCH_OVERLAP_S / 2
    sub.follow_publishers()
    assert len(node.alive) == 2
    clock.t += node_core.QOS_SWITCH_OVERLAP_S
    sub.follow_publishers()
    assert len(node.alive) == 1


def test_a_publisher_that_never_matches_does_not_keep_the_old_one_forever(clock):
    node = FakeNode([ReliabilityPolicy.RELIABLE])
    sub = _switched(node)
    clock.t += node_core.QOS_SWITCH_OVERLAP_S + node_core.QOS_SWITCH_MAX_OVERLAP_S - 0.1
    sub.follow_publishers()
    assert len(node.alive) == 2
    clock.t += 0.2
    sub.follow_publishers()
    assert len(node.alive) == 1


def test_without_match_counts_humble_the_overlap_is_timed_only(clock):
    node = FakeNode([ReliabilityPolicy.RELIABLE], counts_matches=False)
    sub = _switched(node)
    clock.t += node_core.QOS_SWITCH_OVERLAP_S + 0.1
    sub.follow_publishers()
    assert len(node.alive) == 1


def test_raw_messages_heard_twice_during_the_overlap_are_passed_on_once(clock):
    """bag-eval's input listener takes serialized bytes; its key reads the stamp from them."""
    node, received = FakeNode([ReliabilityPolicy.RELIABLE]), []
    sub = FollowingSubscription(node, object, "/camera/image_raw", received.append,
                                QosChoice("best_effort", 10), raw=True, key=lambda data: data[:4])
    sub.follow_publishers()
    assert sub.subscription_count == 2
    for s in node.alive:
        s.callback(b"0001 first")
    node.alive[1].callback(b"0002 second")
    assert received == [b"0001 first", b"0002 second"]


def test_with_on_malformed_both_subscriptions_of_a_switch_take_bytes_and_check_them(clock):
    """on_malformed: every subscription it makes is raw; a message that deserializes reaches the
    callback once (the overlap de-duplicates it by header), an empty payload goes to on_malformed."""
    from rclpy.serialization import serialize_message
    from sensor_msgs.msg import Image

    node = FakeNode([ReliabilityPolicy.RELIABLE])
    got, bad = [], []
    sub = FollowingSubscription(node, Image, "/camera/image_raw", got.append,
                                QosChoice("best_effort", 1), on_malformed=bad.append)
    sub.follow_publishers()
    assert len(node.alive) == 2 and all(s.raw for s in node.alive)
    msg = Image(height=2, width=3, encoding="mono8", step=3, data=bytes(6))
    msg.header.stamp.sec = 7
    for fake in node.alive:  # the same frame through the old and the new subscription
        fake.callback(serialize_message(msg))
    node.alive[-1].callback(b"")
    assert [(m.header.stamp.sec, m.width) for m in got] == [(7, 3)]
    assert len(bad) == 1 and "no CDR header" in str(bad[0])


def test_without_on_malformed_it_is_a_typed_subscription(clock):
    node = FakeNode([])
    FollowingSubscription(node, object, "/camera/image_raw", lambda msg: None,
                          QosChoice("best_effort", 1))
    assert [s.raw for s in node.alive] == [False]
