"""vo_node's parameters: config/vo.yaml mirrors the declared defaults (one definition, held by
this test), tracker defaults come from TrackerConfig, and bad values name the parameter."""
from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from depth_unet_ros.errors import ConfigError
from depth_unet_ros.odometry.tracker import TrackerConfig
from depth_unet_ros.odometry.vo_settings import PARAMETERS, TRACKER_PARAMETERS, VoSettings

VO_YAML = Path(__file__).resolve().parents[1] / "config" / "vo.yaml"


def test_vo_yaml_lists_the_nodes_own_parameters_with_their_defaults_and_names_the_trackers():
    """Every vo_node parameter with the declared default; tracker parameters only named (in
    comments), so the tracker's tuning stays its own single definition."""
    text = VO_YAML.read_text()
    params = yaml.safe_load(text)["/**"]["ros__parameters"]
    assert set(params) == set(PARAMETERS) - set(TRACKER_PARAMETERS)
    for name, value in params.items():
        default = PARAMETERS[name][0]
        assert type(value) is type(default) and value == default, name
    for name in TRACKER_PARAMETERS:
        assert f"#   {name}: <" in text, name


def test_tracker_parameters_default_to_the_trackers_own_config():
    settings = VoSettings.from_params({})
    assert settings.tracker == TrackerConfig()
    for name in TRACKER_PARAMETERS:
        assert PARAMETERS[name][0] == getattr(TrackerConfig(), name)


def test_values_reach_the_tracker_and_bad_ones_are_refused_by_name():
    settings = VoSettings.from_params({"max_points": 500, "keyframe_rotation_deg": 4,
                                       "child_frame": "cam", "publish_tf": False})
    assert settings.tracker.max_points == 500 and settings.tracker.keyframe_rotation_deg == 4.0
    assert (settings.child_frame, settings.publish_tf) == ("cam", False)
    for bad in ({"queue_size": 0}, {"covariance_scale": -1.0}, {"odom_frame": " "},
                {"max_iterations": 0}, {"keyframe_translation_m": -1.0},
                {"image_qos_reliability": "best_available"}):
        with pytest.raises(ConfigError, match=next(iter(bad))):
            VoSettings.from_params(bad)
    with pytest.raises(ConfigError, match="unknown"):
        VoSettings.from_params({"odom": "x"})


def test_the_image_follows_the_camera_by_default_with_depth_nodes_choices():
    """image_qos_reliability: auto by default, and depth_node's qos_reliability choices."""
    from depth_unet_ros.node_parameters import PARAMETERS as DEPTH_PARAMETERS

    assert VoSettings.from_params({}).image_qos_reliability == "auto"
    for choice in DEPTH_PARAMETERS["qos_reliability"].choices:
        assert VoSettings.from_params({"image_qos_reliability": choice}).image_qos_reliability == choice
