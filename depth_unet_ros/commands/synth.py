"""Write synthetic indoor RGB-D frames as a folder dataset (rgb, depth_mm.png, camera.json)
and/or a rosbag2.

Frame i of seed S is the same on every machine, so a dataset can be regenerated instead of
copied. Independent frames (a new room each) are named synth_<seed>_<index>; with --handheld,
one room filmed by a walking, hand-held camera, named handheld_<seed>_<index>, with its
ground-truth pose: pose.json beside each frame, and /camera/pose, /tf and /tf_static in the bag.
Needs numpy and OpenCV only (rosbags for --bag).
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Iterator

from depth_unet_ros.errors import ConfigError, DatasetError

EXAMPLES = """examples:
  depth-unet synth --out data/synth --frames 1000
  depth-unet synth --handheld --frames 300 --out data/walk --bag data/walk_bag
  depth-unet synth --handheld --frames 48 --bag sample_bag --compress --depth-mm   # ~19.5 MB
"""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--out", type=Path,
                        help="output folder; one sub-folder per frame is written into it")
    parser.add_argument("--frames", type=int, required=True, help="number of frames to write")
    parser.add_argument("--seed", type=int, default=0, help="scene seed; frame i depends only on (seed, i)")
    parser.add_argument("--height", type=int, default=480, help="image height in pixels")
    parser.add_argument("--width", type=int, default=640,
                        help="image width in pixels (intrinsics: NYU's, scaled to this size)")
    parser.add_argument("--jpeg", action="store_true",
                        help="write rgb.jpg (quality 95) instead of lossless rgb.png")
    parser.add_argument("--overwrite", action="store_true",
                        help="write into a non-empty --out (frames of the same name are replaced, "
                             "other contents are left as they are) and replace an existing --bag")
    parser.add_argument("--handheld", action="store_true",
                        help="one room filmed by a walking, hand-held camera, with ground-truth "
                             "poses, instead of independent frames of random rooms")
    parser.add_argument("--rate", type=float, default=30.0,
                        help="frames per second: the handheld camera's rate and the bag's stamps")
    parser.add_argument("--bag", type=Path,
                        help="also (or only) write the frames as a rosbag2 folder; with --handheld "
                             "it carries /camera/pose, /tf and /tf_static")
    parser.add_argument("--storage", choices=("mcap", "sqlite3"), default="mcap",
                        help="bag storage")
    parser.add_argument("--compress", action="store_true",
                        help="zstd-compress the bag (MCAP chunks, or each sqlite3 message); "
                             "ros2 bag play reads it as is")
    parser.add_argument("--depth-mm", action="store_true",
                        help="store the bag's ground-truth depth as 16UC1 millimetres instead of "
                             "32FC1 metres: about 10x smaller once compressed")


def _check_args(args: argparse.Namespace) -> None:
    """Typed errors for options that cannot work together, before anything is written."""
    if args.frames < 1:
        raise ConfigError(f"--frames must be at least 1, got {args.frames}")
    if not args.rate > 0:
        raise ConfigError(f"--rate must be positive frames per second, got {args.rate}")
    if args.out is None and args.bag is None:
        raise ConfigError("pass --out FOLDER, --bag BAG or both: there is nowhere to write")
    if args.bag is None:
        given = [flag for flag, on in (("--compress", args.compress),
                                       ("--depth-mm", args.depth_mm)) if on]
        if given:
            raise ConfigError(f"{', '.join(given)} only apply to --bag; add --bag BAG or drop them")
    out = args.out
    if out is not None and out.exists() and not out.is_dir():
        raise DatasetError(f"--out {out} is a file; pass a folder")
    if out is not None and out.is_dir() and any(out.iterdir()) and not args.overwrite:
        raise DatasetError(f"--out {out} is not empty; choose an empty or new folder, or pass "
                           "--overwrite to write into it")
    if args.bag is not None and args.bag.exists() and not args.overwrite:
        raise DatasetError(f"--bag {args.bag} exists already; pass --overwrite to replace it or "
                           "choose another path")


def _frames(dataset, out: Path | None, jpeg: bool) -> Iterator:
    """Render each frame once; write it to the folder dataset on the way (pose.json too)."""
    from depth_unet_ros.datasets.folder import write_folder_frame
    from depth_unet_ros.datasets.synthetic.handheld import POSE_NAME

    for i in range(len(dataset)):
        frame = dataset[i]
        if out is not None:
            folder = write_folder_frame(out / frame.name, frame, jpeg=jpeg)
            if hasattr(dataset, "pose"):
                (folder / POSE_NAME).write_text(json.dumps(dataset.pose(i).as_json()) + "\n")
        yield frame


def run(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from depth_unet_ros.datasets.synthetic.handheld import HandheldSequence
    from depth_unet_ros.datasets.synthetic.scenes import SyntheticIndoorDataset

    _check_args(args)
    size = dict(seed=args.seed, height=args.height, width=args.width)
    dataset = (HandheldSequence(args.frames, rate_hz=args.rate, **size) if args.handheld
               else SyntheticIndoorDataset(args.frames, **size))
    frames = _frames(dataset, args.out, args.jpeg)
    if args.bag is None:
        for _ in tqdm(frames, total=len(dataset), desc="synth", unit="frame"):
            pass
    else:
        from depth_unet_ros.bags.writer import write_bag

        poses = dataset.poses() if args.handheld else None
        write_bag(frames, args.bag, storage=args.storage, rate_hz=args.rate,
                  overwrite=args.overwrite, total=len(dataset), poses=poses,
                  compress=args.compress, depth_encoding="16UC1" if args.depth_mm else "32FC1")
    where = " and ".join(str(p) for p in (args.out, args.bag) if p is not None)
    print(f"wrote {len(dataset)} frames of {args.width}x{args.height} to {where}")
    return 0
