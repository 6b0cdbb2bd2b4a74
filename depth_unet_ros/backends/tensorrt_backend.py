"""TensorRT 10 backend: build engines from the ONNX artifact (cached), run them on one stream.

Written against the TensorRT 10 Python API (named I/O tensors, ``set_tensor_address``,
``execute_async_v3``) and ``cuda-python`` for memory and streams, the lightest CUDA binding a
Jetson also has (no PyCUDA, no torch). Both are imported on first use, so this module imports
on machines without them and ``tensorrt_unavailable_reason`` says why it cannot run.
"""
from __future__ import annotations

import ctypes
import functools
import logging
import os
from pathlib import Path
from typing import Any

import numpy as np

from depth_unet_ros.backends.cuda import check_cuda, import_cudart
from depth_unet_ros.backends.engine_cache import (PRECISIONS, REBUILD_FIX, EngineCache, EngineKey,
                                                  RuntimeFingerprint, check_engine_file, file_sha256)
from depth_unet_ros.errors import BackendClosedError, ConfigError, ModelLoadError
from depth_unet_ros.model_metadata import ModelMetadata, read_onnx_metadata

log = logging.getLogger(__name__)

ENGINE_SUFFIXES = (".engine", ".plan")
DEFAULT_WORKSPACE_BYTES = 1 << 30  # 1 GiB: ample for these models, small enough for a Jetson Nano


def tensorrt_unavailable_reason() -> str | None:
    """None when TensorRT, cuda-python and a CUDA GPU are all present, else why not."""
    try:
        import tensorrt  # noqa: F401
    except ImportError:
        return "the tensorrt Python package is not installed"
    except Exception as exc:  # a broken install (missing libnvinfer, ...) must not break `auto`
        return f"the tensorrt Python package does not load ({type(exc).__name__}: {exc})"
    try:
        cudart = import_cudart()
    except ImportError:
        return "cuda-python is not installed (pip install cuda-python matching your CUDA)"
    except Exception as exc:
        return f"cuda-python does not load ({type(exc).__name__}: {exc})"
    err, count = cudart.cudaGetDeviceCount()
    if err != cudart.cudaError_t.cudaSuccess or count == 0:
        return f"no CUDA GPU is visible ({err})"
    return None


def require_tensorrt() -> None:
    """ModelLoadError with the fix when TensorRT cannot run here."""
    reason = tensorrt_unavailable_reason()
    if reason is not None:
        raise ModelLoadError(f"TensorRT cannot run on this machine: {reason}; install TensorRT 10 "
                             "and cuda-python on a machine with an NVIDIA GPU, or use the "
                             "onnxruntime backend with the .onnx file")


@functools.lru_cache(maxsize=1)
def _trt_logger() -> Any:
    import tensorrt as trt

    return trt.Logger(trt.Logger.WARNING)  # TensorRT wants one logger per process


def runtime_fingerprint(device: int = 0) -> RuntimeFingerprint:
    """TensorRT version and GPU of this machine: what an engine must have been built for."""
    import tensorrt as trt

    prop = check_cuda(import_cudart().cudaGetDeviceProperties(device))
    name = prop.name.split(b"\0")[0].decode() if isinstance(prop.name, bytes) else str(prop.name)
    return RuntimeFingerprint(tensorrt_version=trt.__version__, gpu_name=name,
                              compute_capability=f"{prop.major}.{prop.minor}")


def build_engine(onnx_path: str | os.PathLike, precision: str = "fp32", calib: Any = None,
                 workspace: int = DEFAULT_WORKSPACE_BYTES, timing_cache_path: str | os.PathLike | None = None,
                 max_batch: int = 1, input_name: str = "image") -> bytes:
    """Serialized TensorRT engine for an ONNX file.

    ``calib``: an IInt8EntropyCalibrator2 (calibration.make_calibrator), required for int8.
    ``timing_cache_path``: layer timings reused across builds (read if present, then updated).
    """
    import tensorrt as trt

    if precision not in PRECISIONS:
        raise ConfigError(f"precision must be one of {', '.join(PRECISIONS)}, got {precision!r}")
    if precision == "int8" and calib is None:
        raise ConfigError("int8 needs calibration images: pass --calib with a folder of images or "
                          "the NYU .mat file")
    logger = _trt_logger()
    builder = trt.Builder(logger)
    network = builder.create_network(0)  # explicit batch is the only mode in TensorRT 10
    parser = trt.OnnxParser(network, logger)
    if not parser.parse_from_file(str(onnx_path)):
        errors = "\n".join(f"  {parser.get_error(i)}" for i in range(parser.num_errors))
        raise ModelLoadError(f"TensorRT could not parse {onnx_path} ({parser.num_errors} errors):\n"
                             f"{errors}\nre-export with depth-unet export (opset 17) and check "
                             "your TensorRT version supports every op")
    config = builder.create_builder_config()
    config.set_memory_pool_limit(trt.MemoryPoolType.WORKSPACE, int(workspace))
    profile = _image_profile(builder, network, input_name, max_batch)
    config.add_optimization_profile(profile)
    if precision in ("fp16", "int8"):
        config.set_flag(trt.BuilderFlag.FP16)  # int8 layers fall back to fp16, not fp32
    if precision == "int8":
        config.set_flag(trt.BuilderFlag.INT8)
        config.int8_calibrator = calib
        config.set_calibration_profile(profile)
    timing_cache = _load_timing_cache(config, timing_cache_path)
    serialized = builder.build_serialized_network(network, config)
    if serialized is None:
        raise ModelLoadError(f"TensorRT failed to build an engine from {onnx_path} ({precision}); "
                             "the TensorRT log above says why (often too little workspace)")
    if timing_cache_path is not None:
        _save_timing_cache(timing_cache, timing_cache_path)
    return bytes(serialized)


def _image_profile(builder: Any, network: Any, input_name: str, max_batch: int) -> Any:
    """Optimisation profile for the uint8 (N, H, W, 3) input: batch 1..max_batch, fixed H, W."""
    inputs = {network.get_input(i).name: network.get_input(i) for i in range(network.num_inputs)}
    if input_name not in inputs:
        raise ModelLoadError(f"the ONNX graph has no input {input_name!r} (inputs: {sorted(inputs)}); "
                             "re-export with depth-unet export")
    _, h, w, c = tuple(inputs[input_name].shape)
    fixed_batch = inputs[input_name].shape[0]
    if fixed_batch > 0 and max_batch > fixed_batch:
        raise ConfigError(f"the model was exported with batch {fixed_batch}; re-export with "
                          f"--dynamic-batch to build for batch {max_batch}")
    profile = builder.create_optimization_profile()
    profile.set_shape(input_name, (1, h, w, c), (1, h, w, c), (max_batch, h, w, c))
    return profile


def _load_timing_cache(config: Any, path: str | os.PathLike | None) -> Any:
    data = Path(path).read_bytes() if path is not None and Path(path).is_file() else b""
    cache = config.create_timing_cache(data)
    config.set_timing_cache(cache, ignore_mismatch=True)  # a stale cache only costs time
    return cache


def _save_timing_cache(cache: Any, path: str | os.PathLike) -> None:
    from depth_unet_ros.atomic_file import atomic_write

    atomic_write(Path(path), bytes(cache.serialize()))


def ensure_engine(onnx_path: str | os.PathLike, precision: str = "fp16",
                  cache_dir: str | os.PathLike | None = None, calib: str | os.PathLike | None = None,
                  max_batch: int = 1, force: bool = False, workspace: int = DEFAULT_WORKSPACE_BYTES,
                  device: int = 0) -> tuple[Path, bool]:
    """(engine path, whether it was built now): the cached engine for this ONNX, TensorRT, GPU,
    precision and shape, built and cached on a miss (or always with ``force``)."""
    require_tensorrt()
    onnx_path = Path(onnx_path)
    metadata = read_onnx_metadata(onnx_path)
    runtime = runtime_fingerprint(device)
    key = EngineKey.for_model(file_sha256(onnx_path), runtime, precision,
                              (max_batch, metadata.input_height, metadata.input_width, 3))
    cache = EngineCache(cache_dir)
    if precision == "int8" and calib is None:
        raise ConfigError("int8 needs calibration images: pass --calib with a folder of images or "
                          "the NYU .mat file")

    def build() -> bytes:
        calibrator = None
        if precision == "int8":
            from depth_unet_ros.backends.calibration import make_calibrator

            calibrator = make_calibrator(calib, metadata.input_size_hw, cache_path=cache.cache_dir
                                         / f"{onnx_path.stem}.{key.digest()[:16]}.calib")
        log.info("building a %s TensorRT engine for %s (minutes on a Jetson)", precision, onnx_path)
        cache.cache_dir.mkdir(parents=True, exist_ok=True)
        timing = cache.cache_dir / f"timing.{runtime.tensorrt_version}.sm{runtime.compute_capability}.cache"
        return build_engine(onnx_path, precision, calibrator, workspace, timing, max_batch,
                            metadata.input_name)

    return cache.get_or_build(key, build, metadata.to_props(), onnx_path.stem, force)


class TensorRTBackend:
    """Runs an ONNX model (through the engine cache) or a built ``.engine``/``.plan`` file."""

    name = "tensorrt"

    def __init__(self, path: str | os.PathLike, precision: str = "fp16",
                 cache_dir: str | os.PathLike | None = None, calib: str | os.PathLike | None = None,
                 max_batch: int = 1, force_rebuild: bool = False, device: int = 0):
        require_tensorrt()
        self.path = Path(path)
        if self.path.suffix.lower() in ENGINE_SUFFIXES:
            record = check_engine_file(self.path, runtime_fingerprint(device))
            engine_path, self.precision = self.path, record["key"].precision
            self.metadata = ModelMetadata.from_props(record["metadata"], source=self.path)
        else:
            engine_path, _ = ensure_engine(self.path, precision, cache_dir, calib, max_batch,
                                           force_rebuild, device=device)
            self.precision = precision
            self.metadata = read_onnx_metadata(self.path)
        self.engine_path = engine_path
        self._runner = _EngineRunner(engine_path.read_bytes(), device, engine_path)
        log.info("tensorrt: %s (%s) from %s", self.path, self.precision, engine_path)

    def infer(self, batch: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(N, H, W, 3) uint8 -> depth (N, 1, H, W) m, features (N, C, H/4, W/4), float32."""
        if self._runner is None:
            raise BackendClosedError(f"the TensorRT engine of {self.path} was closed; load the "
                                     "model again (load_estimator) to infer")
        batch = np.ascontiguousarray(batch, dtype=np.uint8)
        step = self._runner.max_batch
        parts = [self._runner.run(batch[i:i + step]) for i in range(0, len(batch), step)]
        names = (self.metadata.depth_output, self.metadata.features_output)
        if len(parts) == 1:
            return parts[0][names[0]], parts[0][names[1]]
        return tuple(np.concatenate([p[name] for p in parts]) for name in names)

    def close(self) -> None:
        """Free the engine, its execution context and every buffer (device memory); safe to
        call twice. ``infer`` then raises BackendClosedError instead of touching freed memory."""
        runner, self._runner = self._runner, None
        if runner is not None:
            runner.close()

    def describe(self) -> dict[str, Any]:
        """What diagnostics report about this backend."""
        return {"backend": self.name, "precision": self.precision, "engine": str(self.engine_path)}


class _EngineRunner:
    """One engine, one execution context, one CUDA stream, pinned host buffers at max shape."""

    def __init__(self, engine_bytes: bytes, device: int, source: Path):
        import tensorrt as trt

        cudart = import_cudart()
        check_cuda(cudart.cudaSetDevice(device))
        self._runtime = trt.Runtime(_trt_logger())
        self.engine = self._runtime.deserialize_cuda_engine(engine_bytes)
        if self.engine is None:
            raise ModelLoadError(f"TensorRT could not deserialize {source}; {REBUILD_FIX}")
        self.context = self.engine.create_execution_context()
        self.stream = check_cuda(cudart.cudaStreamCreate())
        names = [self.engine.get_tensor_name(i) for i in range(self.engine.num_io_tensors)]
        inputs = [n for n in names if self.engine.get_tensor_mode(n) == trt.TensorIOMode.INPUT]
        if len(inputs) != 1:
            raise ModelLoadError(f"{source} has inputs {inputs}, expected one image input; {REBUILD_FIX}")
        self.input = inputs[0]
        self.outputs = [n for n in names if n != self.input]
        max_shape = tuple(self.engine.get_tensor_profile_shape(self.input, 0)[2])
        self.max_batch = int(max_shape[0])
        self.context.set_input_shape(self.input, max_shape)  # so output shapes are at their largest
        self._host: dict[str, np.ndarray] = {}
        self._device: dict[str, int] = {}
        self._pinned: list[int] = []
        for name in names:
            shape = max_shape if name == self.input else tuple(self.context.get_tensor_shape(name))
            dtype = np.dtype(trt.nptype(self.engine.get_tensor_dtype(name)))
            nbytes = int(np.prod(shape)) * dtype.itemsize
            host_ptr = check_cuda(cudart.cudaMallocHost(nbytes))
            self._pinned.append(host_ptr)
            raw = (ctypes.c_uint8 * nbytes).from_address(host_ptr)
            self._host[name] = np.frombuffer(raw, dtype=dtype)  # flat view of pinned memory
            self._device[name] = check_cuda(cudart.cudaMalloc(nbytes))
            self.context.set_tensor_address(name, int(self._device[name]))

    def run(self, batch: np.ndarray) -> dict[str, np.ndarray]:
        """One (n <= max_batch, H, W, 3) batch -> {output name: array}, copied out of pinned memory."""
        cudart = import_cudart()
        h2d, d2h = cudart.cudaMemcpyKind.cudaMemcpyHostToDevice, cudart.cudaMemcpyKind.cudaMemcpyDeviceToHost
        self.context.set_input_shape(self.input, batch.shape)
        host_in = self._host[self.input]
        host_in[:batch.size] = batch.ravel()
        check_cuda(cudart.cudaMemcpyAsync(self._device[self.input], host_in.ctypes.data, batch.nbytes, h2d,
                                     self.stream))
        if not self.context.execute_async_v3(int(self.stream)):
            raise RuntimeError("TensorRT execute_async_v3 failed; see the TensorRT log")
        shapes = {name: tuple(self.context.get_tensor_shape(name)) for name in self.outputs}
        for name, shape in shapes.items():
            host = self._host[name]
            nbytes = int(np.prod(shape)) * host.itemsize
            check_cuda(cudart.cudaMemcpyAsync(host.ctypes.data, self._device[name], nbytes, d2h, self.stream))
        check_cuda(cudart.cudaStreamSynchronize(self.stream))
        return {name: self._host[name][:int(np.prod(shape))].reshape(shape).astype(np.float32, copy=True)
                for name, shape in shapes.items()}

    def close(self) -> None:
        """Free device and pinned memory, the stream, then the execution context (its
        activation memory) and the engine (its weights), in that order; safe to call twice."""
        cudart = import_cudart()
        for ptr in self._device.values():
            cudart.cudaFree(ptr)
        for ptr in self._pinned:
            cudart.cudaFreeHost(ptr)
        if self.stream is not None:
            cudart.cudaStreamDestroy(self.stream)
        self._device, self._pinned, self.stream = {}, [], None
        self._host = {}
        self.context = None  # before the engine it was created from
        self.engine = None
        self._runtime = None
