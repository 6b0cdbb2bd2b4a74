"""Pair the depth node's three outputs of one frame by their exact stamp, in bounded memory.

The depth node publishes depth, features and depth camera_info of a frame with one stamp, and
reliably, so a consumer gets all three or none; they still arrive on three subscriptions in any
order. A set is handed on once whole. Each topic delivers in stamp order, so once a stamp is
whole every older, incomplete set can never complete: it is dropped and counted, as are
messages older than the last whole set (stale) and pending sets beyond ``max_pending``. A
message older than that by more than ``restart_after_ns`` means time went back (a bag played
again): the pairing starts afresh instead of calling everything stale from then on.
What ``message_filters.TimeSynchronizer`` does, without depending on it (not on PyPI).
"""
from __future__ import annotations

import threading
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Generic, Sequence, TypeVar

from depth_unet_ros.errors import ConfigError

T = TypeVar("T")


@dataclass(frozen=True)
class PairedSet(Generic[T]):
    """One frame's messages, keyed by topic (every topic of the pairing)."""

    stamp_ns: int
    messages: dict[str, T]


@dataclass
class PairingCounts:
    """What the pairing handed on or threw away since it started."""

    paired: int = 0
    incomplete: int = 0  # sets that can no longer complete (a newer stamp completed first)
    overflow: int = 0  # sets pushed out by max_pending
    stale: int = 0  # messages at or before the newest whole set's stamp
    duplicate: int = 0  # a second message of one topic with one stamp (the newer one is kept)
    restarts: int = 0  # time went back by more than restart_after_ns


@dataclass
class ExactPairing(Generic[T]):
    """Collects messages of ``topics`` per stamp; ``add`` returns the set it completes."""

    topics: Sequence[str]
    max_pending: int = 8
    restart_after_ns: int | None = None  # None: older messages are only ever stale
    counts: PairingCounts = field(default_factory=PairingCounts)

    def __post_init__(self) -> None:
        if len(set(self.topics)) != len(self.topics) or not self.topics:
            raise ConfigError(f"pairing needs distinct topics, got {list(self.topics)}")
        if self.max_pending < 1:
            raise ConfigError(f"max_pending must be >= 1, got {self.max_pending}")
        self._pending: OrderedDict[int, dict[str, T]] = OrderedDict()  # stamp_ns -> topic -> msg
        self._last_paired_ns: int | None = None
        self._lock = threading.Lock()

    def add(self, topic: str, stamp_ns: int, message: T) -> PairedSet[T] | None:
        """File ``message``; the whole set when it was the last one missing, else None."""
        if topic not in self.topics:
            raise ConfigError(f"topic {topic!r} is not one of the paired topics {list(self.topics)}")
        with self._lock:
            last = self._last_paired_ns
            if (last is not None and self.restart_after_ns is not None
                    and stamp_ns < last - self.restart_after_ns):
                self._pending.clear()
                self._last_paired_ns = None
                self.counts.restarts += 1
            elif last is not None and stamp_ns <= last:
                self.counts.stale += 1
                return None
            slot = self._pending.get(stamp_ns)
            if slot is None:
                slot = self._pending[stamp_ns] = {}
                self._pending = OrderedDict(sorted(self._pending.items()))  # stamps may interleave
                while len(self._pending) > self.max_pending:
                    self._pending.popitem(last=False)
                    self.counts.overflow += 1
                if stamp_ns not in self._pending:  # it was the oldest and pushed itself out
                    return None
            if topic in slot:
                self.counts.duplicate += 1
            slot[topic] = message
            if len(slot) < len(self.topics):
                return None
            for older in [s for s in self._pending if s < stamp_ns]:
                del self._pending[older]
                self.counts.incomplete += 1
            del self._pending[stamp_ns]
            self._last_paired_ns = stamp_ns
            self.counts.paired += 1
            return PairedSet(stamp_ns, {t: slot[t] for t in self.topics})

    @property
    def pending(self) -> int:
        """Sets waiting for a missing message (at most ``max_pending``)."""
        with self._lock:
            return len(self._pending)

    def reset(self) -> None:
        """Forget pending sets and the last stamp (time jumped back, e.g. a bag looped)."""
        with self._lock:
            self._pending.clear()
            self._last_paired_ns = None
