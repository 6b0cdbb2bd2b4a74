"""The Markdown report of a streaming evaluation and its figures (latency histogram, error
against depth, comparison images).

matplotlib draws through its Agg canvas on Figure objects, never pyplot's global state, so it
works headless and from any thread.
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np

from depth_unet_ros.evaluation.metrics import METRIC_NAMES, EvalProtocol
from depth_unet_ros.preprocessing import resize_depth

REPORT_NAME = "report.md"
METRICS_NAME = "metrics.json"
LATENCY_HIST_NAME = "latency_hist.png"
ERROR_VS_DEPTH_NAME = "error_vs_depth.png"
COMPARISON_DIR = "comparisons"
_HIGHER_IS_BETTER = ("delta1", "delta2", "delta3")


@dataclass
class ErrorByDepth:
    """Absolute and relative error per ground-truth depth bin, summed over every scored pixel."""

    bin_m: float = 0.5
    max_m: float = 10.0
    abs_sum: np.ndarray = field(init=False, repr=False)  # (bins,) metres
    rel_sum: np.ndarray = field(init=False, repr=False)  # (bins,)
    count: np.ndarray = field(init=False, repr=False)  # (bins,) pixels

    def __post_init__(self) -> None:
        bins = int(np.ceil(self.max_m / self.bin_m))
        self.abs_sum, self.rel_sum = np.zeros(bins), np.zeros(bins)
        self.count = np.zeros(bins, dtype=np.int64)

    def add(self, pred_m: np.ndarray, gt_m: np.ndarray, protocol: EvalProtocol = EvalProtocol()) -> None:
        """One frame, masked like the protocol (crop, gt range); NaN predictions are left out."""
        gt = np.asarray(gt_m, dtype=np.float32)
        pred = np.clip(resize_depth(pred_m, gt.shape), protocol.min_depth_m, protocol.max_depth_m)
        with np.errstate(invalid="ignore"):  # the plot's range may end before the protocol's
            valid = protocol.valid_mask(gt) & np.isfinite(pred) & (gt < self.max_m)
        g, p = gt[valid].astype(np.float64), pred[valid].astype(np.float64)
        index = np.minimum((g / self.bin_m).astype(np.int64), len(self.count) - 1)
        self.abs_sum += np.bincount(index, np.abs(p - g), len(self.count))
        self.rel_sum += np.bincount(index, np.abs(p - g) / g, len(self.count))
        self.count += np.bincount(index, minlength=len(self.count))

    def curves(self) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """(bin centres m, mean abs error m, mean AbsRel, pixel count) of the non-empty bins."""
        keep = self.count > 0
        centres = (np.arange(len(self.count)) + 0.5) * self.bin_m
        n = np.maximum(self.count, 1)
        return centres[keep], (self.abs_sum / n)[keep], (self.rel_sum / n)[keep], self.count[keep]


def _figure(width_in: float = 6.4, height_in: float = 3.6) -> Any:
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    figure = Figure(figsize=(width_in, height_in), dpi=100, layout="constrained")
    FigureCanvasAgg(figure)
    return figure


def save_latency_histogram(path: str | Path, end_to_end_ms: Sequence[float],
                           node_inference_ms: float | None = None) -> Path:
    """Histogram of end-to-end latency (publish -> depth received), with its median, p90 and
    the node's median inference time as vertical lines."""
    values = np.asarray(end_to_end_ms, dtype=np.float64)
    figure = _figure()
    ax = figure.add_subplot()
    if values.size:
        ax.hist(values, bins=min(30, max(5, values.size // 2)), color="#4C72B0", alpha=0.85)
        for q, style, label in ((50, "-", "median"), (90, "--", "p90")):
            v = float(np.percentile(values, q))
            ax.axvline(v, color="black", linestyle=style, label=f"{label} {v:.1f} ms")
    if node_inference_ms is not None:
        ax.axvline(node_inference_ms, color="#C44E52", linestyle=":",
                   label=f"node inference {node_inference_ms:.1f} ms")
    ax.set_xlabel("end-to-end latency (ms): camera publish -> depth received")
    ax.set_ylabel("frames")
    ax.set_title(f"latency over DDS ({values.size} frames)")
    if ax.get_legend_handles_labels()[0]:
        ax.legend()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path)
    return path


def save_error_vs_depth(path: str | Path, errors: ErrorByDepth) -> Path:
    """Mean absolute error (m) and AbsRel against ground-truth depth, pixel counts as bars."""
    centres, abs_err, rel_err, count = errors.curves()
    figure = _figure()
    ax = figure.add_subplot()
    ax.plot(centres, abs_err, "o-", color="#4C72B0", label="mean |error| (m)")
    ax.set_xlabel("ground-truth depth (m)")
    ax.set_ylabel("mean |error| (m)", color="#4C72B0")
    rel_ax = ax.twinx()
    rel_ax.plot(centres, rel_err, "s--", color="#C44E52", label="AbsRel")
    rel_ax.set_ylabel("AbsRel", color="#C44E52")
    if count.size:
        count_ax = ax.twinx()
        count_ax.bar(centres, count, width=errors.bin_m * 0.9, color="grey", alpha=0.15)
        count_ax.set_yticks([])
        count_ax.set_zorder(-1)
        ax.set_zorder(1)
        ax.patch.set_visible(False)
    ax.set_title("error against depth (bars: pixels per bin)")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path)
    return path


def _fmt(value: Any, digits: int = 1, unit: str = "") -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.{digits}f}{unit}"
    return f"{value}{unit}"


def _metric_table_md(rows: Mapping[str, Mapping[str, float]]) -> list[str]:
    header = "| model | " + " | ".join(METRIC_NAMES) + " |"
    lines = [header, "|---|" + "---:|" * len(METRIC_NAMES)]
    for name, metrics in rows.items():
        cells = [f"{metrics[k]:.{2 if k == 'silog' else 3}f}" if k in metrics else "-"
                 for k in METRIC_NAMES]
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    return lines


def render_report(result_json: Mapping[str, Any], context: Mapping[str, str],
                  figures: Sequence[str], comparisons: Sequence[str]) -> str:
    """The Markdown text: settings, metrics, latency, stream counts, figures, per-image rows.

    ``result_json`` is ``StreamResult.to_json_dict()``; ``context`` (model, data, node, ...)
    is printed as given; paths are relative to the report.
    """
    stream = result_json.get("stream", {})
    latency = result_json.get("latency_ms", {})
    inference = stream.get("node_inference_ms") or {}
    node_latency = stream.get("node_latency_ms") or {}
    lines = ["# depth_unet_ros streaming evaluation", ""]
    lines += [f"- **{key}**: {value}" for key, value in context.items()]
    lines += ["", "## Depth quality", "",
              f"{result_json['num_images']} frames scored with the NYU protocol (predictions "
              "clipped to [1e-3, 10] m, Eigen crop on 480x640 frames, mean over images; "
              "deltas: higher is better, the rest: lower).", ""]
    lines += _metric_table_md({str(context.get("model", "model")): result_json["metrics"]})
    lines += ["", "## Latency", "", "| what | median | p90 |", "|---|---:|---:|",
              f"| end to end (camera publish -> depth received) | {_fmt(latency.get('median'), 1, ' ms')} "
              f"| {_fmt(latency.get('p90'), 1, ' ms')} |",
              f"| node: inference (per-second medians, /diagnostics) | "
              f"{_fmt(inference.get('median'), 1, ' ms')} | {_fmt(inference.get('p90'), 1, ' ms')} |",
              f"| node: image received -> depth published | {_fmt(node_latency.get('median'), 1, ' ms')} "
              f"| {_fmt(node_latency.get('p90'), 1, ' ms')} |", ""]
    lines += ["## Stream", "", "| | |", "|---|---:|",
              f"| frames sent | {stream.get('sent', '-')} |",
              f"| answered | {stream.get('received', '-')} |",
              f"| missing (never answered) | {stream.get('missing', '-')} |",
              f"| dropped by the node (its own count) | {_fmt(stream.get('node_dropped'))} |",
              f"| camera rate requested / achieved | {_fmt(stream.get('rate_hz'), 1, ' Hz')} / "
              f"{_fmt(stream.get('send_rate_hz'), 1, ' Hz')} |",
              f"| backend | {stream.get('backend') or '-'} |",
              f"| warm-up until the first answer | {_fmt(stream.get('warmup_s'), 2, ' s')} |",
              f"| scored pixels left NaN by the node | {100 * stream.get('nan_fraction_mean', 0.0):.2f} % |",
              ""]
    if stream.get("missing_names"):
        lines += ["Missing frames: " + ", ".join(stream["missing_names"]), ""]
    if figures:
        lines += ["## Figures", ""] + [f"![{Path(f).stem}]({f})" for f in figures] + [""]
    if comparisons:
        lines += ["## Examples", "", "input | prediction | ground truth | absolute error "
                  "(prediction and ground truth share one colour scale; black = no depth)", ""]
        lines += [f"![{Path(c).stem}]({c})" for c in comparisons] + [""]
    lines += ["## Per frame", "", "| frame | " + " | ".join(("delta1", "abs_rel", "rmse")) + " |",
              "|---|---:|---:|---:|"]
    lines += [f"| {row['name']} | {row['delta1']:.3f} | {row['abs_rel']:.3f} | {row['rmse']:.3f} |"
              for row in result_json.get("per_image", [])]
    if result_json.get("skipped"):
        lines += ["", "Skipped (no valid ground truth): " + ", ".join(result_json["skipped"])]
    return "\n".join(lines) + "\n"


def write_metrics_json(path: str | Path, result_json: Mapping[str, Any]) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(result_json, indent=2) + "\n")
    return path
