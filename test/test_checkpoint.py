"""training.checkpoint: atomic saves, weights_only loads, clear errors, RNG round trips."""
from __future__ import annotations

import random

import numpy as np
from pathlib import Path

import pytest
import torch

from depth_unet_ros.errors import ModelLoadError
from training.checkpoint import (CHECKPOINT_FORMAT, capture_rng_state, load_checkpoint,
                                 restore_rng_state, save_checkpoint)


def make_state(value: float = 1.0) -> dict:
    model = torch.nn.Linear(3, 2)
    torch.nn.init.constant_(model.weight, value)
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3)
    model(torch.ones(1, 3)).sum().backward()
    optimizer.step()
    return {"format": CHECKPOINT_FORMAT, "model": model.state_dict(),
            "optimizer": optimizer.state_dict(), "epoch": 3, "global_step": 42,
            "best_metric": None, "config": {"optim": {"lr": 1e-3, "betas": [0.9, 0.999]}},
            "rng": capture_rng_state()}


def test_a_saved_checkpoint_loads_with_weights_only(tmp_path):
    path = save_checkpoint(tmp_path / "last.pt", make_state(2.0))
    raw = torch.load(path, weights_only=True)  # no custom classes, no pickled code
    state = load_checkpoint(path)
    assert raw["global_step"] == state["global_step"] == 42
    assert torch.equal(state["model"]["weight"], raw["model"]["weight"])
    assert state["config"]["optim"]["betas"] == [0.9, 0.999]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["last.pt"]  # no temp file left


def test_a_failing_write_leaves_the_old_checkpoint_intact(tmp_path, monkeypatch):
    path = save_checkpoint(tmp_path / "last.pt", make_state(1.0))
    before = path.read_bytes()

    def broken_save(obj, target, *args, **kwargs):
        Path(target).write_bytes(b"half a checkpoint")
        raise OSError("disk full")

    monkeypatch.setattr(torch, "save", broken_save)
    with pytest.raises(OSError, match="disk full"):
        save_checkpoint(path, make_state(5.0))
    monkeypatch.undo()
    assert path.read_bytes() == before
    assert float(load_checkpoint(path)["model"]["weight"][0, 0]) == pytest.approx(1.0, abs=0.01)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["last.pt"]


def test_saving_replaces_the_previous_checkpoint(tmp_path):
    path = save_checkpoint(tmp_path / "sub" / "last.pt", make_state(1.0))
    save_checkpoint(path, make_state(7.0))
    assert float(load_checkpoint(path)["model"]["weight"][0, 0]) == pytest.approx(7.0, abs=0.01)


def test_a_missing_checkpoint_says_what_to_do(tmp_path):
    with pytest.raises(ModelLoadError) as info:
        load_checkpoint(tmp_path / "missing.pt")
    assert "missing.pt" in str(info.value) and "--resume" in str(info.value)


def test_a_corrupt_or_foreign_file_is_a_model_load_error(tmp_path):
    garbage = tmp_path / "garbage.pt"
    garbage.write_bytes(b"\x00not a checkpoint" * 10)
    with pytest.raises(ModelLoadError, match="corrupt"):
        load_checkpoint(garbage)
    truncated = tmp_path / "truncated.pt"
    truncated.write_bytes(save_checkpoint(tmp_path / "ok.pt", make_state()).read_bytes()[:200])
    with pytest.raises(ModelLoadError, match="retrain"):
        load_checkpoint(truncated)
    foreign = tmp_path / "foreign.pt"
    torch.save({"weights": torch.zeros(2)}, foreign)
    with pytest.raises(ModelLoadError, match="not a depth_unet_ros training checkpoint"):
        load_checkpoint(foreign)


def test_a_checkpoint_with_pickled_objects_is_refused(tmp_path):
    path = tmp_path / "pickled.pt"
    torch.save({"format": CHECKPOINT_FORMAT, "model": {}, "obj": ModelLoadError("x")}, path)
    with pytest.raises(ModelLoadError):
        load_checkpoint(path)


def test_restoring_the_rng_state_replays_every_generator():
    torch.manual_seed(1), np.random.seed(2), random.seed(3)
    np.random.normal()  # leaves a cached gaussian in numpy's legacy state
    state = capture_rng_state()
    first = (torch.rand(3), np.random.rand(3), np.random.normal(), random.random())
    torch.manual_seed(9), np.random.seed(9), random.seed(9)
    restore_rng_state(state)
    again = (torch.rand(3), np.random.rand(3), np.random.normal(), random.random())
    assert torch.equal(first[0], again[0])
    assert np.array_equal(first[1], again[1])
    assert first[2] == again[2] and first[3] == again[3]


def test_rng_state_survives_a_weights_only_round_trip(tmp_path):
    path = save_checkpoint(tmp_path / "rng.pt", {"format": CHECKPOINT_FORMAT, "model": {},
                                                 "rng": capture_rng_state()})
    expected = torch.rand(2)
    restore_rng_state(load_checkpoint(path)["rng"])
    assert torch.equal(torch.rand(2), expected)
