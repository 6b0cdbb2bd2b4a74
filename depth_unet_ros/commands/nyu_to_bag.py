"""NYU .mat, a folder dataset or synthetic frames -> a rosbag2 (MCAP or sqlite3).

Per frame: /camera/image_raw (rgb8), /camera/camera_info (the dataset's intrinsics) and
/camera/depth/ground_truth (32FC1 metres, NaN where invalid), one header stamp for all three
and for the bag timestamps, frames spaced 1/--rate apart from a fixed epoch. Play it with
`ros2 bag play BAG` (MCAP on Humble needs ros-humble-rosbag2-storage-mcap) or `depth-unet replay`.
"""
from __future__ import annotations

import argparse
from pathlib import Path

from depth_unet_ros.errors import DepthUnetError

EXAMPLES = """examples:
  depth-unet nyu-to-bag --data nyu_depth_v2_labeled.mat --splits splits.mat --split test --out nyu_test
  depth-unet nyu-to-bag --data data/nyu_samples --out samples --storage sqlite3 --rate 5
  depth-unet nyu-to-bag --synthetic 20 --out synth_bag
"""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--data", default=None,
                        help="nyu_depth_v2_labeled.mat or a folder dataset (one folder per frame "
                             "with rgb.png/jpg, depth_mm.png, camera.json)")
    parser.add_argument("--synthetic", type=int, default=None, metavar="N",
                        help="instead of --data, N synthetic indoor frames (seed 0, 640x480)")
    parser.add_argument("--splits", default=None,
                        help="the official NYU splits.mat (needed for --split train/test on the .mat)")
    parser.add_argument("--split", default=None, choices=("train", "test", "all"),
                        help="which NYU split to convert; default: test when --splits is given, "
                             "otherwise all frames")
    parser.add_argument("--depth", default="dense", choices=("dense", "raw"),
                        help="NYU ground truth: in-painted 'dense' depths or 'raw' Kinect depth "
                             "with holes (NaN in the bag)")
    parser.add_argument("--out", required=True, help="rosbag2 folder to create")
    parser.add_argument("--storage", default="mcap", choices=("mcap", "sqlite3"),
                        help="rosbag2 storage plugin")
    parser.add_argument("--rate", type=float, default=10.0, metavar="HZ",
                        help="frames per second of the stamps (and of `ros2 bag play`)")
    parser.add_argument("--frame-id", default="camera_rgb_optical_frame",
                        help="header.frame_id of every message")
    parser.add_argument("--limit", type=int, default=None, metavar="N",
                        help="convert only the first N frames")
    parser.add_argument("--overwrite", action="store_true", help="replace --out if it exists")


def run(args: argparse.Namespace) -> int:
    from depth_unet_ros.bags.writer import write_bag
    from depth_unet_ros.datasets import open_dataset
    from depth_unet_ros.errors import DatasetError

    if (args.data is None) == (args.synthetic is None):
        raise DepthUnetError("pass exactly one of --data PATH or --synthetic N")
    if args.limit is not None and args.limit < 1:
        raise DepthUnetError(f"--limit must be at least 1, got {args.limit}")
    if args.synthetic is not None:
        from depth_unet_ros.datasets.synthetic.scenes import SyntheticIndoorDataset

        source, dataset = f"{args.synthetic} synthetic frames", SyntheticIndoorDataset(args.synthetic)
    else:
        source = args.data
        if not Path(args.data).exists():
            raise DatasetError(f"dataset {args.data} does not exist; pass "
                               "nyu_depth_v2_labeled.mat or a folder dataset")
        split = args.split or ("test" if args.splits else "all")
        dataset = open_dataset(args.data, splits=args.splits, split=split, depth=args.depth)
    count = len(dataset) if args.limit is None else min(len(dataset), args.limit)
    if count == 0:
        raise DatasetError(f"{source} holds no frames (after split/limit); nothing to write")
    frames = (dataset[i] for i in range(count))
    out = write_bag(frames, args.out, storage=args.storage, rate_hz=args.rate,
                    frame_id=args.frame_id, overwrite=args.overwrite, total=count)
    print(f"wrote {count} frames from {source} to {out} ({args.storage}, {args.rate:g} Hz)")
    return 0
