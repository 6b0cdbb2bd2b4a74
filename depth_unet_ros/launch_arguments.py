"""The launch file's arguments, checked and turned into what depth_node is started with.

Pure Python, no ``launch`` import, so every rule here is tested where ROS 2's launch is absent
(a pip venv): a bad value stops ``ros2 launch`` with a message that names the argument and the
fix, instead of a default silently taken or a traceback from deep inside launch.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Mapping

from depth_unet_ros.errors import DepthUnetError
from depth_unet_ros.fastdds_transports import ENV, PROFILES_ENV

# The image topic's default is relative, so it resolves inside the node's namespace:
# /camera/image_raw in the root namespace, /cam1/camera/image_raw with namespace:=cam1.
DEFAULT_IMAGE_TOPIC = "camera/image_raw"
CAMERA_INFO_NAME = "camera_info"  # image_transport's rule: calibration beside the image topic
LARGE_DATA = "LARGE_DATA"
NO_PROFILE = "none"  # fastdds_profile:=none: Fast DDS's own defaults for the node
# depth_node's executables: the plain node, and the managed one that managed:=true starts
# (launch_ros's LifecycleNode action, which needs the lifecycle services from the start).
NODE_EXECUTABLE = "depth_node"
LIFECYCLE_EXECUTABLE = "depth_lifecycle_node"
# The words launch's own IfCondition takes, so every boolean argument reads the same.
BOOLEAN_WORDS = {"true": True, "1": True, "false": False, "0": False}


class LaunchArgumentError(DepthUnetError):
    """A launch argument has a value the node cannot be started with."""


def parse_bool(name: str, text: str) -> bool:
    """``true``/``false`` (or 1/0, any case); anything else is an error naming ``name``."""
    word = text.strip().lower()
    if word not in BOOLEAN_WORDS:
        raise LaunchArgumentError(f"{name}:={text!r} is not a boolean; use {name}:=true or "
                                  f"{name}:=false")
    return BOOLEAN_WORDS[word]


def camera_info_beside(image_topic: str) -> str:
    """The calibration topic of a camera image topic: its last name replaced by camera_info
    (``/cam1/color/image_raw`` -> ``/cam1/color/camera_info``), as camera drivers publish it."""
    head, _, _ = image_topic.rstrip("/").rpartition("/")
    if not head:
        return ("/" if image_topic.startswith("/") else "") + CAMERA_INFO_NAME
    return f"{head}/{CAMERA_INFO_NAME}"


def node_remappings(image_topic: str, camera_info_topic: str = "") -> list[tuple[str, str]]:
    """depth_node's input remappings, as the launch file and our tools give them; camera_info
    beside the image topic unless given."""
    return [("image", image_topic),
            ("image/compressed", image_topic + "/compressed"),  # compressed_input:=true
            ("camera_info", camera_info_topic or camera_info_beside(image_topic))]


@dataclass(frozen=True)
class NodeLaunch:
    """How the launch file starts depth_node: parameters, remappings, extra environment."""

    namespace: str
    params_file: str
    overrides: dict[str, object]
    remappings: list[tuple[str, str]]
    environment: dict[str, str] = field(default_factory=dict)
    managed: bool = False  # a lifecycle node: unconfigured until configured and activated


def depth_executable(managed: bool) -> str:
    """depth_node's executable: the managed (lifecycle) one for ``managed:=true``."""
    return LIFECYCLE_EXECUTABLE if managed else NODE_EXECUTABLE


def node_launch(values: Mapping[str, str]) -> NodeLaunch:
    """Check the performed launch arguments (all strings) and derive the node's start.

    Empty ``model``/``backend`` keep the params file's values; an empty ``image_topic`` is
    DEFAULT_IMAGE_TOPIC; an empty ``camera_info_topic`` lies beside the image topic, so a
    namespaced or remapped camera never gets another camera's calibration. An empty
    ``fastdds_profile`` leaves the node's own rule (``fastdds_transports.node_profile``);
    NO_PROFILE or a file overrides it for the node alone. ``managed`` true starts the
    lifecycle node (LIFECYCLE_EXECUTABLE) instead.
    """
    params_file = values.get("params_file", "")
    if not params_file or not Path(params_file).is_file():
        raise LaunchArgumentError(
            f"params_file:={params_file!r} is not a file; pass an existing YAML of node "
            "parameters, or leave params_file out for the package's config/depth.yaml")
    overrides: dict[str, object] = {
        "use_sim_time": parse_bool("use_sim_time", values.get("use_sim_time", "false"))}
    if values.get("model"):  # checked by the node, whose failure then ends the launch
        overrides["model_path"] = values["model"]
    if values.get("backend"):
        overrides["backend"] = values["backend"]
    large_data = parse_bool("large_data_transport", values.get("large_data_transport", "false"))
    environment = {ENV: LARGE_DATA} if large_data else {}
    profile = values.get("fastdds_profile", "")
    if profile == NO_PROFILE:
        environment[PROFILES_ENV] = ""  # present and empty: Fast DDS's defaults, no node profile
    elif profile:
        if not Path(profile).is_file():
            raise LaunchArgumentError(
                f"fastdds_profile:={profile!r} is not a file; pass a Fast DDS XML profile, "
                f"fastdds_profile:={NO_PROFILE} for Fast DDS's defaults, or leave it out")
        environment[PROFILES_ENV] = profile
    return NodeLaunch(
        namespace=values.get("namespace", ""), params_file=params_file, overrides=overrides,
        remappings=node_remappings(values.get("image_topic") or DEFAULT_IMAGE_TOPIC,
                                   values.get("camera_info_topic", "")),
        environment=environment,
        managed=parse_bool("managed", values.get("managed", "false")))


def vo_launch(values: Mapping[str, str], vo_params_file: str) -> NodeLaunch | None:
    """How the launch file starts vo_node beside depth_node (``vo:=true``), else None.

    Same namespace and use_sim_time as depth_node. vo_node subscribes depth/image,
    depth/features and depth/camera_info, relative names that resolve to the depth node's
    outputs in that namespace, so they need no remapping; its ``image`` (the camera's image,
    used with its parameter use_image) is remapped to the depth node's image topic. Its
    parameters come from ``vo_params_file``.
    """
    if not parse_bool("vo", values.get("vo", "false")):
        return None
    if not Path(vo_params_file).is_file():
        raise LaunchArgumentError(
            f"vo:=true needs vo_node's parameters, but {vo_params_file!r} is not a file; "
            "install the package (its config/vo.yaml) or leave vo out")
    return NodeLaunch(
        namespace=values.get("namespace", ""), params_file=vo_params_file,
        overrides={"use_sim_time": parse_bool("use_sim_time", values.get("use_sim_time", "false"))},
        remappings=[("image", values.get("image_topic") or DEFAULT_IMAGE_TOPIC)])


def exit_error(returncode: int | None, shutting_down: bool, node: str = "depth_node") -> str | None:
    """Why the launch must fail when ``node`` exited with ``returncode``; None when the exit
    is normal (0, or any end while launch itself is shutting down, e.g. after Ctrl-C)."""
    if shutting_down or returncode in (0, None):
        return None
    return (f"{node} exited with code {returncode} (see its 'cannot start' error above); "
            "ros2 launch ends with an error so that scripts can tell")
