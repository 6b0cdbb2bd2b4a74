"""depth_node's parameters, one table: name, default, description, read-only flag, allowed values.

Every other place takes its facts from here: ``node.py`` declares each parameter with a
``ParameterDescriptor`` built from its entry (``ros2 param describe`` shows the ranges and
choices), ``node_core.NodeSettings`` takes its defaults from it, the parameters settable at
run time are the entries that are not read-only, and a test holds ``config/depth.yaml`` (the
copy users edit) to the same names and defaults. No rclpy here, so the table is tested in a
plain venv.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from depth_unet_ros.backends import BACKEND_CHOICES
from depth_unet_ros.inference import OUTPUT_SIZES as OUTPUT_SIZE_CHOICES

RELIABILITY_CHOICES = ("auto", "best_effort", "reliable")
# Open upper ends: a ParameterDescriptor range needs both ends, and these refuse nothing the
# node accepted before the ranges existed.
INT64_MAX = 2**63 - 1
UNBOUNDED = math.inf


@dataclass(frozen=True)
class ParameterSpec:
    """One node parameter. ``read_only``: read once when the node starts (or configures);
    ``choices`` for strings, ``range`` (inclusive, of the default's type) for numbers;
    ``constraints``: what a range or a choice list cannot say, shown by ``ros2 param describe``."""

    name: str
    default: Any
    description: str
    read_only: bool
    choices: tuple[str, ...] = ()
    range: tuple[float, float] | tuple[int, int] | None = None
    constraints: str = ""

    def constraints_text(self) -> str:
        """The descriptor's additional_constraints: the choices, then any other rule."""
        parts = [f"one of: {', '.join(self.choices)}"] if self.choices else []
        return "; ".join(parts + ([self.constraints] if self.constraints else []))


_SPECS = (
    ParameterSpec("model_path", "", "ONNX model (.onnx), TensorRT engine (.engine/.plan) or "
                  "checkpoint (.pt); empty = the model bundled with the package "
                  "(models/default.onnx)", read_only=True),
    ParameterSpec("backend", "auto", "inference backend; auto: TensorRT when it and a CUDA GPU "
                  "are present, else ONNX Runtime", read_only=True,
                  choices=BACKEND_CHOICES),
    ParameterSpec("num_threads", 0, "CPU threads for inference; 0 = the backend's default (ONNX "
                  "Runtime: one per physical core, not pinned to cores)", read_only=True,
                  range=(0, INT64_MAX)),
    ParameterSpec("qos_reliability", "auto", "input QoS; auto starts best-effort (hears any camera) and re-subscribes reliable while "
                  "every publisher of the input is reliable", read_only=True,
                  choices=RELIABILITY_CHOICES),
    ParameterSpec("qos_depth", 1, "input history depth; 1 = newest frame only", read_only=True,
                  range=(1, INT64_MAX)),
    ParameterSpec("output_size", "input", "depth image size: input (the camera's) or network "
                  "(the model's input size, cheaper); camera_info is scaled to match",
                  read_only=False, choices=OUTPUT_SIZE_CHOICES),
    ParameterSpec("min_depth_m", 0.0, "nearest published depth in metres, closer becomes NaN; "
                  "0 = the model's minimum (x the focal scale)", read_only=False,
                  range=(0.0, UNBOUNDED), constraints="below max_depth_m when both are set"),
    ParameterSpec("max_depth_m", 0.0, "farthest published depth in metres, farther becomes NaN; "
                  "0 = the model's maximum (x the focal scale)", read_only=False,
                  range=(0.0, UNBOUNDED), constraints="above min_depth_m when both are set"),
    ParameterSpec("publish_features", True, "publish decoder features on depth/features "
                  "(32FC<C>, HWC)", read_only=False),
    ParameterSpec("compressed_input", False, "subscribe to image/compressed "
                  "(sensor_msgs/CompressedImage, jpeg or png) instead of image", read_only=True),
    ParameterSpec("focal_scaling", False, "when a camera_info has arrived, multiply depth by the "
                  "camera's fx (scaled to the network input width) / the training focal length, "
                  "so cameras with another field of view get metric depth", read_only=False),
    ParameterSpec("diagnostics_period_s", 1.0, "seconds between /diagnostics messages; <= 0 "
                  "turns them off", read_only=True),
    ParameterSpec("frame_id_override", "", "frame_id for the outputs; empty = the input image's",
                  read_only=False),
)

PARAMETERS: dict[str, ParameterSpec] = {spec.name: spec for spec in _SPECS}
# Parameters that take effect while the node runs; the rest are read once at start.
RUNTIME_PARAMETERS: tuple[str, ...] = tuple(s.name for s in _SPECS if not s.read_only)


def default(name: str) -> Any:
    """The default of parameter ``name`` (KeyError for a name the node does not have)."""
    return PARAMETERS[name].default
