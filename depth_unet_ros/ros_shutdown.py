"""How our nodes end: Ctrl-C and ``ros2 launch``'s SIGINT give a clean exit, not a traceback.

Imported by the node executables only (it imports rclpy).
"""
from __future__ import annotations

import contextlib
import signal
import threading
from typing import Iterator

import rclpy

try:  # rclpy >= Humble raises this from spin() when the context is shut down by a signal
    from rclpy.executors import ExternalShutdownException
except ImportError:  # pragma: no cover - older rclpy
    class ExternalShutdownException(Exception):  # type: ignore[no-redef]
        pass

__all__ = ["ExternalShutdownException", "sigint_ignored", "shutdown"]


@contextlib.contextmanager
def sigint_ignored() -> Iterator[None]:
    """SIGINT ignored inside, the previous handler restored after (main thread only): a
    terminal's Ctrl-C reaches a launched node twice (the group's signal, then launch's), and
    the second must not cut its cleanup short."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)


def shutdown() -> None:
    """Shut the default context down unless a signal already did."""
    try_shutdown = getattr(rclpy, "try_shutdown", None)  # Galactic and newer
    if try_shutdown is not None:
        try_shutdown()
    elif rclpy.ok():
        rclpy.shutdown()
