"""``vo_node``: the depth node's depth, features and camera_info in, REP 105 odometry out.

Thin ROS wiring around ``odometry`` (pairing, message checks, frames, covariance, statistics)
and the tracker. Subscription callbacks only file messages by stamp (``ExactPairing``); a whole
set, with the camera's image of its stamp when it is there (``ImageMatcher``, use_image), goes
to a one-slot buffer that a worker thread tracks, so a slow tracker drops stale sets (counted in
/diagnostics) instead of queueing them or blocking the executor. A set whose image has not
come is tracked on features alone after a short bounded wait in the worker, never in a
callback. The image subscription follows its publishers' reliability (``FollowingSubscription``,
image_qos_reliability auto), as depth_node's camera input does, so a best-effort camera's images
arrive too. Publishes nav_msgs/Odometry on ``odom`` and, where tf2_msgs is installed, the same
pose on /tf.
"""
from __future__ import annotations

import threading
import time
from typing import Any, Sequence

import rclpy
from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus, KeyValue
from geometry_msgs.msg import TransformStamped
from nav_msgs.msg import Odometry
from rcl_interfaces.msg import ParameterDescriptor
from rclpy.node import Node
from rclpy.qos import DurabilityPolicy, HistoryPolicy, QoSProfile, ReliabilityPolicy
from sensor_msgs.msg import CameraInfo, Image
from std_msgs.msg import Header

from depth_unet_ros.bags.clock import stamp_ns_of
from depth_unet_ros.checked_subscription import create_checked_subscription
from depth_unet_ros.errors import ImageFormatError, MalformedMessageError
from depth_unet_ros.following_subscription import FollowingSubscription
from depth_unet_ros.node_core import DIAGNOSTICS_QOS, QOS_CHECK_PERIOD_S, LatestSlot, starting_qos
from depth_unet_ros.odometry.covariance_chain import CovarianceChain
from depth_unet_ros.odometry.exact_pairing import ExactPairing, PairedSet
from depth_unet_ros.odometry.frame_inputs import frame_inputs
from depth_unet_ros.odometry.image_match import ImageMatcher
from depth_unet_ros.odometry.odom_frames import OdomState, OdomTrack
from depth_unet_ros.odometry.threads import use_one_math_thread
from depth_unet_ros.odometry.tracker import FeatureTracker
from depth_unet_ros.odometry.vo_settings import PARAMETERS, VoSettings
from depth_unet_ros.odometry.vo_stats import VoStats
from depth_unet_ros.parent_watch import stop_with_parent
from depth_unet_ros.ros_shutdown import spin_until_shutdown
from depth_unet_ros.stack_dump import enable_stack_dump

try:  # not on PyPI: a pip-only install has no tf2_msgs, and then no /tf
    from tf2_msgs.msg import TFMessage
except ImportError:
    TFMessage = None

WARN_THROTTLE_S = 5.0
# Inputs this much older than the newest paired frame mean time went back (a bag played again,
# or a simulation reset): pairing and odometry restart rather than dropping them as stale.
RESTART_AFTER_S = 1.0
# The depth node's outputs (relative, so one namespace holds a camera's depth and odometry).
INPUT_TOPICS = {"depth": "depth/image", "features": "depth/features",
                "camera_info": "depth/camera_info"}
IMAGE_TOPIC = "image"  # the camera's own image (use_image), remapped to depth_node's input


def _set_stamp(header: Any, stamp_ns: int) -> None:
    header.stamp.sec, header.stamp.nanosec = divmod(int(stamp_ns), 1_000_000_000)


class VoNode(Node):
    """Visual odometry of one camera from its depth node's outputs."""

    def __init__(self, **node_kwargs: Any):
        super().__init__("vo_node", **node_kwargs)
        for name, (default, description) in PARAMETERS.items():
            self.declare_parameter(name, default, ParameterDescriptor(description=description,
                                                                      read_only=True))
        self._settings = settings = VoSettings.from_params(
            {name: self.get_parameter(name).value for name in PARAMETERS})
        self._tracker = FeatureTracker(settings.tracker)
        self._track = OdomTrack()
        # covariance_scale 0: unknown covariance (the tracker's underestimates the error badly)
        self._chain = (CovarianceChain(settings.covariance_scale) if settings.covariance_scale > 0
                       else None)
        self._last_stamp_ns: int | None = None
        self._pairing: ExactPairing[Any] = ExactPairing(
            tuple(INPUT_TOPICS), settings.max_pending_sets, int(RESTART_AFTER_S * 1e9))
        self._images: ImageMatcher[Any] | None = ImageMatcher() if settings.use_image else None
        self._slot: LatestSlot[tuple[PairedSet[Any], Any, float]] = LatestSlot()

        in_qos = QoSProfile(history=HistoryPolicy.KEEP_LAST, depth=settings.queue_size,
                            reliability=ReliabilityPolicy.RELIABLE,
                            durability=DurabilityPolicy.VOLATILE)
        self._image_sub: FollowingSubscription | None = None
        if self._images is not None:  # subscribed first: the executor takes ready messages in
            # creation order, so an image that came in with its depth outputs is filed first (a
            # QoS switch re-subscribes it last; then ImageMatcher's bounded wait covers that)
            self._image_sub = FollowingSubscription(
                self, Image, IMAGE_TOPIC, self._file_image,
                starting_qos(settings.image_qos_reliability, settings.queue_size),
                on_malformed=self._on_malformed_input)
            if settings.image_qos_reliability == "auto":  # the camera's own QoS, like depth_node
                self.create_timer(QOS_CHECK_PERIOD_S, self._image_sub.follow_publishers)
        image_topic = None if self._image_sub is None else self._image_sub.topic_name
        for key, topic in INPUT_TOPICS.items():
            msg_type = CameraInfo if key == "camera_info" else Image
            create_checked_subscription(self, msg_type, topic, self._filer(key), in_qos,
                                        self._on_malformed_input)
        self._stats = VoStats(image_topic=image_topic)
        self._odom_pub = self.create_publisher(Odometry, "odom", 10)
        self._tf_pub = None
        if settings.publish_tf and TFMessage is not None:
            self._tf_pub = self.create_publisher(TFMessage, "/tf", 100)
        elif settings.publish_tf:
            self.get_logger().info("tf2_msgs is not installed: /tf is off (odometry is still "
                                   "published on odom); install ROS 2's tf2_msgs to broadcast it")
        if settings.diagnostics_period_s > 0:
            diag = DIAGNOSTICS_QOS
            self._diag_pub = self.create_publisher(DiagnosticArray, "/diagnostics", QoSProfile(
                depth=diag.depth, reliability=ReliabilityPolicy.RELIABLE))
            self.create_timer(settings.diagnostics_period_s, self._publish_diagnostics)
        self._worker = threading.Thread(target=self._work, name="vo_tracking", daemon=True)
        self._worker.start()
        image_note = (f" (+ the camera image {image_topic} when it pairs, QoS "
                      f"{settings.image_qos_reliability})" if image_topic else "")
        self.get_logger().info(
            f"tracking {', '.join(self.resolve_topic_name(t) for t in INPUT_TOPICS.values())}"
            f"{image_note} -> "
            f"{self._odom_pub.topic_name} in frame {settings.odom_frame!r}"
            f"{', and /tf' if self._tf_pub is not None else ''}")

    # --- callbacks (executor thread): filing only ---------------------------------------------
    def _filer(self, key: str) -> Any:
        def callback(msg: Any) -> None:
            whole = self._pairing.add(key, stamp_ns_of(msg.header), msg)
            if whole is not None:
                self._stats.count("paired")
                image = None if self._images is None else self._images.claim(whole.stamp_ns)
                if self._slot.put((whole, image, time.monotonic())):
                    self._stats.count("busy_dropped")
        return callback

    def _on_malformed_input(self, exc: MalformedMessageError) -> None:
        self._stats.count("malformed")
        self.get_logger().warning(
            f"dropping an input message: {exc} ({self._stats.totals['malformed']} malformed so far)",
            throttle_duration_sec=WARN_THROTTLE_S)

    def _file_image(self, msg: Image) -> None:
        self._images.add(stamp_ns_of(msg.header), msg)

    # --- worker thread ------------------------------------------------------------------------
    def _work(self) -> None:
        while True:
            item = self._slot.take()
            if item is None:
                return
            whole, image, completed_s = item
            try:
                self._process(whole, image, completed_s)
            except ImageFormatError as exc:
                self._stats.count("malformed")
                self.get_logger().warning(
                    f"dropping the frame stamped {whole.stamp_ns} ns: {exc} "
                    f"({self._stats.totals['malformed']} malformed so far)",
                    throttle_duration_sec=WARN_THROTTLE_S)
            except Exception as exc:  # keep serving; a shut-down context ends the loop
                if self._slot.closed or not self.context.ok():
                    return
                self.get_logger().error(f"tracking failed: {type(exc).__name__}: {exc}",
                                        throttle_duration_sec=WARN_THROTTLE_S)

    def _process(self, whole: PairedSet[Any], image: Any, completed_s: float) -> None:
        if image is None and self._images is not None:
            image = self._images.wait(whole.stamp_ns)  # bounded; None: features alone
        msgs = whole.messages
        inputs = frame_inputs(msgs["depth"], msgs["features"], msgs["camera_info"], image)
        if self._last_stamp_ns is not None and inputs.stamp_ns <= self._last_stamp_ns:
            self._restart("time went back (a bag played again?)")
        self._stats.frame(with_image=inputs.image_rgb is not None)
        warning = self._stats.image_missing_warning() if inputs.image_rgb is None else None
        if warning:
            self.get_logger().warning(warning, throttle_duration_sec=WARN_THROTTLE_S)
        first = self._last_stamp_ns is None
        start_s = time.monotonic()
        result = self._tracker.track(inputs.stamp_ns, inputs.depth_m, inputs.features, inputs.k,
                                     inputs.image_rgb)
        track_ms = (time.monotonic() - start_s) * 1e3
        self._last_stamp_ns = inputs.stamp_ns
        covariance = None if self._chain is None else self._chain.update(
            result.world_from_camera, result.covariance, result.keyframe, first=first)
        if result.keyframe:
            self._stats.count("keyframes")
        if not result.ok:
            self._stats.count("failed")
            self.get_logger().warning(
                f"tracking lost at {inputs.stamp_ns} ns (residual {result.residual:.3f}); no "
                "odometry for this frame, and its covariance is unknown from now on",
                throttle_duration_sec=WARN_THROTTLE_S)
            return
        state = self._track.update(inputs.stamp_ns, result.world_from_camera, covariance)
        self._publish(state, self._settings.child_frame or inputs.frame_id)
        self._stats.count("tracked")
        self._stats.record((time.monotonic() - completed_s) * 1e3, track_ms)

    def _restart(self, why: str) -> None:
        self._tracker.reset()
        self._track.reset()
        if self._chain is not None:
            self._chain.reset()
        self._last_stamp_ns = None
        self._stats.count("restarts")
        self.get_logger().info(f"{why}: odometry restarts, from this frame at the odom origin")

    def _publish(self, state: OdomState, child_frame: str) -> None:
        header = Header(frame_id=self._settings.odom_frame)
        _set_stamp(header, state.stamp_ns)
        x, y, z = (float(v) for v in state.position_m)
        qx, qy, qz, qw = (float(v) for v in state.quaternion_xyzw)
        odom = Odometry(header=header, child_frame_id=child_frame)
        pose = odom.pose.pose
        pose.position.x, pose.position.y, pose.position.z = x, y, z
        pose.orientation.x, pose.orientation.y, pose.orientation.z, pose.orientation.w = qx, qy, qz, qw
        odom.pose.covariance = list(state.pose_covariance)
        twist = odom.twist.twist
        twist.linear.x, twist.linear.y, twist.linear.z = (float(v) for v in state.linear_mps)
        twist.angular.x, twist.angular.y, twist.angular.z = (float(v) for v in state.angular_radps)
        odom.twist.covariance = list(state.twist_covariance)
        self._odom_pub.publish(odom)
        if self._tf_pub is not None:
            transform = TransformStamped(header=header, child_frame_id=child_frame)
            t = transform.transform
            t.translation.x, t.translation.y, t.translation.z = x, y, z
            t.rotation.x, t.rotation.y, t.rotation.z, t.rotation.w = qx, qy, qz, qw
            self._tf_pub.publish(TFMessage(transforms=[transform]))

    def _publish_diagnostics(self) -> None:
        level, message, values = self._stats.diagnostics(self._pairing.counts)
        status = DiagnosticStatus(name=f"{self.get_fully_qualified_name()}: odometry",
                                  message=message, hardware_id="depth_unet_ros")
        status.level = DiagnosticStatus.OK if level == 0 else DiagnosticStatus.WARN
        status.values = [KeyValue(key=k, value=v) for k, v in values]
        array = DiagnosticArray(status=[status])
        array.header.stamp = self.get_clock().now().to_msg()
        self._diag_pub.publish(array)

    def close(self) -> None:
        """Stop the worker (before destroy_node)."""
        self._slot.close()
        self._worker.join(timeout=5.0)


def main(args: Sequence[str] | None = None) -> int:
    """Run the node until shut down; 1 when it cannot start (bad parameters)."""
    enable_stack_dump()  # kill -USR1: every thread's stack into the log, for hangs
    rclpy.init(args=args)
    stop_with_parent()  # started by one of our tools: its death SIGINTs us
    use_one_math_thread()
    return spin_until_shutdown(VoNode, "vo_node")


if __name__ == "__main__":
    import sys

    sys.exit(main())
