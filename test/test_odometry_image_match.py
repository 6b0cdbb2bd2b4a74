"""odometry.image_match: the camera image joins its depth set by exact stamp when it is there,
is waited for only briefly and only while it can still come, and never holds a set back."""
from __future__ import annotations

import threading

import pytest

from depth_unet_ros.errors import ConfigError
from depth_unet_ros.odometry.image_match import ImageMatcher, ImageState

LONG_S = 30.0  # a wait that ends on an event long before this; reaching it fails the test


def _waiting(matcher: ImageMatcher[str], stamp_ns: int) -> tuple[threading.Thread, list]:
    """``matcher.wait(stamp_ns, LONG_S)`` in a worker thread; its result lands in the list."""
    result: list = []
    thread = threading.Thread(target=lambda: result.append(matcher.wait(stamp_ns, LONG_S)))
    thread.start()
    return thread, result


def _joined(thread: threading.Thread) -> None:
    thread.join(LONG_S)
    assert not thread.is_alive(), "the wait did not end on its event"


def test_an_image_that_arrived_first_joins_its_set_at_completion():
    """The usual order (the image is the depth node's input): claim finds it, and the images
    older than the completed set are forgotten."""
    matcher: ImageMatcher[str] = ImageMatcher()
    for stamp in (1, 2, 3):
        matcher.add(stamp, f"image@{stamp}")
    assert matcher.claim(2) == "image@2"
    assert matcher.pending == 1  # 3, whose depth is still to come
    assert matcher.counts.on_time == 1


def test_no_image_at_all_costs_one_bounded_wait_then_none():
    """No image publisher (a wrong remapping): the first set waits until the bound, and every
    later one goes on at once (features alone), since images are not pairing."""
    matcher: ImageMatcher[str] = ImageMatcher(wait_s=0.01)
    assert matcher.claim(1) is None
    assert matcher.state(1) is ImageState.AWAITED
    assert matcher.wait(1) is None  # the bound, 10 ms
    assert matcher.claim(2) is None
    assert matcher.state(2) is ImageState.GONE
    assert matcher.wait(2, LONG_S) is None  # at once: GONE
    assert matcher.counts.missing == 2


def test_a_late_image_joins_within_the_wait():
    """The image arrives after its set completed: the waiting worker gets it."""
    matcher: ImageMatcher[str] = ImageMatcher()
    assert matcher.claim(5) is None
    thread, result = _waiting(matcher, 5)
    matcher.add(5, "image@5")
    _joined(thread)
    assert result == ["image@5"] and matcher.counts.late == 1
    assert matcher.state(6) is ImageState.AWAITED  # pairing again: the next set may wait too


def test_an_image_of_another_stamp_never_joins_and_a_newer_one_ends_the_wait():
    """Images carry their own stamps: one at another stamp is not this set's. Once a newer
    image has arrived, this set's can no longer come (one publisher delivers in stamp order):
    the wait ends at once."""
    matcher: ImageMatcher[str] = ImageMatcher()
    matcher.add(9, "image@9")
    assert matcher.claim(10) is None and matcher.pending == 0  # 9 is older: forgotten
    thread, result = _waiting(matcher, 10)
    matcher.add(11, "image@11")
    _joined(thread)
    assert result == [None] and matcher.counts.missing == 1
    assert matcher.claim(11) == "image@11"


def test_a_newer_completed_set_ends_the_wait_of_an_older_one():
    """The worker waiting for set 20's image gives up when set 21 completes: 20 is
    superseded (the one-slot buffer holds 21 next)."""
    matcher: ImageMatcher[str] = ImageMatcher()
    assert matcher.claim(20) is None
    thread, result = _waiting(matcher, 20)
    matcher.claim(21)
    _joined(thread)
    assert result == [None]


def test_a_missing_image_stops_the_waits_until_images_pair_again():
    """After a set went without its image, later sets do not wait; an image found at
    completion makes them wait again."""
    matcher: ImageMatcher[str] = ImageMatcher(wait_s=0.01)
    matcher.claim(1)
    assert matcher.wait(1) is None
    matcher.claim(2)
    assert matcher.state(2) is ImageState.GONE
    matcher.add(3, "image@3")
    assert matcher.claim(3) == "image@3"
    matcher.claim(4)
    assert matcher.state(4) is ImageState.AWAITED


def test_memory_is_bounded_and_time_going_back_still_pairs():
    """At most max_images are held (the oldest go); after a bag loop (stamps back in time) an
    image still joins its set."""
    matcher: ImageMatcher[str] = ImageMatcher(max_images=3)
    for stamp in range(100, 110):
        matcher.add(stamp, f"image@{stamp}")
    assert matcher.pending == 3
    assert matcher.claim(105) is None  # pushed out before its depth came
    matcher.add(7, "image@7")
    assert matcher.claim(7) == "image@7"


def test_bad_configurations_are_refused():
    with pytest.raises(ConfigError):
        ImageMatcher(max_images=0)
    with pytest.raises(ConfigError):
        ImageMatcher(wait_s=-1.0)
