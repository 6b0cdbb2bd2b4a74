"""parent_watch arms only for a node that one of our tools started (the live case is in
test_node_integration: SIGKILL the tool, the node exits)."""
from __future__ import annotations

import subprocess
import sys

import pytest

from depth_unet_ros.parent_watch import PARENT_ENV, stop_with_parent


@pytest.mark.parametrize("environ", [{}, {PARENT_ENV: ""}, {PARENT_ENV: "not-a-pid"}])
def test_a_node_started_by_hand_or_by_launch_is_left_alone(environ):
    assert stop_with_parent(environ) is False


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="PR_SET_PDEATHSIG is Linux's")
def test_arms_in_a_child_whose_parent_is_the_named_tool():
    code = ("import os\n"
            "from depth_unet_ros.parent_watch import PARENT_ENV, stop_with_parent\n"
            "print(stop_with_parent({PARENT_ENV: str(os.getppid())}))\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "True", out.stderr
