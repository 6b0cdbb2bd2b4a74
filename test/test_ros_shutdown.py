"""ros_shutdown.spin ends quietly however the context ends.

Under load, once in about 40 loops, a finalized lifecycle node (no timer left to wake it) sat in
rcl_wait after SIGINT until it was killed. Here the context is shut down at the rcl level only,
which wakes no executor, as a lost wake-up would leave it: ``rclpy.spin`` blocks for good (checked
by hand: until killed), ``spin`` returns within SPIN_WAKE_S. And once in 20 loops a lifecycle
node's context ended between spin's look at it and the wait set rclpy builds: rclpy's RCLError
made the Ctrl-C end in a traceback and exit code 1."""
from __future__ import annotations

import subprocess
import sys

import pytest

pytest.importorskip("rclpy", reason="rclpy not installed (pip install .[ros])")

from depth_unet_ros.ros_shutdown import SPIN_WAKE_S  # noqa: E402

SCRIPT = """
import threading, time, rclpy
from rclpy.node import Node
from depth_unet_ros.ros_shutdown import ExternalShutdownException, spin
rclpy.init()
node = Node("quiet_node")
threading.Timer(0.3, rclpy.get_default_context().handle.shutdown).start()
start = time.monotonic()
try:
    spin(node)
except ExternalShutdownException:
    pass
print(time.monotonic() - start - 0.3, flush=True)
"""


@pytest.mark.ros
def test_spin_returns_soon_after_a_shutdown_that_woke_no_executor():
    result = subprocess.run([sys.executable, "-c", SCRIPT], capture_output=True, text=True,
                            timeout=30)
    assert result.returncode == 0, result.stdout + result.stderr
    late_s = float(result.stdout.strip().splitlines()[-1])
    assert late_s < SPIN_WAKE_S + 1.0, (late_s, result.stderr)


RACE_SCRIPT = """
import rclpy
from rclpy.executors import SingleThreadedExecutor
from depth_unet_ros.ros_shutdown import spin

class ShutDownJustBeforeTheWait(SingleThreadedExecutor):
    def spin_once(self, timeout_sec=None):
        self.context.handle.shutdown()  # at the rcl level, as in the race: rclpy raises RCLError
        super().spin_once(timeout_sec)

rclpy.init()
spin(rclpy.create_node("racing_node"), ShutDownJustBeforeTheWait())
print("returned", flush=True)
"""


@pytest.mark.ros
def test_spin_returns_quietly_when_the_context_ends_just_before_the_wait():
    result = subprocess.run([sys.executable, "-c", RACE_SCRIPT], capture_output=True, text=True,
                            timeout=30)
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.strip() == "returned" and "Traceback" not in result.stderr, result.stderr
