"""Start depth_node for one camera.

    ros2 launch depth_unet_ros depth.launch.py model:=/path/model.onnx \
        image_topic:=/camera/color/image_raw

Arguments left empty (model, backend) keep the value from params_file, so the YAML stays the
single place for defaults. The image topic defaults to camera/image_raw inside the namespace
(/camera/image_raw in the root one), and camera_info to the topic beside the image topic, so
``namespace:=cam1`` or ``image_topic:=/cam1/color/image_raw`` alone gives a self-consistent
camera. A bad argument, or a depth_node that exits with an error, ends the launch non-zero;
the checks live in depth_unet_ros.launch_arguments, tested without launch. ``vo:=true`` also
starts vo_node (parameters from config/vo.yaml) in the same namespace, on this node's depth,
features and camera_info, and on image_topic's images where they pair (use_image); it publishes
odometry on <namespace>/odom.

``managed:=true`` starts the managed variant instead (executable depth_lifecycle_node, through
launch_ros's LifecycleNode action): same name, parameters and topics, but it waits
unconfigured until ``ros2 lifecycle set /depth_node configure`` (parameters read, model
loaded; a model that does not load fails this transition and the node waits on, so the launch
does not end) and ``ros2 lifecycle set /depth_node activate`` (serving). ``deactivate`` stops
its output, ``cleanup`` frees the model. A lifecycle manager, or launch's ChangeState events
from an including launch file, can drive it instead (<namespace>/depth_node when namespaced).

Fast DDS: on stock settings the node gives its own participant a shipped profile (shared
memory sized for VGA outputs), so consumers on their defaults get every output whole;
``fastdds_profile`` overrides that (``none``, or a file). ``large_data_transport`` (default
false: the node inherits the user's environment) sets FASTDDS_BUILTIN_TRANSPORTS=LARGE_DATA
for the node only, and a node whose transports differ from the camera's and consumers' hears
and is heard by none of them. A best-effort VGA camera needs LARGE_DATA in every process
(camera, node, consumers): large_data_transport:=true plus ``export
FASTDDS_BUILTIN_TRANSPORTS=LARGE_DATA`` in the others. Whole, unfragmented images
(``LARGE_DATA?max_msg_size=4MB``, after raising net.core.rmem_max and wmem_max: see the
README) are exported in every shell, this one too, with large_data_transport left false so
that the node inherits them.
"""
from pathlib import Path

from launch import LaunchDescription
from launch.actions import DeclareLaunchArgument, OpaqueFunction, RegisterEventHandler
from launch.event_handlers import OnProcessExit
from launch.substitutions import LaunchConfiguration
from launch_ros.actions import Node

try:  # in launch_ros since Dashing; without it the managed node runs, just not as launch's
    from launch_ros.actions import LifecycleNode
except ImportError:  # pragma: no cover
    LifecycleNode = Node

from depth_unet_ros.backends import BACKEND_CHOICES
from depth_unet_ros.launch_arguments import (DEFAULT_IMAGE_TOPIC, depth_executable, exit_error,
                                             node_launch, vo_launch)

PACKAGE = "depth_unet_ros"
NODE_ARGUMENTS = ("model", "backend", "image_topic", "camera_info_topic", "namespace",
                  "params_file", "use_sim_time", "large_data_transport", "fastdds_profile", "vo",
                  "managed")


def _default_params_file(name: str = "depth.yaml") -> str:
    """The installed config/<name>, or the source tree's when the package is not installed."""
    try:
        from ament_index_python.packages import get_package_share_directory

        return str(Path(get_package_share_directory(PACKAGE)) / "config" / name)
    except (ImportError, LookupError, OSError):  # not installed / AMENT_PREFIX_PATH unset
        return str(Path(__file__).resolve().parents[1] / "config" / name)


def _fail_on_error_exit(event, context, node="depth_node"):
    """Raising here is how launch learns of an error: it shuts down and `ros2 launch` exits 1."""
    error = exit_error(event.returncode, context.is_shutdown, node)
    if error:
        raise RuntimeError(error)


def _depth_node(context, *args, **kwargs):
    values = {name: LaunchConfiguration(name).perform(context) for name in NODE_ARGUMENTS}
    start = node_launch(values)  # LaunchArgumentError: ends the launch
    node = (LifecycleNode if start.managed else Node)(
        package=PACKAGE,
        executable=depth_executable(start.managed),
        name="depth_node",
        namespace=start.namespace,
        parameters=[start.params_file, start.overrides],
        remappings=start.remappings,
        additional_env=start.environment,
        output="screen",
        emulate_tty=True,
    )
    actions = [node, RegisterEventHandler(OnProcessExit(target_action=node,
                                                        on_exit=_fail_on_error_exit))]
    vo = vo_launch(values, _default_params_file("vo.yaml"))
    if vo is not None:  # vo:=true: the pose node on this depth node's outputs, same namespace
        vo_node = Node(package=PACKAGE, executable="vo_node", name="vo_node",
                       namespace=vo.namespace, parameters=[vo.params_file, vo.overrides],
                       remappings=vo.remappings, output="screen", emulate_tty=True)
        actions += [vo_node, RegisterEventHandler(OnProcessExit(
            target_action=vo_node,
            on_exit=lambda event, context: _fail_on_error_exit(event, context, "vo_node")))]
    return actions


def generate_launch_description() -> LaunchDescription:
    arguments = [
        DeclareLaunchArgument("model", default_value="",
                              description="model file (.onnx, .engine, .pt); empty = params_file's "
                                          "model_path, else the bundled model"),
        DeclareLaunchArgument("backend", default_value="",
                              description=f"{' | '.join(BACKEND_CHOICES)}; empty = params_file's"),
        DeclareLaunchArgument("image_topic", default_value=DEFAULT_IMAGE_TOPIC,
                              description="camera image topic (sensor_msgs/Image); relative names "
                                          "resolve in the namespace (/camera/image_raw in the root "
                                          "namespace)"),
        DeclareLaunchArgument("camera_info_topic", default_value="",
                              description="camera calibration topic (sensor_msgs/CameraInfo); empty "
                                          "= camera_info beside image_topic"),
        DeclareLaunchArgument("namespace", default_value="",
                              description="outputs go to <namespace>/depth/...; one per camera"),
        DeclareLaunchArgument("params_file", default_value=_default_params_file(),
                              description="node parameters (YAML); must exist"),
        DeclareLaunchArgument("use_sim_time", default_value="false",
                              description="true | false: use /clock (bag replay)"),
        DeclareLaunchArgument("large_data_transport", default_value="false",
                              description="true | false. true: set FASTDDS_BUILTIN_TRANSPORTS=LARGE_DATA "
                                          "for the node only. Leave false for a reliable camera (qos "
                                          "auto works on default transports); a best-effort VGA camera "
                                          "needs true AND the same export in the camera's and every "
                                          "consumer's shell, or nothing connects"),
        DeclareLaunchArgument("fastdds_profile", default_value="",
                              description="Fast DDS XML profile for the node's participant alone. "
                                          "Empty: where the shell sets no Fast DDS transports or "
                                          "profiles, the node uses its shipped one (default "
                                          "transports, shared-memory segment sized for VGA "
                                          "outputs, so stock consumers get every output whole "
                                          "and fast); 'none': Fast DDS's defaults; or a file"),
        DeclareLaunchArgument("vo", default_value="false",
                              description="true | false. true: also start vo_node (config/vo.yaml) "
                                          "in the same namespace: odometry on <namespace>/odom "
                                          "from this node's depth, features and camera_info, "
                                          "and image_topic's images where they pair"),
        DeclareLaunchArgument("managed", default_value="false",
                              description="true | false. true: depth_node as a lifecycle node "
                                          "(depth_lifecycle_node), unconfigured until `ros2 "
                                          "lifecycle set /depth_node configure`, then activate"),
    ]
    return LaunchDescription([*arguments, OpaqueFunction(function=_depth_node)])
