"""training.loss_study: the four losses of the study and its table of final validations."""
from __future__ import annotations

import json
from pathlib import Path

from training.config import load_config
from training.loss_study import LOSSES, last_validation, markdown, study_runs
from training.losses import LOSS_NAMES


def test_the_study_covers_every_loss_the_trainer_offers():
    """Eigen silog, L2, L2 + smoothness and BTS: each loss of the config is compared."""
    assert set(LOSSES) == set(LOSS_NAMES)


def test_the_four_losses_run_alone_and_a_fifth_adds_the_gradient_term():
    """The bundled recipe adds the gradient term; the study compares the losses without it, so
    each row is the named loss alone, and one more row is the recipe's own loss."""
    weights = {}
    for name, overrides in study_runs().items():
        cfg = load_config(Path(__file__).resolve().parents[1] / "config" / "train_real_default.yaml",
                          overrides)
        weights[name] = (cfg.loss.name, cfg.loss.gradient_weight)
    assert all(weights[name] == (name, 0.0) for name in LOSSES)
    assert weights["silog+gradient"] == ("silog", 1.0)


def test_the_table_reports_the_last_validation_not_the_best(tmp_path):
    """Equal budget means the final epoch's metrics: no checkpoint is picked per loss."""
    records = [{"epoch": 1, "val": {"delta1": 0.9, "abs_rel": 0.1, "rmse": 0.3, "rmse_log": 0.1, "silog": 9.0}},
               {"epoch": 2, "val": {"delta1": 0.8, "abs_rel": 0.2, "rmse": 0.4, "rmse_log": 0.2, "silog": 10.0}}]
    (tmp_path / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records))
    final = last_validation(tmp_path)
    assert final["abs_rel"] == 0.2
    assert markdown({"silog": final}).splitlines()[2] == "| silog | 0.800 | 0.200 | 0.400 | 0.200 | 10.000 |"
