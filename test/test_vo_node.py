"""vo_node on a real DDS graph: depth_node (bundled model) and vo_node as their own processes,
started as the launch file starts them, the sample hand-held bag replayed by this process, and
the odometry compared with the bag's ground-truth /camera/pose; and a vo_node fed by hand that
drops a malformed features message with a warning and keeps tracking, and that tracks on
features alone while its camera image topic is silent, says so, and uses the image once it comes.

Isolation (domain id, localhost discovery) comes from conftest.py.
"""
from __future__ import annotations

import shutil
import sys
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from depth_unet_ros.bags.clock import stamp_ns_of
from depth_unet_ros.bags import reader as bag_reader
from depth_unet_ros.odometry import se3
from depth_unet_ros.odometry.odom_frames import ODOM_FROM_FIRST_OPTICAL
from depth_unet_ros.odometry.vo_stats import IMAGE_MISSING_WARN_S
from depth_unet_ros.rotations import quaternion_xyzw_to_rotation

rclpy = pytest.importorskip("rclpy", reason="rclpy not installed (pip install .[ros])")
pytest.importorskip("nav_msgs", reason="nav_msgs not installed (pip install .[ros])")

from ros_helpers import (NodeProcess, diagnostics_by_name, make_camera_info, make_image,  # noqa: E402
                         node_executable, ros_args, unrestricted_env)

pytestmark = pytest.mark.ros
REPO = Path(__file__).resolve().parents[1]
VO_CONFIG = REPO / "config" / "vo.yaml"
SAMPLE_BAG = REPO / "depth_unet_ros" / "data" / "sample_handheld"
CAMERA_TOPICS = ["/camera/image_raw", "/camera/camera_info"]
# The bag is 44 frames at 30 Hz. Depth (~130 ms a VGA frame) and tracking (~100-250 ms) on two
# shared cores are slower than that, so the replay is paced by the answers: each image goes
# out once the previous one's odometry is in (or after FRAME_TIMEOUT_S, e.g. a failed frame),
# and every frame is tracked whatever the machine's load.
FRAME_TIMEOUT_S = 5.0
# Bounds per mode: (max translation error m, final error / path, max rotation error deg,
# (low, high) median twist speed / ground-truth speed). Measured over this bag (the tracker's
# current defaults, all 44 frames tracked, the same figures in every run), over the 0.53 m path,
# with the bundled model: depth + features only (use_image false): max 0.192 m, final 36 %,
# rotation 3.1 deg, speed x1.23; with the camera image (the default, 43 or 44 frames with
# their image, tracked on its intensity alone): max 0.106 m, final 20 %, rotation 1.6 deg, x0.90
# (0.103 m, 19 %, 1.6 deg, x0.89 with the features aligned too). Before the tracker took each
# keyframe pixel's nearest depth (TrackerConfig.depth_near_px, which fixed a translation 1.16x
# too long on the real kitchen) the same model gave 0.152 m, 29 %, 2.7 deg, x1.47 and 0.094 m,
# 18 %, 1.7 deg, x0.99; this synthetic bag's depth is already slightly near (scale 1.03), and
# the nearest depth makes it nearer. The recipe before the bundled one (better relative depth,
# worse metric scale) gave 0.077 m, 15 %, 1.3 deg, x1.26 and 0.051 m, 9.5 %, 0.85 deg, x0.98.
# The bounds keep about 1.3-1.4x margin over the bundled model.
BOUNDS = {False: (0.27, 0.5, 4.3, (0.75, 2.05)),
          True: (0.13, 0.25, 2.3, (0.7, 1.2))}


def _vo_command(*params: str, remap: dict[str, str] | None = None) -> list[str]:
    exe = shutil.which("vo_node", path=str(Path(sys.executable).parent))
    command = [exe] if exe else [sys.executable, "-m", "depth_unet_ros.vo_node"]
    command += ["--ros-args", "--params-file", str(VO_CONFIG)]
    for value in params:
        command += ["-p", value]
    for name, topic in (remap or {}).items():
        command += ["-r", f"{name}:={topic}"]
    return command


def _pose_matrix(pose: Any) -> np.ndarray:
    """geometry_msgs/Pose -> (4, 4)."""
    o, p = pose.orientation, pose.position
    out = np.eye(4)
    out[:3, :3] = quaternion_xyzw_to_rotation([o.x, o.y, o.z, o.w])
    out[:3, 3] = [p.x, p.y, p.z]
    return out


class OdomListener:
    """/odom and /diagnostics subscribers and optional depth-node output publishers, spun in a
    background thread of this process."""

    def __init__(self, context: Any, name: str, publish_inputs: bool = False):
        from diagnostic_msgs.msg import DiagnosticArray
        from nav_msgs.msg import Odometry
        from rclpy.executors import SingleThreadedExecutor
        from rclpy.qos import QoSProfile, ReliabilityPolicy
        from sensor_msgs.msg import CameraInfo, Image

        self.node = rclpy.create_node(name, context=context)
        reliable = QoSProfile(depth=100, reliability=ReliabilityPolicy.RELIABLE)
        self._cond = threading.Condition()
        self.odom: dict[int, Any] = {}
        self.diagnostics: list[dict[str, str]] = []
        self.node.create_subscription(Odometry, "/odom", self._on_odom, reliable)
        self.node.create_subscription(DiagnosticArray, "/diagnostics", self._on_diagnostics, reliable)
        if publish_inputs:
            self.depth_pub = self.node.create_publisher(Image, "/depth/image", reliable)
            self.features_pub = self.node.create_publisher(Image, "/depth/features", reliable)
            self.info_pub = self.node.create_publisher(CameraInfo, "/depth/camera_info", reliable)
        self.image_pub: Any = None  # the camera, once add_camera has started it
        self.executor = SingleThreadedExecutor(context=context)
        self.executor.add_node(self.node)
        self._thread = threading.Thread(target=self._spin, daemon=True)
        self._thread.start()

    def _spin(self) -> None:
        try:
            self.executor.spin()
        except Exception:  # the context was shut down under us; the test is ending
            pass

    def _on_odom(self, msg: Any) -> None:
        with self._cond:
            self.odom[stamp_ns_of(msg.header)] = msg
            self._cond.notify_all()

    def _on_diagnostics(self, msg: Any) -> None:
        with self._cond:
            self.diagnostics.extend(v for k, v in diagnostics_by_name(msg).items()
                                    if k.endswith("vo_node: odometry"))
            self._cond.notify_all()

    def status(self, check: Any) -> dict[str, str] | None:
        """The first vo_node /diagnostics status so far that passes ``check``, else None."""
        with self._cond:
            return next((d for d in self.diagnostics if check(d)), None)

    def wait_until(self, predicate: Any, timeout_s: float) -> bool:
        with self._cond:
            return self._cond.wait_for(predicate, timeout=timeout_s)

    def add_camera(self, topic: str, reliability: str = "reliable") -> Any:
        """A camera image publisher on ``topic`` (a camera that starts now), reliable or
        best-effort (sensor-data QoS, as many camera drivers publish)."""
        from rclpy.qos import QoSProfile, ReliabilityPolicy
        from sensor_msgs.msg import Image

        policy = {"reliable": ReliabilityPolicy.RELIABLE,
                  "best_effort": ReliabilityPolicy.BEST_EFFORT}[reliability]
        self.image_pub = self.node.create_publisher(
            Image, topic, QoSProfile(depth=100, reliability=policy))
        return self.image_pub

    def wait_for_camera_match(self, timeout_s: float) -> bool:
        """Until the camera's publisher has matched a subscription (rclpy has no matched event
        on Humble, so the match count is polled)."""
        deadline = time.monotonic() + timeout_s
        while self.image_pub.get_subscription_count() == 0:
            if time.monotonic() > deadline:
                return False
            time.sleep(0.05)
        return True

    def wait_for_subscribers(self, topic: str, count: int, timeout_s: float) -> bool:
        deadline = time.monotonic() + timeout_s
        while self.node.count_subscribers(topic) < count:
            if time.monotonic() > deadline:
                return False
            time.sleep(0.05)
        return True

    def close(self) -> None:
        self.executor.shutdown(timeout_sec=2.0)
        self._thread.join(timeout=2.0)
        self.node.destroy_node()


def _stopped_cleanly(proc: NodeProcess) -> None:
    code = proc.stop()
    assert code == 0, f"{proc.command[0]} did not exit cleanly on SIGINT (code {code}):\n{proc.log()}"


# --- hand-fed: malformed input, a silent camera image topic -----------------------------------
BASE_NS = 1_700_000_000_000_000_000


def _send_frame(listener: OdomListener, stamp_ns: int, depth: np.ndarray, features: np.ndarray,
                features_encoding: str | None = None, truncate: bool = False,
                image: np.ndarray | None = None) -> None:
    """One frame as depth_node would publish it; ``image``: the camera's rgb8 image first."""
    h, w = depth.shape
    if image is not None:
        listener.image_pub.publish(make_image(image, "rgb8", stamp_ns))
    feats = make_image(features, features_encoding or f"32FC{features.shape[2]}", stamp_ns)
    if truncate:
        feats.data = feats.data[: len(feats.data) // 2]
    listener.features_pub.publish(feats)
    listener.info_pub.publish(make_camera_info(w, h, stamp_ns, fx=120.0))
    listener.depth_pub.publish(make_image(depth, "32FC1", stamp_ns))


def _textured_frame() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(depth (120, 160) m, features (30, 40, 16), rgb8 image (120, 160, 3)) of one still
    textured scene: every frame of it tracks, to the identity."""
    import cv2

    rng = np.random.default_rng(0)
    features = cv2.GaussianBlur(rng.normal(size=(30, 40, 16)).astype(np.float32), (0, 0), 1.5)
    grey = cv2.GaussianBlur(rng.random((120, 160)).astype(np.float32), (0, 0), 2.0)
    image = np.repeat((255 * (grey - grey.min()) / np.ptp(grey)).astype(np.uint8)[:, :, None], 3, 2)
    return np.full((120, 160), 2.0, np.float32), features, image


def _first_odometry(listener: OdomListener, proc: NodeProcess, depth: np.ndarray,
                    features: np.ndarray, image: np.ndarray | None = None) -> int:
    """Send the first frame (with the camera's ``image`` when given) until its odometry is in
    (the first set may race the reliable handshake: resent, one nanosecond later each time);
    its stamp."""
    for attempt in range(50):
        _send_frame(listener, BASE_NS + attempt, depth, features, image=image)
        if listener.wait_until(lambda: len(listener.odom) > 0, 0.2):
            break
    assert listener.odom, f"no odometry for a good frame:\n{proc.log()}"
    return min(listener.odom)


def test_a_malformed_features_message_is_dropped_with_a_warning_and_tracking_goes_on(context, tmp_path):
    """A truncated features message between good frames: logged (once per throttle period),
    counted in /diagnostics, no odometry for that stamp, and the next frame is tracked; every
    odometry carries its frame's exact stamp, the odom frame and the depth's frame_id. Stamps
    10 s back (a bag played again) restart odometry at the origin instead of going stale. Bytes
    that do not deserialize are counted and logged too."""
    proc = NodeProcess(_vo_command("diagnostics_period_s:=0.3"), tmp_path / "vo_node.log")
    listener = OdomListener(context, "vo_feeder", publish_inputs=True)
    try:
        assert listener.wait_for_subscribers("/depth/features", 1, 30.0), proc.log()
        assert listener.wait_for_subscribers("/depth/image", 1, 5.0), proc.log()
        depth, features, _ = _textured_frame()
        stamps = [BASE_NS + i * 100_000_000 for i in range(4)]
        first_ns = _first_odometry(listener, proc, depth, features)
        bad_ns, good_ns = stamps[1], stamps[2]
        _send_frame(listener, bad_ns, depth, features, truncate=True)
        deadline = time.monotonic() + 10.0  # the good frame only after it: a newer set would
        while "dropping the frame stamped" not in proc.log():  # replace it while the worker is busy
            assert time.monotonic() < deadline, proc.log()
            time.sleep(0.05)
        _send_frame(listener, good_ns, depth, features)
        assert listener.wait_until(lambda: good_ns in listener.odom, 10.0), proc.log()
        assert bad_ns not in listener.odom
        assert listener.wait_until(lambda: any(d.get("malformed_messages") == "1"
                                               for d in listener.diagnostics), 5.0)
        proc.check_alive()
        log = proc.log()
        assert log.count("dropping the frame stamped") == 1 and "features" in log, log
        for stamp_ns in (first_ns, good_ns):
            odom = listener.odom[stamp_ns]
            assert (odom.header.frame_id, odom.child_frame_id) == ("odom", "camera_optical")
        # The first frame is the origin, looking along odom +x.
        np.testing.assert_allclose(_pose_matrix(listener.odom[first_ns].pose.pose),
                                   ODOM_FROM_FIRST_OPTICAL, atol=1e-9)
        back_ns = BASE_NS - 10_000_000_000
        _send_frame(listener, back_ns, depth, features)
        assert listener.wait_until(lambda: back_ns in listener.odom, 10.0), proc.log()
        np.testing.assert_allclose(_pose_matrix(listener.odom[back_ns].pose.pose),
                                   ODOM_FROM_FIRST_OPTICAL, atol=1e-9)
        assert "time went back" in proc.log()
        # Bytes that are no message at all, published raw: counted and logged, not dropped
        # silently inside Fast DDS's take as with a typed subscription.
        listener.features_pub.publish(b"\x00\x01\x00\x00\x05")
        assert listener.wait_until(lambda: any(d.get("malformed_messages") == "2"
                                               for d in listener.diagnostics), 5.0), proc.log()
        assert "dropping an input message" in proc.log() and "do not deserialize" in proc.log()
        proc.check_alive()
    finally:
        listener.close()
        _stopped_cleanly(proc)
    if "tf2_msgs" not in sys.modules:
        try:
            import tf2_msgs  # noqa: F401
        except ImportError:
            assert "/tf is off" in proc.log()


def test_a_silent_camera_image_topic_leaves_features_only_odometry_with_a_warning_until_it_comes(
        context, tmp_path):
    """Default parameters (use_image on) and nobody publishing its image topic (a wrong
    remapping): every frame still gets odometry, on features alone; once that has lasted
    IMAGE_MISSING_WARN_S, /diagnostics says WARN and the log names the topic and a likely wrong
    remapping. When the camera starts, frames pair with its images: /diagnostics is OK again
    with images in the period's share, and the image subscription has followed the reliable
    camera to reliable. Frames are paced by their odometry, not by sleeps."""
    proc = NodeProcess(_vo_command("diagnostics_period_s:=0.3"), tmp_path / "vo_node.log")
    listener = OdomListener(context, "vo_camera_feeder", publish_inputs=True)
    try:
        for topic in ("/depth/features", "/depth/image", "/image"):
            assert listener.wait_for_subscribers(topic, 1, 30.0), proc.log()
        depth, features, image = _textured_frame()
        stamp_ns = _first_odometry(listener, proc, depth, features)

        def next_frame(with_image: bool) -> None:
            nonlocal stamp_ns
            stamp_ns += 33_333_333
            _send_frame(listener, stamp_ns, depth, features, image=image if with_image else None)
            assert listener.wait_until(lambda: stamp_ns in listener.odom, 10.0), proc.log()

        def missing_image(d: dict[str, str]) -> bool:
            return d["level"] == "1" and "no camera image from /image" in d["message"]

        deadline = time.monotonic() + IMAGE_MISSING_WARN_S + 30.0
        while listener.status(missing_image) is None:
            assert time.monotonic() < deadline, f"no WARN on /diagnostics:\n{proc.log()}"
            next_frame(with_image=False)
        warned = listener.status(missing_image)
        assert "remapping" in warned["message"] and warned["image_topic"] == "/image"
        assert warned["frames_with_image"] == "0" and warned["image_share_period"] == "0.00"
        next_frame(with_image=False)  # processed after the WARN: its log line is written
        log = proc.log()
        assert "no camera image from /image" in log and "remapping" in log, log
        assert all(listener.odom[s].pose.covariance[0] == -1.0 for s in listener.odom)

        listener.add_camera("/image")
        assert listener.wait_for_camera_match(30.0), proc.log()

        def pairing_again(d: dict[str, str]) -> bool:
            return d["level"] == "0" and d["image_share_period"] not in ("0.00", "nan")

        deadline = time.monotonic() + 30.0
        while listener.status(pairing_again) is None:
            assert time.monotonic() < deadline, f"images never paired:\n{proc.log()}"
            next_frame(with_image=True)
        assert int(listener.status(pairing_again)["frames_with_image"]) > 0
        switched = "/image: publishers offer reliable; subscription is now reliable"
        deadline = time.monotonic() + 10.0  # the image follows the reliable camera (a log line,
        while switched not in proc.log():  # no event), within a QoS check or two
            assert time.monotonic() < deadline, proc.log()
            time.sleep(0.05)
        proc.check_alive()
    finally:
        listener.close()
        _stopped_cleanly(proc)


def test_a_best_effort_camera_image_pairs_with_the_depth_outputs(context, tmp_path):
    """A best-effort camera (sensor-data QoS, as many drivers publish) beside the reliable depth
    outputs, with default parameters: vo_node's image subscription follows its publishers
    (image_qos_reliability auto), so it matches the camera, which a reliable subscription never
    would, stays best-effort, and frames pair with their images: /diagnostics is OK and counts
    frames with the image. Frames are paced by their odometry, not by sleeps."""
    proc = NodeProcess(_vo_command("diagnostics_period_s:=0.3"), tmp_path / "vo_node.log")
    listener = OdomListener(context, "vo_best_effort_feeder", publish_inputs=True)
    try:
        listener.add_camera("/image", reliability="best_effort")
        for topic in ("/depth/features", "/depth/image", "/depth/camera_info"):
            assert listener.wait_for_subscribers(topic, 1, 30.0), proc.log()
        assert listener.wait_for_camera_match(30.0), f"the camera never matched:\n{proc.log()}"
        depth, features, image = _textured_frame()
        stamp_ns = _first_odometry(listener, proc, depth, features, image=image)

        def pairing(d: dict[str, str]) -> bool:
            return (d["level"] == "0" and int(d["frames_with_image"]) > 0
                    and d["image_share_period"] not in ("0.00", "nan"))

        deadline = time.monotonic() + 30.0
        while listener.status(pairing) is None:
            assert time.monotonic() < deadline, f"images never paired:\n{proc.log()}"
            stamp_ns += 33_333_333
            _send_frame(listener, stamp_ns, depth, features, image=image)
            assert listener.wait_until(lambda: stamp_ns in listener.odom, 10.0), proc.log()
        assert listener.status(pairing)["image_topic"] == "/image"
        proc.check_alive()
    finally:
        listener.close()
        _stopped_cleanly(proc)
    log = proc.log()
    assert "QoS auto" in log and "subscription is now" not in log, log


# --- depth_node + vo_node + the sample bag ---------------------------------------------------
def _bag_poses() -> dict[int, np.ndarray]:
    """Header stamp -> world-from-optical (4, 4) of the bag's /camera/pose (REP 103 world)."""
    return {stamp: _pose_matrix(msg.pose)
            for _, stamp, msg in bag_reader.decode(SAMPLE_BAG, ["/camera/pose"])}


@pytest.mark.parametrize("use_image", [False, True], ids=["features", "features+image"])
def test_odometry_of_the_replayed_sample_bag_follows_its_ground_truth(context, tmp_path, use_image):
    """depth_node + vo_node + the sample bag: odometry for (nearly) every frame, at the bag's
    stamps, in odom with the camera's frame_id, and within the measured bounds of /camera/pose
    (expressed in the same odom: the first tracked camera pose, REP 103 oriented). With its
    default parameters (use_image) vo_node also pairs the camera's image, remapped as the launch
    file does, and tracks (nearly) every frame on its intensity too, as /diagnostics counts;
    with use_image false it never subscribes the image."""
    from depth_unet_ros.bags.replay import BagPlayer, ReplayOptions

    # The nodes' own participants use Fast DDS's default transports (shared memory between
    # them): under conftest's localhost discovery range Kilted's rmw uses localhost UDP only, and
    # there about a third of the depth node's VGA outputs to vo_node stalled 2.5-3 s (reliable
    # repair after a lost fragment) on this loaded machine.
    depth_proc = NodeProcess(node_executable() + ros_args("", params=["qos_reliability:=reliable"]),
                             tmp_path / "depth_node.log", env=unrestricted_env())
    vo_params = [] if use_image else ["use_image:=false"]  # on by default
    vo_proc = NodeProcess(_vo_command(*vo_params, remap={"image": "/camera/image_raw"}),
                          tmp_path / "vo_node.log", env=unrestricted_env())
    listener = OdomListener(context, "vo_listener")
    topics = {name: info for name, info in bag_reader.bag_topics(SAMPLE_BAG).items()
              if name in CAMERA_TOPICS}
    player = BagPlayer(listener.node, topics)
    try:
        deadline = time.monotonic() + 60.0
        while not (all(player.subscriber_count(topic) > 0 for topic in CAMERA_TOPICS)
                   and listener.node.count_publishers("/depth/features") > 0
                   and listener.node.count_subscribers("/depth/features") > 0):
            depth_proc.check_alive()
            vo_proc.check_alive()
            assert time.monotonic() < deadline, depth_proc.log() + vo_proc.log()
            time.sleep(0.05)
        # The first frame goes out until its odometry is in: the depth node skips frames while
        # vo_node's subscriptions are not yet matched to its outputs (nobody to answer), which
        # the graph query above cannot see. Repeats of it are stale to vo_node.
        messages = list(bag_reader.iter_raw_messages(SAMPLE_BAG, CAMERA_TOPICS))
        first_image, first_info = messages[:2]
        sent = [bag_reader.header_stamp_ns(first_image.data)]
        deadline = time.monotonic() + 30.0
        while sent[0] not in listener.odom:
            assert time.monotonic() < deadline, depth_proc.log() + vo_proc.log()
            player.publish(first_info)
            player.publish(first_image)
            listener.wait_until(lambda: sent[0] in listener.odom, 2.0)

        def after_previous_answer(message: Any, _now_s: float) -> None:
            if message.topic == "/camera/image_raw":
                listener.wait_until(lambda: sent[-1] in listener.odom, FRAME_TIMEOUT_S)
                sent.append(bag_reader.header_stamp_ns(message.data))

        stats = player.play(messages[2:], ReplayOptions(), before_publish=after_previous_answer)
        assert stats.published["/camera/image_raw"] == 43
        listener.wait_until(lambda: sent[-1] in listener.odom, FRAME_TIMEOUT_S)
        tracked = len(listener.odom)
        counted = listener.wait_until(lambda: listener.status(
            lambda d: int(d["published_poses"]) >= tracked) is not None, 5.0)
        assert counted, f"no /diagnostics after the last pose:\n{vo_proc.log()}"
        vo_proc.check_alive()
    finally:
        listener.close()
        _stopped_cleanly(vo_proc)
        _stopped_cleanly(depth_proc)
    truth = _bag_poses()
    stamps = sorted(listener.odom)
    missing = [i for i, stamp in enumerate(sorted(truth)) if stamp not in listener.odom]
    assert len(stamps) >= 42, f"frames {missing} of 44 not tracked:\n{vo_proc.log()}"
    assert set(stamps) <= set(truth)
    for stamp in stamps:
        odom = listener.odom[stamp]
        assert (odom.header.frame_id, odom.child_frame_id) == ("odom", "camera_rgb_optical_frame")
    # Ground truth in vo's odom: the first tracked frame's pose is the origin, REP 103 axes.
    first_from_world = se3.inverse(truth[stamps[0]])
    errors_m, angles_deg, path_m = [], [], 0.0
    for previous, stamp in zip([stamps[0], *stamps], stamps):
        expected = ODOM_FROM_FIRST_OPTICAL @ first_from_world @ truth[stamp]
        got = _pose_matrix(listener.odom[stamp].pose.pose)
        errors_m.append(float(np.linalg.norm(got[:3, 3] - expected[:3, 3])))
        angles_deg.append(float(np.degrees(se3.rotation_angle_rad(se3.inverse(got) @ expected))))
        path_m += float(np.linalg.norm(truth[stamp][:3, 3] - truth[previous][:3, 3]))
    report = (f"{len(stamps)} poses (missing {missing}), path {path_m:.3f} m, max error {max(errors_m):.3f} m, "
              f"final {errors_m[-1]:.3f} m ({errors_m[-1] / path_m:.1%} of the path), max angle "
              f"{max(angles_deg):.2f} deg")
    # The twist is the camera's own velocity: its speed follows the ground truth's.
    speeds = [(float(np.linalg.norm([listener.odom[b].twist.twist.linear.x,
                                     listener.odom[b].twist.twist.linear.y,
                                     listener.odom[b].twist.twist.linear.z])),
               float(np.linalg.norm(truth[b][:3, 3] - truth[a][:3, 3])) / ((b - a) / 1e9))
              for a, b in zip(stamps, stamps[1:])]
    speed_ratio = float(np.median([got / want for got, want in speeds if want > 0.05]))
    report += f", median speed ratio {speed_ratio:.2f}"
    modes = listener.status(lambda d: int(d["published_poses"]) >= tracked)
    with_image, without = int(modes["frames_with_image"]), int(modes["frames_without_image"])
    report += f", frames with / without the image {with_image} / {without}"
    print(report)
    if use_image:  # images drop only with a lost fragment's repair
        assert without <= 2 and modes["image_topic"] == "/camera/image_raw", report
    else:
        assert with_image == 0 and modes["image_topic"].startswith("off"), report
    max_error_m, max_final_fraction, max_angle_deg, (low, high) = BOUNDS[use_image]
    assert max(errors_m) < max_error_m, report
    assert errors_m[-1] / path_m < max_final_fraction, report
    assert max(angles_deg) < max_angle_deg, report
    assert low < speed_ratio < high, report
    # Honest covariance: by default (covariance_scale 0) pose and twist say unknown.
    last = listener.odom[stamps[-1]]
    assert last.pose.covariance[0] == -1.0 and last.twist.covariance[0] == -1.0

