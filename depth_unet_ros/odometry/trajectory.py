"""Camera trajectories: the TUM text format, and ATE / RPE scores and plots through evo.

A trajectory is one (4, 4) world-from-camera pose per stamp, camera = the optical frame (x
right, y down, z forward). Files use the TUM RGB-D format, ``stamp_s tx ty tz qx qy qz qw`` one
line per frame, which evo, the TUM tools and most SLAM systems read. The scores are the field's
standard ones, computed by evo rather than by hand: ATE = the translation error after an SE(3)
Umeyama alignment *without* scale (our depth is metric, so a wrong scale must count as error),
and RPE = the translation drift over every pair of poses about 1 s apart. Both are reported as RMSE
(the usual headline), mean, median and max, in metres.
"""
from __future__ import annotations

import math
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from depth_unet_ros.errors import DatasetError, DepthUnetError
from depth_unet_ros.rotations import quaternion_xyzw_to_rotation, rotation_to_quaternion_xyzw

RPE_DELTA_S = 1.0  # drift over one second: the TUM benchmark's usual RPE window
MAX_STAMP_DIFF_S = 0.01  # estimate and reference poses further apart in time are not paired


class TrajectoryError(DepthUnetError):
    """Trajectories that cannot be scored (too short, no common stamps) or a bad TUM file."""


@dataclass(frozen=True)
class Trajectory:
    """Poses at stamps: ``stamps_ns`` (N,) int64, ``world_from_camera`` (N, 4, 4) float64."""

    stamps_ns: np.ndarray
    world_from_camera: np.ndarray

    def __post_init__(self) -> None:
        stamps = np.asarray(self.stamps_ns, dtype=np.int64).reshape(-1)
        poses = np.asarray(self.world_from_camera, dtype=np.float64).reshape(-1, 4, 4)
        if len(stamps) != len(poses):
            raise TrajectoryError(f"{len(stamps)} stamps but {len(poses)} poses")
        object.__setattr__(self, "stamps_ns", stamps)
        object.__setattr__(self, "world_from_camera", poses)

    @classmethod
    def from_poses(cls, stamps_ns: list[int], poses: list[np.ndarray]) -> "Trajectory":
        return cls(np.array(stamps_ns, dtype=np.int64).reshape(-1),
                   np.array(poses, dtype=np.float64).reshape(-1, 4, 4))

    def __len__(self) -> int:
        return len(self.stamps_ns)

    @property
    def positions_m(self) -> np.ndarray:
        """(N, 3) camera centres in the world."""
        return self.world_from_camera[:, :3, 3]

    def path_length_m(self) -> float:
        """Sum of the distances between consecutive camera centres."""
        if len(self) < 2:
            return 0.0
        return float(np.linalg.norm(np.diff(self.positions_m, axis=0), axis=1).sum())

    def duration_s(self) -> float:
        return float(self.stamps_ns[-1] - self.stamps_ns[0]) * 1e-9 if len(self) else 0.0

    def to_evo(self):
        """The same poses as an ``evo.core.trajectory.PoseTrajectory3D`` (stamps in seconds)."""
        from evo.core.trajectory import PoseTrajectory3D

        return PoseTrajectory3D(timestamps=self.stamps_ns.astype(np.float64) * 1e-9,
                                poses_se3=list(self.world_from_camera))


def pose_matrix(position_m: np.ndarray, quaternion_xyzw: np.ndarray) -> np.ndarray:
    """(4, 4) world-from-camera from a position and an (x, y, z, w) quaternion."""
    pose = np.eye(4)
    pose[:3, :3] = quaternion_xyzw_to_rotation(np.asarray(quaternion_xyzw, dtype=np.float64))
    pose[:3, 3] = np.asarray(position_m, dtype=np.float64)
    return pose


def write_tum(path: str | os.PathLike, trajectory: Trajectory) -> Path:
    """Write ``stamp_s tx ty tz qx qy qz qw`` lines (stamps to the nanosecond); returns path."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    lines = []
    for stamp_ns, pose in zip(trajectory.stamps_ns, trajectory.world_from_camera):
        q = rotation_to_quaternion_xyzw(pose[:3, :3])
        seconds, nanos = divmod(int(stamp_ns), 1_000_000_000)
        values = " ".join(f"{v:.9f}" for v in (*pose[:3, 3], *q))
        lines.append(f"{seconds}.{nanos:09d} {values}")
    path.write_text("".join(line + "\n" for line in lines))
    return path


def read_tum(path: str | os.PathLike) -> Trajectory:
    """Read a TUM trajectory (``#`` comments and blank lines skipped)."""
    path = Path(path)
    try:
        text = path.read_text()
    except OSError as exc:
        raise DatasetError(f"cannot read trajectory {path} ({exc}); pass a TUM file "
                           "(stamp_s tx ty tz qx qy qz qw per line)") from exc
    stamps, poses = [], []
    for number, line in enumerate(text.splitlines(), 1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        fields = line.split()
        try:
            if len(fields) != 8:
                raise ValueError(f"{len(fields)} fields")
            stamps.append(_seconds_to_ns(fields[0]))
            values = [float(v) for v in fields[1:]]
        except ValueError as exc:
            raise TrajectoryError(f"{path}:{number}: not a TUM pose line ({exc}); each line must "
                                  "be 'stamp_s tx ty tz qx qy qz qw'") from exc
        poses.append(pose_matrix(values[:3], values[3:]))
    return Trajectory.from_poses(stamps, poses)


def _seconds_to_ns(text: str) -> int:
    """Decimal seconds -> integer nanoseconds without float rounding (1.7e9 s has ~7 digits
    of fraction left in a double)."""
    whole, _, fraction = text.partition(".")
    if "e" in text.lower() or not whole.lstrip("-").isdigit() or (fraction and not fraction.isdigit()):
        return int(round(float(text) * 1e9))
    return int(whole) * 1_000_000_000 + int((fraction + "000000000")[:9])


@dataclass(frozen=True)
class ErrorStats:
    """Summary of per-pose errors in metres."""

    rmse_m: float
    mean_m: float
    median_m: float
    max_m: float
    count: int

    @classmethod
    def of(cls, errors_m: np.ndarray) -> "ErrorStats":
        e = np.asarray(errors_m, dtype=np.float64)
        return cls(float(np.sqrt(np.mean(e * e))), float(e.mean()), float(np.median(e)),
                   float(e.max()), int(e.size))

    def as_dict(self) -> dict:
        return {"rmse_m": self.rmse_m, "mean_m": self.mean_m, "median_m": self.median_m,
                "max_m": self.max_m, "count": self.count}


@dataclass(frozen=True)
class TrajectoryScores:
    """ATE (after SE(3) alignment, no scale) and RPE (translation, over all pairs of poses
    ``rpe_delta_frames`` apart: the frame count nearest to ``RPE_DELTA_S`` at the sequence's
    median frame rate, as evo 1.38 counts deltas in frames or metres, not seconds).

    ``ate_errors_m`` and ``ate_times_s`` (seconds from the first matched pose) are per matched
    pose, for plots; ``aligned`` is the estimate moved onto the reference by the alignment.
    ``rpe`` is None when the matched part is shorter than the RPE window.
    """

    ate: ErrorStats
    rpe: ErrorStats | None
    rpe_delta_frames: int
    matched: int
    ate_errors_m: np.ndarray
    ate_times_s: np.ndarray
    aligned: Trajectory
    reference: Trajectory

    def as_dict(self) -> dict:
        return {"ate": self.ate.as_dict(), "rpe": self.rpe.as_dict() if self.rpe else None,
                "rpe_delta_s": RPE_DELTA_S, "rpe_delta_frames": self.rpe_delta_frames,
                "matched_poses": self.matched,
                "alignment": "SE(3) Umeyama, no scale (evo align, correct_scale=False)"}


def score_trajectory(estimate: Trajectory, reference: Trajectory,
                     max_stamp_diff_s: float = MAX_STAMP_DIFF_S) -> TrajectoryScores:
    """ATE and RPE of ``estimate`` against ``reference``, by evo, on poses paired by stamp."""
    from evo.core import metrics, sync
    from evo.core.geometry import GeometryException
    from evo.core.metrics import PoseRelation, Unit

    if len(estimate) < 2 or len(reference) < 2:
        raise TrajectoryError(f"scoring needs at least 2 poses in each trajectory, got "
                              f"{len(estimate)} estimated and {len(reference)} reference")
    try:
        ref, est = sync.associate_trajectories(reference.to_evo(), estimate.to_evo(),
                                               max_diff=max_stamp_diff_s)
    except sync.SyncException as exc:
        raise TrajectoryError(f"no estimated pose has a reference pose within "
                              f"{max_stamp_diff_s} s ({exc}); do the stamps come from the same "
                              "clock?") from exc
    if ref.num_poses < 3:
        raise TrajectoryError(f"only {ref.num_poses} poses pair by stamp; need 3 or more")
    try:
        est.align(ref, correct_scale=False)
    except GeometryException as exc:  # e.g. an estimate that never moved (every frame failed)
        raise TrajectoryError(f"the estimate cannot be aligned to the reference ({exc}); a "
                              "trajectory that stays in one place or on one line has no unique "
                              "alignment") from exc
    ape = metrics.APE(PoseRelation.translation_part)
    ape.process_data((ref, est))
    rpe_frames = max(1, int(round(RPE_DELTA_S / float(np.median(np.diff(ref.timestamps))))))
    rpe_stats = None
    if ref.num_poses > rpe_frames:
        rpe = metrics.RPE(PoseRelation.translation_part, delta=rpe_frames, delta_unit=Unit.frames,
                          all_pairs=True)
        rpe.process_data((ref, est))
        rpe_stats = ErrorStats.of(rpe.error)
    stamps_ns = np.round(np.asarray(est.timestamps) * 1e9).astype(np.int64)
    return TrajectoryScores(
        ate=ErrorStats.of(ape.error), rpe=rpe_stats, rpe_delta_frames=rpe_frames,
        matched=int(ref.num_poses), ate_errors_m=np.asarray(ape.error, dtype=np.float64),
        ate_times_s=np.asarray(est.timestamps) - est.timestamps[0],
        aligned=Trajectory(stamps_ns, np.array(est.poses_se3)),
        reference=Trajectory(np.round(np.asarray(ref.timestamps) * 1e9).astype(np.int64),
                             np.array(ref.poses_se3)))


def plot_scores(path: str | os.PathLike, runs: dict[str, TrajectoryScores],
                title: str = "") -> Path:
    """PNG with evo's plots: the reference and each aligned estimate seen from above (the
    plane of the reference's two largest extents), and each run's ATE over time."""
    import matplotlib

    matplotlib.use("Agg")  # files only: no display needed (and none on a robot or in CI)
    import matplotlib.pyplot as plt
    from evo.tools import plot

    if not runs:
        raise TrajectoryError("nothing to plot: no scored run")
    reference = next(iter(runs.values())).reference
    mode = _top_view(reference.positions_m)
    fig = plt.figure(figsize=(12, 5.5))
    ax = plot.prepare_axis(fig, mode, 121)
    plot.traj(ax, mode, reference.to_evo(), style="--", color="black", label="reference")
    colours = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    for i, (label, scores) in enumerate(runs.items()):
        plot.traj(ax, mode, scores.aligned.to_evo(), color=colours[i % len(colours)],
                  label=f"{label} (ATE {scores.ate.rmse_m:.3f} m)")
    ax.set_title("top view, estimates aligned to the reference (SE(3), no scale)")
    ax.legend(fontsize=8)
    err_ax = fig.add_subplot(122)
    plt.sca(err_ax)  # evo's error_array labels the current axes
    for i, (label, scores) in enumerate(runs.items()):
        plot.error_array(err_ax, scores.ate_errors_m, x_array=scores.ate_times_s,
                         color=colours[i % len(colours)], name=label, xlabel="time (s)",
                         ylabel="ATE, translation (m)",
                         title="absolute trajectory error over time")
    if title:
        fig.suptitle(title)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110, bbox_inches="tight")
    plt.close(fig)
    return path


def _top_view(positions_m: np.ndarray):
    """evo's PlotMode over the two axes along which the reference moved most."""
    from evo.tools.plot import PlotMode

    spread = np.ptp(positions_m, axis=0) if len(positions_m) else np.ones(3)
    a, b = sorted(int(i) for i in np.argsort(spread)[-2:])
    return PlotMode("xyz"[a] + "xyz"[b])


def fmt_m(value: float | None) -> str:
    """A length for tables: millimetres-precise metres, '-' when missing."""
    return "-" if value is None or not math.isfinite(value) else f"{value:.3f}"
