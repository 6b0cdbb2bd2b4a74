"""How our nodes end: Ctrl-C and ``ros2 launch``'s SIGINT give a clean exit, not a traceback.

Imported by the node executables only (it imports rclpy).
"""
from __future__ import annotations

import contextlib
import signal
import threading
from typing import Any, Callable, Iterator

import rclpy
from rclpy.exceptions import ParameterException

from depth_unet_ros.errors import DepthUnetError

try:  # rclpy >= Humble raises this from spin() when the context is shut down by a signal
    from rclpy.executors import ExternalShutdownException
except ImportError:  # pragma: no cover - older rclpy
    class ExternalShutdownException(Exception):  # type: ignore[no-redef]
        pass

__all__ = ["ExternalShutdownException", "SPIN_WAKE_S", "sigint_ignored", "shutdown", "spin",
           "spin_until_shutdown"]

# The longest our executor waits without looking at a pending Ctrl-C. rclpy's signal handler
# wakes rcl_wait through a guard condition; a wake-up that gets lost (once in about 40 loops
# under load, a finalized lifecycle node, with no timer left to wake it, sat in rcl_wait 10 s
# after SIGINT until killed) would otherwise keep the node from ever seeing the signal.
SPIN_WAKE_S = 0.5


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


def spin(node: Any, executor: Any = None) -> None:
    """``rclpy.spin(node)`` (default: on the global executor), but never blocked longer than
    SPIN_WAKE_S: a Ctrl-C that rclpy's handler did not wake the wait for still raises
    KeyboardInterrupt (Python's handler runs between waits), and a context shut down from
    outside ends the loop, also when that happens between our look at the context and the
    wait set rclpy then builds (rclpy raises its RCLError, a RuntimeError, there)."""
    executor = executor or rclpy.get_global_executor()
    executor.add_node(node)
    try:
        while executor.context.ok():
            try:
                executor.spin_once(timeout_sec=SPIN_WAKE_S)
            except RuntimeError:
                if executor.context.ok():
                    raise
    finally:
        executor.remove_node(node)


def spin_until_shutdown(make_node: Callable[[], Any], logger_name: str) -> int:
    """``make_node()`` spun until Ctrl-C or shutdown, then ``close()``d and destroyed: 0, or 1
    when the node cannot start (its DepthUnetError or parameter error logged). rclpy must be
    initialised; the default context is shut down here."""
    node = None
    try:
        node = make_node()
        spin(node)
    except (KeyboardInterrupt, ExternalShutdownException):
        pass
    except (DepthUnetError, ParameterException) as exc:
        rclpy.logging.get_logger(logger_name).error(f"cannot start: {exc}")
        return 1
    finally:
        with sigint_ignored():  # a second Ctrl-C (ros2 launch sends one more) waits for cleanup
            if node is not None:
                node.close()
                node.destroy_node()
            shutdown()
    return 0
