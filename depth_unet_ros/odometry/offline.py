"""Odometry over a recorded sequence, without ROS: frames -> depth model -> tracker -> trajectory.

What the robot runs online (camera -> ``depth_node`` -> tracker), replayed from a folder dataset
or a bag so that a tracker can be scored against reference poses and compared with another on
exactly the same frames. The depth is what the node publishes: the model's prediction at the
image's size, unscaled unless ``focal_scaling`` (the node's parameter, off by default) is on,
clipped to the model's range with NaN outside, through the node's own ``node_core`` functions.
The model runs once per frame however many trackers are compared.

Frame sources: a folder dataset, whose frames may carry ``pose.json`` (``depth-unet synth
--handheld``'s format: camera-to-world of the optical frame, with ``stamp_ns``); with a
``RigCalibration`` its depth is registered into the colour camera (``datasets.registered``), and
the reference poses, which are the depth camera's in such recordings, are moved to the colour
camera; or a bag, scored against ``/camera/pose``.
"""
from __future__ import annotations

import json
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator, Sequence

import numpy as np

from depth_unet_ros.datasets.base import Intrinsics
from depth_unet_ros.datasets.registered import FrameRange, RegisteredSequence
from depth_unet_ros.datasets.registration import RigCalibration
from depth_unet_ros.errors import ConfigError, DatasetError
from depth_unet_ros.odometry.trajectory import Trajectory, pose_matrix

TRACKERS = ("feature", "opencv")
DEPTH_SOURCES = ("model", "sensor")
POSE_FILE = "pose.json"  # datasets.synthetic.handheld.POSE_NAME, without importing the renderer


@dataclass(frozen=True)
class SequenceFrame:
    """One frame as the camera delivers it, with the sensor's depth registered to it."""

    stamp_ns: int
    image_rgb: np.ndarray  # (H, W, 3) uint8
    sensor_depth_m: np.ndarray | None  # (H, W) float32 metres, 0 = invalid; None: not loaded
    intrinsics: Intrinsics  # of image_rgb
    name: str


class FolderSequence:
    """Frames ``frames`` of a folder dataset, with reference poses when every frame has
    ``pose.json``. ``rig``: the colour camera of an unregistered RGB-D rig (7-Scenes): images
    keep the colour camera's intrinsics, sensor depth is registered into it, and reference
    poses are moved from the depth camera to the colour camera. Folders without ``pose.json``
    are stamped at ``rate_hz``. ``load_sensor_depth`` False skips reading (and registering)
    the depth when only the model's is used."""

    def __init__(self, root: str | os.PathLike, rig: RigCalibration | None = None,
                 frames: FrameRange | None = None, drop_duplicates: bool = False,
                 rate_hz: float = 30.0, load_sensor_depth: bool = True) -> None:
        self.name = str(root)
        self.rig = rig
        self.load_sensor_depth = load_sensor_depth
        self._sequence = RegisteredSequence(root, rig, frames, None, drop_duplicates)
        folders = [self._sequence.source.folders[i] for i in self._sequence.indices]
        records = [_read_pose(f / POSE_FILE) for f in folders]
        if all(r is not None for r in records):
            self.stamps_ns = [int(r["stamp_ns"]) for r in records]
            colour_from_depth = np.eye(4)
            if rig is not None:
                colour_from_depth[:3, 3] = rig.colour_from_depth_m
            depth_from_colour = np.linalg.inv(colour_from_depth)
            self.reference: Trajectory | None = Trajectory.from_poses(
                self.stamps_ns, [pose_matrix(r["position"], r["orientation_xyzw"])
                                 @ depth_from_colour for r in records])
        else:
            from depth_unet_ros.bags.clock import stamp_ns

            self.stamps_ns = [stamp_ns(i, rate_hz) for i in self._sequence.indices]
            self.reference = None

    def __len__(self) -> int:
        return len(self._sequence)

    def __iter__(self) -> Iterator[SequenceFrame]:
        for i, stamp in enumerate(self.stamps_ns):
            if self.load_sensor_depth:
                frame = self._sequence[i]
                image, depth, k = frame.image, frame.depth_m, frame.intrinsics
            else:  # the colour image as stored: no depth decoding or registration
                frame = self._sequence.source[self._sequence.indices[i]]
                image, depth = frame.image, None
                k = self.rig.colour if self.rig is not None else frame.intrinsics
            yield SequenceFrame(stamp, image, depth, k, frame.name)


def _read_pose(path: Path) -> dict | None:
    if not path.is_file():
        return None
    try:
        record = json.loads(path.read_text())
        missing = [k for k in ("stamp_ns", "position", "orientation_xyzw") if k not in record]
        if missing:
            raise KeyError(", ".join(missing))
        return record
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise DatasetError(f"{path} is not a pose file ({exc!r}); it needs stamp_ns, position "
                           "and orientation_xyzw, as `depth-unet synth --handheld` writes") from exc


class BagSequence:
    """Frames of a rosbag2 (image, ground-truth depth and camera_info paired by stamp, as
    ``BagDataset`` reads them), scored against ``/camera/pose`` when the bag has it."""

    def __init__(self, path: str | os.PathLike, frames: FrameRange | None = None) -> None:
        from depth_unet_ros.bags import reader as bag_reader
        from depth_unet_ros.bags.writer import POSE_TOPIC
        from depth_unet_ros.datasets.bag import BagDataset

        self.name = str(path)
        self._dataset = BagDataset(path)
        count = len(self._dataset)
        frames = frames or FrameRange(0, count)
        if not 0 <= frames.start < frames.stop <= count:
            raise DatasetError(f"frame range [{frames.start}, {frames.stop}) is outside {path}, "
                               f"which has {count} frames")
        self._indices = range(frames.start, frames.stop)
        all_stamps = self._dataset.stamps_ns
        self.stamps_ns = [all_stamps[i] for i in self._indices]
        self.reference = None
        if POSE_TOPIC in bag_reader.bag_topics(path):
            wanted = set(self.stamps_ns)
            poses = {stamp: pose_matrix(
                         [msg.pose.position.x, msg.pose.position.y, msg.pose.position.z],
                         [msg.pose.orientation.x, msg.pose.orientation.y,
                          msg.pose.orientation.z, msg.pose.orientation.w])
                     for _, stamp, msg in bag_reader.decode(path, [POSE_TOPIC], wanted)}
            stamps = [s for s in self.stamps_ns if s in poses]
            if stamps:
                self.reference = Trajectory.from_poses(stamps, [poses[s] for s in stamps])

    def __len__(self) -> int:
        return len(self.stamps_ns)

    def __iter__(self) -> Iterator[SequenceFrame]:
        for i, stamp in zip(self._indices, self.stamps_ns):
            frame = self._dataset[i]
            yield SequenceFrame(stamp, frame.image, frame.depth_m, frame.intrinsics, frame.name)
        self._dataset.close()


@dataclass(frozen=True)
class RunSpec:
    """One tracker on one depth source."""

    tracker: str  # "feature" | "opencv"
    depth: str  # "model" | "sensor"

    def __post_init__(self) -> None:
        if self.tracker not in TRACKERS:
            raise ConfigError(f"tracker must be one of {', '.join(TRACKERS)}, got {self.tracker!r}")
        if self.depth not in DEPTH_SOURCES:
            raise ConfigError(f"depth must be one of {', '.join(DEPTH_SOURCES)}, got {self.depth!r}")

    @property
    def label(self) -> str:
        return f"{self.tracker} tracker, {self.depth} depth"

    @property
    def needs_model(self) -> bool:
        return self.depth == "model" or self.tracker == "feature"  # features come from the model

    def make_tracker(self) -> Any:
        if self.tracker == "feature":
            from depth_unet_ros.odometry.tracker import FeatureTracker

            return FeatureTracker()
        from depth_unet_ros.odometry.baseline import OpenCvRgbdOdometry

        return OpenCvRgbdOdometry()


@dataclass
class RunResult:
    """A tracker's poses over the sequence and what it cost."""

    spec: RunSpec
    trajectory: Trajectory
    failures: int  # frames the tracker reported ok=False
    keyframes: int
    track_ms: list[float] = field(default_factory=list)


@dataclass
class OdometryOutput:
    runs: list[RunResult]
    frames: int
    inference_ms: list[float]  # per frame: model prediction and the node's post-processing
    focal_scale: float


def model_outputs(estimator: Any, image_rgb: np.ndarray, intrinsics: Intrinsics,
                  focal_scaling: bool) -> tuple[np.ndarray, np.ndarray, float]:
    """(depth_m (H, W) float32 NaN-invalid, features (h, w, C) float32, focal scale): what
    ``depth_node`` publishes for this image with ``output_size: input``."""
    from depth_unet_ros import camera_geometry, node_core

    prediction = estimator.predict(image_rgb, output_size="input")
    meta = estimator.metadata
    scale = (camera_geometry.focal_scale(intrinsics.fx, intrinsics.width, meta.input_width,
                                         meta.focal_px) if focal_scaling else 1.0)
    low, high = node_core.depth_limits_m(node_core.NodeSettings(), meta.min_depth_m,
                                         meta.max_depth_m, scale)
    depth_m = node_core.finalize_depth(prediction.depth_m, scale, low, high)
    features = np.ascontiguousarray(np.transpose(prediction.features, (1, 2, 0)),
                                    dtype=np.float32)
    return depth_m, features, scale


def camera_matrix(k: Intrinsics) -> np.ndarray:
    return np.array([[k.fx, 0.0, k.cx], [0.0, k.fy, k.cy], [0.0, 0.0, 1.0]])


def run_odometry(frames: Any, specs: Sequence[RunSpec], estimator: Any = None,
                 focal_scaling: bool = False, progress: bool = True) -> OdometryOutput:
    """Every spec's tracker over ``frames`` (an iterable of SequenceFrame with ``len``), the
    model run once per frame when any spec needs it."""
    from tqdm import tqdm

    if any(s.needs_model for s in specs) and estimator is None:
        raise ConfigError("a feature tracker or model depth needs the depth model; pass an "
                          "estimator")
    trackers = [s.make_tracker() for s in specs]
    poses: list[list[np.ndarray]] = [[] for _ in specs]
    results = [RunResult(s, Trajectory.from_poses([], []), 0, 0) for s in specs]
    stamps: list[int] = []
    inference_ms: list[float] = []
    scale = 1.0
    for frame in tqdm(frames, total=len(frames), desc="odometry", unit="frame",
                      disable=not progress):
        depth_model = features = None
        if estimator is not None and any(s.needs_model for s in specs):
            start = time.perf_counter()
            depth_model, features, scale = model_outputs(estimator, frame.image_rgb,
                                                         frame.intrinsics, focal_scaling)
            inference_ms.append((time.perf_counter() - start) * 1e3)
        k = camera_matrix(frame.intrinsics)
        stamps.append(frame.stamp_ns)
        for spec, tracker, result, run_poses in zip(specs, trackers, results, poses):
            if spec.depth == "sensor":
                if frame.sensor_depth_m is None:
                    raise DatasetError(f"frame {frame.name} has no sensor depth")
                depth = np.where(frame.sensor_depth_m > 0, frame.sensor_depth_m,
                                 np.float32(np.nan)).astype(np.float32)
            else:
                depth = depth_model
            start = time.perf_counter()
            track = tracker.track(frame.stamp_ns, depth, features, k, frame.image_rgb)
            result.track_ms.append((time.perf_counter() - start) * 1e3)
            result.failures += int(not track.ok)
            result.keyframes += int(track.keyframe)
            run_poses.append(track.world_from_camera)
    for result, run_poses in zip(results, poses):
        result.trajectory = Trajectory.from_poses(stamps, run_poses)
    return OdometryOutput(results, len(stamps), inference_ms, scale)


def parse_frame_range(text: str | None) -> FrameRange | None:
    """``START:STOP`` (either may be empty: 0 / the end is then filled in by the reader)."""
    if not text:
        return None
    start, sep, stop = text.partition(":")
    try:
        if not sep:
            raise ValueError("no colon")
        return FrameRange(int(start or 0), int(stop) if stop else 2**62)
    except ValueError as exc:
        raise ConfigError(f"--frames must be START:STOP (e.g. 420:500), got {text!r}") from exc


def parse_rig(text: str | None, width: int, height: int) -> RigCalibration | None:
    """A colour-depth rig from ``fx,fy,cx,cy[,tx,ty,tz]`` or from a training config's data
    section (``register_colour``, ``register_shift_m``: the calibration the model was trained
    with, e.g. config/train_real_default.yaml for 7-Scenes), for images of width x height."""
    if not text:
        return None
    path = Path(text)
    if path.suffix.lower() in (".yaml", ".yml"):
        import yaml

        try:
            data = (yaml.safe_load(path.read_text()) or {}).get("data") or {}
        except (OSError, yaml.YAMLError) as exc:
            raise ConfigError(f"cannot read --rig {path} ({exc})") from exc
        if data.get("register_colour") is None:
            raise ConfigError(f"--rig {path} has no data.register_colour; pass a training config "
                              "that registers its depth, or fx,fy,cx,cy[,tx,ty,tz]")
        values = [float(v) for v in data["register_colour"]]
        values += [float(v) for v in data.get("register_shift_m", (0.0, 0.0, 0.0))]
    else:
        try:
            values = [float(v) for v in text.split(",")]
        except ValueError:
            values = []
        if len(values) not in (4, 7):
            raise ConfigError(f"--rig must be a training config (.yaml) or fx,fy,cx,cy[,tx,ty,tz], "
                              f"got {text!r}")
        values += [0.0, 0.0, 0.0][: 7 - len(values)]
    fx, fy, cx, cy, tx, ty, tz = values
    return RigCalibration(Intrinsics(fx, fy, cx, cy, width, height), (tx, ty, tz))


def open_sequence(path: str | os.PathLike, frames: FrameRange | None = None,
                  rig_text: str | None = None, drop_duplicates: bool = False,
                  rate_hz: float = 30.0, load_sensor_depth: bool = True) -> Any:
    """FolderSequence or BagSequence for ``path``; a STOP past the end means the end."""
    from depth_unet_ros.datasets.folder import FolderDataset

    path = Path(path)
    if (path / "metadata.yaml").is_file():
        if rig_text or drop_duplicates:
            raise ConfigError("--rig and --drop-duplicates apply to folder datasets, not to bags")
        if frames is not None:
            from depth_unet_ros.datasets.bag import BagDataset

            frames = FrameRange(frames.start, min(frames.stop, len(BagDataset(path))))
        return BagSequence(path, frames)
    if not path.is_dir():
        raise DatasetError(f"--data {path} is neither a folder dataset nor a rosbag2 folder; pass "
                           "one of them (a folder of frame folders with rgb, depth_mm.png, "
                           "camera.json and optionally pose.json)")
    source = FolderDataset(path)
    if frames is not None:
        frames = FrameRange(frames.start, min(frames.stop, len(source)))
    first = source[frames.start if frames else 0].intrinsics
    rig = parse_rig(rig_text, first.width, first.height)
    return FolderSequence(path, rig, frames, drop_duplicates, rate_hz, load_sensor_depth)
