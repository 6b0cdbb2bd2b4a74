"""TensorRT engines (needs TensorRT 10, cuda-python and an NVIDIA GPU; skipped cleanly elsewhere):
fp32/fp16 parity with ONNX Runtime, the cache reusing an engine, and direct .engine loading."""
from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pytest

pytestmark = pytest.mark.gpu

trt = pytest.importorskip("tensorrt")
torch = pytest.importorskip("torch")

from depth_unet_ros.backends.tensorrt_backend import tensorrt_unavailable_reason  # noqa: E402

_REASON = tensorrt_unavailable_reason()
if _REASON is not None:
    pytest.skip(f"TensorRT cannot run here: {_REASON}", allow_module_level=True)

from depth_unet_ros.backends.engine_cache import EngineCache  # noqa: E402
from depth_unet_ros.backends.tensorrt_backend import TensorRTBackend, ensure_engine  # noqa: E402
from depth_unet_ros.inference import DepthEstimator, load_estimator  # noqa: E402
from depth_unet_ros.model_metadata import ModelMetadata  # noqa: E402
from training.export import export_onnx  # noqa: E402
from training.model import build_model  # noqa: E402
from training.model_config import preset  # noqa: E402

CONFIG = dataclasses.replace(preset("unet-small"), input_height=96, input_width=128)
TOLERANCE_M = {"fp32": 1e-3, "fp16": 1e-2}


@pytest.fixture(scope="module")
def onnx_path(tmp_path_factory) -> Path:
    torch.manual_seed(0)
    model = build_model(CONFIG).eval()
    folder = tmp_path_factory.mktemp("trt")
    return export_onnx(model, folder / "model.onnx", ModelMetadata.for_model_config(CONFIG),
                       dynamic_batch=True)


@pytest.fixture(scope="module")
def images() -> list[np.ndarray]:
    rng = np.random.default_rng(0)
    return [rng.integers(0, 256, (96, 128, 3), dtype=np.uint8) for _ in range(3)]


@pytest.mark.parametrize("precision", ["fp32", "fp16"])
def test_engine_matches_onnxruntime(onnx_path, images, tmp_path, precision):
    """A built engine's depth agrees with ONNX Runtime (fp32 < 1 mm, fp16 < 1 cm)."""
    reference = load_estimator(onnx_path, backend="onnxruntime")
    backend = TensorRTBackend(onnx_path, precision=precision, cache_dir=tmp_path)
    with DepthEstimator(backend) as estimator:
        for image in images:
            got, want = estimator.predict(image), reference.predict(image)
            assert got.depth_m.shape == want.depth_m.shape
            assert np.abs(got.depth_m - want.depth_m).max() < TOLERANCE_M[precision]
            assert np.abs(got.features - want.features).max() < 10 * TOLERANCE_M[precision]


def test_cache_reuses_the_engine_and_direct_engine_loads(onnx_path, images, tmp_path):
    """The second ensure_engine is a cache hit; the cached .engine loads by path with its sidecar."""
    path, built = ensure_engine(onnx_path, "fp32", cache_dir=tmp_path)
    assert built
    assert ensure_engine(onnx_path, "fp32", cache_dir=tmp_path) == (path, False)
    assert len(EngineCache(tmp_path).entries()) == 1
    with load_estimator(path) as estimator:
        assert estimator.backend.name == "tensorrt"
        assert estimator.predict(images[0]).depth_m.shape == (96, 128)


def test_dynamic_batch_engine_runs_batches(onnx_path, images, tmp_path):
    """An engine built with max_batch 3 runs three frames at once, like three single calls."""
    with load_estimator(onnx_path, backend="tensorrt", precision="fp32", cache_dir=tmp_path,
                        max_batch=3) as estimator:
        batch = estimator.predict_batch(images)
        for image, pred in zip(images, batch):
            assert np.abs(pred.depth_m - estimator.predict(image).depth_m).max() < 1e-4


def test_int8_engine_is_calibrated_from_a_folder_and_tracks_onnxruntime(onnx_path, tmp_path):
    """int8 with the entropy calibrator fed from a folder of images: the calibration cache is
    written beside the engine, and depth stays finite and close in shape to ONNX Runtime's
    (random weights make absolute int8 error meaningless; the correlation is not)."""
    from depth_unet_ros.datasets.folder import write_folder_frame
    from depth_unet_ros.datasets.synthetic.scenes import SyntheticIndoorDataset

    scenes = SyntheticIndoorDataset(8, seed=3000, height=96, width=128)
    for i in range(len(scenes)):
        write_folder_frame(tmp_path / "calib" / f"{i:03d}", scenes[i])
    cache_dir = tmp_path / "engines"
    path, built = ensure_engine(onnx_path, "int8", cache_dir=cache_dir, calib=tmp_path / "calib")
    assert built and list(cache_dir.glob("*.calib"))
    assert ensure_engine(onnx_path, "int8", cache_dir=cache_dir, calib=tmp_path / "calib") == (path, False)
    reference = load_estimator(onnx_path, backend="onnxruntime")
    with load_estimator(path) as estimator:
        got, want = estimator.predict(scenes[0].image), reference.predict(scenes[0].image)
    assert np.isfinite(got.depth_m).all() and got.depth_m.shape == want.depth_m.shape
    assert np.corrcoef(got.depth_m.ravel(), want.depth_m.ravel())[0, 1] > 0.9
