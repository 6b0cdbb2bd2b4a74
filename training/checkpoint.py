"""Training checkpoints: atomic writes, ``weights_only`` loads, and the RNG state for exact resume.

A checkpoint is a dict of tensors, numbers, strings, lists and dicts only, so
``torch.load(weights_only=True)`` reads it without unpickling arbitrary code. Its keys:

``format`` (CHECKPOINT_FORMAT), ``model`` (state_dict, unwrapped from DDP), ``optimizer``,
``scheduler``, ``scaler``, ``epoch`` (epochs completed), ``global_step``, ``best_metric``
(value or None), ``best_metric_name``, ``config`` (TrainConfig as plain dicts),
``model_config`` (ModelConfig.to_dict()), ``rng`` (see capture_rng_state).
"""
from __future__ import annotations

import pickle
import random
import zipfile
from pathlib import Path
from typing import Any

import numpy as np
import torch

from depth_unet_ros.atomic_file import atomic_output
from depth_unet_ros.errors import ModelLoadError

CHECKPOINT_FORMAT = 1  # bump when the keys above change meaning


def save_checkpoint(path: str | Path, state: dict[str, Any]) -> Path:
    """Write ``state`` to ``path`` so that a crash at any moment leaves the old file intact.

    The bytes go to a temporary file in the same folder (same filesystem, so the rename is
    atomic), are flushed and fsynced, then renamed over ``path``.
    """
    with atomic_output(path) as tmp:
        torch.save(state, tmp)
    return Path(path)


def load_checkpoint(path: str | Path, map_location: str | torch.device = "cpu") -> dict[str, Any]:
    """Read a checkpoint written by save_checkpoint; ModelLoadError says what to do if it fails."""
    path = Path(path)
    fix = ("re-run training with --resume pointing at an earlier checkpoint (e.g. best.pt), "
           "or retrain")
    if not path.is_file():
        raise ModelLoadError(f"checkpoint {path} does not exist; check the path, or {fix}")
    try:
        state = torch.load(path, map_location=map_location, weights_only=True)
    except (RuntimeError, EOFError, OSError, ValueError, zipfile.BadZipFile,
            pickle.UnpicklingError) as exc:
        raise ModelLoadError(
            f"checkpoint {path} is corrupt or not a checkpoint ({exc}); {fix}") from None
    if not isinstance(state, dict) or "format" not in state or "model" not in state:
        raise ModelLoadError(f"{path} is not a depth_unet_ros training checkpoint (no 'format' "
                             f"or 'model' key); {fix}")
    if state["format"] != CHECKPOINT_FORMAT:
        raise ModelLoadError(f"checkpoint {path} has format {state['format']}, this version reads "
                             f"{CHECKPOINT_FORMAT}; use the matching depth_unet_ros version or retrain")
    return state


def model_from_checkpoint(path: str | Path, map_location: str | torch.device = "cpu"):
    """(DepthModel in eval mode, ModelConfig) from a training checkpoint; for export and tools."""
    from training.model import build_model
    from training.model_config import ModelConfig

    state = load_checkpoint(path, map_location)
    config = ModelConfig.from_dict(state["model_config"])
    model = build_model(config)
    model.load_state_dict(state["model"])
    return model.eval(), config


def capture_rng_state() -> dict[str, Any]:
    """Every RNG the training loop may touch, as weights_only-safe tensors and plain values."""
    kind, keys, pos, has_gauss, cached_gaussian = np.random.get_state()
    version, py_state, gauss_next = random.getstate()
    state: dict[str, Any] = {
        "torch": torch.get_rng_state(),
        "numpy": {"kind": str(kind), "keys": torch.from_numpy(np.asarray(keys, dtype=np.int64)),
                  "pos": int(pos), "has_gauss": int(has_gauss),
                  "cached_gaussian": float(cached_gaussian)},
        "python": [int(version), [int(v) for v in py_state], gauss_next],
    }
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def restore_rng_state(state: dict[str, Any]) -> None:
    """Inverse of capture_rng_state. The state may have been loaded onto the training device
    (a resume on CUDA maps every tensor there), so each tensor comes back to the host first."""
    torch.set_rng_state(state["torch"].cpu())
    np_state = state["numpy"]
    np.random.set_state((np_state["kind"], np_state["keys"].cpu().numpy().astype(np.uint32),
                         np_state["pos"], np_state["has_gauss"], np_state["cached_gaussian"]))
    version, py_state, gauss_next = state["python"]
    random.setstate((version, tuple(py_state), gauss_next))
    if "cuda" in state and torch.cuda.is_available() and len(state["cuda"]) == torch.cuda.device_count():
        torch.cuda.set_rng_state_all([s.cpu() for s in state["cuda"]])
