"""Input subscriptions that take serialized bytes and deserialize them here, checked.

A typed rclpy subscription deserializes inside Fast DDS's take, under the reader's lock. A
payload that fails there is dropped without a word to the node, and with the Fast DDS 3.2 of
the Kilted wheels the C++ exception it throws once left a vo_node hung for good: its main thread
spun in the unwinder below ``Cdr::read_encapsulation`` of an empty payload while Fast DDS's
receive and event threads waited on that reader's lock (the same picture as
eProsima/Fast-DDS#6500). Taken raw, an empty payload never reaches Fast CDR, any other bad one
fails in ``rmw_deserialize`` with no DDS lock held, and the node counts and warns about it like
any malformed input. The cost is one copy of the payload (0.3 ms to deserialize a 640x480 image
either way).
"""
from __future__ import annotations

from typing import Any, Callable

from rclpy.node import Node
from rclpy.qos import QoSProfile
from rclpy.serialization import deserialize_message

from depth_unet_ros.errors import MalformedMessageError

CDR_HEADER_BYTES = 4  # the encapsulation header every serialized ROS 2 message starts with


def deserialize_checked(data: bytes, msg_type: Any) -> Any:
    """``data`` as a ``msg_type`` message; MalformedMessageError when it is not one."""
    if len(data) < CDR_HEADER_BYTES:
        raise MalformedMessageError(
            f"a {len(data)}-byte payload has no CDR header, so it is no {msg_type.__name__}")
    try:
        return deserialize_message(data, msg_type)
    except Exception as exc:  # rclpy raises its RMWError, which it does not export
        raise MalformedMessageError(
            f"{len(data)} bytes do not deserialize as {msg_type.__name__} "
            f"({type(exc).__name__})") from exc


def checked_callback(msg_type: Any, callback: Callable[[Any], None],
                     on_malformed: Callable[[MalformedMessageError], None]
                     ) -> Callable[[bytes], None]:
    """A raw subscription's callback: ``callback(message)``, or ``on_malformed(error)``."""
    def deliver(data: bytes) -> None:
        try:
            msg = deserialize_checked(data, msg_type)
        except MalformedMessageError as exc:
            on_malformed(exc)
            return
        callback(msg)
    return deliver


def create_checked_subscription(node: Node, msg_type: Any, topic: str,
                                callback: Callable[[Any], None], qos: QoSProfile,
                                on_malformed: Callable[[MalformedMessageError], None]) -> Any:
    """``node.create_subscription`` of ``msg_type`` taken raw and deserialized by
    ``checked_callback``."""
    return node.create_subscription(msg_type, topic,
                                    checked_callback(msg_type, callback, on_malformed), qos,
                                    raw=True)
