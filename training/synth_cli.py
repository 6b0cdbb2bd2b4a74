"""Write synthetic indoor RGB-D frames as a folder dataset (rgb, depth_mm.png, camera.json).

Frame i of seed S is the same on every machine, so a dataset can be regenerated instead of
copied. Frames are named synth_<seed>_<index>.
"""
from __future__ import annotations

import argparse
from pathlib import Path

from depth_unet_ros.errors import ConfigError, DatasetError


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--out", type=Path, required=True,
                        help="output folder; one sub-folder per frame is written into it")
    parser.add_argument("--frames", type=int, required=True, help="number of frames to write")
    parser.add_argument("--seed", type=int, default=0, help="scene seed; frame i depends only on (seed, i)")
    parser.add_argument("--height", type=int, default=480, help="image height in pixels")
    parser.add_argument("--width", type=int, default=640,
                        help="image width in pixels (intrinsics: NYU's, scaled to this size)")
    parser.add_argument("--jpeg", action="store_true",
                        help="write rgb.jpg (quality 95) instead of lossless rgb.png")
    parser.add_argument("--overwrite", action="store_true",
                        help="write into a non-empty --out; frames of the same name are replaced, "
                             "other contents are left as they are")


def run(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from depth_unet_ros.datasets.folder import write_folder_frame
    from depth_unet_ros.datasets.synthetic import SyntheticIndoorDataset

    if args.frames < 1:
        raise ConfigError(f"--frames must be at least 1, got {args.frames}")
    out: Path = args.out
    if out.exists() and not out.is_dir():
        raise DatasetError(f"--out {out} is a file; pass a folder")
    if out.is_dir() and any(out.iterdir()) and not args.overwrite:
        raise DatasetError(f"--out {out} is not empty; choose an empty or new folder, or pass "
                           "--overwrite to write into it")
    dataset = SyntheticIndoorDataset(args.frames, seed=args.seed, height=args.height,
                                     width=args.width)
    for i in tqdm(range(len(dataset)), desc="synth", unit="frame"):
        frame = dataset[i]
        write_folder_frame(out / frame.name, frame, jpeg=args.jpeg)
    print(f"wrote {len(dataset)} frames of {args.width}x{args.height} to {out}")
    return 0
