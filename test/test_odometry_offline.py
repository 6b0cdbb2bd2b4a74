"""`depth-unet odometry`: TUM files, evo's scores, the OpenCV baseline and the command end to end
on a synthetic walk, the sample bag and (when ../shared has it) 7-Scenes."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from depth_unet_ros.cli import main
from depth_unet_ros.datasets.folder import write_folder_frame
from depth_unet_ros.datasets.registered import FrameRange
from depth_unet_ros.datasets.synthetic.handheld import POSE_NAME, HandheldSequence
from depth_unet_ros.errors import ConfigError, DatasetError, ImageFormatError
from depth_unet_ros.odometry.baseline import OpenCvRgbdOdometry
from depth_unet_ros.odometry.offline import (FolderSequence, RunSpec, open_sequence,
                                             parse_frame_range, parse_rig, run_odometry)
from depth_unet_ros.odometry.trajectory import (Trajectory, TrajectoryError, read_tum,
                                                score_trajectory, write_tum)

REPO = Path(__file__).resolve().parents[1]
SAMPLE_BAG = REPO / "depth_unet_ros" / "data" / "sample_handheld"
SEVEN_SCENES = REPO / ".." / "shared" / "data" / "real_handheld_7scenes"
RIG_CONFIG = REPO / "config" / "train_real_default.yaml"
START_NS = 1_700_000_000 * 10**9


def _rotation_y(angle: float) -> np.ndarray:
    c, s = np.cos(angle), np.sin(angle)
    return np.array([[c, 0.0, s], [0.0, 1.0, 0.0], [-s, 0.0, c]])


def _walk(n: int = 90, rate_hz: float = 30.0, turning: bool = True) -> Trajectory:
    """A curved 3-D path at 30 Hz, turning about y (or not), for score tests."""
    poses = []
    for i in range(n):
        pose = np.eye(4)
        if turning:
            pose[:3, :3] = _rotation_y(0.02 * i)
        pose[:3, 3] = [0.01 * i, 0.3 * np.sin(i / 15), 0.5 * np.cos(i / 20)]
        poses.append(pose)
    stamps = [START_NS + round(i * 1e9 / rate_hz) for i in range(n)]
    return Trajectory.from_poses(stamps, poses)


def test_tum_round_trip_keeps_stamps_exactly_and_poses(tmp_path):
    walk = _walk(20)
    path = write_tum(tmp_path / "t.txt", walk)
    lines = path.read_text().splitlines()
    assert len(lines) == 20
    assert lines[1].split()[0] == "1700000000.033333333"  # stamp_s to the nanosecond
    assert len(lines[1].split()) == 8  # stamp tx ty tz qx qy qz qw
    path.write_text("# a comment\n\n" + path.read_text())
    back = read_tum(path)
    np.testing.assert_array_equal(back.stamps_ns, walk.stamps_ns)
    np.testing.assert_allclose(back.world_from_camera, walk.world_from_camera, atol=1e-8)


def test_tum_reader_names_the_bad_line(tmp_path):
    path = tmp_path / "bad.txt"
    path.write_text("1.0 0 0 0 0 0 0 1\n2.0 0 0 0 0 0 1\n")
    with pytest.raises(TrajectoryError, match=r"bad.txt:2"):
        read_tum(path)


def test_a_rigid_offset_scores_zero_after_alignment():
    reference = _walk()
    offset = np.eye(4)
    offset[:3, :3] = np.array([[0.0, -1.0, 0.0], [1.0, 0.0, 0.0], [0.0, 0.0, 1.0]])
    offset[:3, 3] = [1.0, -2.0, 0.5]
    estimate = Trajectory(reference.stamps_ns, offset @ reference.world_from_camera)
    scores = score_trajectory(estimate, reference)
    assert scores.matched == 90
    assert scores.ate.rmse_m < 1e-9
    assert scores.rpe is not None and scores.rpe.rmse_m < 1e-9
    assert scores.rpe_delta_frames == 30  # 1 s at 30 Hz


def test_a_known_drift_gives_the_known_rpe_and_a_wrong_scale_counts():
    reference = _walk(turning=False)
    times_s = (reference.stamps_ns - reference.stamps_ns[0]) * 1e-9
    drifted = reference.world_from_camera.copy()
    drifted[:, 0, 3] += 0.02 * times_s  # 2 cm per second along x
    scores = score_trajectory(Trajectory(reference.stamps_ns, drifted), reference)
    assert scores.rpe is not None
    assert scores.rpe.rmse_m == pytest.approx(0.02, rel=1e-6)  # every 1 s pair drifted 2 cm
    assert scores.rpe.count == 90 - 30  # all pairs 30 frames apart
    assert 0.0 < scores.ate.rmse_m < 0.02  # alignment removes part of a linear drift, not all
    half = reference.world_from_camera.copy()
    half[:, :3, 3] *= 0.5  # half the metric scale: no Sim(3) alignment may hide it
    assert score_trajectory(Trajectory(reference.stamps_ns, half), reference).ate.rmse_m > 0.05


def test_scoring_pairs_by_stamp_and_refuses_foreign_clocks():
    reference = _walk()
    later = Trajectory(reference.stamps_ns + 10**12, reference.world_from_camera)
    with pytest.raises(TrajectoryError, match="same clock"):
        score_trajectory(later, reference)
    every_other = Trajectory(reference.stamps_ns[::2], reference.world_from_camera[::2])
    assert score_trajectory(every_other, reference).matched == 45


def test_opencv_baseline_tracks_synthetic_sensor_depth_closely():
    seq = HandheldSequence(20, seed=11, height=120, width=160)
    k = seq.intrinsics
    camera = np.array([[k.fx, 0, k.cx], [0, k.fy, k.cy], [0, 0, 1]])
    tracker = OpenCvRgbdOdometry()
    estimate, reference = [], []
    for i in range(len(seq)):
        frame = seq[i]
        result = tracker.track(seq.stamp_ns(i), frame.depth_m, None, camera, frame.image)
        assert result.ok
        estimate.append(result.world_from_camera)
        pose = seq.pose(i)
        reference.append(np.block([[pose.rotation, pose.position_m[:, None]], [0, 0, 0, 1]]))
    stamps = [seq.stamp_ns(i) for i in range(len(seq))]
    ref = Trajectory.from_poses(stamps, reference)
    scores = score_trajectory(Trajectory.from_poses(stamps, estimate), ref)
    assert ref.path_length_m() > 0.08  # the camera did move (0.11 m)
    assert scores.ate.rmse_m < 0.005
    with pytest.raises(ImageFormatError, match="image_rgb"):
        tracker.track(seq.stamp_ns(20), frame.depth_m, None, camera, None)


def _synthetic_folder(root: Path, frames: int = 32, seed: int = 11) -> Path:
    seq = HandheldSequence(frames, seed=seed, height=120, width=160)
    for i in range(frames):
        folder = write_folder_frame(root / f"f{i:03d}", seq[i])
        (folder / POSE_NAME).write_text(json.dumps(seq.pose(i).as_json()))
    return root


def test_command_on_a_synthetic_walk_writes_tum_json_and_plot(tmp_path, capsys):
    data = _synthetic_folder(tmp_path / "walk")
    out = tmp_path / "run" / "walk.txt"
    argv = ["odometry", "--data", str(data), "--out", str(out), "--json", str(tmp_path / "w.json"),
            "--plot", str(tmp_path / "w.png"), "--compare", "opencv:sensor", "--no-progress"]
    assert main(argv) == 0
    printed = capsys.readouterr().out
    assert "ATE rmse" in printed and "opencv tracker, sensor depth" in printed
    report = json.loads((tmp_path / "w.json").read_text())
    assert report["frames"] == 32 and report["tracker"] == "feature" and report["depth"] == "model"
    assert [(r["tracker"], r["depth"]) for r in report["runs"]] == [
        ("feature", "model"), ("opencv", "sensor")]
    assert report["focal_scaling"] is False and report["focal_scale"] == 1.0  # the node's default
    assert report["reference_path_length_m"] > 0.2
    for run in report["runs"]:
        assert len(read_tum(run["trajectory"])) == 32
        assert run["track_ms_per_frame"]["median"] > 0
    assert Path(report["runs"][1]["trajectory"]).name == "walk.opencv-sensor.txt"
    sensor = report["runs"][1]
    assert sensor["failures"] == 0
    assert sensor["ate"]["rmse_m"] < 0.01  # exact synthetic depth: OpenCV tracks it closely
    assert sensor["rpe"]["rmse_m"] < 0.01 and sensor["rpe_delta_frames"] == 30
    assert (tmp_path / "w.png").stat().st_size > 10_000
    # Refuses to overwrite without --overwrite, naming the flag.
    assert main(argv) == 1
    assert "--overwrite" in capsys.readouterr().err


def test_command_on_the_sample_bag_is_scored_against_camera_pose(tmp_path):
    out = tmp_path / "bag.txt"
    assert main(["odometry", "--data", str(SAMPLE_BAG), "--out", str(out), "--json",
                 str(tmp_path / "b.json"), "--frames", "0:20", "--no-progress"]) == 0
    report = json.loads((tmp_path / "b.json").read_text())
    assert report["frames"] == 20 and report["reference_path_length_m"] > 0.05
    assert report["runs"][0]["tracker"] == "feature" and report["model_ms_per_frame"] > 0
    assert len(read_tum(out)) == 20
    # Scored against /camera/pose unless the estimate cannot be aligned (a tracker that never
    # moved); 20 frames are shorter than the 1 s RPE window, so there is no RPE.
    assert report["rpe"] is None
    if report["ate"] is not None:
        assert np.isfinite(report["ate"]["rmse_m"])


def test_options_are_checked_before_any_work(tmp_path):
    assert parse_frame_range("420:500") == FrameRange(420, 500)
    with pytest.raises(ConfigError, match="START:STOP"):
        parse_frame_range("420")
    rig = parse_rig(str(RIG_CONFIG), 640, 480)  # the calibration the bundled model trained with
    assert (rig.colour.fx, rig.colour.cx, rig.colour.width) == (530.0, 320.0, 640)
    assert rig.colour_from_depth_m == (-0.02, 0.0, 0.0)
    assert parse_rig("500,500,320,240", 640, 480).colour_from_depth_m == (0.0, 0.0, 0.0)
    with pytest.raises(ConfigError, match="fx,fy,cx,cy"):
        parse_rig("500,500", 640, 480)
    with pytest.raises(ConfigError, match="tracker must be"):
        RunSpec("orb", "model")
    with pytest.raises(ConfigError, match="not to bags"):
        open_sequence(SAMPLE_BAG, drop_duplicates=True)


def test_a_rig_moves_the_reference_from_the_depth_to_the_colour_camera(tmp_path):
    data = _synthetic_folder(tmp_path / "walk", frames=3)
    plain = FolderSequence(data, load_sensor_depth=False)
    rig = parse_rig("120,120,80,60,-0.02,0,0", 160, 120)
    moved = FolderSequence(data, rig, load_sensor_depth=False)
    for a, b in zip(plain.reference.world_from_camera, moved.reference.world_from_camera):
        # X_colour = X_depth + t: the colour centre sits at -t in the depth camera's axes
        np.testing.assert_allclose(b[:3, 3], a[:3, 3] + a[:3, :3] @ [0.02, 0.0, 0.0], atol=1e-12)
    assert next(iter(moved)).intrinsics.fx == 120.0


@pytest.mark.skipif(not SEVEN_SCENES.is_dir(), reason="../shared/data/real_handheld_7scenes absent")
def test_seven_scenes_with_the_training_rig_tracks_sensor_depth(tmp_path):
    frames = open_sequence(SEVEN_SCENES, FrameRange(400, 416), str(RIG_CONFIG),
                           drop_duplicates=True)
    assert len(frames) == 14  # frames 406 and 413 repeat the frame before them byte for byte
    assert frames.reference is not None
    output = run_odometry(frames, [RunSpec("opencv", "sensor")], progress=False)
    run = output.runs[0]
    scores = score_trajectory(run.trajectory, frames.reference)
    assert run.failures == 0
    assert scores.ate.rmse_m < 0.03  # real Kinect depth, half a second of walking


def test_scoring_and_the_command_import_neither_torch_nor_rclpy():
    code = ("import sys, numpy as np\n"
            "import depth_unet_ros.commands.odometry\n"
            "heavy = ('torch', 'rclpy', 'evo', 'cv2', 'tqdm', 'onnxruntime', 'matplotlib')\n"
            "assert not [m for m in heavy if m in sys.modules], 'depth-unet --help got slow'\n"
            "import depth_unet_ros.odometry.offline\n"
            "import depth_unet_ros.odometry.baseline\n"
            "from depth_unet_ros.odometry.trajectory import Trajectory, score_trajectory\n"
            "poses = np.tile(np.eye(4), (40, 1, 1)); poses[:, 0, 3] = np.arange(40) * 0.01\n"
            "poses[:, 1, 3] = np.sin(np.arange(40) / 5)\n"
            "t = Trajectory(1_700_000_000 * 10**9 + np.arange(40) * 33_333_333, poses)\n"
            "assert score_trajectory(t, t).ate.rmse_m < 1e-9\n"
            "print(sorted(m for m in sys.modules if m.split('.')[0] in ('torch', 'rclpy')))\n")
    import subprocess
    import sys

    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120,
                         cwd=REPO)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip().splitlines()[-1] == "[]"


def test_a_folder_without_poses_gets_a_trajectory_but_no_scores(tmp_path, capsys):
    seq = HandheldSequence(5, seed=3, height=120, width=160)
    for i in range(5):
        write_folder_frame(tmp_path / "plain" / f"f{i}", seq[i])
    out = tmp_path / "plain.txt"
    assert main(["odometry", "--data", str(tmp_path / "plain"), "--out", str(out), "--tracker",
                 "opencv", "--depth", "sensor", "--rate", "10", "--json", str(tmp_path / "p.json"),
                 "--plot", str(tmp_path / "p.png"), "--no-progress"]) == 0
    assert "no reference poses" in capsys.readouterr().out
    trajectory = read_tum(out)
    assert len(trajectory) == 5 and np.diff(trajectory.stamps_ns).tolist() == [100_000_000] * 4
    assert json.loads((tmp_path / "p.json").read_text())["ate"] is None
    assert not (tmp_path / "p.png").exists()
    assert main(["odometry", "--data", str(tmp_path / "missing"), "--out", str(out),
                 "--overwrite"]) == 1
    assert "neither a folder dataset nor a rosbag2" in capsys.readouterr().err


def test_a_pose_file_without_its_fields_is_a_dataset_error(tmp_path):
    data = _synthetic_folder(tmp_path / "walk", frames=2)
    (data / "f001" / POSE_NAME).write_text(json.dumps({"stamp_ns": 5, "position": [0, 0, 0]}))
    with pytest.raises(DatasetError, match="orientation_xyzw"):
        FolderSequence(data, load_sensor_depth=False)
