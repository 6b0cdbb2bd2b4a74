"""The real-data table of the model card: models beside constant depths on held-out frames.

Why a script: the bundled model is judged on real frames, and users should regenerate the
table the card and README print. Each set is scored with the DESIGN.md protocol (metric, no
per-image scaling) through the runtime's own evaluation, for each ONNX model given and for two
constant depths: that set's median ground truth (the best single guess) and 2.5 m.

    python -m training.real_eval --models depth_unet_ros/models/default.onnx other.onnx \
        --config config/train_real_default.yaml --json out/real_eval.json

Sets (each skipped, with a note, when its data is absent): the validation frames of the
config's real sequence (registered as in training, never trained on), the four NYU Depth V2
*train*-split frames of ../shared/data/nyu_samples, 64 plain and 64 rich synthetic rooms of seed
3000 (no run trains or validates on it) and the bundled sample bag (all 44 frames).
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path
from types import SimpleNamespace
from typing import Any, Callable, Sequence

import numpy as np

from depth_unet_ros.datasets.base import RGBDFrame

REPO = Path(__file__).resolve().parents[1]
NYU_SAMPLES = REPO / ".." / "shared" / "data" / "nyu_samples"
SYNTHETIC_SEED = 3000  # training renders 0, validation 1000, the demo bag 2000
COLUMNS = ("delta1", "abs_rel", "rmse", "rmse_log", "silog", "scale")
# "scale": the median over frames of median(truth / prediction) on the protocol's valid pixels.
# 1.00 is the right scale; 1.8 means 1.8x too near. It tells a scale error (one factor per
# image, the usual failure on unseen rooms) from a structure error (SILog).


class ConstantDepth:
    """One depth everywhere: the baseline a model must beat to be worth running."""

    def __init__(self, depth_m: float):
        self.depth_m = float(depth_m)

    def predict(self, image_rgb: np.ndarray, output_size: str = "network") -> SimpleNamespace:
        return SimpleNamespace(depth_m=np.full(image_rgb.shape[:2], self.depth_m, np.float32))


def real_validation_frames(config_path: Path) -> list[RGBDFrame]:
    """The config's validation range of its real sequence, registered as training registers it."""
    from training.config import load_config
    from training.data import open_frames

    cfg = load_config(config_path)
    data = cfg.data
    dataset = open_frames(data.val, data, data.val_split, data.synthetic_val_frames,
                          data.synthetic_seed, data.val_frames)
    return [dataset[i] for i in range(len(dataset))]


def datasets(config_path: Path) -> dict[str, Callable[[], list[RGBDFrame]]]:
    """Name -> loader of each evaluation set (loaders, so absent data skips one set only)."""
    from depth_unet_ros.datasets.bag import BagDataset
    from depth_unet_ros.datasets.folder import FolderDataset
    from depth_unet_ros.datasets.synthetic.scenes import SyntheticIndoorDataset
    from depth_unet_ros.commands.demo import bundled_sample_bag

    def every(ds: Any, step: int = 1) -> list[RGBDFrame]:
        return [ds[i] for i in range(0, len(ds), step)]

    return {
        "real sequence, held-out validation frames": lambda: real_validation_frames(config_path),
        "NYU Depth V2 train-split samples": lambda: every(FolderDataset(NYU_SAMPLES)),
        f"synthetic rooms, seed {SYNTHETIC_SEED}": lambda: every(SyntheticIndoorDataset(64, seed=SYNTHETIC_SEED)),
        f"rich synthetic rooms, seed {SYNTHETIC_SEED}": lambda: every(
            SyntheticIndoorDataset(64, seed=SYNTHETIC_SEED, variant="rich")),
        "sample bag (synthetic hand-held)": lambda: every(BagDataset(bundled_sample_bag())),
    }


class _Recording:
    """An estimator that keeps what it predicted, for the scale column."""

    def __init__(self, estimator: Any) -> None:
        self.estimator, self.depths = estimator, []

    def predict(self, image_rgb: np.ndarray, output_size: str = "network") -> Any:
        out = self.estimator.predict(image_rgb, output_size=output_size)
        self.depths.append(np.asarray(out.depth_m, np.float32))
        return out


def scale_ratio(depths: Sequence[np.ndarray], frames: Sequence[RGBDFrame]) -> float:
    """Median over frames of median(truth / prediction) on the protocol's valid pixels, the
    prediction brought to the truth's size and clipped as ``evaluate_frame`` does."""
    from depth_unet_ros.evaluation.metrics import EvalProtocol
    from depth_unet_ros.preprocessing import resize_depth

    protocol, ratios = EvalProtocol(), []
    for pred, frame in zip(depths, frames):
        valid = protocol.valid_mask(frame.depth_m)
        pred = np.clip(resize_depth(pred, frame.depth_m.shape), protocol.min_depth_m,
                       protocol.max_depth_m)
        if valid.any():
            ratios.append(float(np.median(frame.depth_m[valid] / pred[valid])))
    return float(np.median(ratios))


def score(estimator: Any, frames: Sequence[RGBDFrame]) -> dict[str, float]:
    from depth_unet_ros.evaluation.offline import evaluate_dataset

    recording = _Recording(estimator)
    metrics = dict(evaluate_dataset(recording, frames, progress=False).metrics)
    return {**metrics, "scale": scale_ratio(recording.depths, frames)}


def run(models: Sequence[Path], config_path: Path) -> dict[str, dict[str, Any]]:
    """{set: {"frames": N, "rows": {label: metrics}}} for every set whose data is present."""
    from depth_unet_ros.inference import load_estimator

    # "auto": a .pt checkpoint runs in torch; one thread leaves the other core to training
    estimators = {str(m): load_estimator(m, "auto", num_threads=1) for m in models}
    table: dict[str, dict[str, Any]] = {}
    for name, load in datasets(config_path).items():
        try:
            frames = load()
        except Exception as exc:  # noqa: BLE001 - absent shared data skips that set, with a note
            print(f"skipped {name}: {exc}")
            continue
        median = float(np.median(np.concatenate([f.depth_m[f.depth_m > 0] for f in frames])))
        rows = {label: score(est, frames) for label, est in estimators.items()}
        rows[f"constant {median:.2f} m (median)"] = score(ConstantDepth(median), frames)
        rows["constant 2.50 m"] = score(ConstantDepth(2.5), frames)
        table[name] = {"frames": len(frames), "rows": rows}
    return table


def markdown(table: dict[str, dict[str, Any]]) -> str:
    lines = ["| data | frames | model | " + " | ".join(COLUMNS) + " |",
             "|---" * (3 + len(COLUMNS)) + "|"]
    for name, entry in table.items():
        for i, (label, metrics) in enumerate(entry["rows"].items()):
            head = f"| {name} | {entry['frames']} |" if i == 0 else "| | |"
            lines.append(f"{head} {label} | " + " | ".join(f"{metrics[c]:.3f}" for c in COLUMNS) + " |")
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--models", nargs="+", type=Path, required=True,
                        help="models to score: exported .onnx, or training checkpoints (.pt, run "
                        "in torch, so runs can be compared before one is exported)")
    parser.add_argument("--config", type=Path, default=REPO / "config" / "train_real_default.yaml",
                        help="training config whose validation frames are the real held-out set")
    parser.add_argument("--json", type=Path, default=None, help="write the table as JSON here")
    parser.add_argument("--write-frames", type=Path, default=None,
                        help="also write the registered held-out real frames here as a folder "
                             "dataset, for depth-unet evaluate --data (keep it out of the repo: "
                             "the data's licence forbids committing it)")
    args = parser.parse_args(argv)
    if args.write_frames:
        from depth_unet_ros.datasets.folder import write_folder_frame

        for frame in real_validation_frames(args.config):
            write_folder_frame(args.write_frames / frame.name, frame)
    table = run(args.models, args.config)
    print(markdown(table))
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(table, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
