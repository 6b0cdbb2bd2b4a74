"""depth_lifecycle_node on a real DDS graph, driven through its lifecycle services exactly as
``ros2 lifecycle set`` drives it: the node runs as its own process (the launch file's
arguments), this process is the camera, the consumer and the lifecycle client.

Isolation (domain id, localhost discovery) comes from conftest.py.
"""
from __future__ import annotations

import shutil
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest

from depth_unet_ros.image_conversion import image_msg_to_array
from depth_unet_ros.inference import load_estimator
from depth_unet_ros.node_core import finalize_depth

rclpy = pytest.importorskip("rclpy", reason="rclpy not installed (pip install .[ros])")
pytest.importorskip("lifecycle_msgs", reason="lifecycle_msgs not installed (pip install .[ros])")
from lifecycle_msgs.msg import Transition  # noqa: E402
from lifecycle_msgs.srv import ChangeState, GetState  # noqa: E402

from ros_helpers import NodeProcess, Probe, make_camera_info, make_image, ros_args  # noqa: E402

pytestmark = pytest.mark.ros
H, W = 120, 160
QUIET_S = 1.0  # how long frames are sent to a node that must not answer them
SERVICE_TIMEOUT_S = 30.0
REPLY_RETRY_S = 5.0  # a request whose reply was dropped is sent again after this long
PRIMARY_STATES = ("unconfigured", "inactive", "active", "finalized")


def lifecycle_executable() -> list[str]:
    """The installed depth_lifecycle_node console script beside this Python, else python -m."""
    exe = shutil.which("depth_lifecycle_node", path=str(Path(sys.executable).parent))
    return [exe] if exe else [sys.executable, "-m", "depth_unet_ros.lifecycle_node"]


class LifecycleClient:
    """get_state / change_state of one managed node, called from the probe's spinning node."""

    def __init__(self, probe: Probe, node_name: str):
        self._get = probe.node.create_client(GetState, f"{node_name}/get_state")
        self._change = probe.node.create_client(ChangeState, f"{node_name}/change_state")

    def wait_for_services(self, timeout_s: float = SERVICE_TIMEOUT_S) -> bool:
        deadline = time.monotonic() + timeout_s
        return all(client.wait_for_service(timeout_sec=max(0.1, deadline - time.monotonic()))
                   for client in (self._get, self._change))

    @staticmethod
    def _call(client, request, timeout_s: float = SERVICE_TIMEOUT_S):
        done = threading.Event()
        future = client.call_async(request)
        future.add_done_callback(lambda _: done.set())
        if not done.wait(timeout_s):
            raise TimeoutError(f"{client.srv_name}: no answer within {timeout_s} s")
        return future.result()

    def _retried(self, client, request, timeout_s: float = SERVICE_TIMEOUT_S):
        """``_call`` sent again every REPLY_RETRY_S: rmw_fastrtps drops a reply while the
        server has not yet matched this client's reply reader ("failed to send response
        (timeout)"), which wait_for_service cannot see (once in 42 loops under load)."""
        deadline = time.monotonic() + timeout_s
        while True:
            try:
                return self._call(client, request, min(REPLY_RETRY_S, max(0.1, deadline - time.monotonic())))
            except TimeoutError:
                if time.monotonic() >= deadline:
                    raise

    def state(self) -> str:
        return self._retried(self._get, GetState.Request()).current_state.label

    def change(self, transition_id: int) -> bool:
        """The transition's success. A reply lost as above is not taken for a failure: the
        state says whether the first request was carried out before it is sent again."""
        request = ChangeState.Request()
        request.transition.id = transition_id
        before = self.state()
        deadline = time.monotonic() + SERVICE_TIMEOUT_S
        while True:
            try:
                return self._call(self._change, request, REPLY_RETRY_S).success
            except TimeoutError:
                if self._settled_state(deadline) != before:
                    return True
                if time.monotonic() >= deadline:
                    raise

    def _settled_state(self, deadline: float) -> str:
        """The node's state once no transition is under way (configuring, ... end in a primary
        state), so a slow transition is not mistaken for a carried-out one."""
        while (label := self.state()) not in PRIMARY_STATES and time.monotonic() < deadline:
            time.sleep(0.1)
        return label


@pytest.fixture(scope="module")
def offline(tiny_onnx_model):
    estimator = load_estimator(str(tiny_onnx_model), "onnxruntime")
    meta = estimator.metadata

    def depth(rgb: np.ndarray) -> np.ndarray:
        prediction = estimator.predict(rgb, output_size="input")
        return finalize_depth(prediction.depth_m, 1.0, meta.min_depth_m, meta.max_depth_m)
    return depth


def _start(model, tmp_path: Path, name: str, params=()) -> NodeProcess:
    command = lifecycle_executable() + ros_args(model, f"/{name}cam/image_raw",
                                                f"/{name}cam/camera_info", namespace=name,
                                                params=params)
    return NodeProcess(command, tmp_path / f"{name}_node.log")


def _answers(probe: Probe) -> int:
    with probe._cond:
        return sum(len(received) for received in probe.received.values())


def _send_quietly(probe: Probe, rgb: np.ndarray) -> int:
    """Send frames (and camera_info) for QUIET_S; how many outputs of any kind came back."""
    before = _answers(probe)
    deadline = time.monotonic() + QUIET_S
    while time.monotonic() < deadline:
        probe.info_pub.publish(make_camera_info(W, H, 0, fx=150.0))
        probe.image_pubs["reliable"].publish(make_image(rgb, "rgb8", time.time_ns()))
        time.sleep(0.05)
    time.sleep(0.3)  # anything in flight arrives
    return _answers(probe) - before


def _wait(predicate, timeout_s: float) -> bool:
    deadline = time.monotonic() + timeout_s
    while not predicate():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)
    return True


def test_outputs_only_while_active_and_cleanup_then_configure_again_serves_again(
        context, tiny_onnx_model, offline, tmp_path):
    """Unconfigured and inactive: no output topics and no answer to frames. configure +
    activate: depth equal to offline inference, with the input's header. deactivate: the
    outputs go and frames are not answered. cleanup releases the model (unconfigured), and a
    second configure + activate serves again; shutdown finalizes and the process exits 0."""
    proc = _start(tiny_onnx_model, tmp_path, "lc")
    probe = Probe(context, "probe_lc", "/lccam/image_raw", "/lccam/camera_info", "lc",
                  kinds=("reliable",))
    rgb = np.random.default_rng(11).integers(0, 256, (H, W, 3), dtype=np.uint8)
    depth_topic = "/lc/depth/image"
    try:
        lifecycle = LifecycleClient(probe, "/lc/depth_node")
        assert lifecycle.wait_for_services(), proc.log()
        assert lifecycle.state() == "unconfigured"
        assert probe.node.count_publishers(depth_topic) == 0
        assert _send_quietly(probe, rgb) == 0, "answered while unconfigured"

        assert lifecycle.change(Transition.TRANSITION_CONFIGURE), proc.log()
        assert lifecycle.state() == "inactive"
        assert probe.node.count_publishers(depth_topic) == 0
        assert _send_quietly(probe, rgb) == 0, "answered while inactive"

        for round_ in range(2):
            assert lifecycle.change(Transition.TRANSITION_ACTIVATE), proc.log()
            assert lifecycle.state() == "active"
            assert probe.wait_for_node(10.0), proc.log()
            sent, out = probe.send_until_output(lambda ns: make_image(rgb, "rgb8", ns),
                                                camera_info=make_camera_info(W, H, 0, fx=150.0))
            depth = out["depth/image"]
            assert (depth.header.stamp.sec, depth.header.stamp.nanosec) == (
                sent.header.stamp.sec, sent.header.stamp.nanosec)
            np.testing.assert_allclose(image_msg_to_array(depth), offline(rgb), atol=1e-4,
                                       equal_nan=True)

            assert lifecycle.change(Transition.TRANSITION_DEACTIVATE), proc.log()
            assert lifecycle.state() == "inactive"
            assert _wait(lambda: probe.node.count_publishers(depth_topic) == 0, 5.0)
            assert _send_quietly(probe, rgb) == 0, f"answered after deactivate (round {round_})"

            assert lifecycle.change(Transition.TRANSITION_CLEANUP), proc.log()
            assert lifecycle.state() == "unconfigured"
            assert _wait(lambda: proc.log().count("cleanup: done") == round_ + 1, 5.0), proc.log()
            if round_ == 0:
                assert lifecycle.change(Transition.TRANSITION_CONFIGURE), proc.log()

        assert lifecycle.change(Transition.TRANSITION_UNCONFIGURED_SHUTDOWN), proc.log()
        assert lifecycle.state() == "finalized"
        assert proc.alive()
    finally:
        probe.close()
        returncode = proc.stop()
    log = proc.log()
    assert returncode == 0, log
    assert log.count("configured: ") == 2, log
    assert "Traceback" not in log and "failed" not in log, log


def test_configure_without_the_model_fails_says_what_to_do_and_stays_unconfigured(
        context, tmp_path):
    """A missing model file: ChangeState answers success=False, the node stays unconfigured
    and alive (configure can be asked again), and its log names model_path and the export."""
    proc = _start(tmp_path / "missing.onnx", tmp_path, "lcmiss")
    probe = Probe(context, "probe_lcmiss", "/lcmisscam/image_raw", "/lcmisscam/camera_info",
                  "lcmiss", kinds=(), outputs=False)
    try:
        lifecycle = LifecycleClient(probe, "/lcmiss/depth_node")
        assert lifecycle.wait_for_services(), proc.log()
        for _ in range(2):
            assert not lifecycle.change(Transition.TRANSITION_CONFIGURE)
            assert lifecycle.state() == "unconfigured"
        assert not lifecycle.change(Transition.TRANSITION_ACTIVATE)  # not from unconfigured
        assert proc.alive(), proc.log()
        assert _wait(lambda: proc.log().count("cannot configure") == 2, 5.0), proc.log()
    finally:
        probe.close()
        returncode = proc.stop()
    log = proc.log()
    assert returncode == 0, log
    assert "missing.onnx" in log and "model_path" in log and "depth-unet export" in log, log
    assert "restart it with the fix" in log, log
    assert "Traceback" not in log, log


def test_a_parameter_out_of_range_fails_configure_with_the_nodes_message(
        context, tiny_onnx_model, tmp_path):
    """qos_depth:=0 is refused at configure with the plain node's own words, not a crash."""
    proc = _start(tiny_onnx_model, tmp_path, "lcbad", params=["qos_depth:=0"])
    probe = Probe(context, "probe_lcbad", "/lcbadcam/image_raw", "/lcbadcam/camera_info",
                  "lcbad", kinds=(), outputs=False)
    try:
        lifecycle = LifecycleClient(probe, "/lcbad/depth_node")
        assert lifecycle.wait_for_services(), proc.log()
        assert not lifecycle.change(Transition.TRANSITION_CONFIGURE)
        assert lifecycle.state() == "unconfigured"
        assert _wait(lambda: "qos_depth must be >= 1, got 0" in proc.log(), 5.0), proc.log()
    finally:
        probe.close()
        proc.stop()
    assert "Traceback" not in proc.log()
