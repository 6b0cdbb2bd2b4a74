"""Replay a rosbag2 through depth_node over DDS and score what it publishes on /depth/image
against the bag's ground truth: the DESIGN.md metrics (per frame and averaged), end-to-end
latency, throughput, and frames dropped or missing.

Starts depth_node with --model the way the launch file does (or attaches to a running one with
--no-node), plays the bag with its recorded timing (or listens while `ros2 bag play` plays it,
with --no-play), pairs every depth image with its ground truth by exact header stamp, and
writes report.md, metrics.json, latency_hist.png, error_vs_depth.png and comparison images
into --out. Nothing is written unless the evaluation succeeds.
"""
from __future__ import annotations

import argparse
from pathlib import Path

from depth_unet_ros.backends import BACKEND_CHOICES
from depth_unet_ros.errors import ConfigError

EXAMPLES = """examples:
  depth-unet bag-eval nyu_test                                 # bundled model, node started here
  depth-unet bag-eval nyu_test --model model.onnx --out report_nyu --json nyu.json
  depth-unet bag-eval my_bag --image-topic /camera/color/image_raw \\
      --ground-truth-topic /camera/aligned_depth_to_color/image_raw
  depth-unet bag-eval nyu_test --no-node --depth-topic /cam1/depth/image   # a running node
  depth-unet bag-eval nyu_test --no-play &  ros2 bag play nyu_test         # another player
"""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("bag", help="rosbag2 folder (MCAP or sqlite3) with images and ground-truth "
                                    "depth, e.g. from `depth-unet nyu-to-bag`")
    add_evaluation_arguments(parser, default_out="bag_eval_out")
    parser.add_argument("--rate", type=float, default=1.0,
                        help="playback speed factor (like ros2 bag play --rate); below 1 gives a "
                             "slow model time to answer every frame")
    parser.add_argument("--start-offset", type=float, default=0.0, metavar="S",
                        help="skip the bag's first S seconds")
    parser.add_argument("--no-play", action="store_true",
                        help="do not play the bag: wait while another player (ros2 bag play BAG) "
                             "publishes it, and read only the ground truth from the file")
    parser.add_argument("--image-topic", default="/camera/image_raw",
                        help="the bag's camera image topic: sensor_msgs/Image, or a jpeg/png "
                             "CompressedImage topic ending in /compressed (the node then runs "
                             "with compressed_input); the node is remapped to it")
    parser.add_argument("--ground-truth-topic", default="/camera/depth/ground_truth",
                        help="the bag's ground-truth depth (32FC1 metres or 16UC1 millimetres, "
                             "same header stamp as the image); never published")
    parser.add_argument("--depth-topic", default="/depth/image",
                        help="the node's depth output (/<namespace>/depth/image when namespaced)")
    parser.add_argument("--idle-timeout", type=float, default=5.0,
                        help="with --no-play: the stream is over after this many seconds without "
                             "a frame or an answer")


def add_evaluation_arguments(parser: argparse.ArgumentParser, default_out: str) -> None:
    """Options shared with ``depth-unet demo``."""
    parser.add_argument("--model", default=None,
                        help="model the node runs (.onnx, .engine, .pt); default: the bundled "
                             "depth_unet_ros/models/default.onnx; ignored with --no-node")
    parser.add_argument("--backend", default="auto",
                        choices=BACKEND_CHOICES,
                        help="the node's inference backend")
    parser.add_argument("--out", default=default_out,
                        help="folder for report.md, metrics.json, figures and the node's log")
    parser.add_argument("--json", default=None, metavar="FILE",
                        help="also write the metrics JSON (DESIGN.md layout) to FILE")
    parser.add_argument("--overwrite", action="store_true",
                        help="replace an existing report in --out (and --json) instead of refusing")
    parser.add_argument("--no-node", action="store_true",
                        help="attach to a depth_node that is already running (same ROS_DOMAIN_ID "
                             "and FASTDDS_BUILTIN_TRANSPORTS) instead of starting one")
    parser.add_argument("--timeout", type=float, default=30.0,
                        help="seconds to wait for the node to appear, for its first answer, and "
                             "for late answers at the end")


def run(args: argparse.Namespace) -> int:
    from depth_unet_ros.bags.replay import ReplayOptions
    from depth_unet_ros.streaming_eval.evaluator import StreamConfig
    from depth_unet_ros.streaming_eval.job import Evaluation, evaluate_and_report

    if not args.timeout > 0 or not args.idle_timeout > 0:
        raise ConfigError(f"--timeout and --idle-timeout must be positive, got {args.timeout}, "
                          f"{args.idle_timeout}")
    config = StreamConfig(image_topic=args.image_topic, ground_truth_topic=args.ground_truth_topic,
                          depth_topic=args.depth_topic, play=not args.no_play,
                          replay=ReplayOptions(rate=args.rate, start_offset_s=args.start_offset),
                          discovery_timeout_s=args.timeout, answer_timeout_s=args.timeout,
                          idle_timeout_s=args.idle_timeout)
    job = Evaluation(bag=Path(args.bag), out=Path(args.out), config=config, model=args.model,
                     backend=args.backend, attach=args.no_node,
                     json_path=Path(args.json) if args.json else None, overwrite=args.overwrite,
                     describe={"data": str(args.bag)})
    evaluate_and_report(job)
    return 0
