"""Score a depth estimator on a dataset with DESIGN.md's protocol (used by ``evaluate``, ``bag-eval``).

numpy only: the estimator hides the backend, so the same loop scores a checkpoint, an ONNX
model or a TensorRT engine.
"""
from __future__ import annotations

import logging
import re
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol, Sequence

import numpy as np

from depth_unet_ros.datasets.base import RGBDFrame
from depth_unet_ros.errors import DatasetError
from depth_unet_ros.evaluation.metrics import EvalProtocol, MetricAverager, evaluate_frame
from depth_unet_ros.latency import latency_summary_ms

log = logging.getLogger(__name__)


class Estimator(Protocol):
    """What evaluation needs of ``inference.DepthEstimator``."""

    def predict(self, image_rgb: np.ndarray, output_size: str = "network") -> Any:
        """(H, W, 3) uint8 RGB -> an object whose ``depth_m`` is an (h, w) float32 map in metres."""


@dataclass
class EvaluationResult:
    """Mean and per-image metrics of one evaluation, and the per-frame predict latency."""

    num_images: int
    metrics: dict[str, float]  # mean over images, keys METRIC_NAMES
    per_image: list[dict] = field(default_factory=list)  # {"name": ..., metric: value, ...}
    latency_ms: list[float] = field(default_factory=list)  # wall time of predict per frame
    skipped: list[str] = field(default_factory=list)  # frames without a valid gt pixel

    def latency_summary(self) -> dict[str, float | None]:
        """Median and 90th percentile of the per-frame latency in ms (None without frames)."""
        return latency_summary_ms(self.latency_ms)

    def to_json_dict(self) -> dict:
        """DESIGN.md's ``--json`` layout, plus ``latency_ms`` (and ``skipped`` when any were)."""
        out = {"num_images": self.num_images, "metrics": dict(self.metrics),
               "per_image": [dict(row) for row in self.per_image],
               "latency_ms": self.latency_summary()}
        if self.skipped:
            out["skipped"] = list(self.skipped)
        return out


def predict_depth(estimator: Estimator, image_rgb: np.ndarray, flip_tta: bool = False) -> np.ndarray:
    """(h, w) float32 depth in metres at the network size; with flip_tta the mean of the image's
    prediction and the mirrored prediction of the mirrored image."""
    depth = np.asarray(estimator.predict(image_rgb, output_size="network").depth_m, dtype=np.float32)
    if not flip_tta:
        return depth
    flipped = np.ascontiguousarray(image_rgb[:, ::-1])
    depth_flipped = np.asarray(estimator.predict(flipped, output_size="network").depth_m,
                               dtype=np.float32)
    return 0.5 * (depth + depth_flipped[:, ::-1])


def _image_indices(num_frames: int, max_images: int) -> set[int]:
    """Up to ``max_images`` frame indices spread evenly over the dataset."""
    if num_frames <= 0 or max_images <= 0:
        return set()
    return {int(i) for i in np.linspace(0, num_frames - 1, min(max_images, num_frames)).round()}


def _file_stem(index: int, name: str) -> str:
    return f"{index:05d}_" + re.sub(r"[^A-Za-z0-9_.-]+", "_", name)[:80]


def evaluate_dataset(estimator: Estimator, dataset: Sequence[RGBDFrame],
                     protocol: EvalProtocol = EvalProtocol(), flip_tta: bool = False,
                     progress: bool = True, save_images_dir: str | Path | None = None,
                     max_images_saved: int = 8, limit: int | None = None) -> EvaluationResult:
    """Predict every frame of ``dataset`` (len + getitem -> RGBDFrame) and score it.

    Frames without any valid ground-truth pixel are skipped (and listed in the result) rather
    than ending the run; ``limit`` evaluates only the first N frames. Comparison PNGs of
    evenly spaced frames go to ``save_images_dir`` when given.
    """
    from tqdm import tqdm  # only the evaluation loop needs it

    num_frames = len(dataset) if limit is None else min(len(dataset), max(int(limit), 0))
    if num_frames == 0:
        raise DatasetError("the dataset has no frames to evaluate; check --data, --split and --limit")
    save_indices = _image_indices(num_frames, max_images_saved) if save_images_dir else set()
    averager = MetricAverager()
    latency_ms: list[float] = []
    skipped: list[str] = []
    for index in tqdm(range(num_frames), desc="evaluate", unit="frame", disable=not progress):
        frame = dataset[index]
        start = time.perf_counter()
        pred_m = predict_depth(estimator, frame.image, flip_tta)
        latency_ms.append((time.perf_counter() - start) * 1e3)
        try:
            averager.add(evaluate_frame(pred_m, frame.depth_m, protocol), frame.name)
        except ValueError as exc:
            log.warning("skipping frame %s: %s", frame.name, exc)
            skipped.append(frame.name)
            continue
        if index in save_indices:
            from depth_unet_ros.visualize import comparison_image, save_png

            save_png(Path(save_images_dir) / f"{_file_stem(index, frame.name)}.png",
                     comparison_image(frame.image, pred_m, frame.depth_m))
    if averager.count == 0:
        raise DatasetError(
            f"none of the {num_frames} frames has a valid ground-truth pixel in "
            f"({protocol.min_depth_m}, {protocol.max_depth_m}) m; is the depth in metres?")
    return EvaluationResult(num_images=averager.count, metrics=averager.mean(),
                            per_image=averager.per_image, latency_ms=latency_ms, skipped=skipped)
