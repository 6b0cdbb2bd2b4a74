"""DESIGN.md's NYU evaluation protocol: the one implementation of every depth metric.

Predictions are upsampled to the ground truth's size, clipped to [min, max] metres, the Eigen
crop is applied to 480x640 frames, pixels count where min < gt < max, metrics are computed per
image and then averaged over images (so a frame with few valid pixels weighs as much as one
with many, as in the published tables).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Mapping

import numpy as np

from depth_unet_ros.preprocessing import resize_depth

METRIC_NAMES: tuple[str, ...] = (
    "delta1", "delta2", "delta3", "abs_rel", "sq_rel", "rmse", "rmse_log", "log10", "silog")

# Eigen et al. 2014 crop of a 480x640 NYU frame: rows 45:471, cols 41:601 (the region the
# Kinect depth and RGB both cover, without the white border of the projected images).
EIGEN_CROP_SIZE_HW = (480, 640)
EIGEN_CROP_ROWS = (45, 471)
EIGEN_CROP_COLS = (41, 601)


@dataclass(frozen=True)
class EvalProtocol:
    """How a predicted depth map is compared with the ground truth (DESIGN.md)."""

    min_depth_m: float = 1e-3  # predictions clipped here; gt must be strictly above
    max_depth_m: float = 10.0  # NYU's Kinect range; gt must be strictly below
    eval_size_hw: tuple[int, int] = (480, 640)  # NYU frame size, the one the Eigen crop refers to
    crop: str = "eigen"  # "eigen" or "none"

    def __post_init__(self) -> None:
        if self.crop not in ("eigen", "none"):
            raise ValueError(f"EvalProtocol.crop must be 'eigen' or 'none', got {self.crop!r}")
        if not 0 < self.min_depth_m < self.max_depth_m:
            raise ValueError(
                f"EvalProtocol needs 0 < min_depth_m < max_depth_m, got {self.min_depth_m}, "
                f"{self.max_depth_m}")
        if self.crop == "eigen" and tuple(self.eval_size_hw) != EIGEN_CROP_SIZE_HW:
            raise ValueError(
                f"the Eigen crop is defined for {EIGEN_CROP_SIZE_HW} frames, not "
                f"{tuple(self.eval_size_hw)}; use crop='none' for other sizes")

    def valid_mask(self, gt_m: np.ndarray) -> np.ndarray:
        """Boolean (H, W) mask of the ground-truth pixels that count: finite, strictly inside
        (min_depth_m, max_depth_m), and kept by the crop. The one definition of the rule."""
        gt = np.asarray(gt_m)
        with np.errstate(invalid="ignore"):  # NaN gt compares False: invalid, as intended
            valid = np.isfinite(gt) & (gt > self.min_depth_m) & (gt < self.max_depth_m)
        return valid & self.crop_mask(gt.shape)

    def crop_mask(self, shape_hw: tuple[int, int]) -> np.ndarray:
        """Boolean (H, W) mask of the pixels the crop keeps for a ground truth of ``shape_hw``.

        The Eigen crop applies only to full 480x640 frames; a frame of any other size (e.g. the
        565x427 frames some repositories ship already cropped) is taken as is.
        """
        mask = np.zeros(shape_hw, dtype=bool)
        if self.crop == "eigen" and tuple(shape_hw) == tuple(self.eval_size_hw):
            (r0, r1), (c0, c1) = EIGEN_CROP_ROWS, EIGEN_CROP_COLS
            mask[r0:r1, c0:c1] = True
        else:
            mask[:] = True
        return mask


def depth_metrics(pred_m: np.ndarray, gt_m: np.ndarray,
                  valid: np.ndarray | None = None) -> dict[str, float]:
    """The nine metrics of METRIC_NAMES for matching positive depths in metres, in float64.

    ``pred_m`` and ``gt_m`` are 1-D arrays of valid pixels, or same-shape arrays with a boolean
    ``valid`` mask selecting them. ``silog`` is 100 * the standard deviation of
    d = ln(pred) - ln(gt), i.e. 100 * sqrt(mean(d^2) - mean(d)^2) (the scale-invariant error
    with lambda = 1, as BTS and later papers report it).
    """
    pred = np.asarray(pred_m, dtype=np.float64)
    gt = np.asarray(gt_m, dtype=np.float64)
    if pred.shape != gt.shape:
        raise ValueError(f"prediction shape {pred.shape} differs from ground truth shape {gt.shape}")
    if valid is not None:
        pred, gt = pred[valid], gt[valid]
    pred, gt = pred.ravel(), gt.ravel()
    if pred.size == 0:
        raise ValueError("no valid pixels to compute depth metrics on")
    if not (np.all(gt > 0) and np.all(pred > 0)):
        raise ValueError("depth metrics need positive depths; clip predictions and mask gt first "
                         "(evaluate_frame does both)")
    ratio = np.maximum(pred / gt, gt / pred)
    diff = pred - gt
    d = np.log(pred) - np.log(gt)
    return {
        "delta1": float(np.mean(ratio < 1.25)),
        "delta2": float(np.mean(ratio < 1.25 ** 2)),
        "delta3": float(np.mean(ratio < 1.25 ** 3)),
        "abs_rel": float(np.mean(np.abs(diff) / gt)),
        "sq_rel": float(np.mean(diff ** 2 / gt)),
        "rmse": float(np.sqrt(np.mean(diff ** 2))),
        "rmse_log": float(np.sqrt(np.mean(d ** 2))),
        "log10": float(np.mean(np.abs(np.log10(pred) - np.log10(gt)))),
        # max(0, .) absorbs rounding when every d is equal (variance 0).
        "silog": float(100.0 * np.sqrt(max(np.mean(d ** 2) - np.mean(d) ** 2, 0.0))),
    }


def evaluate_frame(pred_m: np.ndarray, gt_m: np.ndarray,
                   protocol: EvalProtocol = EvalProtocol()) -> dict[str, float]:
    """Metrics of one (h, w) prediction against an (H, W) ground truth in metres (0 = invalid).

    The prediction is bilinearly upsampled to the ground truth's size (NYU: 480x640), clipped
    to [min_depth_m, max_depth_m], the crop applied (see EvalProtocol.crop_mask), and pixels
    count where the gt is finite and min < gt < max. Raises ValueError when none is left.
    """
    gt = np.asarray(gt_m, dtype=np.float32)
    if gt.ndim != 2:
        raise ValueError(f"ground truth must be an (H, W) depth map, got shape {gt.shape}")
    pred = resize_depth(pred_m, gt.shape)
    pred = np.clip(pred, protocol.min_depth_m, protocol.max_depth_m)
    valid = protocol.valid_mask(gt)
    if not valid.any():
        raise ValueError(
            f"no valid ground-truth pixel in a {gt.shape[0]}x{gt.shape[1]} frame within "
            f"({protocol.min_depth_m}, {protocol.max_depth_m}) m inside the crop; check the "
            "depth units (metres) and the dataset")
    return depth_metrics(pred, gt, valid)


class MetricAverager:
    """Collects per-image metric dicts and averages them over images."""

    def __init__(self) -> None:
        self._rows: list[dict] = []

    def add(self, metrics: Mapping[str, float], name: str) -> None:
        """Record one image's metrics under ``name``."""
        self._rows.append({"name": str(name), **{k: float(v) for k, v in metrics.items()}})

    @property
    def count(self) -> int:
        return len(self._rows)

    @property
    def per_image(self) -> list[dict]:
        """One dict per image, in insertion order: ``name`` plus the metrics."""
        return [dict(row) for row in self._rows]

    def mean(self) -> dict[str, float]:
        """Mean over images of each metric in METRIC_NAMES (then any others seen in every row)."""
        if not self._rows:
            raise ValueError("no images were evaluated, so there is no mean; check the dataset")
        keys = [k for k in self._rows[0] if k != "name"]
        keys = [k for k in METRIC_NAMES if k in keys] + [k for k in keys if k not in METRIC_NAMES]
        return {k: float(np.mean([row[k] for row in self._rows])) for k in keys}


_DECIMALS = {"silog": 2}  # everything else: 3 decimals (deltas, relative errors, metres)


def format_metric_table(rows: Mapping[str, Mapping[str, float]]) -> str:
    """A fixed-width text table: one row per model/system name, one column per metric.

    Deltas are higher-is-better, the rest lower-is-better; missing values print as ``-``.
    """
    name_width = max([len("model")] + [len(str(name)) for name in rows])
    widths = {k: max(len(k), 7) for k in METRIC_NAMES}
    header = "model".ljust(name_width) + "  " + "  ".join(k.rjust(widths[k]) for k in METRIC_NAMES)
    lines = [header, "-" * len(header)]
    for name, metrics in rows.items():
        cells = []
        for k in METRIC_NAMES:
            value = metrics.get(k)
            text = "-" if value is None else f"{float(value):.{_DECIMALS.get(k, 3)}f}"
            cells.append(text.rjust(widths[k]))
        lines.append(str(name).ljust(name_width) + "  " + "  ".join(cells))
    return "\n".join(lines)
