"""Metric table of a model (checkpoint, ONNX model or TensorRT engine) on NYU .mat or a folder dataset.

Uses DESIGN.md's protocol: predictions upsampled to the ground truth size and clipped to
[1e-3, 10] m, Eigen crop on 480x640 frames, metrics per image averaged over images.
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path

from depth_unet_ros.backends import BACKEND_CHOICES
from depth_unet_ros.errors import ConfigError



def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--model", default="",
                        help="model to evaluate: a training checkpoint (.pt), an ONNX model "
                             "(.onnx) or a TensorRT engine; default: the bundled model")
    parser.add_argument("--data", required=True,
                        help="nyu_depth_v2_labeled.mat or a folder dataset (one folder per frame "
                             "with rgb.png/jpg, depth_mm.png, camera.json)")
    parser.add_argument("--splits", default=None,
                        help="the official NYU splits.mat (needed for --split train/test on the .mat)")
    parser.add_argument("--split", default=None, choices=("train", "test", "all"),
                        help="which NYU split to score; default: test when --splits is given, "
                             "otherwise all frames")
    parser.add_argument("--depth", default="dense", choices=("dense", "raw"),
                        help="NYU ground truth: in-painted 'dense' depths (the published tables) "
                             "or 'raw' Kinect depth with holes")
    parser.add_argument("--backend", default="auto", choices=BACKEND_CHOICES,
                        help="inference backend; auto chooses from the model file's type and the "
                             "libraries installed here")
    parser.add_argument("--flip-tta", action="store_true",
                        help="also predict the mirrored image and average (test-time augmentation; "
                             "doubles the inference time)")
    parser.add_argument("--json", default=None, metavar="OUT",
                        help="write mean and per-image metrics and latency to this JSON file")
    parser.add_argument("--overwrite", action="store_true",
                        help="replace an existing --json file instead of refusing")
    parser.add_argument("--images", default=None, metavar="DIR",
                        help="save input | prediction | ground truth | error PNGs for evenly "
                             "spaced frames into DIR")
    parser.add_argument("--max-images", type=int, default=8,
                        help="how many comparison PNGs --images saves")
    parser.add_argument("--limit", type=int, default=None, metavar="N",
                        help="evaluate only the first N frames (a quick check, not a result)")
    parser.add_argument("--no-progress", action="store_true",
                        help="hide the progress bar (e.g. in logs)")


def run(args: argparse.Namespace) -> int:
    # Heavy or not-yet-needed modules load here, so `depth-unet --help` stays fast.
    from depth_unet_ros.datasets import open_dataset
    from depth_unet_ros.evaluation.offline import evaluate_dataset
    from depth_unet_ros.evaluation.metrics import format_metric_table
    from depth_unet_ros.inference import load_estimator, resolve_model_path

    json_path = Path(args.json) if args.json else None
    if json_path is not None and json_path.exists() and not args.overwrite:
        raise ConfigError(f"{json_path} already exists; pass --overwrite to replace it or choose "
                          "another --json path")
    if args.limit is not None and args.limit <= 0:
        raise ConfigError(f"--limit must be a positive number of frames, got {args.limit}")
    split = args.split or ("test" if args.splits else "all")

    dataset = open_dataset(args.data, splits=args.splits, split=split, depth=args.depth)
    estimator = None
    try:
        estimator = load_estimator(args.model or "", backend=args.backend)
        result = evaluate_dataset(estimator, dataset, flip_tta=args.flip_tta,
                                  progress=not args.no_progress, save_images_dir=args.images,
                                  max_images_saved=args.max_images, limit=args.limit)
    finally:  # free GPU memory and the HDF5 handle even when evaluation fails
        for resource in (estimator, dataset):
            close = getattr(resource, "close", None)
            if callable(close):
                close()

    row_name = resolve_model_path(args.model).name + (" +flip" if args.flip_tta else "")
    print(f"{result.num_images} images from {args.data} (split {split}, {args.depth} depth)")
    if result.skipped:
        print(f"skipped {len(result.skipped)} frames without valid ground truth")
    print(format_metric_table({row_name: result.metrics}))
    latency = result.latency_summary()
    print(f"latency per frame (predict, incl. resize): median {latency['median']:.1f} ms, "
          f"p90 {latency['p90']:.1f} ms")
    if json_path is not None:
        json_path.parent.mkdir(parents=True, exist_ok=True)
        json_path.write_text(json.dumps(result.to_json_dict(), indent=2) + "\n")
        print(f"wrote {json_path}")
    return 0
