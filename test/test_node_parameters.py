"""node_parameters is the one table of depth_node's parameters: config/depth.yaml, NodeSettings,
the runtime-settable set and the declared ParameterDescriptors all agree with it."""
from __future__ import annotations

import math
from dataclasses import fields
from pathlib import Path
from types import SimpleNamespace

import pytest
import yaml

from depth_unet_ros import node_core
from depth_unet_ros.errors import ConfigError
from depth_unet_ros.node_core import NodeSettings
from depth_unet_ros.node_parameters import PARAMETERS, RUNTIME_PARAMETERS

CONFIG = Path(__file__).resolve().parents[1] / "config" / "depth.yaml"


def _yaml_parameters() -> dict:
    return yaml.safe_load(CONFIG.read_text())["/**"]["ros__parameters"]


def test_config_yaml_has_exactly_the_tables_parameters_with_its_defaults():
    """The params file users edit holds every parameter, no other, at the table's default
    (and of the default's type: 0.0 stays a float, so ROS declares it a double)."""
    values = _yaml_parameters()
    assert list(values) == list(PARAMETERS)  # same names, same order as the table
    for name, spec in PARAMETERS.items():
        assert values[name] == spec.default, name
        assert type(values[name]) is type(spec.default), name


def test_every_parameter_in_config_yaml_keeps_its_comment():
    """Each parameter line follows a comment (shared by neighbours such as min/max_depth_m):
    the YAML is documentation as well as defaults."""
    lines = [line.strip() for line in CONFIG.read_text().splitlines()]
    for name in PARAMETERS:
        index = next(i for i, line in enumerate(lines) if line.startswith(f"{name}:"))
        above = index - 1
        while lines[above].split(":")[0] in PARAMETERS:  # a neighbour sharing the comment
            above -= 1
        assert lines[above].startswith("#"), f"{name} has no comment above it in {CONFIG.name}"


def test_node_settings_take_their_names_and_defaults_from_the_table():
    """NodeSettings() is the table's defaults, field for field."""
    settings = NodeSettings()
    assert [f.name for f in fields(NodeSettings)] == list(PARAMETERS)
    for name, spec in PARAMETERS.items():
        assert getattr(settings, name) == spec.default, name
    assert NodeSettings.from_params({name: spec.default for name, spec in PARAMETERS.items()}) == settings


def test_runtime_parameters_are_the_tables_writable_ones():
    """What may change at run time is derived from the read-only flags, not listed twice."""
    assert node_core.RUNTIME_PARAMETERS == RUNTIME_PARAMETERS
    assert set(RUNTIME_PARAMETERS) == {"output_size", "min_depth_m", "max_depth_m",
                                       "publish_features", "focal_scaling", "frame_id_override"}


@pytest.mark.parametrize("name", [n for n, s in PARAMETERS.items() if s.choices])
def test_each_choice_is_accepted_and_others_are_refused_by_node_settings(name):
    """The choices a descriptor advertises are exactly what NodeSettings accepts."""
    for choice in PARAMETERS[name].choices:
        assert getattr(NodeSettings.from_params({name: choice}), name) == choice
    with pytest.raises(ConfigError, match=name):
        NodeSettings.from_params({name: "bogus"})


@pytest.mark.parametrize("name", [n for n, s in PARAMETERS.items() if s.range])
def test_each_range_is_what_node_settings_accepts(name):
    """A range's lower end is accepted and the value just below it refused, with the
    parameter named; the upper ends are open (the type's maximum or infinity)."""
    spec = PARAMETERS[name]
    low, high = spec.range
    below = low - 1 if isinstance(low, int) else math.nextafter(low, -math.inf)
    assert getattr(NodeSettings.from_params({name: low}), name) == low
    with pytest.raises(ConfigError, match=name):
        NodeSettings.from_params({name: below})
    assert high in (2**63 - 1, math.inf)
    assert type(low) is type(spec.default) and type(high) is type(spec.default)


# --- the descriptors a live node declares ------------------------------------------------------
rclpy = pytest.importorskip("rclpy", reason="rclpy not installed (pip install .[ros])")


def _fake_estimator_factory(path: str, backend: str, threads: int) -> SimpleNamespace:
    meta = SimpleNamespace(input_width=96, input_height=64, min_depth_m=0.1, max_depth_m=10.0,
                           feature_channels=8)
    return SimpleNamespace(metadata=meta, backend=SimpleNamespace(name="fake"))


def _depth_node(context, overrides=()):
    from rclpy.parameter import Parameter

    from depth_unet_ros.node import DepthNode

    return DepthNode(estimator_factory=_fake_estimator_factory, context=context,
                     parameter_overrides=[Parameter(n, value=v) for n, v in overrides])


def test_a_declared_node_reports_the_tables_descriptions_ranges_choices_and_read_only(context):
    """describe_parameters shows what `ros2 param describe` would: every entry's description and
    read-only flag, integer and floating-point ranges, and the choices as constraints."""
    node = _depth_node(context)
    try:
        described = dict(zip(PARAMETERS, node.describe_parameters(list(PARAMETERS))))
        for name, spec in PARAMETERS.items():
            descriptor = described[name]
            assert descriptor.description == spec.description, name
            assert descriptor.read_only == spec.read_only, name
            for choice in spec.choices:
                assert choice in descriptor.additional_constraints, name
        qos_depth = described["qos_depth"].integer_range[0]
        assert (qos_depth.from_value, qos_depth.to_value) == (1, 2**63 - 1)
        assert described["num_threads"].integer_range[0].from_value == 0
        min_depth = described["min_depth_m"].floating_point_range[0]
        assert (min_depth.from_value, min_depth.to_value) == (0.0, math.inf)
        assert "below max_depth_m" in described["min_depth_m"].additional_constraints
        assert not described["diagnostics_period_s"].floating_point_range  # <= 0: off, no range
    finally:
        node.close()
        node.destroy_node()


def test_run_time_sets_are_checked_by_range_and_by_node_settings(context):
    """Out of range or read-only: refused by rclpy; in range but inconsistent (min above max):
    refused by NodeSettings with its message; a good value is taken."""
    from rclpy.parameter import Parameter

    node = _depth_node(context)
    try:
        def set_one(name, value):
            return node.set_parameters([Parameter(name, value=value)])[0]

        assert not set_one("min_depth_m", -1.0).successful
        assert not set_one("qos_depth", 3).successful  # read-only
        result = set_one("min_depth_m", 5.0)
        assert result.successful
        refused = set_one("max_depth_m", 2.0)
        assert not refused.successful and "must be below max_depth_m" in refused.reason
        assert node._settings.min_depth_m == 5.0 and node._settings.max_depth_m == 0.0
    finally:
        node.close()
        node.destroy_node()


@pytest.mark.parametrize("name, value, message", [
    ("qos_depth", 0, "qos_depth must be >= 1, got 0"),
    ("num_threads", -2, "num_threads must be >= 0 (0 = backend default), got -2"),
    ("max_depth_m", -1.0, "min_depth_m and max_depth_m must be >= 0 (0 = the model's range), "
                          "got 0.0, -1.0"),
])
def test_an_override_out_of_range_at_start_gets_the_nodes_own_message(context, name, value, message):
    """rclpy's range check would say only "out of range"; the node keeps its message, which
    says what the value means (main logs it as "cannot start: ...")."""
    with pytest.raises(ConfigError) as error:
        _depth_node(context, [(name, value)])
    assert str(error.value) == message
