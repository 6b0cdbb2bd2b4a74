"""The runtime works where torch does not exist (a Jetson with numpy and TensorRT/ONNX Runtime):
a fresh interpreter with torch and training made unimportable loads an ONNX model and predicts."""
from __future__ import annotations

import dataclasses
import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]

# Runs in a fresh interpreter: a meta path finder makes torch and training unimportable and
# records every attempt, so a lazy import hidden behind a try/except is caught too.
SCRIPT = textwrap.dedent("""
    import json, sys

    BLOCKED = ("torch", "training")
    attempts = []

    class BlockTorch:
        def find_spec(self, name, path=None, target=None):
            if name.split(".")[0] in BLOCKED:
                attempts.append(name)
                raise ModuleNotFoundError(f"No module named {name!r} (blocked by the test)")
            return None

    sys.meta_path.insert(0, BlockTorch())

    import numpy as np
    import depth_unet_ros, depth_unet_ros.inference, depth_unet_ros.backends.onnxruntime_backend
    import depth_unet_ros.model_metadata, depth_unet_ros.backends.engine_cache
    import depth_unet_ros.backends.tensorrt_backend, depth_unet_ros.preprocessing
    heavy_after_import = sorted(m for m in sys.modules if m.split(".")[0] in ("torch", "rclpy"))
    attempts_at_import = list(attempts)

    from depth_unet_ros.errors import ModelLoadError
    from depth_unet_ros.inference import load_estimator

    estimator = load_estimator(sys.argv[1])
    image = np.random.default_rng(0).integers(0, 256, (480, 640, 3), dtype=np.uint8)
    prediction = estimator.predict(image, output_size="input")

    try:
        load_estimator(sys.argv[2])
        checkpoint_error = None
    except ModelLoadError as exc:
        checkpoint_error = str(exc)

    print(json.dumps({
        "heavy_after_import": heavy_after_import,
        "attempts_at_import": attempts_at_import,
        "backend": estimator.backend.name,
        "depth_shape": list(prediction.depth_m.shape),
        "features_shape": list(prediction.features.shape),
        "depth_finite": bool(np.isfinite(prediction.depth_m).all()),
        "checkpoint_error": checkpoint_error,
        "heavy_at_end": sorted(m for m in sys.modules if m.split(".")[0] in ("torch", "rclpy")),
    }))
""")


@pytest.fixture(scope="module")
def onnx_model(tmp_path_factory) -> Path:
    """A small exported model (torch is needed here, in the test process, only to make it)."""
    torch = pytest.importorskip("torch")
    from depth_unet_ros.model_metadata import ModelMetadata
    from training.export import export_onnx
    from training.model import build_model
    from training.model_config import preset

    config = dataclasses.replace(preset("unet-small"), input_height=64, input_width=96)
    torch.manual_seed(0)
    path = tmp_path_factory.mktemp("runtime") / "model.onnx"
    return export_onnx(build_model(config).eval(), path, ModelMetadata.for_model_config(config))


def test_runtime_predicts_without_torch_and_never_imports_it(onnx_model, tmp_path):
    """With torch unimportable, load_estimator(onnx).predict works; no runtime module imports
    torch or rclpy; a .pt checkpoint fails with a ModelLoadError that says to export it."""
    checkpoint = tmp_path / "model.pt"
    checkpoint.write_bytes(b"placeholder")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")])}
    result = subprocess.run([sys.executable, "-c", SCRIPT, str(onnx_model), str(checkpoint)],
                            capture_output=True, text=True, env=env, cwd=tmp_path, timeout=120)
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout.strip().splitlines()[-1])
    assert report["attempts_at_import"] == [], "runtime modules tried to import torch/training"
    assert report["heavy_after_import"] == []
    assert report["backend"] == "onnxruntime"
    assert report["depth_shape"] == [480, 640] and report["features_shape"][1:] == [16, 24]
    assert report["depth_finite"]
    assert "depth-unet export" in (report["checkpoint_error"] or "")
    assert report["heavy_at_end"] == []
