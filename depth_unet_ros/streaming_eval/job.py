"""One bag-eval job: check the outputs, start depth_node (or attach), stream the bag through
it, stop it, and write report.md, metrics.json, figures and comparison images into the output
folder only when everything succeeded. ``depth-unet bag-eval`` and ``depth-unet demo`` run it.
"""
from __future__ import annotations

import os
import shutil
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from depth_unet_ros.errors import ConfigError, ModelLoadError
from depth_unet_ros.streaming_eval.comparisons import ComparisonPicker, save_comparisons
from depth_unet_ros.streaming_eval.ros_environment import applied_ros_environment

NODE_LOG_NAME = "depth_node.log"


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
    config: Any  # streaming_eval.evaluator.StreamConfig
    model: str | None = None  # None with attach
    backend: str = "auto"
    attach: bool = False
    json_path: Path | None = None
    overwrite: bool = False
    describe: dict[str, str] = field(default_factory=dict)


def evaluate_and_report(job: Evaluation) -> Any:
    """Check, start the node, stream, stop it, write the report; the StreamResult."""
    started = time.monotonic()
    check_outputs(job.out, job.json_path, job.overwrite)
    job.model = model_path(job.model, job.attach)
    with applied_ros_environment(os.environ, start_node=not job.attach,
                                 own_player=job.config.play) as notes:
        for note in notes:
            print(note)
        return _stream_and_report(job, started)


def _stream_and_report(job: Evaluation, started: float) -> Any:
    """Everything after the checks, under the run's DDS environment."""
    from depth_unet_ros.evaluation.metrics import format_metric_table
    from depth_unet_ros.streaming_eval import report

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
        comparisons = save_comparisons(stage, job.bag, job.config.image_topic, kept)
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
