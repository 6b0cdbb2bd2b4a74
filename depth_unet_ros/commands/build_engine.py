"""Build a TensorRT engine from the ONNX artifact into the engine cache (``depth-unet build-engine``).

Run this on the machine that will run the node: an engine is tied to the TensorRT version and
GPU it was built on. The node finds the engine in the cache by itself; ``--out`` also copies it
(with its sidecar) to a path of your choice.
"""
from __future__ import annotations

import argparse
import shutil
from pathlib import Path

from depth_unet_ros.backends.engine_cache import CACHE_ENV, PRECISIONS, sidecar_path
from depth_unet_ros.errors import ModelLoadError


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("onnx", type=Path, help="the exported model (.onnx)")
    parser.add_argument("--precision", choices=PRECISIONS, default="fp16",
                        help="fp16 is the usual choice on Jetson; int8 needs --calib")
    parser.add_argument("--calib", type=Path, default=None,
                        help="int8 calibration images: a folder of images, a folder dataset, or the NYU .mat")
    parser.add_argument("--cache-dir", type=Path, default=None,
                        help=f"engine cache folder (default: ${CACHE_ENV} or ~/.cache/depth_unet_ros/engines)")
    parser.add_argument("--force", action="store_true", help="rebuild even when a matching engine is cached")
    parser.add_argument("--max-batch", type=int, default=1,
                        help="largest batch the engine accepts (> 1 needs an export with --dynamic-batch)")
    parser.add_argument("--workspace-mib", type=int, default=1024, help="TensorRT builder workspace in MiB")
    parser.add_argument("--out", type=Path, default=None, help="also copy the engine (and its .json sidecar) here")


def run(args: argparse.Namespace) -> int:
    if not args.onnx.is_file():
        raise ModelLoadError(f"model file {args.onnx} does not exist; create it with "
                             "depth-unet export CHECKPOINT --out model.onnx")
    from depth_unet_ros.backends.tensorrt_backend import ensure_engine, require_tensorrt

    require_tensorrt()
    engine, built = ensure_engine(args.onnx, args.precision, args.cache_dir, args.calib,
                                  args.max_batch, args.force, workspace=args.workspace_mib << 20)
    print(f"{'built' if built else 'cached (up to date)'}: {engine}")
    if args.out is not None:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(engine, args.out)
        shutil.copyfile(sidecar_path(engine), sidecar_path(args.out))
        print(f"copied to {args.out} (+ {sidecar_path(args.out).name})")
    return 0
