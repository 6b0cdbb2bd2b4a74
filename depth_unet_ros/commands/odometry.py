"""Visual odometry over a recorded sequence: the depth model and a tracker, scored by evo.

Runs the model (the bundled one unless --model) on every frame of a folder dataset or a bag,
feeds its depth and decoder features to the tracker, and writes the camera trajectory in the
TUM format (stamp_s tx ty tz qx qy qz qw, one line per frame, camera optical frame, world = the
first frame's camera). With reference poses (pose.json in the frames, /camera/pose in a bag) it
prints ATE (RMSE after an SE(3) alignment without scale: the depth is metric, so scale errors
count) and RPE over 1 s, both by evo. The depth fed to the tracker is what depth_node publishes
with its defaults (no focal scaling unless --focal-scaling), or the sensor's (--depth sensor).
--tracker opencv runs OpenCV's RGB-D odometry instead, and --compare adds runs on the same
frames (the model runs once), for a side-by-side table.
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path

from depth_unet_ros.backends import BACKEND_CHOICES
from depth_unet_ros.errors import ConfigError

EXAMPLES = """examples:
  depth-unet synth --handheld --frames 300 --seed 11 --out data/walk11
  depth-unet odometry --data data/walk11 --out walk11.txt --json walk11.json --plot walk11.png
  depth-unet odometry --data data/walk11 --out walk11.txt --compare opencv:model --compare opencv:sensor
  depth-unet odometry --data depth_unet_ros/data/sample_handheld --out sample.txt
  depth-unet odometry --data ../shared/data/real_handheld_7scenes --rig config/train_real_default.yaml \\
      --frames 420:500 --drop-duplicates --out kitchen.txt --compare opencv:model --compare opencv:sensor
"""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--data", required=True,
                        help="a folder dataset (frame folders with rgb, depth_mm.png, camera.json; "
                             "pose.json makes it scored) or a rosbag2 folder (scored against "
                             "/camera/pose)")
    parser.add_argument("--model", default="",
                        help="depth model (.onnx, .pt or TensorRT engine); default: the bundled model")
    parser.add_argument("--backend", default="auto", choices=BACKEND_CHOICES, help="inference backend")
    parser.add_argument("--out", required=True, type=Path, metavar="TRAJ.txt",
                        help="the trajectory in the TUM format; --compare runs go beside it as "
                             "TRAJ.<tracker>-<depth>.txt")
    parser.add_argument("--json", type=Path, default=None, metavar="OUT",
                        help="write frames, failures, path length, ATE/RPE (RMSE, mean, median, "
                             "max in metres) and time per frame of every run to this JSON file")
    parser.add_argument("--plot", type=Path, default=None, metavar="PNG",
                        help="save evo's top view of the aligned trajectories and the ATE over time")
    parser.add_argument("--tracker", default="feature", choices=("feature", "opencv"),
                        help="feature: the package's tracker on the model's decoder features; "
                             "opencv: OpenCV 5's RGB-D odometry (cv2.Odometry, RGB_DEPTH)")
    parser.add_argument("--depth", default="model", choices=("model", "sensor"),
                        help="depth fed to the tracker: the model's, or the dataset's own sensor "
                             "depth (registered to the colour image)")
    parser.add_argument("--compare", action="append", default=[], metavar="TRACKER:DEPTH",
                        help="another run on the same frames, e.g. opencv:model or opencv:sensor "
                             "(repeatable)")
    parser.add_argument("--focal-scaling", action="store_true",
                        help="scale the model's depth by the camera's focal length over the "
                             "training focal, as depth_node does with focal_scaling:=true")
    parser.add_argument("--rig", default=None, metavar="CONFIG.yaml|fx,fy,cx,cy[,tx,ty,tz]",
                        help="the colour camera of a folder dataset whose depth is not registered "
                             "and whose camera.json is the depth camera's (7-Scenes): a training "
                             "config with data.register_colour / register_shift_m, or the numbers")
    parser.add_argument("--frames", default=None, metavar="START:STOP",
                        help="only frames START <= i < STOP (in file order)")
    parser.add_argument("--drop-duplicates", action="store_true",
                        help="skip frames that are byte copies of the one before (sensor repeats)")
    parser.add_argument("--rate", type=float, default=30.0,
                        help="frame rate used to stamp folder frames that have no pose.json")
    parser.add_argument("--overwrite", action="store_true",
                        help="replace existing --out, --json and --plot files instead of refusing")
    parser.add_argument("--no-progress", action="store_true", help="hide the progress bar")


def _specs(args: argparse.Namespace) -> list:
    from depth_unet_ros.odometry.offline import RunSpec

    specs = [RunSpec(args.tracker, args.depth)]
    for text in args.compare:
        tracker, sep, depth = text.partition(":")
        if not sep:
            raise ConfigError(f"--compare takes TRACKER:DEPTH (e.g. opencv:sensor), got {text!r}")
        spec = RunSpec(tracker, depth)
        if spec not in specs:
            specs.append(spec)
    return specs


def _trajectory_path(out: Path, index: int, spec) -> Path:
    return out if index == 0 else out.with_name(f"{out.stem}.{spec.tracker}-{spec.depth}{out.suffix}")


def run(args: argparse.Namespace) -> int:
    from depth_unet_ros.odometry.offline import open_sequence, parse_frame_range, run_odometry
    from depth_unet_ros.odometry.threads import use_one_math_thread
    from depth_unet_ros.odometry.trajectory import (TrajectoryError, fmt_m, plot_scores,
                                                    score_trajectory, write_tum)

    specs = _specs(args)
    outputs = [_trajectory_path(args.out, i, s) for i, s in enumerate(specs)]
    outputs += [p for p in (args.json, args.plot) if p is not None]
    existing = [str(p) for p in outputs if p.exists()]
    if existing and not args.overwrite:
        raise ConfigError(f"{', '.join(existing)} already exist(s); pass --overwrite to replace "
                          "or choose other paths")
    if not args.rate > 0:
        raise ConfigError(f"--rate must be positive frames per second, got {args.rate}")
    frames = open_sequence(args.data, parse_frame_range(args.frames), args.rig,
                           args.drop_duplicates, args.rate,
                           load_sensor_depth=any(s.depth == "sensor" for s in specs))
    use_one_math_thread()  # the model's ONNX Runtime threads are its own
    estimator = None
    try:
        if any(s.needs_model for s in specs):
            from depth_unet_ros.inference import load_estimator

            estimator = load_estimator(args.model, backend=args.backend)
        result = run_odometry(frames, specs, estimator, args.focal_scaling,
                              progress=not args.no_progress)
    finally:
        if estimator is not None:
            estimator.close()

    reference = frames.reference
    runs_json, scored = [], {}
    header = (f"{'run':32s} {'frames':>6s} {'fails':>5s} {'path m':>7s} {'ATE rmse':>9s} "
              f"{'RPE 1s rmse':>11s} {'ms/frame':>8s}")
    lines = [header]
    for path, run_result in zip(outputs, result.runs):
        write_tum(path, run_result.trajectory)
        scores = None
        if reference is not None:
            try:
                scores = score_trajectory(run_result.trajectory, reference)
                scored[run_result.spec.label] = scores
            except TrajectoryError as exc:
                print(f"{run_result.spec.label}: not scored: {exc}")
        ms = sorted(run_result.track_ms)
        median_ms = ms[len(ms) // 2] if ms else 0.0
        entry = {"tracker": run_result.spec.tracker, "depth": run_result.spec.depth,
                 "trajectory": str(path), "frames": len(run_result.trajectory),
                 "failures": run_result.failures, "keyframes": run_result.keyframes,
                 "path_length_m": run_result.trajectory.path_length_m(),
                 "track_ms_per_frame": {"median": median_ms,
                                        "mean": sum(ms) / len(ms) if ms else 0.0},
                 **(scores.as_dict() if scores else {"ate": None, "rpe": None})}
        runs_json.append(entry)
        lines.append(f"{run_result.spec.label:32s} {entry['frames']:6d} {entry['failures']:5d} "
                     f"{entry['path_length_m']:7.3f} "
                     f"{fmt_m(scores.ate.rmse_m if scores else None):>9s} "
                     f"{fmt_m(scores.rpe.rmse_m if scores and scores.rpe else None):>11s} "
                     f"{median_ms:8.1f}")
    inference = sorted(result.inference_ms)
    print(f"{result.frames} frames from {args.data}"
          + (f", reference path {reference.path_length_m():.3f} m over "
             f"{reference.duration_s():.1f} s" if reference is not None else ", no reference poses"))
    print("\n".join(lines))
    if inference:
        print(f"model per frame (predict + node post-processing): median "
              f"{inference[len(inference) // 2]:.1f} ms; focal scale {result.focal_scale:.4f}")
    print(f"wrote {', '.join(str(p) for p in outputs[:len(specs)])}")
    if args.plot is not None:
        if scored:
            plot_scores(args.plot, scored, title=f"{Path(args.data).name}: {result.frames} frames")
            print(f"wrote {args.plot}")
        else:
            print(f"no plot: nothing was scored (no reference poses in {args.data})")
    if args.json is not None:
        summary = {"data": str(args.data), "model": args.model or "bundled",
                   "frames_option": args.frames, "drop_duplicates": args.drop_duplicates,
                   "rig": args.rig, "focal_scaling": args.focal_scaling,
                   "focal_scale": result.focal_scale, "frames": result.frames,
                   "reference_path_length_m": reference.path_length_m() if reference else None,
                   "model_ms_per_frame": inference[len(inference) // 2] if inference else None,
                   **{k: runs_json[0][k] for k in ("tracker", "depth", "failures", "path_length_m",
                                                   "track_ms_per_frame", "ate", "rpe")},
                   "runs": runs_json}
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(summary, indent=2) + "\n")
        print(f"wrote {args.json}")
    return 0
