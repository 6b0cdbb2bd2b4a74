"""A depth_node started by one of our tools stops when that tool dies, however it dies.

``bag-eval`` and ``demo`` run the node as a child process (``node_process.NodeProcess``) and stop
it on every exit they see. A tool killed outright (SIGKILL, the OOM killer, a CI timeout) sees
none, and its orphaned node would go on answering the frames of the next evaluation on the same
ROS domain, with the wrong model. On Linux the node asks the kernel for SIGINT when its parent
dies (``PR_SET_PDEATHSIG``), which rclpy turns into a clean shutdown. (Linux sends it when the
*thread* that started the node ends, so NodeProcess is made on a tool's main thread.)
"""
from __future__ import annotations

import ctypes
import os
import signal
import sys
from typing import Mapping

PARENT_ENV = "DEPTH_UNET_PARENT_PID"  # set by NodeProcess for the child it starts
PR_SET_PDEATHSIG = 1  # <linux/prctl.h>


def stop_with_parent(environ: Mapping[str, str] = os.environ) -> bool:
    """Arm SIGINT-on-parent-death when ``DEPTH_UNET_PARENT_PID`` names our parent; True when armed.

    Does nothing off Linux or without the variable (a node started by ros2 launch or by hand).
    A parent that died before we armed is caught by comparing it with ``os.getppid()``.
    """
    parent = environ.get(PARENT_ENV, "")
    if not parent.isdigit() or not sys.platform.startswith("linux"):
        return False
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(PR_SET_PDEATHSIG, int(signal.SIGINT), 0, 0, 0) != 0:
        return False
    if os.getppid() != int(parent):
        os.kill(os.getpid(), signal.SIGINT)
    return True
