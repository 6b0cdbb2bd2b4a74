"""Waiting for publishers' acknowledgements: one shared deadline, polled, bounded."""
from __future__ import annotations

from depth_unet_ros.publisher_acks import ACK_POLL_S, wait_for_acknowledgements


class _FakeClock:
    """A clock that only moves when the code under test sleeps."""

    def __init__(self) -> None:
        self.now = 0.0
        self.sleeps = 0

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps += 1
        self.now += seconds


def test_acknowledgement_wait_returns_once_every_publisher_is_acknowledged():
    """Publishers acknowledged at different polls: the wait ends at the last of them, asks an
    acknowledged one no more, and reports none missing."""
    clock = _FakeClock()
    asked = {"depth": 0, "info": 0}

    def acknowledged_after(name: str, polls: int):
        def check() -> bool:
            asked[name] += 1
            return asked[name] > polls
        return check

    missing = wait_for_acknowledgements(
        [acknowledged_after("depth", 0), acknowledged_after("info", 3)], 1.0, clock, clock.sleep)
    assert missing == 0
    assert asked == {"depth": 1, "info": 4}
    assert clock.sleeps == 3 and clock.now < 1.0


def test_acknowledgement_wait_is_bounded_and_counts_what_was_never_acknowledged():
    """A consumer that never acknowledges (a stalled process) costs the timeout, no more, and is
    counted; an empty list returns at once."""
    clock = _FakeClock()
    missing = wait_for_acknowledgements([lambda: True, lambda: False, lambda: False],
                                        0.5, clock, clock.sleep)
    assert missing == 2
    assert 0.5 <= clock.now < 0.5 + 2 * ACK_POLL_S
    clock = _FakeClock()
    assert wait_for_acknowledgements([], 0.5, clock, clock.sleep) == 0
    assert clock.sleeps == 0
