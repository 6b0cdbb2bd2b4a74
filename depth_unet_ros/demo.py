"""Stream held-out frames through the real depth_node over DDS and report its depth quality and
latency: the bundled model and synthetic scenes by default, or your model and dataset.

Starts depth_node as the launch file does (or attaches to a running one with --no-node), plays
the camera at --rate, pairs every depth image with its frame by stamp, and writes report.md,
metrics.json, latency_hist.png, error_vs_depth.png and comparison images to --out.
"""
from __future__ import annotations

import argparse
import os
import time
from pathlib import Path
from typing import Any, MutableMapping

from depth_unet_ros.errors import ConfigError, DatasetError, ModelLoadError

DEMO_SYNTHETIC_SEED = 2000  # training uses seed 0, validation 1000: scenes no model has seen
NUM_COMPARISONS = 4


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--model", default=None,
                        help="model the node runs (.onnx, .engine, .pt); default: the bundled "
                             "depth_unet_ros/models/default.onnx")
    parser.add_argument("--data", default=None,
                        help="nyu_depth_v2_labeled.mat (test split when splits.mat is beside it) "
                             "or a folder dataset; default: held-out synthetic indoor scenes")
    parser.add_argument("--frames", type=int, default=20, help="how many frames to stream")
    parser.add_argument("--rate", type=float, default=10.0, help="camera rate in Hz")
    parser.add_argument("--out", default="demo_out", help="folder for the report and figures")
    parser.add_argument("--overwrite", action="store_true",
                        help="replace an existing report in --out instead of refusing")
    parser.add_argument("--no-node", action="store_true",
                        help="attach to a depth_node that is already running (same ROS_DOMAIN_ID "
                             "and FASTDDS_BUILTIN_TRANSPORTS) instead of starting one")
    parser.add_argument("--timeout", type=float, default=30.0,
                        help="seconds to wait for the node to appear, for its first answer, and "
                             "for late answers at the end")


def prepare_ros_environment(environ: MutableMapping[str, str], start_node: bool,
                            pid: int | None = None) -> list[str]:
    """Set the DDS environment for this process and the node it starts; notes to print.

    Large-data transport in every process (a best-effort VGA subscription is lossy without it),
    unless the user chose a transport. A demo that starts its own node gets a private
    ROS_DOMAIN_ID when none is set, so it neither hears a real camera on the default domain nor
    disturbs one; a restricted discovery range is dropped, since with it rmw_fastrtps replaces
    the large-data transport by lossy localhost UDP (the domain id isolates instead). Attaching
    to a running node keeps everything as the user set it: it must match that node.
    """
    notes = []
    environ.setdefault("FASTDDS_BUILTIN_TRANSPORTS", "LARGE_DATA")
    large_data = environ["FASTDDS_BUILTIN_TRANSPORTS"] == "LARGE_DATA"
    restricted = [k for k in ("ROS_AUTOMATIC_DISCOVERY_RANGE", "ROS_LOCALHOST_ONLY")
                  if environ.get(k, "") not in ("", "0", "SUBNET", "DEFAULT")]
    if not start_node:
        if large_data and restricted:
            notes.append(f"note: {', '.join(restricted)} with FASTDDS_BUILTIN_TRANSPORTS=LARGE_DATA "
                         "loses best-effort VGA frames on rmw_fastrtps; if nothing arrives, unset it "
                         "for the node and for this command")
        return notes
    if "ROS_DOMAIN_ID" not in environ:
        environ["ROS_DOMAIN_ID"] = str(1 + (os.getpid() if pid is None else pid) % 101)  # 1..101
        notes.append(f"using private ROS_DOMAIN_ID={environ['ROS_DOMAIN_ID']} (set ROS_DOMAIN_ID "
                     "to choose one)")
    if large_data:
        for key in restricted:
            notes.append(f"ignoring {key}={environ.pop(key)}: it disables the large-data transport")
    return notes


def _frames(args: argparse.Namespace) -> tuple[list, str]:
    """The frames to stream (loaded up front so loading never delays the camera) and a label."""
    if args.frames <= 0:
        raise ConfigError(f"--frames must be positive, got {args.frames}")
    if args.data is None:
        from depth_unet_ros.datasets.synthetic import SyntheticIndoorDataset

        dataset = SyntheticIndoorDataset(args.frames, seed=DEMO_SYNTHETIC_SEED)
        label = f"{args.frames} held-out synthetic indoor scenes (seed {DEMO_SYNTHETIC_SEED}, 640x480)"
    else:
        from depth_unet_ros.datasets import open_dataset

        dataset = open_dataset(args.data)
        label = str(args.data)
    try:
        count = min(len(dataset), args.frames)
        if count == 0:
            raise DatasetError(f"{args.data} holds no frames")
        return [dataset[i] for i in range(count)], label
    finally:
        close = getattr(dataset, "close", None)
        if callable(close):
            close()


def _check_out_dir(out: Path, overwrite: bool) -> None:
    from depth_unet_ros.report import METRICS_NAME, REPORT_NAME

    existing = [out / name for name in (REPORT_NAME, METRICS_NAME) if (out / name).exists()]
    if existing and not overwrite:
        raise ConfigError(f"{existing[0]} already exists; pass --overwrite to replace the report "
                          "or choose another --out folder")
    if out.exists() and not out.is_dir():
        raise ConfigError(f"--out {out} is a file; pass a folder")


def _model_path(args: argparse.Namespace) -> str | None:
    """The model file (checked to exist), or None with --no-node (the running node has one)."""
    from depth_unet_ros.node_core import bundled_model_path

    if args.no_node:
        return args.model
    path = Path(args.model).expanduser() if args.model else Path(bundled_model_path())
    if not path.is_file():
        what = f"--model {path}" if args.model else f"the bundled model {path}"
        raise ModelLoadError(f"{what} does not exist; pass --model model.onnx, or make one with "
                             "`depth-unet export CHECKPOINT --out model.onnx`")
    return str(path.resolve())


def run(args: argparse.Namespace) -> int:
    from depth_unet_ros import report
    from depth_unet_ros.metrics import format_metric_table
    from depth_unet_ros.stream_eval import StreamConfig

    started = time.monotonic()
    out = Path(args.out)
    _check_out_dir(out, args.overwrite)
    model = _model_path(args)
    if not args.rate > 0 or not args.timeout > 0:
        raise ConfigError(f"--rate and --timeout must be positive, got {args.rate}, {args.timeout}")
    for note in prepare_ros_environment(os.environ, start_node=not args.no_node):
        print(note)
    frames, data_label = _frames(args)
    out.mkdir(parents=True, exist_ok=True)
    config = StreamConfig(rate_hz=args.rate, discovery_timeout_s=args.timeout,
                          answer_timeout_s=args.timeout)
    result, kept, errors, node_log = _stream(frames, model, config, out, args.no_node)

    data = result.to_json_dict()
    model_label = Path(model).name if model else (result.stats.node_model_path or "running node")
    data.update(model=model or result.stats.node_model_path, data=data_label)
    figures = [report.save_latency_histogram(out / report.LATENCY_HIST_NAME,
                                             result.evaluation.latency_ms,
                                             result.stats.node_inference_ms.get("median")),
               report.save_error_vs_depth(out / report.ERROR_VS_DEPTH_NAME, errors)]
    comparisons = _save_comparisons(out, kept)
    context = {"model": model_label, "data": data_label, "node": node_log or "attached (--no-node)",
               "camera": f"{frames[0].image.shape[1]}x{frames[0].image.shape[0]} rgb8 at "
                         f"{args.rate:g} Hz, reliable",
               "DDS": f"ROS_DOMAIN_ID={os.environ.get('ROS_DOMAIN_ID', '0')}, "
                      f"FASTDDS_BUILTIN_TRANSPORTS={os.environ.get('FASTDDS_BUILTIN_TRANSPORTS')}"}
    report.write_metrics_json(out / report.METRICS_NAME, data)
    report_path = out / report.REPORT_NAME
    report_path.write_text(report.render_report(
        data, context, [p.relative_to(out).as_posix() for p in figures],
        [p.relative_to(out).as_posix() for p in comparisons]))

    _print_summary(result, model_label, format_metric_table)
    print(f"report: {report_path} (metrics.json, figures and {len(comparisons)} comparison "
          f"images beside it), {time.monotonic() - started:.0f} s in all")
    return 0


def _stream(frames: list, model: str | None, config: Any, out: Path,
            attach: bool) -> tuple[Any, dict, Any, str | None]:
    """Start the node (unless attaching), stream, stop it; (result, kept frames, errors, log)."""
    from depth_unet_ros.node_process import NodeProcess, node_command
    from depth_unet_ros.report import ErrorByDepth
    from depth_unet_ros.stream_eval import StreamEvaluator

    keep = {round(i * (len(frames) - 1) / max(NUM_COMPARISONS - 1, 1))
            for i in range(min(NUM_COMPARISONS, len(frames)))}
    kept: dict[int, Any] = {}
    errors = ErrorByDepth()

    def on_scored(scored: Any) -> None:
        errors.add(scored.depth_m, scored.frame.depth_m, config.protocol)
        if scored.index in keep:
            kept[scored.index] = scored

    node = None
    log_path = out / "depth_node.log"
    try:
        if not attach:
            print(f"starting depth_node with {model} (log: {log_path})")
            node = NodeProcess(node_command(model), log_path)
        with StreamEvaluator(config, abort_check=node.check_alive if node else None) as evaluator:
            print(f"waiting for depth_node on {config.depth_topic} (up to {config.discovery_timeout_s:g} s)")
            evaluator.wait_for_node()
            print(f"streaming {len(frames)} frames at {config.rate_hz:g} Hz to {config.image_topic}")
            result = evaluator.run(frames, on_scored=on_scored)
    finally:
        if node is not None:
            node.stop()
    return result, kept, errors, (str(log_path) if node else None)


def _save_comparisons(out: Path, kept: dict) -> list[Path]:
    from depth_unet_ros.report import COMPARISON_DIR
    from depth_unet_ros.visualize import comparison_image, save_png

    paths = []
    for index in sorted(kept):
        scored = kept[index]
        name = "".join(c if c.isalnum() or c in "-_." else "_" for c in scored.frame.name)[:60]
        paths.append(save_png(out / COMPARISON_DIR / f"{index:03d}_{name}.png",
                              comparison_image(scored.frame.image, scored.depth_m, scored.frame.depth_m)))
    return paths


def _print_summary(result: Any, model_label: str, format_metric_table: Any) -> None:
    stats, evaluation = result.stats, result.evaluation
    latency = evaluation.latency_summary()
    inference = stats.node_inference_ms

    def ms(value: float | None) -> str:
        return "-" if value is None else f"{value:.1f} ms"

    print(format_metric_table({model_label: evaluation.metrics}))
    print(f"end-to-end latency (publish -> depth received): median {ms(latency['median'])}, "
          f"p90 {ms(latency['p90'])}")
    print(f"node inference ({stats.backend or 'backend unknown'}): median {ms(inference.get('median'))}")
    dropped = "unknown (no /diagnostics)" if stats.node_dropped is None else stats.node_dropped
    print(f"frames: sent {stats.sent}, answered {stats.received}, missing {stats.missing} "
          f"(node dropped {dropped}), camera {stats.send_rate_hz:.1f} Hz")
