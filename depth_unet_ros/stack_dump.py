"""Every thread's Python stack on SIGUSR1, so that a process that hangs can say where.

Our processes talk DDS through C libraries that have been seen to hang on exit or in discovery
under load; a test that times out, or a user, sends SIGUSR1 (``kill -USR1 PID``) and the stacks
go to the process's stderr (the node's log) before it is killed. Only Python frames are shown;
the frame that called into rclpy tells which step hung.
"""
from __future__ import annotations

import faulthandler
import signal
import subprocess
import sys
import time

STACK_DUMP_SIGNAL = getattr(signal, "SIGUSR1", None)  # None on Windows


def enable_stack_dump() -> bool:
    """Dump all threads' stacks to stderr on STACK_DUMP_SIGNAL; False where there is no such
    signal or no stderr file to write to.

    faulthandler writes to a file descriptor; when an in-process caller (a test's output
    capture, a notebook) has replaced ``sys.stderr`` by an object without one, the process's
    original stderr is used instead.
    """
    if STACK_DUMP_SIGNAL is None:
        return False
    for stream in (sys.stderr, sys.__stderr__):
        try:
            faulthandler.register(STACK_DUMP_SIGNAL, file=stream, all_threads=True)
            return True
        except (AttributeError, OSError, ValueError):  # no fileno (io.UnsupportedOperation)
            continue
    return False


def request_stack_dump(process: subprocess.Popen, settle_s: float = 1.0) -> bool:
    """Ask a running child for its stacks and give it ``settle_s`` to write them; False if it
    has exited or the platform has no such signal."""
    if STACK_DUMP_SIGNAL is None or process.poll() is not None:
        return False
    process.send_signal(STACK_DUMP_SIGNAL)
    time.sleep(settle_s)
    return True
