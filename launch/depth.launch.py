"""Start depth_node for one camera.

    ros2 launch depth_unet_ros depth.launch.py model:=/path/model.onnx \
        image_topic:=/camera/color/image_raw camera_info_topic:=/camera/color/camera_info

Arguments left empty (model, backend) keep the value from params_file, so the YAML stays the
single place for defaults. ``large_data_transport`` (default false: the node inherits the
user's environment) sets FASTDDS_BUILTIN_TRANSPORTS=LARGE_DATA for the node only, and a node
whose transports differ from the camera's and consumers' hears and is heard by none of them.
With the default qos_reliability auto a reliable camera works on the default transports; a
best-effort VGA camera needs LARGE_DATA in every process (camera, node, consumers):
large_data_transport:=true plus ``export FASTDDS_BUILTIN_TRANSPORTS=LARGE_DATA`` in the others.
Whole, unfragmented images (``LARGE_DATA?max_msg_size=4MB``, after raising net.core.rmem_max
and wmem_max: see the README) are exported in every shell, this one too, with
large_data_transport left false so that the node inherits them.
"""
from pathlib import Path

from launch import LaunchDescription
from launch.actions import DeclareLaunchArgument, OpaqueFunction, SetEnvironmentVariable
from launch.conditions import IfCondition
from launch.substitutions import LaunchConfiguration
from launch_ros.actions import Node

PACKAGE = "depth_unet_ros"


def _default_params_file() -> str:
    """The installed config/depth.yaml, or the source tree's when the package is not installed."""
    try:
        from ament_index_python.packages import get_package_share_directory

        return str(Path(get_package_share_directory(PACKAGE)) / "config" / "depth.yaml")
    except (ImportError, LookupError, OSError):  # not installed / AMENT_PREFIX_PATH unset
        return str(Path(__file__).resolve().parents[1] / "config" / "depth.yaml")


def _as_bool(text: str) -> bool:
    return text.strip().lower() in ("true", "1", "yes", "on")


def _depth_node(context, *args, **kwargs):
    value = {name: LaunchConfiguration(name).perform(context) for name in (
        "model", "backend", "image_topic", "camera_info_topic", "namespace", "params_file",
        "use_sim_time")}
    overrides = {"use_sim_time": _as_bool(value["use_sim_time"])}
    if value["model"]:  # empty: keep params_file's model_path (or the bundled model)
        overrides["model_path"] = value["model"]
    if value["backend"]:
        overrides["backend"] = value["backend"]
    image_topic = value["image_topic"]
    return [Node(
        package=PACKAGE,
        executable="depth_node",
        name="depth_node",
        namespace=value["namespace"],
        parameters=[value["params_file"], overrides],
        remappings=[("image", image_topic),
                    ("image/compressed", image_topic + "/compressed"),  # compressed_input:=true
                    ("camera_info", value["camera_info_topic"])],
        output="screen",
        emulate_tty=True,
    )]


def generate_launch_description() -> LaunchDescription:
    arguments = [
        DeclareLaunchArgument("model", default_value="",
                              description="model file (.onnx, .engine, .pt); empty = params_file's "
                                          "model_path, else the bundled model"),
        DeclareLaunchArgument("backend", default_value="",
                              description="auto | onnxruntime | tensorrt | torch; empty = params_file's"),
        DeclareLaunchArgument("image_topic", default_value="/camera/image_raw",
                              description="camera image topic (sensor_msgs/Image)"),
        DeclareLaunchArgument("camera_info_topic", default_value="/camera/camera_info",
                              description="camera calibration topic (sensor_msgs/CameraInfo)"),
        DeclareLaunchArgument("namespace", default_value="",
                              description="outputs go to <namespace>/depth/...; one per camera"),
        DeclareLaunchArgument("params_file", default_value=_default_params_file(),
                              description="node parameters (YAML)"),
        DeclareLaunchArgument("use_sim_time", default_value="false",
                              description="use /clock (bag replay)"),
        DeclareLaunchArgument("large_data_transport", default_value="false",
                              description="true: set FASTDDS_BUILTIN_TRANSPORTS=LARGE_DATA for the "
                                          "node only. Leave false for a reliable camera (qos auto "
                                          "works on default transports); a best-effort VGA camera "
                                          "needs true AND the same export in the camera's and "
                                          "every consumer's shell, or nothing connects"),
    ]
    large_data = SetEnvironmentVariable("FASTDDS_BUILTIN_TRANSPORTS", "LARGE_DATA",
                                        condition=IfCondition(LaunchConfiguration("large_data_transport")))
    return LaunchDescription([*arguments, large_data, OpaqueFunction(function=_depth_node)])
