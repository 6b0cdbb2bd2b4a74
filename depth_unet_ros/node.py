"""``depth_node``: camera images in, metric depth, scaled camera_info and decoder features out.

Thin ROS wiring around ``node_core`` (logic), ``node_parameters`` (the parameter table),
``image_conversion`` (messages <-> numpy), ``following_subscription`` (inputs whose QoS follows
the camera) and ``inference`` (the model). The subscription
callback only parks the newest frame in a one-slot buffer; a worker thread runs inference on
it, so a slow model drops stale frames (counted in /diagnostics) instead of queueing them.
``DepthServing`` holds all of that; ``DepthNode`` here and the managed node in
``lifecycle_node`` only decide when each step runs.
"""
from __future__ import annotations

import functools
import os
import threading
import time
from typing import Any, Callable, Sequence

import rclpy
from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus, KeyValue
from rcl_interfaces.msg import (FloatingPointRange, IntegerRange, ParameterDescriptor,
                                SetParametersResult)
from rclpy.exceptions import InvalidParameterValueException
from rclpy.node import Node
from sensor_msgs.msg import CameraInfo, CompressedImage, Image
from std_msgs.msg import Header

from depth_unet_ros import camera_geometry, node_core
from depth_unet_ros.allocator import reuse_frame_buffers
from depth_unet_ros.camera_geometry import MalformedCameraInfoError
from depth_unet_ros.errors import DepthUnetError, ImageFormatError, MalformedMessageError
from depth_unet_ros.fastdds_transports import PROFILES_ENV, environment_problem, node_profile
from depth_unet_ros.following_subscription import FollowingSubscription, qos_profile
from depth_unet_ros.image_cdr import SerializedImage
from depth_unet_ros.image_conversion import (compressed_msg_to_array, float_encoding,
                                             image_msg_to_array)
from depth_unet_ros.inference import load_estimator, resolve_model_path
from depth_unet_ros.node_core import LatestSlot, NodeSettings, NodeStats
from depth_unet_ros.node_parameters import PARAMETERS, ParameterSpec
from depth_unet_ros.parent_watch import stop_with_parent
from depth_unet_ros.preprocessing import to_rgb
from depth_unet_ros.publisher_acks import unacknowledged_publishers
from depth_unet_ros.ros_shutdown import spin_until_shutdown
from depth_unet_ros.stack_dump import enable_stack_dump

EstimatorFactory = Callable[[str, str, int], Any]  # (model_path, backend, num_threads) -> estimator
WARN_THROTTLE_S = 5.0
# The first frame of a camera that started before the node often arrives before its first
# camera_info (two subscriptions, matched in any order); while a camera_info publisher exists,
# that first frame waits this long for it, once, so its answer is whole.
FIRST_CAMERA_INFO_WAIT_S = 1.0
# Discovery finds a camera's two publishers separately: under load the image's can match first
# while the camera_info publisher is not yet in the graph (seen 2 times in 11 loops of the DDS
# tests beside a full test run). So the first frame gives discovery this long to show a
# camera_info publisher before it concludes the camera has none.
CAMERA_INFO_DISCOVERY_S = 0.5

NODE_NAME = "depth_node"


def parameter_descriptor(spec: ParameterSpec, with_range: bool = True) -> ParameterDescriptor:
    """The ROS descriptor of one node_parameters entry: description, read-only flag, numeric
    range (checked by rclpy itself) and the choices as additional_constraints text."""
    descriptor = ParameterDescriptor(description=spec.description, read_only=spec.read_only,
                                     additional_constraints=spec.constraints_text())
    if with_range and spec.range is not None:
        low, high = spec.range
        if isinstance(spec.default, float):
            descriptor.floating_point_range = [FloatingPointRange(
                from_value=float(low), to_value=float(high), step=0.0)]
        else:
            descriptor.integer_range = [IntegerRange(from_value=int(low), to_value=int(high), step=0)]
    return descriptor


class DepthServing:
    """What depth_node does, mixed into an rclpy ``Node`` (``DepthNode``) or ``LifecycleNode``
    (``lifecycle_node.DepthLifecycleNode``), which only decide when each step runs.

    ``_read_settings`` declares and reads the parameters, ``_load_model`` loads the estimator,
    ``_start_serving`` creates the inputs, worker and outputs, ``_stop_serving`` removes them and
    ``_release_model`` frees the model. The callback only parks the newest frame in a one-slot
    buffer; the worker thread runs inference on it.
    """

    _settings: NodeSettings | None = None
    _estimator: Any = None
    _serving = False
    _parameters_watched = False

    def _read_settings(self) -> NodeSettings:
        """Declare node_parameters' table (once) and read it, validated (ConfigError).

        rclpy refuses an override outside a range with its own words; the parameter is then
        declared without the range, so that NodeSettings refuses it with the message the node
        has always given (the allowed values, what 0 means)."""
        refused: list[InvalidParameterValueException] = []
        for spec in PARAMETERS.values():
            if self.has_parameter(spec.name):
                continue
            try:
                self.declare_parameter(spec.name, spec.default, parameter_descriptor(spec))
            except InvalidParameterValueException as exc:
                refused.append(exc)
                self.declare_parameter(spec.name, spec.default,
                                       parameter_descriptor(spec, with_range=False))
        settings = NodeSettings.from_params(
            {name: self.get_parameter(name).value for name in PARAMETERS})
        if refused:  # the ranges and NodeSettings.validate disagree: still refuse
            raise refused[0]
        if not self._parameters_watched:  # after declaring: declaring calls these callbacks
            self.add_on_set_parameters_callback(self._on_set_parameters)
            self._parameters_watched = True
        return settings

    def _load_model(self, settings: NodeSettings,
                    estimator_factory: EstimatorFactory | None = None) -> None:
        """Load the estimator (ModelLoadError says what to do) and take ``settings``."""
        factory = estimator_factory or functools.partial(load_estimator, fix_hint=node_core.MODEL_FIX_HINT)
        self._estimator = factory(settings.model_path, settings.backend, settings.num_threads)
        self._model_path = str(resolve_model_path(settings.model_path))
        self._settings = settings

    def _start_serving(self) -> None:
        """Inputs, outputs, timers and the inference worker, for the loaded model."""
        settings = self._settings
        self._stats = NodeStats()
        self._slot: LatestSlot[tuple[Any, float]] = LatestSlot()
        self._camera_info: CameraInfo | None = None
        self._camera_info_arrived = threading.Event()
        self._first_info_wait_done = False
        self._focal_scale = 1.0

        out_qos = qos_profile(node_core.PUBLISHER_QOS)
        self._depth_pub = self.create_publisher(Image, "depth/image", out_qos)
        self._info_pub = self.create_publisher(CameraInfo, "depth/camera_info", out_qos)
        self._features_pub = self.create_publisher(Image, "depth/features", out_qos)
        self._publishers_made = [self._depth_pub, self._info_pub, self._features_pub]
        self._timers_made = []
        in_qos = node_core.subscription_qos(settings)
        image_type, image_topic = ((CompressedImage, "image/compressed") if settings.compressed_input
                                   else (Image, "image"))
        self._inputs = [
            FollowingSubscription(self, image_type, image_topic, self._on_image, in_qos,
                                  on_malformed=self._on_malformed_input),
            FollowingSubscription(self, CameraInfo, "camera_info", self._on_camera_info, in_qos,
                                  on_malformed=self._on_malformed_input)]
        self._camera_info_topic = self._inputs[1].topic_name
        if settings.qos_reliability == "auto":
            self._timers_made.append(
                self.create_timer(node_core.QOS_CHECK_PERIOD_S, self._follow_publishers))
        if settings.diagnostics_period_s > 0:
            self._diag_pub = self.create_publisher(DiagnosticArray, "/diagnostics",
                                                   qos_profile(node_core.DIAGNOSTICS_QOS))
            self._publishers_made.append(self._diag_pub)
            self._timers_made.append(
                self.create_timer(settings.diagnostics_period_s, self._publish_diagnostics))

        self._worker = threading.Thread(target=self._work, name="depth_inference", daemon=True)
        self._worker.start()
        self._serving = True
        meta = self._estimator.metadata
        self.get_logger().info(
            f"model {self._model_path} on {self._estimator.backend.name}: input "
            f"{meta.input_width}x{meta.input_height}, depth {meta.min_depth_m}-{meta.max_depth_m} m, "
            f"{meta.feature_channels} feature channels; input QoS {settings.qos_reliability}, "
            f"depth {settings.qos_depth}")

    # --- callbacks (executor thread): no inference here -------------------------------------
    def _on_image(self, msg: Any) -> None:
        self._stats.count("received")
        if not self._has_consumers():
            self._stats.count("skipped_no_subscribers")
            return
        if self._slot.put((msg, time.monotonic())):
            self._stats.count("dropped")
        # Let the worker take the GIL now: otherwise it waits until the executor's Python loop
        # next blocks in rcl_wait, about 0.3 ms of latency per frame (measured at 640x480).
        time.sleep(0)

    def _on_camera_info(self, msg: CameraInfo) -> None:
        try:
            camera_geometry.check_camera_matrices(msg.k, msg.p)
        except MalformedCameraInfoError as exc:
            self._stats.count("malformed")
            self.get_logger().warning(f"ignoring camera_info: {exc} ({self._stats.malformed} "
                                      "malformed messages so far)", throttle_duration_sec=WARN_THROTTLE_S)
            return
        self._camera_info = msg
        self._camera_info_arrived.set()

    def _on_malformed_input(self, exc: MalformedMessageError) -> None:
        self._stats.count("malformed")
        self.get_logger().warning(f"dropping an input message: {exc} ({self._stats.malformed} "
                                  "malformed messages so far)", throttle_duration_sec=WARN_THROTTLE_S)

    def _follow_publishers(self) -> None:
        for subscription in self._inputs:
            subscription.follow_publishers()

    def _has_consumers(self) -> bool:
        pubs = [self._depth_pub, self._info_pub]
        if self._settings.publish_features:
            pubs.append(self._features_pub)
        return any(pub.get_subscription_count() > 0 for pub in pubs)

    def _on_set_parameters(self, params: Sequence[Any]) -> SetParametersResult:
        changes = {p.name: p.value for p in params if p.name in node_core.RUNTIME_PARAMETERS}
        try:
            current = self._settings if self._settings is not None else NodeSettings.from_params(
                {name: self.get_parameter(name).value for name in PARAMETERS})  # none loaded yet
            self._settings = current.updated(changes)
        except (DepthUnetError, TypeError) as exc:
            return SetParametersResult(successful=False, reason=str(exc))
        return SetParametersResult(successful=True)

    # --- worker thread -----------------------------------------------------------------------
    def _work(self) -> None:
        while True:
            item = self._slot.take()
            if item is None:
                return
            msg, received_s = item
            try:
                self._process(msg, received_s)
            except ImageFormatError as exc:
                self._stats.count("malformed")
                self.get_logger().warning(
                    f"dropping image: {exc} ({self._stats.malformed} malformed messages so far)",
                    throttle_duration_sec=WARN_THROTTLE_S)
            except Exception as exc:  # keep serving; a shut-down context ends the loop
                if self._slot.closed or not self.context.ok():
                    return
                self.get_logger().error(f"depth inference failed: {type(exc).__name__}: {exc}",
                                        throttle_duration_sec=WARN_THROTTLE_S)

    def _decode(self, msg: Any) -> Any:
        if isinstance(msg, CompressedImage):
            image, encoding = compressed_msg_to_array(msg)
        else:
            image, encoding = image_msg_to_array(msg), msg.encoding
        return to_rgb(image, encoding)  # (H, W, 3) uint8

    def _process(self, msg: Any, received_s: float) -> None:
        settings = self._settings  # one consistent snapshot per frame
        rgb = self._decode(msg)
        # Consumers of only camera_info and features (a VO node) need no depth image: skip its
        # upsampling and post-processing; camera_info needs only its size.
        want_depth = self._depth_pub.get_subscription_count() > 0
        start_s = time.monotonic()
        prediction = self._estimator.predict(
            rgb, output_size=settings.output_size if want_depth else "network")
        inference_ms = (time.monotonic() - start_s) * 1e3
        info = self._camera_info or self._first_camera_info()
        scale = self._scale_for(info, rgb.shape[1]) if settings.focal_scaling else 1.0
        self._focal_scale = scale
        meta = self._estimator.metadata
        low, high = node_core.depth_limits_m(settings, meta.min_depth_m, meta.max_depth_m, scale)
        stamp = (msg.header.stamp.sec, msg.header.stamp.nanosec)
        frame_id = settings.frame_id_override or msg.header.frame_id
        depth_hw = rgb.shape[:2] if settings.output_size == "input" else prediction.depth_m.shape
        if want_depth:
            # Outputs go out pre-serialized (image_cdr): depth is written once, into the message.
            depth = SerializedImage(depth_hw[0], depth_hw[1], "32FC1", stamp, frame_id)
            node_core.finalize_depth(prediction.depth_m, scale, low, high, out=depth.pixels)
            self._depth_pub.publish(depth.to_bytes())
        if info is not None and self._info_pub.get_subscription_count() > 0:
            header = Header(stamp=msg.header.stamp, frame_id=frame_id)
            self._info_pub.publish(self._scaled_info(info, header, rgb.shape[:2], depth_hw))
        if settings.publish_features and self._features_pub.get_subscription_count() > 0:
            features = prediction.features  # (C, h/4, w/4)
            self._features_pub.publish(SerializedImage.of(
                features, float_encoding(features.shape[0]), stamp, frame_id,
                channels_first=True).to_bytes())
        self._stats.record_processed((time.monotonic() - received_s) * 1e3, inference_ms)
        if self._stats.processed == 1:  # this activation's first answer (stats start anew with it)
            self._wait_for_first_answer_delivery()

    def _first_camera_info(self) -> CameraInfo | None:
        """Before any camera_info arrived: wait for one (once per node, bounded) when a publisher
        of it exists, so the first answers carry depth camera_info too; else None."""
        if self._first_info_wait_done:
            return None
        self._first_info_wait_done = True
        start_s = time.monotonic()
        while time.monotonic() - start_s < FIRST_CAMERA_INFO_WAIT_S:
            if self._camera_info_arrived.wait(0.05):
                break
            if (time.monotonic() - start_s > CAMERA_INFO_DISCOVERY_S
                    and self.count_publishers(self._camera_info_topic) == 0):
                break  # no camera_info publisher: this camera sends none
        return self._camera_info

    def _wait_for_first_answer_delivery(self) -> None:
        """Once, after the first answer: hold the next one back (bounded) until every consumer
        matched now has acknowledged this one, so a consumer whose discovery of the node is
        still catching up gets it whole (node_core.FIRST_ANSWER_ACK_WAIT_S)."""
        unacknowledged = unacknowledged_publishers(
            (self._depth_pub, self._info_pub, self._features_pub), node_core.FIRST_ANSWER_ACK_WAIT_S)
        if unacknowledged:
            self.get_logger().info(
                f"{unacknowledged} output(s) of the first answer not acknowledged by every consumer "
                f"within {node_core.FIRST_ANSWER_ACK_WAIT_S} s; serving on")

    def _scale_for(self, info: CameraInfo | None, image_width: int) -> float:
        if info is None:
            return 1.0
        meta = self._estimator.metadata
        return camera_geometry.focal_scale(info.k[0], info.width or image_width, meta.input_width,
                                           meta.focal_px)

    @staticmethod
    def _scaled_info(info: CameraInfo, header: Any, image_hw: tuple[int, int],
                     depth_hw: tuple[int, int]) -> CameraInfo:
        # The calibration's own size, or the image's when the driver left it 0.
        src_wh = (info.width, info.height) if info.width > 0 and info.height > 0 else image_hw[::-1]
        out = CameraInfo()
        out.header = header
        out.height, out.width = int(depth_hw[0]), int(depth_hw[1])
        out.distortion_model = info.distortion_model
        out.d = info.d
        out.r = info.r
        out.k, out.p = camera_geometry.scale_camera_matrices(info.k, info.p, src_wh, (out.width, out.height))
        return out

    def _publish_diagnostics(self) -> None:
        snap = self._stats.snapshot()
        level, message, values = node_core.diagnostics_values(
            snap, self._estimator.backend.name, self._model_path, self._focal_scale)
        status = DiagnosticStatus()
        status.level = DiagnosticStatus.OK if level == 0 else DiagnosticStatus.WARN
        status.name = f"{self.get_fully_qualified_name()}: depth"
        status.message = message
        status.hardware_id = "depth_unet_ros"
        status.values = [KeyValue(key=k, value=v) for k, v in values]
        array = DiagnosticArray()
        array.header.stamp = self.get_clock().now().to_msg()
        array.status = [status]
        self._diag_pub.publish(array)

    def _stop_serving(self) -> None:
        """Stop the worker, then remove the inputs, timers and outputs: nothing is published
        after this returns."""
        if not self._serving:
            return
        self._serving = False
        self._slot.close()
        self._worker.join(timeout=5.0)
        for subscription in self._inputs:
            subscription.close()
        for timer in self._timers_made:
            self.destroy_timer(timer)
        for publisher in self._publishers_made:
            self.destroy_publisher(publisher)

    def _release_model(self) -> None:
        """Free the estimator's session, engine or device memory (DepthEstimator.close)."""
        estimator, self._estimator = self._estimator, None
        close = getattr(estimator, "close", None)  # test doubles may have none
        if close is not None:
            close()

    def close(self) -> None:
        """Stop serving and release the model (before destroy_node); safe to call twice."""
        self._stop_serving()
        self._release_model()


class DepthNode(DepthServing, Node):
    """Monocular depth for one camera; topics are relative so a namespace separates cameras.

    Starts serving as soon as it is constructed; a bad parameter or model raises from here."""

    def __init__(self, estimator_factory: EstimatorFactory | None = None, **node_kwargs: Any):
        super().__init__(NODE_NAME, **node_kwargs)
        self._load_model(self._read_settings(), estimator_factory)
        self._start_serving()


def main(args: Sequence[str] | None = None, estimator_factory: EstimatorFactory | None = None) -> int:
    """Run the node until shut down; 1 when it cannot start (bad model or parameters)."""
    return run_node(lambda: DepthNode(estimator_factory=estimator_factory), args)


def run_node(make_node: Callable[[], DepthServing], args: Sequence[str] | None = None) -> int:
    """rclpy set up as depth_node needs it, ``make_node()`` spun until shut down, then closed;
    1 when the node cannot start (bad model or parameters). Shared with the lifecycle node."""
    reuse_frame_buffers()  # before the first frame's buffers are allocated
    enable_stack_dump()  # kill -USR1: every thread's stack into the log, for hangs
    profile = node_profile()
    if profile:  # before rclpy.init, which creates the participant that reads it
        os.environ[PROFILES_ENV] = profile
    rclpy.init(args=args)
    stop_with_parent()  # started by one of our tools: its death SIGINTs us, into rclpy's handler
    if profile:
        rclpy.logging.get_logger("depth_node").info(
            f"Fast DDS: own profile {profile} (default transports, shared-memory segment sized "
            f"for VGA outputs); {PROFILES_ENV}='' keeps Fast DDS's defaults")
    transport_problem = environment_problem()
    if transport_problem:  # logged, not fatal: a Fast DDS without the options ignores them
        rclpy.logging.get_logger("depth_node").error(transport_problem)
    return spin_until_shutdown(make_node, "depth_node")


if __name__ == "__main__":
    import sys

    sys.exit(main())
