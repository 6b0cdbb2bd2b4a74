"""launch_arguments: the launch file's rules, without launch. A bad argument stops the launch
with a message naming it; a namespaced or remapped camera gets its own calibration."""
from __future__ import annotations

import pytest

from depth_unet_ros.launch_arguments import (DEFAULT_IMAGE_TOPIC, LaunchArgumentError,
                                             camera_info_beside, exit_error, node_launch,
                                             parse_bool)


@pytest.fixture
def params_file(tmp_path):
    path = tmp_path / "depth.yaml"
    path.write_text("depth_node:\n  ros__parameters: {}\n")
    return str(path)


def _remapped(start) -> dict[str, str]:
    return dict(start.remappings)


@pytest.mark.parametrize("text, value", [("true", True), ("True", True), ("1", True),
                                         ("false", False), ("FALSE", False), ("0", False)])
def test_booleans_take_the_words_launch_conditions_take(text, value):
    """true/false/1/0 in any case, as launch's IfCondition reads them."""
    assert parse_bool("use_sim_time", text) is value


@pytest.mark.parametrize("text", ["yes", "maybe", "", "on", "2"])
def test_any_other_boolean_word_is_an_error_naming_the_argument(text):
    """`large_data_transport:=yes` is refused with the argument and the two valid spellings,
    not read as false (or passed to launch, which fails with an object repr)."""
    with pytest.raises(LaunchArgumentError, match=r"large_data_transport:=.*true.*false"):
        parse_bool("large_data_transport", text)


@pytest.mark.parametrize("image, info", [
    ("/camera/image_raw", "/camera/camera_info"),
    ("/cam1/color/image_raw", "/cam1/color/camera_info"),
    ("camera/image_raw", "camera/camera_info"),
    ("/image", "/camera_info"),
    ("image", "camera_info"),
    ("/cam1/color/image_raw/", "/cam1/color/camera_info"),
])
def test_camera_info_lies_beside_the_image_topic(image, info):
    """The calibration topic is the image topic's sibling, as camera drivers publish it."""
    assert camera_info_beside(image) == info


def test_defaults_resolve_inside_the_namespace(params_file):
    """With namespace:=cam1 and nothing else, the node hears cam1's images and calibration:
    relative names, resolved by ROS in the node's namespace (/cam1/camera/...)."""
    start = node_launch({"params_file": params_file, "namespace": "cam1", "image_topic": "",
                         "camera_info_topic": ""})
    assert start.namespace == "cam1"
    assert _remapped(start) == {"image": DEFAULT_IMAGE_TOPIC,
                                "image/compressed": DEFAULT_IMAGE_TOPIC + "/compressed",
                                "camera_info": "camera/camera_info"}
    assert not DEFAULT_IMAGE_TOPIC.startswith("/")


def test_a_remapped_image_topic_brings_its_own_calibration(params_file):
    """image_topic:=/cam2/color/image_raw alone subscribes /cam2/color/camera_info; an explicit
    camera_info_topic still wins."""
    start = node_launch({"params_file": params_file, "image_topic": "/cam2/color/image_raw"})
    assert _remapped(start)["camera_info"] == "/cam2/color/camera_info"
    start = node_launch({"params_file": params_file, "image_topic": "/cam2/color/image_raw",
                         "camera_info_topic": "/calib/info"})
    assert _remapped(start)["camera_info"] == "/calib/info"


def test_a_missing_params_file_is_an_error_not_a_silent_default(tmp_path):
    """params_file:=/nonexistent.yaml stops the launch, naming the file and the fix."""
    with pytest.raises(LaunchArgumentError, match="nonexistent.yaml.*not a file"):
        node_launch({"params_file": str(tmp_path / "nonexistent.yaml")})
    with pytest.raises(LaunchArgumentError, match="params_file"):
        node_launch({"params_file": ""})


def test_overrides_keep_the_params_files_values_unless_given(params_file):
    """Empty model and backend are left to the YAML; given ones override it; use_sim_time is a
    checked boolean; the large-data transport is an environment for the node alone."""
    start = node_launch({"params_file": params_file, "model": "", "backend": "",
                         "use_sim_time": "false", "large_data_transport": "false"})
    assert start.overrides == {"use_sim_time": False} and start.environment == {}
    assert start.params_file == params_file
    start = node_launch({"params_file": params_file, "model": "m.onnx", "backend": "onnxruntime",
                         "use_sim_time": "true", "large_data_transport": "true"})
    assert start.overrides == {"use_sim_time": True, "model_path": "m.onnx",
                               "backend": "onnxruntime"}
    assert start.environment == {"FASTDDS_BUILTIN_TRANSPORTS": "LARGE_DATA"}
    with pytest.raises(LaunchArgumentError, match="use_sim_time:='maybe'"):
        node_launch({"params_file": params_file, "use_sim_time": "maybe"})


@pytest.mark.parametrize("code, shutting_down, fails", [
    (1, False, True), (-11, False, True), (0, False, False), (None, False, False),
    (1, True, False), (-2, True, False)])
def test_only_an_error_exit_outside_shutdown_fails_the_launch(code, shutting_down, fails):
    """A node that cannot start (exit 1) or crashes ends `ros2 launch` non-zero; a clean exit,
    or any exit while launch itself shuts down (Ctrl-C), does not."""
    error = exit_error(code, shutting_down)
    assert (error is not None) is fails
    if fails:
        assert str(code) in error


def test_fastdds_profile_overrides_the_nodes_own_choice_for_the_node_alone(params_file, tmp_path):
    """Left empty, the node decides (no environment); 'none' gives Fast DDS's defaults (an empty
    profiles file); a file is given to the node; a missing file is an error."""
    from depth_unet_ros.launch_arguments import NO_PROFILE

    profile = tmp_path / "node.xml"
    profile.write_text("<dds/>\n")
    args = {"params_file": params_file}
    assert node_launch({**args, "fastdds_profile": ""}).environment == {}
    assert node_launch({**args, "fastdds_profile": NO_PROFILE}).environment == {
        "FASTDDS_DEFAULT_PROFILES_FILE": ""}
    assert node_launch({**args, "fastdds_profile": str(profile)}).environment == {
        "FASTDDS_DEFAULT_PROFILES_FILE": str(profile)}
    with pytest.raises(LaunchArgumentError, match="fastdds_profile"):
        node_launch({**args, "fastdds_profile": str(tmp_path / "missing.xml")})


def test_the_shipped_profile_keeps_fastdds_default_transports_with_a_larger_segment():
    """The shipped profile: a default participant profile with shared memory (segment > one
    640x480 32FC1 depth image) and UDPv4, the kinds a stock consumer also has."""
    import xml.etree.ElementTree as ET

    from depth_unet_ros.fastdds_transports import shipped_profile_path

    path = shipped_profile_path()
    ns = {"d": "http://www.eprosima.com"}
    root = ET.parse(path).getroot()
    kinds = {d.find("d:transport_id", ns).text: d for d in root.iterfind(".//d:transport_descriptor", ns)}
    types = {d.find("d:type", ns).text for d in kinds.values()}
    assert types == {"SHM", "UDPv4"}
    shm = next(d for d in kinds.values() if d.find("d:type", ns).text == "SHM")
    assert int(shm.find("d:segment_size", ns).text) > 640 * 480 * 4 * 4
    participant = root.find(".//d:participant", ns)
    assert participant.get("is_default_profile") == "true"
    assert participant.find(".//d:useBuiltinTransports", ns).text == "false"
    used = {t.text for t in participant.iterfind(".//d:userTransports/d:transport_id", ns)}
    assert used == set(kinds)


def test_vo_is_off_by_default_and_refuses_a_non_boolean(params_file):
    """Without vo:=true there is no vo_node; vo:=yes is an error naming the argument."""
    from depth_unet_ros.launch_arguments import vo_launch

    assert vo_launch({"params_file": params_file}, params_file) is None
    assert vo_launch({"vo": "false"}, params_file) is None
    with pytest.raises(LaunchArgumentError, match="vo:="):
        vo_launch({"vo": "yes"}, params_file)


def test_vo_node_shares_the_depth_nodes_namespace_and_sim_time(params_file, tmp_path):
    """vo:=true with namespace:=cam1: vo_node in cam1 with its own params file and use_sim_time;
    its relative inputs are cam1's depth node outputs unremapped, and its image is the depth
    node's camera."""
    from depth_unet_ros.launch_arguments import vo_launch

    vo_params = tmp_path / "vo.yaml"
    vo_params.write_text("{}\n")
    values = {"params_file": params_file, "namespace": "cam1", "vo": "true", "use_sim_time": "true"}
    vo = vo_launch(values, str(vo_params))
    assert vo.namespace == node_launch(values).namespace == "cam1"
    assert vo.params_file == str(vo_params) and vo.overrides == {"use_sim_time": True}
    assert vo.remappings == [("image", DEFAULT_IMAGE_TOPIC)]
    assert dict(node_launch(values).remappings)["image"] == DEFAULT_IMAGE_TOPIC
    remapped = {**values, "image_topic": "/cam1/color/image_raw"}
    assert vo_launch(remapped, str(vo_params)).remappings == [("image", "/cam1/color/image_raw")]
    with pytest.raises(LaunchArgumentError, match="vo.yaml"):
        vo_launch(values, str(tmp_path / "missing" / "vo.yaml"))


def test_an_error_exit_names_the_node_that_exited():
    assert "vo_node exited with code 1" in exit_error(1, False, "vo_node")
    assert exit_error(1, True, "vo_node") is None


def test_managed_starts_the_lifecycle_executable_and_is_off_by_default(params_file):
    """managed:=true picks depth_lifecycle_node; left out or false, the plain depth_node;
    managed:=yes is an error naming the argument."""
    from depth_unet_ros.launch_arguments import depth_executable

    assert not node_launch({"params_file": params_file}).managed
    assert node_launch({"params_file": params_file, "managed": "true"}).managed
    assert (depth_executable(False), depth_executable(True)) == ("depth_node", "depth_lifecycle_node")
    with pytest.raises(LaunchArgumentError, match="managed:="):
        node_launch({"params_file": params_file, "managed": "yes"})


def test_both_executables_are_console_scripts_of_the_package():
    """The names the launch file starts are the ones setup.py installs (and colcon puts in
    lib/depth_unet_ros), each pointing at its node module's main."""
    from pathlib import Path

    from depth_unet_ros.launch_arguments import LIFECYCLE_EXECUTABLE, NODE_EXECUTABLE

    setup = (Path(__file__).resolve().parents[1] / "setup.py").read_text()
    assert f'"{NODE_EXECUTABLE} = depth_unet_ros.node:main"' in setup
    assert f'"{LIFECYCLE_EXECUTABLE} = depth_unet_ros.lifecycle_node:main"' in setup

