"""``depth_lifecycle_node``: depth_node as a managed (lifecycle) node, for graphs brought up in
order by ``ros2 lifecycle``, launch_ros's ``LifecycleNode`` action or a lifecycle manager.

    ros2 run depth_unet_ros depth_lifecycle_node --ros-args --params-file config/depth.yaml
    ros2 lifecycle set /depth_node configure    # parameters read, model loaded
    ros2 lifecycle set /depth_node activate     # subscribes, infers, publishes

Why an executable of its own, not a ``managed`` parameter or a ``--managed`` flag: whether a
process offers the lifecycle services is decided when the node is created, before a parameter
can be read; launch_ros's ``LifecycleNode`` action starts an executable as given (package,
executable, name) with nothing to add; and ROS packages ship their managed variants as
executables of their own (demo_nodes' ``lifecycle_talker``). The node keeps depth_node's name,
parameters and topics, and all its work (``node.DepthServing``); only the timing differs:

* configure: declare and read the parameters, load the model. A bad parameter or a model that
  does not load returns FAILURE and logs what to do; the node stays unconfigured and alive.
* activate: subscriptions, publishers, /diagnostics and the inference worker are created.
* deactivate: all of them are removed again, so an inactive node publishes nothing, spends no
  CPU on frames, and offers no silent publisher for a consumer to wait on.
* cleanup: the model is released (ONNX Runtime session, TensorRT engine, device memory).
* shutdown (from any state) and error processing: both of the above.
"""
from __future__ import annotations

from typing import Any, Sequence

from rclpy.exceptions import ParameterException
from rclpy.lifecycle import LifecycleNode, State, TransitionCallbackReturn

from depth_unet_ros.errors import DepthUnetError
from depth_unet_ros.node import NODE_NAME, DepthServing, EstimatorFactory, run_node

EXECUTABLE = "depth_lifecycle_node"


class DepthLifecycleNode(DepthServing, LifecycleNode):
    """depth_node's work behind the lifecycle state machine (unconfigured at start)."""

    def __init__(self, estimator_factory: EstimatorFactory | None = None, **node_kwargs: Any):
        super().__init__(NODE_NAME, **node_kwargs)
        self._estimator_factory = estimator_factory
        self.get_logger().info(f"unconfigured; ros2 lifecycle set {self.get_fully_qualified_name()} "
                               "configure, then activate, starts it")

    def on_configure(self, state: State) -> TransitionCallbackReturn:
        try:
            self._load_model(self._read_settings(), self._estimator_factory)
        except (DepthUnetError, ParameterException) as exc:
            self.get_logger().error(
                f"cannot configure: {exc}. The node stays unconfigured; read-only parameters "
                "(model_path, backend, ...) are set when it starts (params file, -p, launch "
                "arguments), so restart it with the fix, then configure again")
            return TransitionCallbackReturn.FAILURE
        self.get_logger().info(f"configured: {self._model_path} loaded; activate starts serving")
        return TransitionCallbackReturn.SUCCESS

    def on_activate(self, state: State) -> TransitionCallbackReturn:
        return self._guarded("activate", self._start_serving)

    def on_deactivate(self, state: State) -> TransitionCallbackReturn:
        return self._guarded("deactivate", self._stop_serving)

    def on_cleanup(self, state: State) -> TransitionCallbackReturn:
        return self._guarded("cleanup", self._release_model)

    def on_shutdown(self, state: State) -> TransitionCallbackReturn:
        return self._guarded("shutdown", self.close)

    def on_error(self, state: State) -> TransitionCallbackReturn:
        # SUCCESS from error processing means unconfigured: everything must be gone.
        return self._guarded("error processing", self.close)

    def _guarded(self, what: str, step: Any) -> TransitionCallbackReturn:
        """Run one transition's step; rclpy turns an exception into ERROR without a word, so
        it is logged here first."""
        try:
            step()
        except Exception as exc:  # noqa: BLE001 - reported, and the transition fails with ERROR
            self.get_logger().error(f"{what} failed: {type(exc).__name__}: {exc}")
            return TransitionCallbackReturn.ERROR
        self.get_logger().info(f"{what}: done")
        return TransitionCallbackReturn.SUCCESS


def main(args: Sequence[str] | None = None, estimator_factory: EstimatorFactory | None = None) -> int:
    """Run the managed node until shut down (it waits, unconfigured, for its transitions)."""
    return run_node(lambda: DepthLifecycleNode(estimator_factory=estimator_factory), args)


if __name__ == "__main__":
    import sys

    sys.exit(main())
