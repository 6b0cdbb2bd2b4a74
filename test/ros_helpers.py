"""Helpers for the node's integration tests, and a small command line for their subprocesses.

* ``ros_args`` gives the node the arguments the launch file does (params file, model_path,
  remappings); ``NodeProcess`` (from depth_unet_ros.streaming_eval.node_process) runs it with its log in a file.
* ``Probe`` is the other end: a camera (reliable and best-effort image publishers, camera_info)
  and subscribers to the node's outputs and /diagnostics, spinning in a background thread.
* ``python test/ros_helpers.py slow-node --delay-ms D ROS_ARGS...`` runs the real node with the
  real model behind a deliberately slow estimator (inference + D ms, a sleep that uses no CPU):
  the test controls the slowness through the node's ``main(estimator_factory=...)`` hook, so the
  node itself carries no test-only parameter.
* ``python test/ros_helpers.py probe ...`` runs a probe in its own process (for transport
  settings that must differ from the test process's) and prints a JSON summary; with
  ``--count N --rate HZ`` it then streams N frames and reports how many were answered.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np

from depth_unet_ros.fastdds_transports import TRANSPORT_SETTINGS
from depth_unet_ros.stack_dump import enable_stack_dump, request_stack_dump
from depth_unet_ros.streaming_eval.node_process import NodeProcess, node_command, node_executable  # noqa: F401 (re-exported to the tests)

REPO = Path(__file__).resolve().parents[1]
CONFIG = REPO / "config" / "depth.yaml"
OUTPUT_TOPICS = ("depth/image", "depth/camera_info", "depth/features")


def ros_args(model_path: str | os.PathLike, image_topic: str = "/camera/image_raw",
             camera_info_topic: str = "/camera/camera_info", namespace: str = "",
             params: Sequence[str] = ()) -> list[str]:
    """``--ros-args`` exactly as launch/depth.launch.py passes them, plus extra ``-p`` values."""
    extra = dict(value.split(":=", 1) for value in params)
    command = node_command(model_path, CONFIG, image_topic, camera_info_topic, namespace, extra)
    return command[len(node_executable()):]


def unrestricted_env(**extra: str) -> dict[str, str]:
    """This session's environment on stock settings, for a subprocess: without a discovery
    range, with which rmw_fastrtps (Kilted) replaces the builtin transports with localhost UDP,
    so neither the default transports nor LARGE_DATA would be what is tested; the domain id
    still isolates us. ``extra`` adds settings (e.g. LARGE_DATA)."""
    env = {k: v for k, v in os.environ.items() if k not in TRANSPORT_SETTINGS}
    return {**env, **extra}


def stock_fastdds(monkeypatch: Any) -> None:
    """``unrestricted_env`` for this test's own process (bag-eval and the demo in-process then
    choose for themselves and the node they start); monkeypatch puts the session's settings
    back."""
    for key in TRANSPORT_SETTINGS:
        monkeypatch.delenv(key, raising=False)


# --- messages --------------------------------------------------------------------------------
def stamp_key(header: Any) -> tuple[int, int]:
    return int(header.stamp.sec), int(header.stamp.nanosec)


def make_header(stamp_ns: int, frame_id: str = "camera_optical") -> Any:
    from std_msgs.msg import Header

    header = Header(frame_id=frame_id)
    header.stamp.sec, header.stamp.nanosec = divmod(int(stamp_ns), 1_000_000_000)
    return header


def make_image(pixels: np.ndarray, encoding: str, stamp_ns: int, frame_id: str = "camera_optical",
               pad_bytes: int = 0) -> Any:
    """An Image of (H, W[, C]) ``pixels`` with ``pad_bytes`` of padding at the end of each row."""
    import array

    from sensor_msgs.msg import Image

    pixels = np.ascontiguousarray(pixels)
    height, width = pixels.shape[:2]
    row = pixels.reshape(height, -1).view(np.uint8)
    padded = np.zeros((height, row.shape[1] + pad_bytes), np.uint8)
    padded[:, :row.shape[1]] = row
    msg = Image(height=height, width=width, encoding=encoding, is_bigendian=0,
                step=int(padded.shape[1]))
    msg.header = make_header(stamp_ns, frame_id)
    msg.data = array.array("B", padded.tobytes())
    return msg


def make_camera_info(width: int, height: int, stamp_ns: int, fx: float = 200.0,
                     frame_id: str = "camera_optical") -> Any:
    from sensor_msgs.msg import CameraInfo

    cx, cy = (width - 1) / 2, (height - 1) / 2
    msg = CameraInfo(width=width, height=height, distortion_model="plumb_bob")
    msg.header = make_header(stamp_ns, frame_id)
    msg.d = [0.1, -0.2, 0.0, 0.0, 0.0]
    msg.k = [fx, 0.0, cx, 0.0, fx, cy, 0.0, 0.0, 1.0]
    msg.r = [1.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 1.0]
    msg.p = [fx, 0.0, cx, 0.0, 0.0, fx, cy, 0.0, 0.0, 0.0, 1.0, 0.0]
    return msg


def diagnostics_by_name(array_msg: Any) -> dict[str, dict[str, str]]:
    """DiagnosticArray -> status name -> key -> value, plus the status's own "level" (as a
    decimal string) and "message" under those keys."""
    def level(status: Any) -> str:
        return str(status.level if isinstance(status.level, int) else ord(status.level))
    return {status.name: {**{kv.key: kv.value for kv in status.values},
                          "level": level(status), "message": status.message}
            for status in array_msg.status}


# --- the other end of the node ---------------------------------------------------------------
class Probe:
    """Camera publishers and output subscribers in one rclpy node, spun in a thread.

    ``kinds`` chooses the image publishers (a camera is either reliable or best-effort; an
    ``auto`` node follows what it sees); ``outputs``: the output topics to subscribe (True: all,
    False: none, leaving the node without consumers).
    """

    def __init__(self, context: Any, name: str, image_topic: str = "/camera/image_raw",
                 camera_info_topic: str = "/camera/camera_info", namespace: str = "",
                 kinds: Sequence[str] = ("reliable", "best_effort"),
                 outputs: bool | Sequence[str] = True):
        import rclpy
        from diagnostic_msgs.msg import DiagnosticArray
        from rclpy.executors import SingleThreadedExecutor
        from rclpy.qos import QoSProfile, ReliabilityPolicy
        from sensor_msgs.msg import CameraInfo, Image

        self.node = rclpy.create_node(name, context=context)
        reliable = QoSProfile(depth=10, reliability=ReliabilityPolicy.RELIABLE)
        self.image_topic = image_topic
        self.image_pubs: dict[str, Any] = {}
        for kind in kinds:
            self.add_image_publisher(kind)
        self.info_pub = self.node.create_publisher(CameraInfo, camera_info_topic, reliable)
        prefix = f"/{namespace.strip('/')}/" if namespace else "/"
        self.depth_topic = prefix + "depth/image"
        self._cond = threading.Condition()
        self.received: dict[str, dict[tuple[int, int], tuple[Any, float]]] = {t: {} for t in OUTPUT_TOPICS}
        self.diagnostics: list[tuple[str, dict[str, str]]] = []  # (status name, values)
        types = {"depth/image": Image, "depth/camera_info": CameraInfo, "depth/features": Image}
        wanted = OUTPUT_TOPICS if outputs is True else (outputs or ())
        for topic in wanted:
            self.node.create_subscription(types[topic], prefix + topic, self._keep(topic), reliable)
        self.node.create_subscription(DiagnosticArray, "/diagnostics", self._on_diagnostics, reliable)
        self.executor = SingleThreadedExecutor(context=context)
        self.executor.add_node(self.node)
        self._thread = threading.Thread(target=self._spin, daemon=True)
        self._thread.start()

    def add_image_publisher(self, kind: str) -> Any:
        """A reliable or best_effort camera publisher on the image topic (a camera that starts now)."""
        from rclpy.qos import QoSProfile, ReliabilityPolicy
        from sensor_msgs.msg import Image

        policy = ReliabilityPolicy.RELIABLE if kind == "reliable" else ReliabilityPolicy.BEST_EFFORT
        self.image_pubs[kind] = self.node.create_publisher(
            Image, self.image_topic, QoSProfile(depth=10, reliability=policy))
        return self.image_pubs[kind]

    def _spin(self) -> None:
        try:
            self.executor.spin()
        except Exception:  # the context was shut down under us; the test is ending
            pass

    def _keep(self, topic: str) -> Callable[[Any], None]:
        def callback(msg: Any) -> None:
            with self._cond:
                self.received[topic][stamp_key(msg.header)] = (msg, time.time())
                self._cond.notify_all()
        return callback

    def _on_diagnostics(self, msg: Any) -> None:
        with self._cond:
            self.diagnostics.extend(diagnostics_by_name(msg).items())
            self._cond.notify_all()

    def wait_until(self, predicate: Callable[[], bool], timeout_s: float) -> bool:
        with self._cond:
            return self._cond.wait_for(predicate, timeout=timeout_s)

    def wait_for_node(self, timeout_s: float = 10.0) -> bool:
        """True once the node's image subscription (matched to one of our cameras, if any) and
        its depth publisher are in the graph."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            subscribed = (any(pub.get_subscription_count() > 0 for pub in self.image_pubs.values())
                          if self.image_pubs else self.node.count_subscribers(self.image_topic) > 0)
            if subscribed and self.node.count_publishers(self.depth_topic) > 0:
                return True
            time.sleep(0.05)
        return False

    def wait_for_settled_input(self, reliability: str, timeout_s: float = 15.0) -> bool:
        """True once every subscription on the image topic is ``reliability`` ("reliable" or
        "best_effort"): a node with qos_reliability auto has switched and dropped its old
        subscription, so what follows measures the steady state, not the switch."""
        from depth_unet_ros.following_subscription import reliability_name

        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            infos = self.node.get_subscriptions_info_by_topic(self.image_topic)
            if infos and all(reliability_name(info.qos_profile.reliability) == reliability
                             for info in infos):
                return True
            time.sleep(0.05)
        return False

    def latest_diagnostics(self, name_prefix: str) -> dict[str, str] | None:
        """The newest /diagnostics values of the status whose name starts with ``name_prefix``."""
        with self._cond:
            for name, values in reversed(self.diagnostics):
                if name.startswith(name_prefix):
                    return values
        return None

    def outputs(self, key: tuple[int, int], topics: Sequence[str] = OUTPUT_TOPICS) -> dict[str, Any] | None:
        with self._cond:
            if all(key in self.received[t] for t in topics):
                return {t: self.received[t][key][0] for t in topics}
        return None

    def send_until_output(self, make_msg: Callable[[int], Any], kind: str = "reliable",
                          topics: Sequence[str] = OUTPUT_TOPICS, timeout_s: float = 15.0,
                          period_s: float = 0.2, camera_info: Any = None) -> tuple[Any, dict[str, Any]]:
        """Publish fresh frames (``make_msg(stamp_ns)``) until one comes back on all ``topics``.

        Resending covers discovery races and a best-effort link that loses the first samples.
        """
        deadline = time.monotonic() + timeout_s
        sent: list[Any] = []
        while time.monotonic() < deadline:
            if camera_info is not None:
                self.info_pub.publish(camera_info)
            msg = make_msg(time.time_ns())
            sent.append(msg)
            self.image_pubs[kind].publish(msg)
            end = time.monotonic() + period_s
            while time.monotonic() < end:
                for old in sent:
                    found = self.outputs(stamp_key(old.header), topics)
                    if found is not None:
                        return old, found
                self.wait_until(lambda: False, 0.02)
        raise TimeoutError(f"no output on {list(topics)} within {timeout_s} s for {len(sent)} "
                           f"{kind} frames")

    def stream(self, make_msg: Callable[[int], Any], kind: str, count: int, rate_hz: float,
               settle_s: float = 1.0) -> int:
        """Publish ``count`` frames at ``rate_hz``; how many came back on depth/image
        (``last_whole``: how many on all three outputs, where all are subscribed)."""
        stamps = []
        start = time.monotonic()
        for i in range(count):
            msg = make_msg(time.time_ns())
            self.image_pubs[kind].publish(msg)
            stamps.append(stamp_key(msg.header))
            time.sleep(max(0.0, start + (i + 1) / rate_hz - time.monotonic()))
        whole = lambda k: all(k in self.received[t] for t in OUTPUT_TOPICS)  # noqa: E731
        self.wait_until(lambda: all(whole(k) for k in stamps), settle_s)
        with self._cond:
            self.last_whole = sum(whole(k) for k in stamps)  # depth, camera_info and features
            return sum(k in self.received["depth/image"] for k in stamps)

    def close(self) -> None:
        self.executor.shutdown(timeout_sec=2.0)
        self._thread.join(timeout=2.0)
        self.node.destroy_node()


# --- subprocess entry points -------------------------------------------------------------------
class _SlowEstimator:
    """The real estimator, plus a fixed sleep per prediction (a model slower than the camera)."""

    def __init__(self, estimator: Any, delay_s: float):
        self._estimator, self._delay_s = estimator, delay_s
        self.backend, self.metadata = estimator.backend, estimator.metadata

    def predict(self, image_rgb: np.ndarray, output_size: str = "network") -> Any:
        time.sleep(self._delay_s)
        return self._estimator.predict(image_rgb, output_size=output_size)


def _slow_node(argv: Sequence[str]) -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--delay-ms", type=float, required=True)
    args, ros_argv = parser.parse_known_args(argv)
    from depth_unet_ros import node
    from depth_unet_ros.inference import load_estimator

    def factory(path: str, backend: str, threads: int) -> Any:
        return _SlowEstimator(load_estimator(path, backend, threads), args.delay_ms / 1e3)

    return node.main(["slow_node", *ros_argv], estimator_factory=factory)


def _probe(argv: Sequence[str]) -> int:
    """Send one frame of the given size (best-effort or reliable) and report what came back."""
    parser = argparse.ArgumentParser()
    parser.add_argument("--height", type=int, default=480)
    parser.add_argument("--width", type=int, default=640)
    parser.add_argument("--kind", choices=("reliable", "best_effort"), default="best_effort")
    parser.add_argument("--image-topic", default="/camera/image_raw")
    parser.add_argument("--camera-info-topic", default="/camera/camera_info")
    parser.add_argument("--namespace", default="")
    parser.add_argument("--timeout", type=float, default=20.0)
    parser.add_argument("--count", type=int, default=0, help="then stream this many frames")
    parser.add_argument("--rate", type=float, default=10.0, help="streaming rate in Hz")
    args = parser.parse_args(argv)
    import rclpy
    from rclpy.context import Context

    context = Context()
    rclpy.init(context=context)
    probe = Probe(context, f"probe_{os.getpid()}", args.image_topic, args.camera_info_topic,
                  args.namespace, kinds=(args.kind,))
    rng = np.random.default_rng(0)
    pixels = rng.integers(0, 256, (args.height, args.width, 3), dtype=np.uint8)
    info = make_camera_info(args.width, args.height, time.time_ns())
    try:
        probe.wait_for_node(args.timeout)
        sent, out = probe.send_until_output(lambda ns: make_image(pixels, "rgb8", ns), args.kind,
                                            timeout_s=args.timeout, camera_info=info)
        depth, cam, feats = (out[t] for t in OUTPUT_TOPICS)
        report = {
            "depth_shape": [depth.height, depth.width], "depth_encoding": depth.encoding,
            "features_shape": [feats.height, feats.width], "features_encoding": feats.encoding,
            "headers_equal": all(stamp_key(m.header) == stamp_key(sent.header)
                                 and m.header.frame_id == sent.header.frame_id for m in out.values()),
            "camera_info_size": [cam.height, cam.width], "k": list(cam.k), "p": list(cam.p),
            "latency_ms": (probe.received["depth/image"][stamp_key(sent.header)][1] * 1e9
                           - (sent.header.stamp.sec * 1e9 + sent.header.stamp.nanosec)) / 1e6,
        }
        if args.count:
            # The steady state: the node's auto QoS has followed this camera (under load the
            # switch can come after the first answer, and frames before it are lost by design).
            report["settled"] = probe.wait_for_settled_input(args.kind, args.timeout)
            report["streamed"] = args.count
            report["answered"] = probe.stream(lambda ns: make_image(pixels, "rgb8", ns), args.kind,
                                              args.count, args.rate)
            report["whole"] = probe.last_whole
            node_name = (f"/{args.namespace.strip('/')}" if args.namespace else "") + "/depth_node"
            report["node_diagnostics"] = probe.latest_diagnostics(node_name)
        print(json.dumps(report))
        return 0
    except TimeoutError as exc:
        print(json.dumps({"error": str(exc)}))
        return 1
    finally:
        probe.close()
        rclpy.shutdown(context=context)


def run_or_dump(command: Sequence[str], timeout_s: float, **kwargs: Any) -> subprocess.CompletedProcess:
    """subprocess.run with text output captured; on a timeout the child is asked for its stacks
    (depth_unet_ros.stack_dump), killed, and the test fails with everything it wrote, so a hang
    in DDS says where it hung instead of only that it did."""
    process = subprocess.Popen(list(command), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                               text=True, **kwargs)
    try:
        out, err = process.communicate(timeout=timeout_s)
    except subprocess.TimeoutExpired:
        request_stack_dump(process)
        process.kill()
        out, err = process.communicate()
        raise AssertionError(f"{' '.join(map(str, command))} did not end within {timeout_s:g} s; "
                             f"its output and stacks:\n{out}\n{err}") from None
    return subprocess.CompletedProcess(process.args, process.returncode, out, err)


if __name__ == "__main__":
    enable_stack_dump()
    commands = {"slow-node": _slow_node, "probe": _probe}
    if len(sys.argv) < 2 or sys.argv[1] not in commands:
        sys.exit(f"usage: {sys.argv[0]} {{{','.join(commands)}}} ...")
    sys.exit(commands[sys.argv[1]](sys.argv[2:]))
