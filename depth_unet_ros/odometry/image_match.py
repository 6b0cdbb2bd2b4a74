"""vo_node's camera images, joined to each paired depth set by exact stamp when they are there.

Depth, features and camera_info must pair (``ExactPairing``); the camera's image is optional per
frame, so a missing image never holds odometry back: that frame is tracked on features alone.
The image is the depth node's own input, so it normally reaches vo_node a whole inference
(30-250 ms here) before the depth outputs of its stamp, and ``claim`` finds it when the set
completes. When it is not there yet the worker ``wait``s for it, bounded by ``IMAGE_WAIT_S``,
and only while images have been pairing (the previous frame had its image), so a topic that
never delivers (a wrong remapping) costs one wait in all, not one per frame. A wait ends early
once the image cannot come any more: a newer image arrived (one publisher delivers in stamp
order, so this one was dropped or carries another stamp), or a newer set completed (this one
is superseded). No rclpy here.
"""
from __future__ import annotations

import threading
from collections import OrderedDict
from dataclasses import dataclass
from enum import Enum
from typing import Generic, TypeVar

from depth_unet_ros.errors import ConfigError

T = TypeVar("T")

# Longest a set waits for a late image. Late means it reached vo_node after the depth node had
# inferred on it and its outputs had crossed DDS, so it is already a lost fragment's repair or
# a stalled executor; 0.1 s (3 frames at 30 Hz, about one inference of the bundled model) covers
# scheduling jitter on a loaded machine without adding more than that to odometry latency.
IMAGE_WAIT_S = 0.1
# Images kept ahead of the newest paired set: the depth node answers within a few frames (it
# keeps only the newest input), so 16 covers half a second at 30 Hz; 16 VGA rgb8 images are 15 MB.
MAX_IMAGES = 16


class ImageState(Enum):
    """Where a set's image stands."""

    FOUND = "found"  # here: take it
    AWAITED = "awaited"  # may still come: worth a bounded wait
    GONE = "gone"  # cannot come any more, or images are not pairing: track on features alone


@dataclass
class ImageCounts:
    """How the sets that asked for their image fared."""

    on_time: int = 0  # there when the set completed
    late: int = 0  # arrived after its set completed, within the wait
    missing: int = 0  # the set went on without it


class ImageMatcher(Generic[T]):
    """The camera's recent images by stamp; ``claim`` at set completion, ``wait`` in the worker."""

    def __init__(self, max_images: int = MAX_IMAGES, wait_s: float = IMAGE_WAIT_S) -> None:
        if max_images < 1 or wait_s < 0:
            raise ConfigError(f"max_images must be >= 1 and wait_s >= 0, got {max_images}, {wait_s}")
        self.max_images, self.wait_s = max_images, wait_s
        self.counts = ImageCounts()
        self._images: OrderedDict[int, T] = OrderedDict()  # stamp_ns -> image, arrival order
        self._newest_ns: int | None = None  # stamp of the image that arrived last
        self._claimed_ns: int | None = None  # stamp of the newest completed set
        self._pairing = True  # the previous set got its image (at first: give it a chance)
        self._cond = threading.Condition()

    def add(self, stamp_ns: int, image: T) -> None:
        """File an image as it arrives (the oldest goes beyond ``max_images``)."""
        with self._cond:
            self._images.pop(stamp_ns, None)
            self._images[stamp_ns] = image
            while len(self._images) > self.max_images:
                self._images.popitem(last=False)
            self._newest_ns = stamp_ns
            self._cond.notify_all()

    def claim(self, stamp_ns: int) -> T | None:
        """The image of the set that just completed, if here; older images are forgotten (no
        set can use them any more), and a wait for an older set ends."""
        with self._cond:
            self._claimed_ns = stamp_ns
            for older in [s for s in self._images if s < stamp_ns]:
                del self._images[older]
            image = self._images.pop(stamp_ns, None)
            if image is not None:
                self.counts.on_time += 1
                self._pairing = True
            self._cond.notify_all()
            return image

    def state(self, stamp_ns: int) -> ImageState:
        """Whether the image of the set stamped ``stamp_ns`` is here, may come, or will not."""
        with self._cond:
            return self._state(stamp_ns)

    def wait(self, stamp_ns: int, timeout_s: float | None = None) -> T | None:
        """The set's image if it comes within ``timeout_s`` (default ``wait_s``) while still
        awaited; None (features alone) otherwise. Only a worker thread calls this."""
        timeout_s = self.wait_s if timeout_s is None else timeout_s
        with self._cond:
            self._cond.wait_for(lambda: self._state(stamp_ns) is not ImageState.AWAITED,
                                timeout=timeout_s)
            image = self._images.pop(stamp_ns, None)
            self._pairing = image is not None
            if image is None:
                self.counts.missing += 1
            else:
                self.counts.late += 1
            return image

    def _state(self, stamp_ns: int) -> ImageState:
        if stamp_ns in self._images:
            return ImageState.FOUND
        superseded = self._claimed_ns is not None and stamp_ns < self._claimed_ns
        passed = self._newest_ns is not None and self._newest_ns > stamp_ns
        if superseded or passed or not self._pairing:
            return ImageState.GONE
        return ImageState.AWAITED

    @property
    def pending(self) -> int:
        """Images held (at most ``max_images``)."""
        with self._cond:
            return len(self._images)
