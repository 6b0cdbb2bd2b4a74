"""Stamps in integer nanoseconds: frame ``index`` of a sequence at ``rate_hz`` from a fixed
epoch, and a message header's stamp.

Bags, folder sequences and synthetic poses share this clock, so a frame written to a bag and the
same frame's ``pose.json`` carry the same stamp and pair exactly; readers, the streaming
evaluation and vo_node turn decoded headers back into the same integers with ``stamp_ns_of``
(``bags.reader.header_stamp_ns`` reads it from serialized bytes instead).
"""
from __future__ import annotations

from typing import Any

START_NS = 1_700_000_000 * 10**9  # a fixed epoch, so the same input gives the same bag


def stamp_ns(index: int, rate_hz: float, start_ns: int = START_NS) -> int:
    """The stamp of frame ``index`` at ``rate_hz`` frames per second, in nanoseconds."""
    return int(start_ns + round(index * 1e9 / rate_hz))


def stamp_ns_of(header: Any) -> int:
    """A std_msgs/Header's stamp (any object with ``stamp.sec``, ``stamp.nanosec``) in ns."""
    return int(header.stamp.sec) * 1_000_000_000 + int(header.stamp.nanosec)
