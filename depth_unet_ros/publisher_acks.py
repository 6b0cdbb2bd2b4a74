"""Waiting until reliable publishers' messages are acknowledged by every matched reader: the
node's first answer and the bag player's last messages.

Several publishers share one deadline, and the wait polls: rclpy's ``wait_for_all_acked`` holds
the GIL while it blocks (another Python thread got about 5 ms of a 1 s wait, measured here),
which would stall an executor spinning beside it. rclpy is imported only when a real publisher
is asked, so the polling logic is tested without ROS.
"""
from __future__ import annotations

import functools
import time
from typing import Any, Callable, Iterable, Sequence

ACK_POLL_S = 0.005


def acknowledged_now(publisher: Any) -> bool:
    """Whether every reader matched to ``publisher`` acknowledged all it sent, without waiting
    (true for a best-effort publisher or one without readers)."""
    from rclpy.duration import Duration

    return bool(publisher.wait_for_all_acked(Duration(seconds=0)))


def wait_for_acknowledgements(acknowledged: Sequence[Callable[[], bool]], timeout_s: float,
                              clock: Callable[[], float] = time.monotonic,
                              sleep: Callable[[float], None] = time.sleep) -> int:
    """Poll each ``acknowledged()`` until true or ``timeout_s`` is over; the number still
    false. One that turned true is not asked again."""
    deadline = clock() + timeout_s
    pending = list(acknowledged)
    while True:
        pending = [check for check in pending if not check()]
        if not pending or clock() >= deadline:
            return len(pending)
        sleep(ACK_POLL_S)


def unacknowledged_publishers(publishers: Iterable[Any], timeout_s: float) -> int:
    """How many of ``publishers`` still had unacknowledged messages after waiting for them
    together, at most ``timeout_s``."""
    return wait_for_acknowledgements(
        [functools.partial(acknowledged_now, publisher) for publisher in publishers], timeout_s)
