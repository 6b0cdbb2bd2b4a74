"""Every backend's close() releases its model for good: the session, model or engine is dropped,
a second close is harmless, and infer afterwards raises BackendClosedError instead of running
on (or, for TensorRT, reading freed device memory). The managed node's cleanup relies on it."""
from __future__ import annotations

import numpy as np
import pytest

from depth_unet_ros.backends import tensorrt_backend
from depth_unet_ros.backends.onnxruntime_backend import OnnxRuntimeBackend
from depth_unet_ros.backends.tensorrt_backend import TensorRTBackend, _EngineRunner
from depth_unet_ros.errors import BackendClosedError
from depth_unet_ros.inference import DepthEstimator, load_estimator


def _batch(backend) -> np.ndarray:
    h, w = backend.metadata.input_size_hw
    return np.zeros((1, h, w, 3), np.uint8)


def test_onnxruntime_close_drops_the_session_and_infer_then_says_so(tiny_onnx_model):
    """After close() the session is gone (ONNX Runtime frees its arena with it)."""
    backend = OnnxRuntimeBackend(tiny_onnx_model, intra_op_num_threads=1)
    depth, _ = backend.infer(_batch(backend))
    assert depth.shape[0] == 1
    backend.close()
    assert backend.session is None
    backend.close()  # twice: nothing left to release, no error
    with pytest.raises(BackendClosedError, match="closed; load the model again"):
        backend.infer(_batch(backend))


def test_estimator_as_a_context_manager_closes_its_backend(tiny_onnx_model):
    """``with load_estimator(...) as e`` releases the backend on leaving the block."""
    with load_estimator(tiny_onnx_model, "onnxruntime", intra_op_num_threads=1) as estimator:
        h, w = estimator.network_size_hw
        estimator.predict(np.zeros((h, w, 3), np.uint8))
    assert estimator.backend.session is None
    with pytest.raises(BackendClosedError):
        estimator.predict(np.zeros((h, w, 3), np.uint8))


def test_torch_close_drops_the_model(tiny_onnx_model):
    """The torch backend lets go of its module (and, on a GPU, of torch's cached blocks)."""
    torch = pytest.importorskip("torch")
    from depth_unet_ros.backends.torch_backend import TorchBackend
    from depth_unet_ros.model_metadata import ModelMetadata
    from training.model import build_model
    from training.model_config import ModelConfig

    torch.manual_seed(0)
    config = ModelConfig(base_channels=4, input_height=64, input_width=96, feature_channels=8)
    backend = TorchBackend.from_model(build_model(config), ModelMetadata.for_model_config(config, "test"))
    backend.infer(_batch(backend))
    backend.close()
    backend.close()
    assert backend.model is None
    with pytest.raises(BackendClosedError, match="torch model"):
        backend.infer(_batch(backend))


class _FakeCudart:
    """Records what _EngineRunner.close frees (no GPU needed)."""

    def __init__(self) -> None:
        self.freed: list[tuple[str, int]] = []

    def cudaFree(self, ptr: int) -> None:
        self.freed.append(("device", ptr))

    def cudaFreeHost(self, ptr: int) -> None:
        self.freed.append(("pinned", ptr))

    def cudaStreamDestroy(self, stream: int) -> None:
        self.freed.append(("stream", stream))


def test_tensorrt_close_frees_buffers_stream_context_and_engine(monkeypatch):
    """The engine runner frees device and pinned buffers and the stream once, then drops the
    execution context and the engine (their device memory); the backend refuses to infer."""
    cudart = _FakeCudart()
    monkeypatch.setattr(tensorrt_backend, "import_cudart", lambda: cudart)
    runner = _EngineRunner.__new__(_EngineRunner)
    runner._device, runner._pinned, runner.stream = {"image": 11, "depth": 12}, [21, 22], 31
    runner._host = {"image": np.zeros(4, np.uint8)}
    runner.context, runner.engine, runner._runtime = object(), object(), object()
    backend = TensorRTBackend.__new__(TensorRTBackend)
    backend.path, backend._runner = "model.onnx", runner

    backend.close()
    backend.close()
    assert sorted(cudart.freed) == [("device", 11), ("device", 12), ("pinned", 21),
                                    ("pinned", 22), ("stream", 31)]
    assert runner.context is None and runner.engine is None and runner._runtime is None
    assert backend._runner is None
    with pytest.raises(BackendClosedError, match="TensorRT engine"):
        backend.infer(np.zeros((1, 8, 8, 3), np.uint8))


def test_estimator_close_calls_the_backend_close_the_protocol_declares():
    """DepthEstimator.close is the backend's close (DepthBackend declares it)."""
    from depth_unet_ros.inference import DepthBackend

    assert "close" in DepthBackend.__dict__
    calls = []

    class Backend:
        name, metadata = "fake", None

        def close(self) -> None:
            calls.append("close")

    DepthEstimator(Backend()).close()
    assert calls == ["close"]
