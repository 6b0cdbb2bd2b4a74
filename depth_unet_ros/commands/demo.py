"""The main job: start depth_node on the bundled model as the launch file would, replay the
bundled sample bag (a synthetic handheld sequence with ground truth) through it over DDS, and
print the depth metrics and latency; the report lands in --out.

`depth-unet bag-eval` with defaults. --bag plays your own recording instead; --data turns a
dataset (NYU .mat, a folder dataset) into a temporary bag first.
"""
from __future__ import annotations

import argparse
import shutil
import tempfile
from pathlib import Path

from depth_unet_ros.commands.bag_eval import add_evaluation_arguments
from depth_unet_ros.errors import ConfigError, DatasetError

SAMPLE_BAG = "sample_handheld"


def bundled_sample_bag() -> Path:
    """The sample bag installed with the package (depth_unet_ros/data/sample_handheld)."""
    from importlib.resources import files

    return Path(str(files("depth_unet_ros") / "data" / SAMPLE_BAG))


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_evaluation_arguments(parser, default_out="demo_out")
    parser.add_argument("--bag", default=None,
                        help="rosbag2 to replay (default: the bundled sample bag)")
    parser.add_argument("--data", default=None,
                        help="instead of a bag: nyu_depth_v2_labeled.mat (test split when "
                             "splits.mat is beside it) or a folder dataset, made into a bag first")
    parser.add_argument("--frames", type=int, default=20,
                        help="with --data: how many frames to take")
    parser.add_argument("--hz", type=float, default=10.0,
                        help="with --data: the camera rate of the bag made from it")
    parser.add_argument("--rate", type=float, default=1.0, help="playback speed factor")


def run(args: argparse.Namespace) -> int:
    from depth_unet_ros.bags.replay import ReplayOptions
    from depth_unet_ros.streaming_eval.evaluator import StreamConfig
    from depth_unet_ros.streaming_eval.job import Evaluation, evaluate_and_report

    if args.bag and args.data:
        raise ConfigError("pass --bag or --data, not both")
    if not args.timeout > 0:
        raise ConfigError(f"--timeout must be positive, got {args.timeout}")
    config = StreamConfig(replay=ReplayOptions(rate=args.rate), discovery_timeout_s=args.timeout,
                          answer_timeout_s=args.timeout)
    job = Evaluation(bag=Path(args.bag) if args.bag else bundled_sample_bag(), out=Path(args.out),
                     config=config, model=args.model, backend=args.backend, attach=args.no_node,
                     json_path=Path(args.json) if args.json else None, overwrite=args.overwrite)
    if args.data is None:
        if not (job.bag / "metadata.yaml").is_file():
            raise DatasetError(f"the sample bag {job.bag} is missing; reinstall the package, or "
                               "pass --bag BAG or --data DATASET")
        job.describe = {"data": str(args.bag) if args.bag else
                        "the bundled sample bag (synthetic handheld sequence, held out from training)"}
        evaluate_and_report(job)
        return 0
    temp = Path(tempfile.mkdtemp(prefix="depth_unet_demo_"))
    try:
        job.bag = _dataset_bag(args, temp / "bag")
        job.describe = {"data": f"{args.data} (first {args.frames} frames at {args.hz:g} Hz)"}
        evaluate_and_report(job)
    finally:
        shutil.rmtree(temp, ignore_errors=True)
    return 0


def _dataset_bag(args: argparse.Namespace, out: Path) -> Path:
    """--data as a temporary bag of its first --frames frames."""
    from depth_unet_ros.bags.writer import write_bag
    from depth_unet_ros.datasets import open_dataset

    if args.frames <= 0 or not args.hz > 0:
        raise ConfigError(f"--frames and --hz must be positive, got {args.frames}, {args.hz}")
    dataset = open_dataset(args.data)
    count = min(len(dataset), args.frames)
    if count == 0:
        raise DatasetError(f"{args.data} holds no frames")
    return write_bag((dataset[i] for i in range(count)), out, rate_hz=args.hz, total=count)
