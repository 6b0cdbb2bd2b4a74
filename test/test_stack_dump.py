"""Stack dumps of a hanging child: what a timed-out test or a stuck node leaves to read."""
from __future__ import annotations

import subprocess
import sys
import time

import pytest

from depth_unet_ros.stack_dump import STACK_DUMP_SIGNAL, request_stack_dump
from depth_unet_ros.streaming_eval.node_process import NodeProcess
from ros_helpers import run_or_dump

pytestmark = pytest.mark.skipif(STACK_DUMP_SIGNAL is None, reason="no SIGUSR1 on this platform")

# A child that hangs in a function whose name the dump must show, ignoring SIGINT like a node
# stuck in DDS; it prints once it is ready, so the signal never arrives before the handler.
STUCK = """
import signal, sys, time
from depth_unet_ros.stack_dump import enable_stack_dump
enable_stack_dump()
signal.signal(signal.SIGINT, signal.SIG_IGN)
def stuck_in_here():
    print("ready", flush=True)
    time.sleep(60)
stuck_in_here()
"""


def _wait_for_line(path, text: str, timeout_s: float = 20.0) -> None:
    deadline = time.monotonic() + timeout_s
    while text not in path.read_text(errors="replace"):
        assert time.monotonic() < deadline, f"{text!r} never appeared in {path}"
        time.sleep(0.05)


def test_a_requested_dump_names_the_function_the_child_hangs_in():
    child = subprocess.Popen([sys.executable, "-c", STUCK], stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, text=True)
    try:
        assert child.stdout.readline().strip() == "ready"
        assert request_stack_dump(child, settle_s=0.5)
    finally:
        child.kill()
        _, err = child.communicate()
    assert "stuck_in_here" in err and "thread" in err, err
    assert not request_stack_dump(child)  # it has exited: nothing to ask


def test_run_or_dump_fails_a_hung_child_with_its_stacks():
    with pytest.raises(AssertionError, match="stuck_in_here") as failure:
        run_or_dump([sys.executable, "-c", STUCK], 3)
    assert "did not end within 3 s" in str(failure.value)
    assert run_or_dump([sys.executable, "-c", "print('done')"], 30).stdout == "done\n"


def test_a_node_that_ignores_sigint_leaves_its_stacks_in_its_log(tmp_path):
    log = tmp_path / "stuck.log"
    process = NodeProcess([sys.executable, "-c", STUCK], log)
    _wait_for_line(log, "ready")
    assert process.stop(timeout_s=1.0) is not None
    assert "stuck_in_here" in process.log()


def test_a_replaced_stderr_without_a_file_falls_back_to_the_process_stderr(monkeypatch):
    """In-process callers (pytest's capture, notebooks) may swap sys.stderr for an object with
    no file descriptor; enabling the dump then uses the original stderr instead of failing."""
    import io

    from depth_unet_ros.stack_dump import enable_stack_dump

    monkeypatch.setattr(sys, "stderr", io.StringIO())
    assert enable_stack_dump()
