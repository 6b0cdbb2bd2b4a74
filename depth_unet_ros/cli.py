"""``depth-unet``: one entry point whose sub-commands live in their own modules.

Each command module exposes ``add_arguments(parser)`` and ``run(args) -> int`` and imports its
heavy libraries (torch, onnx, rclpy, TensorRT) inside ``run``, so ``depth-unet --help`` works on
a machine that has none of them.
"""
from __future__ import annotations

import argparse
import importlib
import sys
from typing import Sequence

from depth_unet_ros import __version__
from depth_unet_ros.errors import DepthUnetError
from depth_unet_ros.stack_dump import enable_stack_dump

# command -> (module, one-line help)
COMMANDS: dict[str, tuple[str, str]] = {
    "train": ("training.train_cli", "train a depth model from a YAML config (resumable)"),
    "evaluate": ("depth_unet_ros.commands.evaluate", "metric table of a model on NYU .mat or a folder dataset"),
    "export": ("training.export", "export a checkpoint to the ONNX artifact with its metadata"),
    "build-engine": ("depth_unet_ros.commands.build_engine", "build a TensorRT engine into the cache"),
    "infer": ("depth_unet_ros.commands.infer", "depth and colour maps for image files"),
    "model-info": ("training.model_info", "parameters and GMACs of a model config"),
    "synth": ("depth_unet_ros.commands.synth", "synthetic indoor RGB-D frames, or a handheld sequence with poses, as a folder dataset or rosbag2"),
    "nyu-to-bag": ("depth_unet_ros.commands.nyu_to_bag", "NYU .mat or a folder dataset to a rosbag2 (MCAP or sqlite3)"),
    "replay": ("depth_unet_ros.commands.replay", "publish a rosbag2 over DDS with its recorded timing (no ros2 bag play needed)"),
    "bag-eval": ("depth_unet_ros.commands.bag_eval", "replay a bag through depth_node and score its depth against the bag's ground truth"),
    "demo": ("depth_unet_ros.commands.demo", "the main job: the bundled model on the bundled sample bag, over DDS: quality and latency report"),
    "odometry": ("depth_unet_ros.commands.odometry", "camera trajectory of the model and a tracker over a folder dataset or bag, scored by ATE/RPE (evo), OpenCV RGB-D odometry as baseline"),
}


class _HelpFormatter(argparse.RawDescriptionHelpFormatter, argparse.ArgumentDefaultsHelpFormatter):
    """Keeps the layout of module docstrings and EXAMPLES, and shows every option's default."""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="depth-unet",
        description="Train, export, evaluate and run the depth_unet_ros monocular depth models.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name, (module_name, help_text) in COMMANDS.items():
        try:
            module = importlib.import_module(module_name)
        except ImportError as exc:  # e.g. training/ absent on a runtime-only install
            missing = sub.add_parser(name, help=f"{help_text} (unavailable: {exc})")
            missing.set_defaults(_unavailable=str(exc))
            continue
        cmd = sub.add_parser(name, help=help_text, description=(module.__doc__ or help_text).strip(),
                             epilog=getattr(module, "EXAMPLES", None), formatter_class=_HelpFormatter)
        module.add_arguments(cmd)
        cmd.set_defaults(_run=module.run)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    enable_stack_dump()
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return 2
    if getattr(args, "_unavailable", None):
        print(f"depth-unet {args.command}: not available in this install ({args._unavailable})",
              file=sys.stderr)
        return 2
    try:
        return int(args._run(args) or 0)
    except DepthUnetError as exc:
        print(f"depth-unet {args.command}: error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print(f"depth-unet {args.command}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
