"""ONNX Runtime backend: the portable default, CPU everywhere, CUDA/TensorRT EPs where present."""
from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from depth_unet_ros.cpu_cores import physical_cores
from depth_unet_ros.errors import BackendClosedError, ModelLoadError
from depth_unet_ros.model_metadata import EXPORT_FIX, ModelMetadata

log = logging.getLogger(__name__)

def default_providers(available: Sequence[str]) -> list[Any]:
    """GPU execution providers that ``available`` offers, then CPU.

    The TensorRT EP caches its engines next to ours, so a restart does not rebuild them.
    """
    providers: list[Any] = []
    if "TensorrtExecutionProvider" in available:
        from depth_unet_ros.backends.engine_cache import default_cache_dir

        providers.append(("TensorrtExecutionProvider", {
            "trt_engine_cache_enable": "True",
            "trt_engine_cache_path": str(default_cache_dir() / "onnxruntime_trt")}))
    if "CUDAExecutionProvider" in available:
        providers.append("CUDAExecutionProvider")
    return providers + ["CPUExecutionProvider"]


class OnnxRuntimeBackend:
    """Runs an exported ONNX model with ONNX Runtime.

    ``intra_op_num_threads``: CPU threads per operator (None: one per physical core, unpinned;
    ONNX Runtime's own default count also pins its workers to cores, and on a small CPU shared
    with DDS threads a pinned worker that finds its core busy made inferences up to 2x slower);
    ``providers``: execution providers in priority order (None: GPU ones when available, then CPU);
    ``allow_spinning``: False stops idle worker threads busy-waiting, for CPUs shared with other work.
    """

    name = "onnxruntime"

    def __init__(self, path: str | os.PathLike, intra_op_num_threads: int | None = None,
                 providers: Sequence[Any] | None = None, allow_spinning: bool = True):
        import onnxruntime as ort

        self.path = Path(path)
        options = ort.SessionOptions()
        # An explicit count, even the default one, keeps ONNX Runtime from pinning its threads.
        options.intra_op_num_threads = int(intra_op_num_threads or physical_cores())
        options.inter_op_num_threads = 1  # one model, one request at a time
        if not allow_spinning:  # idle workers yield the CPU at once (costs some latency)
            options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        providers = list(providers) if providers is not None else default_providers(
            ort.get_available_providers())
        try:
            self.session = ort.InferenceSession(str(self.path), sess_options=options, providers=providers)
        except Exception as exc:  # ORT raises its own Fail/InvalidProtobuf/... types
            raise ModelLoadError(f"{self.path} could not be loaded by ONNX Runtime as an ONNX model "
                                 f"({type(exc).__name__}: {str(exc).strip()[:300]}); {EXPORT_FIX}") from exc
        props = self.session.get_modelmeta().custom_metadata_map
        self.metadata = ModelMetadata.from_props(props, source=self.path)
        self._check_io()
        self.providers = self.session.get_providers()
        log.info("onnxruntime %s: %s, providers %s", ort.__version__, self.path, self.providers)

    def _check_io(self) -> None:
        meta = self.metadata
        inputs = {i.name: i for i in self.session.get_inputs()}
        outputs = {o.name for o in self.session.get_outputs()}
        image = inputs.get(meta.input_name)
        if image is None or image.type != "tensor(uint8)":
            found = {name: i.type for name, i in inputs.items()}
            raise ModelLoadError(f"{self.path}: expected a uint8 input {meta.input_name!r}, found "
                                 f"{found}; {EXPORT_FIX}")
        missing = {meta.depth_output, meta.features_output} - outputs
        if missing:
            raise ModelLoadError(f"{self.path}: outputs {sorted(missing)} are missing (found "
                                 f"{sorted(outputs)}); {EXPORT_FIX}")
        batch_dim = image.shape[0]
        # A fixed batch dimension (the default export) means batches run one frame at a time.
        self.max_batch = batch_dim if isinstance(batch_dim, int) and batch_dim > 0 else None

    def infer(self, batch: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(N, H, W, 3) uint8 -> depth (N, 1, H, W) m, features (N, C, H/4, W/4), float32."""
        if self.session is None:
            raise BackendClosedError(f"the ONNX Runtime session of {self.path} was closed; load "
                                     "the model again (load_estimator) to infer")
        batch = np.ascontiguousarray(batch, dtype=np.uint8)
        step = self.max_batch or len(batch)
        names = [self.metadata.depth_output, self.metadata.features_output]
        depths, features = [], []
        for start in range(0, len(batch), step):
            depth, feature = self.session.run(names, {self.metadata.input_name: batch[start:start + step]})
            depths.append(depth)
            features.append(feature)
        if len(depths) == 1:
            return depths[0], features[0]
        return np.concatenate(depths), np.concatenate(features)

    def close(self) -> None:
        """Drop the session: ONNX Runtime frees its memory arena (and a CUDA or TensorRT
        provider's device memory) with it. Safe to call twice."""
        self.session = None

    def describe(self) -> dict[str, Any]:
        """What diagnostics report about this backend."""
        return {"backend": self.name, "providers": list(self.providers), "model": str(self.path)}
