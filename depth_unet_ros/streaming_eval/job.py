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
import os
import shutil
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping, MutableMapping

from depth_unet_ros.backends import BACKEND_CHOICES
from depth_unet_ros.errors import ConfigError, ModelLoadError
from depth_unet_ros.fastdds_transports import BuiltinTransports, environment_problem

NUM_COMPARISONS = 4
NODE_LOG_NAME = "depth_node.log"

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


def prepare_ros_environment(environ: MutableMapping[str, str], start_node: bool,
                            own_player: bool = True, pid: int | None = None) -> list[str]:
    """Set the DDS environment for this process and the node it starts; notes to print.

    Only when this command owns both ends (it starts the node and plays the bag) does it pick
    Fast DDS's large-data transport (lower latency for VGA images), a private ROS_DOMAIN_ID when
    none is set (so it neither hears a real camera nor disturbs one), and drop a restricted
    discovery range, with which rmw_fastrtps replaces the large-data transport by lossy
    localhost UDP. A running node (--no-node) or another player (--no-play) lives in another
    shell: everything stays as the user set it, since mismatched transports deliver nothing.
    """
    notes: list[str] = []
    if not (start_node and own_player):
        if environ.get("FASTDDS_BUILTIN_TRANSPORTS"):
            notes.append(f"FASTDDS_BUILTIN_TRANSPORTS={environ['FASTDDS_BUILTIN_TRANSPORTS']}: "
                         "the node and the player must use the same")
        return notes + _transport_problems(environ)
    environ.setdefault("FASTDDS_BUILTIN_TRANSPORTS", "LARGE_DATA")
    notes += _transport_problems(environ)
    if "ROS_DOMAIN_ID" not in environ:
        environ["ROS_DOMAIN_ID"] = str(1 + (os.getpid() if pid is None else pid) % 101)  # 1..101
        notes.append(f"using private ROS_DOMAIN_ID={environ['ROS_DOMAIN_ID']} (set ROS_DOMAIN_ID "
                     "to choose one)")
    if BuiltinTransports.parse(environ["FASTDDS_BUILTIN_TRANSPORTS"]).mode == "LARGE_DATA":
        for key in ("ROS_AUTOMATIC_DISCOVERY_RANGE", "ROS_LOCALHOST_ONLY"):
            if environ.get(key, "") not in ("", "0", "SUBNET", "DEFAULT"):
                notes.append(f"ignoring {key}={environ.pop(key)}: it disables the large-data "
                             "transport")
    return notes


def _transport_problems(environ: Mapping[str, str]) -> list[str]:
    problem = environment_problem(environ)
    return [problem] if problem else []


def check_outputs(out: Path, json_path: Path | None, overwrite: bool) -> None:
    """Refuse to replace an earlier report (or --json file) unless ``overwrite``."""
    from depth_unet_ros.streaming_eval.report import METRICS_NAME, REPORT_NAME

    if out.exists() and not out.is_dir():
        raise ConfigError(f"--out {out} is a file; pass a folder")
    existing = [out / name for name in (REPORT_NAME, METRICS_NAME) if (out / name).exists()]
    if json_path is not None and json_path.exists():
        existing.append(json_path)
    if existing and not overwrite:
        raise ConfigError(f"{existing[0]} already exists; pass --overwrite to replace it or "
                          "choose another --out / --json")


def model_path(model: str | None, attach: bool) -> str | None:
    """The model file (checked to exist), or None when attaching (the running node has one)."""
    from depth_unet_ros.inference import resolve_model_path

    if attach:
        return model
    path = resolve_model_path(model)
    if not path.is_file():
        what = f"--model {path}" if model else f"the bundled model {path}"
        raise ModelLoadError(f"{what} does not exist; pass --model model.onnx, or make one with "
                             "`depth-unet export CHECKPOINT --out model.onnx`")
    return str(path.resolve())


@dataclass
class Evaluation:
    """What one evaluation asks for; ``describe`` lines go into the report as they are."""

    bag: Path
    out: Path
    config: Any  # stream_eval.StreamConfig
    model: str | None = None  # None with attach
    backend: str = "auto"
    attach: bool = False
    json_path: Path | None = None
    overwrite: bool = False
    describe: dict[str, str] = field(default_factory=dict)


def run(args: argparse.Namespace) -> int:
    from depth_unet_ros.bags.replay import ReplayOptions
    from depth_unet_ros.streaming_eval.evaluator import StreamConfig

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


def evaluate_and_report(job: Evaluation) -> Any:
    """Check, start the node, stream, stop it, write the report; the StreamResult."""
    from depth_unet_ros.streaming_eval import report
    from depth_unet_ros.evaluation.metrics import format_metric_table

    started = time.monotonic()
    check_outputs(job.out, job.json_path, job.overwrite)
    job.model = model_path(job.model, job.attach)
    for note in prepare_ros_environment(os.environ, start_node=not job.attach,
                                        own_player=job.config.play):
        print(note)
    stage = Path(tempfile.mkdtemp(prefix="depth_unet_eval_"))
    try:
        result, kept, errors, evaluator_notes = _stream(job, stage)
        data = result.to_json_dict()
        model_label = (Path(job.model).name if job.model
                       else Path(result.stats.node_model_path or "running node").name)
        data.update(model=job.model or result.stats.node_model_path, data=str(job.bag))
        figures = [report.save_latency_histogram(stage / report.LATENCY_HIST_NAME,
                                                 result.evaluation.latency_ms,
                                                 result.stats.node_inference_ms.get("median")),
                   report.save_error_vs_depth(stage / report.ERROR_VS_DEPTH_NAME, errors)]
        comparisons = _save_comparisons(stage, job, kept)
        context = {"model": model_label, **job.describe,
                   "node": f"started here, log {NODE_LOG_NAME}" if not job.attach
                   else "attached (--no-node)",
                   "player": result.stats.player,
                   "DDS": f"ROS_DOMAIN_ID={os.environ.get('ROS_DOMAIN_ID', '0')}, "
                          "FASTDDS_BUILTIN_TRANSPORTS="
                          f"{os.environ.get('FASTDDS_BUILTIN_TRANSPORTS')}",
                   **evaluator_notes}
        report.write_metrics_json(stage / report.METRICS_NAME, data)
        (stage / report.REPORT_NAME).write_text(report.render_report(
            data, context, [p.relative_to(stage).as_posix() for p in figures],
            [p.relative_to(stage).as_posix() for p in comparisons]))
        _publish_outputs(stage, job)
    except BaseException:
        log = stage / NODE_LOG_NAME
        if log.exists():  # keep what the node said, for the error message to point at
            kept_log = Path(tempfile.gettempdir()) / f"depth_node_{os.getpid()}.log"
            shutil.copyfile(log, kept_log)
            print(f"the node's log: {kept_log}")
        raise
    finally:
        shutil.rmtree(stage, ignore_errors=True)
    _print_summary(result, model_label, format_metric_table)
    print(f"report: {job.out / report.REPORT_NAME} (metrics.json, figures and {len(comparisons)} "
          f"comparison images beside it), {time.monotonic() - started:.0f} s in all")
    return result


def _publish_outputs(stage: Path, job: Evaluation) -> None:
    """Move the finished report from ``stage`` into --out (and copy the JSON to --json)."""
    from depth_unet_ros.atomic_file import atomic_write
    from depth_unet_ros.streaming_eval.report import METRICS_NAME

    check_outputs(job.out, job.json_path, job.overwrite)  # nobody wrote there meanwhile
    job.out.mkdir(parents=True, exist_ok=True)
    for path in sorted(stage.rglob("*")):
        if path.is_file():
            target = job.out / path.relative_to(stage)
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.move(path, target)
    if job.json_path is not None:
        atomic_write(job.json_path, (job.out / METRICS_NAME).read_bytes())


def _stream(job: Evaluation, stage: Path) -> tuple[Any, dict, Any, dict[str, str]]:
    """Start the node (unless attaching), stream, stop it; (result, kept frames, errors, notes)."""
    from depth_unet_ros.streaming_eval.node_process import NodeProcess
    from depth_unet_ros.streaming_eval.report import ErrorByDepth
    from depth_unet_ros.streaming_eval.evaluator import StreamEvaluator
    from depth_unet_ros.streaming_eval.results import BagPlan

    cfg = job.config
    # a bag that cannot be scored fails here, before a node starts or a file is written
    plan = BagPlan.of(job.bag, cfg.image_topic, cfg.ground_truth_topic)
    count = len(plan.scored)
    picker = ComparisonPicker([i for i, s in enumerate(plan.image_stamps) if s in plan.scored])
    errors = ErrorByDepth()

    def on_scored(scored: Any) -> None:
        errors.add(scored.depth_m, scored.gt_depth_m, cfg.protocol)
        picker.offer(scored)

    node = None
    try:
        if not job.attach:
            print(f"starting depth_node with {job.model}")
            node = NodeProcess(_node_command(job, plan), stage / NODE_LOG_NAME)
        evaluator = StreamEvaluator(job.bag, cfg, abort_check=node.check_alive if node else None,
                                    plan=plan)
        with evaluator:
            print(f"waiting for depth_node on {cfg.depth_topic} "
                  f"(up to {cfg.discovery_timeout_s:g} s)")
            evaluator.wait_for_node()
            skipped = evaluator.skipped_topics
            if skipped:
                print("not played (message package not installed here): "
                      + ", ".join(f"{t} [{m}]" for t, m in skipped.items()))
            what = (f"playing {job.bag} at {cfg.replay.rate:g}x" if cfg.play
                    else f"listening for {job.bag} played elsewhere")
            print(f"{what}: {count} frames with ground truth")
            result = evaluator.run(on_scored=on_scored)
    finally:
        if node is not None:
            node.stop()
    notes = {"bag frames": f"{len(plan.image_stamps)} images, {count} with ground truth, "
                           f"{plan.image_rate_hz:.1f} Hz recorded"}
    return result, picker.picked(), errors, notes


def _node_command(job: Evaluation, plan: Any) -> list[str]:
    """depth_node as the launch file starts it, on the bag's image topic; a bag of compressed
    images (``<camera>/image_raw/compressed``) gets the node's ``compressed_input``."""
    from depth_unet_ros.bags.reader import COMPRESSED_SUFFIX
    from depth_unet_ros.streaming_eval.node_process import node_command

    cfg, params = job.config, {"backend": job.backend}
    image_topic = cfg.image_topic
    if plan.compressed:
        image_topic = image_topic[:-len(COMPRESSED_SUFFIX)]
        params["compressed_input"] = True
    return node_command(job.model, image_topic=image_topic, namespace=cfg.namespace, params=params)


class ComparisonPicker:
    """Up to NUM_COMPARISONS answered frames spread over the bag, holding no more than that:
    the first answer at or after each evenly spaced position, and the last answer when the
    node dropped the frames at the end."""

    def __init__(self, positions: list[int], count: int = NUM_COMPARISONS):
        n = len(positions)
        self._targets = sorted({positions[round(k * (n - 1) / max(count - 1, 1))]
                                for k in range(min(count, n))})
        self._count = min(count, n)
        self._kept: dict[int, Any] = {}
        self._last: Any = None

    def offer(self, scored: Any) -> None:
        """One scored frame (its ``index`` is its position in the bag), in stream order."""
        if self._targets and scored.index >= self._targets[0]:
            while self._targets and scored.index >= self._targets[0]:
                self._targets.pop(0)
            self._kept[scored.index] = scored
        else:
            self._last = scored

    def picked(self) -> dict[int, Any]:
        """Position -> ScoredFrame of the frames to draw."""
        kept = dict(self._kept)
        if len(kept) < self._count and self._last is not None:
            kept[self._last.index] = self._last
        return kept


def _save_comparisons(stage: Path, job: Evaluation, kept: dict) -> list[Path]:
    """input | prediction | ground truth images of the kept frames (images read from the bag)."""
    from depth_unet_ros.bags import reader as bag_reader
    from depth_unet_ros.streaming_eval.report import COMPARISON_DIR
    from depth_unet_ros.visualize import comparison_image, save_png

    stamps = {scored.stamp_ns: scored for scored in kept.values()}
    paths = []
    for _, stamp, msg in bag_reader.decode(job.bag, [job.config.image_topic], stamps=stamps):
        scored = stamps.pop(stamp, None)
        if scored is None:
            continue
        name = scored.name.replace("@", "_t")
        paths.append(save_png(stage / COMPARISON_DIR / f"{name}.png",
                              comparison_image(bag_reader.rgb_of(msg), scored.depth_m,
                                               scored.gt_depth_m)))
    return sorted(paths)


def _print_summary(result: Any, model_label: str, format_metric_table: Any) -> None:
    stats, evaluation = result.stats, result.evaluation
    latency = evaluation.latency_summary()
    inference = stats.node_inference_ms

    def ms(value: float | None) -> str:
        return "-" if value is None else f"{value:.1f} ms"

    print(format_metric_table({model_label: evaluation.metrics}))
    print(f"end-to-end latency (image published -> depth received): median "
          f"{ms(latency['median'])}, p90 {ms(latency['p90'])}")
    print(f"node inference ({stats.backend or 'backend unknown'}): "
          f"median {ms(inference.get('median'))}")
    dropped = "unknown (no /diagnostics)" if stats.node_dropped is None else stats.node_dropped
    print(f"frames: sent {stats.sent}, answered {stats.received}, missing {stats.missing} "
          f"(node dropped {dropped}); {stats.send_rate_hz:.1f} Hz played, "
          f"{stats.received / stats.duration_s if stats.duration_s > 0 else 0.0:.1f} Hz answered")
