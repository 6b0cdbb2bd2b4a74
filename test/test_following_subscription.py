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
    def __init__(self, topic: str, qos: Any, callback: Any, matched: int | None):
        self.topic_name, self.qos, self.callback, self.matched = topic, qos, callback, matched
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
        sub = FakeSubscription(topic, qos, callback, 0 if self.counts_matches else None)
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
