"""odometry.exact_pairing: the depth node's three outputs of a frame pair by exact stamp in any
arrival order, with bounded memory, and everything thrown away is counted."""
from __future__ import annotations

import itertools

import pytest

from depth_unet_ros.errors import ConfigError
from depth_unet_ros.odometry.exact_pairing import ExactPairing

TOPICS = ("depth", "features", "camera_info")


@pytest.mark.parametrize("order", list(itertools.permutations(TOPICS)))
def test_a_set_is_handed_on_once_whole_in_any_arrival_order(order):
    """Only the last of the three messages of a stamp returns the set, keyed by every topic."""
    pairing = ExactPairing(TOPICS)
    results = [pairing.add(topic, 100, f"{topic}@100") for topic in order]
    assert results[:2] == [None, None]
    assert results[2].stamp_ns == 100
    assert results[2].messages == {t: f"{t}@100" for t in TOPICS}
    assert pairing.counts.paired == 1 and pairing.pending == 0


def test_interleaved_frames_pair_by_their_own_stamp():
    """Messages of two frames interleaved never mix: each set holds its own stamp's messages."""
    pairing = ExactPairing(TOPICS)
    assert pairing.add("depth", 1, "d1") is None
    assert pairing.add("depth", 2, "d2") is None
    assert pairing.add("features", 1, "f1") is None
    assert pairing.add("features", 2, "f2") is None
    first = pairing.add("camera_info", 1, "c1")
    second = pairing.add("camera_info", 2, "c2")
    assert first.messages == {"depth": "d1", "features": "f1", "camera_info": "c1"}
    assert second.messages == {"depth": "d2", "features": "f2", "camera_info": "c2"}
    assert pairing.counts.incomplete == 0


def test_older_incomplete_sets_are_dropped_when_a_newer_one_completes():
    """Topics deliver in stamp order, so stamp 1 missing its features can never complete once
    stamp 2 is whole: dropped and counted, and its late features are stale."""
    pairing = ExactPairing(TOPICS)
    pairing.add("depth", 1, "d1")
    pairing.add("camera_info", 1, "c1")
    for topic in TOPICS:
        done = pairing.add(topic, 2, topic)
    assert done.stamp_ns == 2
    assert pairing.counts.incomplete == 1 and pairing.pending == 0
    assert pairing.add("features", 1, "late") is None
    assert pairing.counts.stale == 1 and pairing.pending == 0


def test_memory_is_bounded_by_max_pending():
    """A topic that never arrives leaves at most max_pending sets waiting; the oldest go first."""
    pairing = ExactPairing(TOPICS, max_pending=3)
    for stamp in range(10):
        pairing.add("depth", stamp, stamp)
        pairing.add("features", stamp, stamp)
    assert pairing.pending == 3 and pairing.counts.overflow == 7
    assert pairing.add("camera_info", 9, 9).stamp_ns == 9
    assert pairing.counts.incomplete == 2  # stamps 7 and 8


def test_duplicates_keep_the_newest_and_are_counted():
    pairing = ExactPairing(TOPICS)
    pairing.add("depth", 5, "old")
    pairing.add("depth", 5, "new")
    pairing.add("features", 5, "f")
    assert pairing.add("camera_info", 5, "c").messages["depth"] == "new"
    assert pairing.counts.duplicate == 1


def test_reset_accepts_stamps_from_the_past_again():
    """After a reset (a bag played again), old stamps pair instead of being stale."""
    pairing = ExactPairing(TOPICS)
    for topic in TOPICS:
        pairing.add(topic, 10, topic)
    pairing.reset()
    for topic in TOPICS:
        done = pairing.add(topic, 5, topic)
    assert done.stamp_ns == 5 and pairing.counts.stale == 0


def test_time_going_back_far_restarts_the_pairing_but_a_late_message_is_stale():
    """With restart_after_ns, a bag played again (stamps 10 s back) pairs anew and is counted
    as a restart; a message just behind the newest set is still only stale."""
    pairing = ExactPairing(TOPICS, restart_after_ns=1_000_000_000)
    for topic in TOPICS:
        pairing.add(topic, 20_000_000_000, topic)
    assert pairing.add("depth", 19_500_000_000, "late") is None
    assert pairing.counts.stale == 1 and pairing.counts.restarts == 0
    for topic in TOPICS:
        done = pairing.add(topic, 10_000_000_000, topic)
    assert done.stamp_ns == 10_000_000_000 and pairing.counts.restarts == 1


def test_bad_configurations_and_unknown_topics_are_refused():
    with pytest.raises(ConfigError):
        ExactPairing(("a", "a"))
    with pytest.raises(ConfigError):
        ExactPairing(TOPICS, max_pending=0)
    with pytest.raises(ConfigError, match="not one of"):
        ExactPairing(TOPICS).add("image", 1, None)
