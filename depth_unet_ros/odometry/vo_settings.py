"""vo_node's parameters as plain data: one table of defaults and descriptions, validated.

``vo_node`` declares exactly this table (with descriptors) and ``config/vo.yaml`` mirrors it (a
test holds the two together). Tracker parameters take their defaults from ``TrackerConfig``, so
the tracker's tuning has one definition. No rclpy here.
"""
from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any, Mapping

from depth_unet_ros.errors import ConfigError
from depth_unet_ros.node_parameters import RELIABILITY_CHOICES
from depth_unet_ros.odometry.tracker import TrackerConfig

_TRACKER = TrackerConfig()
# Tracker settings worth changing on a robot: cost (levels, points, iterations) and how often a
# new keyframe starts (drift grows per keyframe). The rest stay TrackerConfig's.
TRACKER_PARAMETERS: dict[str, str] = {
    "feature_levels": "pyramid levels of the features (the features' size plus halvings); more "
                      "reach larger motions between frames",
    "features_with_image": "also align the features on frames that have their image (off: "
                           "intensity alone there: lower ATE and half the time on every "
                           "sequence measured; the features serve frames without the image)",
    "max_points": "keyframe pixels aligned per level (strongest gradients first); time grows "
                  "linearly with it",
    "max_iterations": "Levenberg-Marquardt iterations per level",
    "keyframe_translation_m": "a new keyframe after this baseline in metres",
    "keyframe_rotation_deg": "a new keyframe after this turn in degrees",
}

# name -> (default, description); read once at start.
PARAMETERS: dict[str, tuple[Any, str]] = {
    "odom_frame": ("odom", "frame_id of the published odometry and /tf parent (REP 105); placed "
                           "at the first tracked camera pose, oriented x forward, y left, z up"),
    "child_frame": ("", "child_frame_id: the frame whose pose is published, which is always the "
                        "depth image's optical frame (x right, y down, z forward); empty = the "
                        "depth's frame_id. With publish_tf, pick a frame without another /tf "
                        "parent"),
    "publish_tf": (True, "also broadcast odom_frame -> child_frame on /tf (where tf2_msgs is "
                         "installed)"),
    "use_image": (True, "also subscribe the camera's image (topic image, sensor_msgs/Image, QoS "
                        "per image_qos_reliability; the launch file remaps it to the depth node's "
                        "camera): a frame "
                        "whose image of the same stamp is there is tracked on its grey intensity "
                        "(real 7-Scenes frames: ATE 2.2 cm against 7.5 on features alone), one "
                        "without it on features alone, never waiting long; /diagnostics counts "
                        "both. false: never subscribe the image"),
    "image_qos_reliability": ("auto", "the camera image subscription's reliability, as "
                                      "depth_node's qos_reliability: auto starts best-effort "
                                      "(hears any camera) and re-subscribes reliable while every "
                                      "publisher of the image is reliable; best_effort | "
                                      "reliable: fixed"),
    "queue_size": (5, "history depth of each input subscription (the image's too)"),
    "max_pending_sets": (8, "stamps waiting for their depth, features and camera_info at once; "
                            "older incomplete ones are dropped and counted"),
    "covariance_scale": (0.0, "0 = pose covariance unknown (-1, nav_msgs' convention); > 0 = the "
                              "tracker's covariance chained over keyframes, times this factor. On "
                              "the sample bag that covariance's sigma was about 45x below the "
                              "actual error (the depth's scale error dominates, which it does not "
                              "model), so calibrate the factor on your camera before trusting it"),
    "diagnostics_period_s": (1.0, "seconds between /diagnostics messages; <= 0 turns them off"),
    **{name: (getattr(_TRACKER, name), description)
       for name, description in TRACKER_PARAMETERS.items()},
}


@dataclass(frozen=True)
class VoSettings:
    """The node's parameters, validated; the defaults are PARAMETERS'."""

    odom_frame: str
    child_frame: str
    publish_tf: bool
    use_image: bool
    image_qos_reliability: str
    queue_size: int
    max_pending_sets: int
    covariance_scale: float
    diagnostics_period_s: float
    tracker: TrackerConfig

    @classmethod
    def from_params(cls, values: Mapping[str, Any]) -> "VoSettings":
        """From parameter values (missing ones take PARAMETERS' defaults); ConfigError names the
        bad parameter."""
        unknown = set(values) - set(PARAMETERS)
        if unknown:
            raise ConfigError(f"unknown vo_node parameter(s): {', '.join(sorted(unknown))}")
        get = {name: values.get(name, default) for name, (default, _) in PARAMETERS.items()}
        if not str(get["odom_frame"]).strip():
            raise ConfigError("odom_frame must not be empty (REP 105 calls it 'odom')")
        for name in ("queue_size", "max_pending_sets", "feature_levels", "max_points",
                     "max_iterations"):
            if int(get[name]) < 1:
                raise ConfigError(f"{name} must be >= 1, got {get[name]}")
        if get["image_qos_reliability"] not in RELIABILITY_CHOICES:
            raise ConfigError("image_qos_reliability must be one of "
                              f"{', '.join(RELIABILITY_CHOICES)}, got "
                              f"{get['image_qos_reliability']!r}")
        if float(get["covariance_scale"]) < 0:
            raise ConfigError("covariance_scale must be >= 0 (0 = unknown), got "
                              f"{get['covariance_scale']}")
        for name in ("keyframe_translation_m", "keyframe_rotation_deg"):
            if not float(get[name]) > 0:
                raise ConfigError(f"{name} must be positive, got {get[name]}")
        tracker = replace(_TRACKER, **{name: type(getattr(_TRACKER, name))(get[name])
                                       for name in TRACKER_PARAMETERS})
        return cls(odom_frame=str(get["odom_frame"]), child_frame=str(get["child_frame"]),
                   publish_tf=bool(get["publish_tf"]), use_image=bool(get["use_image"]),
                   image_qos_reliability=str(get["image_qos_reliability"]),
                   queue_size=int(get["queue_size"]),
                   max_pending_sets=int(get["max_pending_sets"]),
                   covariance_scale=float(get["covariance_scale"]),
                   diagnostics_period_s=float(get["diagnostics_period_s"]), tracker=tracker)
