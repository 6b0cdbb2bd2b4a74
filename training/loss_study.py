"""The loss study of issue 14: one recipe, four losses, the same budget, real held-out frames.

Eigen's scale-invariant log loss (lambda 0.5), L2 in metres, L2 with edge-aware smoothness and
BTS's SILog each train the recipe's model from the same initial weights, on the same frames
in the same order, for the same number of steps; the table is each run's *last* validation
(equal budget, no checkpoint picked), on the recipe's real validation frames. Those four run
without the gradient-matching term (loss.gradient_weight=0), and a fifth run adds it to Eigen's
loss as the bundled recipe does. Runs that were interrupted resume exactly.

    python -m training.loss_study --config config/train_real_default.yaml --epochs 1
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Sequence

LOSSES = ("silog", "l2", "l2_smooth", "bts")
GRADIENT_RUN = "silog+gradient"  # Eigen's loss + Eigen & Fergus's gradient term (weight 1)


def study_runs() -> dict[str, list[str]]:
    """Run name -> the loss overrides it trains with."""
    runs = {name: [f"loss.name={name}", "loss.gradient_weight=0"] for name in LOSSES}
    runs[GRADIENT_RUN] = ["loss.name=silog", "loss.gradient_weight=1.0"]
    return runs
COLUMNS = ("delta1", "abs_rel", "rmse", "rmse_log", "silog")


def last_validation(out_dir: Path) -> dict[str, float]:
    """The final validation metrics a run logged (metrics.jsonl, last record)."""
    records = [json.loads(line) for line in (out_dir / "metrics.jsonl").read_text().splitlines()]
    return records[-1]["val"]


def run_study(config: Path, epochs: int, out: Path, overrides: Sequence[str] = ()) -> dict[str, dict]:
    """Train one run per loss under ``out`` (skipping finished ones); {loss: final val metrics}."""
    from training.config import load_config
    from training.trainer import train

    table = {}
    for name, loss in study_runs().items():
        run_dir = out / name
        cfg = load_config(config, [*overrides, *loss, f"optim.epochs={epochs}",
                                   f"run.out_dir={run_dir}", "run.tensorboard=false",
                                   "run.progress=false"])
        done = (run_dir / "metrics.jsonl").is_file() and len(
            (run_dir / "metrics.jsonl").read_text().splitlines()) >= epochs
        if not done:
            train(cfg, resume=(run_dir / "last.pt").is_file())
        table[name] = last_validation(run_dir)
    return table


def markdown(table: dict[str, dict]) -> str:
    lines = ["| loss | " + " | ".join(COLUMNS) + " |", "|---" * (1 + len(COLUMNS)) + "|"]
    lines += [f"| {name} | " + " | ".join(f"{m[c]:.3f}" for c in COLUMNS) + " |"
              for name, m in table.items()]
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--config", type=Path, default=Path("config/train_real_default.yaml"),
                        help="the recipe every loss trains with")
    parser.add_argument("--epochs", type=int, default=1, help="training passes per loss (the budget)")
    parser.add_argument("--out", type=Path, default=Path("runs/loss_study"), help="run folders go here")
    parser.add_argument("overrides", nargs="*", help="section.key=value applied to every run")
    args = parser.parse_args(argv)
    table = run_study(args.config, args.epochs, args.out, args.overrides)
    print(markdown(table))
    (args.out / "loss_study.json").write_text(json.dumps(table, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
