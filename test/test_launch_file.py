"""launch/depth.launch.py: its arguments (DESIGN.md's set) and the remappings it gives the node.

The static checks read the file with ``ast`` and run everywhere, launch_ros or not; building
the launch description needs launch_ros and is skipped where it is absent (a pip venv).
"""
from __future__ import annotations

import ast
import importlib.util
from pathlib import Path

import pytest

from depth_unet_ros.launch_arguments import node_launch
from depth_unet_ros.streaming_eval.node_process import node_command

LAUNCH_FILE = Path(__file__).resolve().parents[1] / "launch" / "depth.launch.py"
# DESIGN.md's arguments, plus fastdds_profile: the node's own participant settings for stock
# graphs (README, Performance).
DESIGN_ARGUMENTS = {"model", "backend", "image_topic", "camera_info_topic", "namespace",
                    "params_file", "use_sim_time", "large_data_transport", "fastdds_profile", "vo",
                    "managed"}


def _calls(name: str) -> list[ast.Call]:
    tree = ast.parse(LAUNCH_FILE.read_text(), str(LAUNCH_FILE))
    return [node for node in ast.walk(tree) if isinstance(node, ast.Call)
            and getattr(node.func, "id", getattr(node.func, "attr", None)) == name]


def _declared_defaults() -> dict[str, object]:
    """Argument name -> default_value (None when it is computed, e.g. params_file)."""
    declared = {}
    for call in _calls("DeclareLaunchArgument"):
        default = next((kw.value for kw in call.keywords if kw.arg == "default_value"), None)
        declared[ast.literal_eval(call.args[0])] = (
            default.value if isinstance(default, ast.Constant) else None)
    return declared


def test_launch_file_declares_designs_arguments_with_their_defaults():
    """The arguments are DESIGN.md's set; the image topic's default is launch_arguments' one
    definition, camera_info's is derived (empty), and the large-data transport is opt-in (the
    node inherits the user's transports)."""
    declared = _declared_defaults()
    assert set(declared) == DESIGN_ARGUMENTS
    assert declared["image_topic"] is None  # the DEFAULT_IMAGE_TOPIC name, not a copy
    assert "default_value=DEFAULT_IMAGE_TOPIC" in LAUNCH_FILE.read_text()
    assert declared["camera_info_topic"] == ""
    assert declared["large_data_transport"] == "false"
    assert declared["use_sim_time"] == "false"
    assert declared["vo"] == "false"
    assert declared["managed"] == "false"  # the plain node stays the default


def test_launch_file_passes_every_argument_to_node_launch():
    """Every declared argument reaches launch_arguments.node_launch, where it is checked."""
    tree = ast.parse(LAUNCH_FILE.read_text())
    names = next(node.value for node in ast.walk(tree) if isinstance(node, ast.Assign)
                 and getattr(node.targets[0], "id", None) == "NODE_ARGUMENTS")
    assert set(ast.literal_eval(names)) == DESIGN_ARGUMENTS


def test_launch_file_remaps_the_same_topics_as_node_command(tmp_path):
    """bag-eval and the tests start the node through node_process.node_command; it must remap
    the same node topics as the launch file (image, image/compressed, camera_info)."""
    params = tmp_path / "params.yaml"
    params.write_text("{}\n")
    launched = {name for name, _ in node_launch({"params_file": str(params)}).remappings}
    command = node_command("model.onnx", "params.yaml")
    commanded = {command[i + 1].split(":=")[0] for i, arg in enumerate(command) if arg == "-r"}
    assert launched == commanded == {"image", "image/compressed", "camera_info"}


def _load_launch_module():
    spec = importlib.util.spec_from_file_location("depth_launch", LAUNCH_FILE)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_launch_description_builds_with_designs_arguments():
    """With launch_ros installed, generate_launch_description() builds and declares exactly
    DESIGN.md's arguments."""
    pytest.importorskip("launch_ros", reason="launch_ros not installed (a ROS 2 install has it)")
    description = _load_launch_module().generate_launch_description()
    assert {arg.name for arg in description.get_launch_arguments()} == DESIGN_ARGUMENTS


def test_params_file_default_falls_back_to_the_source_tree_without_ament_prefix_path(monkeypatch):
    """ament_index raises OSError when AMENT_PREFIX_PATH is unset: the source tree's YAML is used."""
    pytest.importorskip("launch_ros", reason="launch_ros not installed (a ROS 2 install has it)")
    monkeypatch.delenv("AMENT_PREFIX_PATH", raising=False)
    path = Path(_load_launch_module()._default_params_file())
    assert path == LAUNCH_FILE.parents[1] / "config" / "depth.yaml" and path.is_file()


def _run_launch(arguments: dict[str, str]) -> int:
    """The launch file under a LaunchService, as `ros2 launch` runs it; its return code."""
    from launch import LaunchDescription, LaunchDescriptionSource, LaunchService
    from launch.actions import IncludeLaunchDescription

    service = LaunchService()
    service.include_launch_description(LaunchDescription([IncludeLaunchDescription(
        LaunchDescriptionSource(_load_launch_module().generate_launch_description()),
        launch_arguments=list(arguments.items()))]))
    return service.run()


@pytest.mark.ros
@pytest.mark.parametrize("arguments", [
    {"model": "/nonexistent/model.onnx"}, {"backend": "bogus"}, {"backend": "torch"},
    {"params_file": "/nonexistent.yaml"}, {"large_data_transport": "yes"},
    {"use_sim_time": "maybe"}, {"vo": "yes"}])
def test_a_bad_argument_or_a_node_that_cannot_start_ends_the_launch_with_an_error(arguments):
    """Scripts can tell: a node exiting with an error, or an argument that cannot be used,
    makes the launch end by itself with a non-zero code."""
    pytest.importorskip("launch_ros", reason="launch_ros not installed (a ROS 2 install has it)")
    assert _run_launch(arguments) != 0


@pytest.mark.ros
def test_vo_true_starts_vo_node_beside_depth_node_in_its_namespace():
    """vo:=true with namespace:=cam1: both executables start, and vo_node reports that it tracks
    cam1's depth outputs into /cam1/odom; then the launch is shut down and ends cleanly."""
    pytest.importorskip("launch_ros", reason="launch_ros not installed (a ROS 2 install has it)")
    from launch import LaunchDescription, LaunchDescriptionSource, LaunchService
    from launch.actions import (EmitEvent, IncludeLaunchDescription, RegisterEventHandler,
                                TimerAction)
    from launch.event_handlers import OnProcessIO, OnProcessStart
    from launch.events import Shutdown

    started, vo_lines = set(), []

    def on_start(event, context):
        started.add(event.action.node_executable)

    def on_output(event):
        text = event.text.decode(errors="replace")
        if "vo_node" in event.action.node_executable and "tracking " in text:
            vo_lines.append(text)
            return EmitEvent(event=Shutdown(reason="vo_node is tracking"))
        return None

    service = LaunchService()
    service.include_launch_description(LaunchDescription([
        RegisterEventHandler(OnProcessStart(on_start=on_start)),
        RegisterEventHandler(OnProcessIO(on_stdout=on_output, on_stderr=on_output)),
        IncludeLaunchDescription(
            LaunchDescriptionSource(_load_launch_module().generate_launch_description()),
            launch_arguments=[("vo", "true"), ("namespace", "cam1")]),
        TimerAction(period=60.0, actions=[EmitEvent(event=Shutdown(reason="timed out"))]),
    ]))
    assert service.run() == 0
    assert {"depth_node", "vo_node"} <= {Path(e).name for e in started}, started
    assert vo_lines and "/cam1/depth/image" in vo_lines[0] and "/cam1/odom" in vo_lines[0], vo_lines


@pytest.mark.ros
def test_managed_true_starts_a_lifecycle_node_that_launch_configures_and_activates():
    """managed:=true starts depth_lifecycle_node as launch_ros's LifecycleNode action: it comes
    up unconfigured, and launch's ChangeState events (what a user's own launch file would
    emit) take it through configure to inactive and activate to active."""
    pytest.importorskip("launch_ros", reason="launch_ros not installed (a ROS 2 install has it)")
    from launch import LaunchDescription, LaunchDescriptionSource, LaunchService
    from launch.actions import (EmitEvent, IncludeLaunchDescription, OpaqueFunction,
                                RegisterEventHandler, TimerAction)
    from launch.event_handlers import OnProcessStart
    from launch.events import Shutdown
    from launch_ros.event_handlers import OnStateTransition
    from launch_ros.events.lifecycle import ChangeState
    from lifecycle_msgs.msg import Transition

    started, reached = set(), []

    def change(transition_id: int) -> EmitEvent:
        return EmitEvent(event=ChangeState(lifecycle_node_matcher=lambda action: True,
                                           transition_id=transition_id))

    def on_start(event, context):
        started.add(event.action.node_executable)
        return change(Transition.TRANSITION_CONFIGURE)

    def on_goal(state: str, then):
        def record(context):
            reached.append(state)
            return [then]
        return RegisterEventHandler(OnStateTransition(goal_state=state,
                                                      entities=[OpaqueFunction(function=record)]))

    service = LaunchService()
    service.include_launch_description(LaunchDescription([
        RegisterEventHandler(OnProcessStart(on_start=on_start)),
        on_goal("inactive", change(Transition.TRANSITION_ACTIVATE)),
        on_goal("active", EmitEvent(event=Shutdown(reason="depth_node is active"))),
        IncludeLaunchDescription(
            LaunchDescriptionSource(_load_launch_module().generate_launch_description()),
            launch_arguments=[("managed", "true"), ("namespace", "managed1")]),
        TimerAction(period=60.0, actions=[EmitEvent(event=Shutdown(reason="timed out"))]),
    ]))
    assert service.run() == 0
    assert {Path(e).name for e in started} == {"depth_lifecycle_node"}, started
    assert reached == ["inactive", "active"], reached
