"""Depth from any-size RGB images, through whichever backend runs the model.

``DepthEstimator`` owns the steps every backend shares (check the image, resize it with
``preprocessing.resize_image``, batch of one, resize the depth back); backends only run the
network on (N, H, W, 3) uint8 batches at the network size. ``load_estimator`` picks the backend
from the file and the machine, so a model path is all a caller passes. No torch or TensorRT is
imported here: each backend module imports its library when it is constructed.
"""
from __future__ import annotations

import importlib
import logging
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol, Sequence

import numpy as np

from depth_unet_ros.backends import BACKEND_CHOICES
from depth_unet_ros.errors import ModelLoadError
from depth_unet_ros.model_metadata import ModelMetadata
from depth_unet_ros.preprocessing import check_rgb_image, resize_depth, resize_image

log = logging.getLogger(__name__)

# Size of a prediction: the camera's (input) or the model's (network); the node's output_size.
OUTPUT_SIZES = ("input", "network")
ONNX_SUFFIXES = (".onnx",)
TORCH_SUFFIXES = (".pt", ".pth")
ENGINE_SUFFIXES = (".engine", ".plan")

# backend name -> (module, class); imported only when chosen
_BACKEND_CLASSES = {
    "onnxruntime": ("depth_unet_ros.backends.onnxruntime_backend", "OnnxRuntimeBackend"),
    "tensorrt": ("depth_unet_ros.backends.tensorrt_backend", "TensorRTBackend"),
    "torch": ("depth_unet_ros.backends.torch_backend", "TorchBackend"),
}


class DepthBackend(Protocol):
    """What a backend provides: its name, the model's metadata, batched inference, and
    ``close()``, which releases the model (session, engine, device memory) for good."""

    name: str  # "onnxruntime", "torch", "tensorrt"
    metadata: ModelMetadata

    def infer(self, batch: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(N, H, W, 3) uint8 RGB at the network size -> depth (N, 1, H, W) m, features (N, C, H/4, W/4)."""

    def close(self) -> None:
        """Release the model; safe to call twice; ``infer`` then raises BackendClosedError."""


@dataclass
class DepthPrediction:
    depth_m: np.ndarray  # (H, W) float32 metres, network size or input size
    features: np.ndarray  # (C, H/4, W/4) float32, always at the network size / feature stride


class DepthEstimator:
    """Any-size RGB image -> metric depth and decoder features, through one backend."""

    def __init__(self, backend: DepthBackend):
        self.backend = backend

    @property
    def metadata(self) -> ModelMetadata:
        return self.backend.metadata

    @property
    def network_size_hw(self) -> tuple[int, int]:
        return self.backend.metadata.input_size_hw

    def predict(self, image_rgb: np.ndarray, output_size: str = "network") -> DepthPrediction:
        """(H, W, 3) uint8 RGB of any size -> depth at the network size or back at (H, W)."""
        return self.predict_batch([image_rgb], output_size=output_size)[0]

    def predict_batch(self, images_rgb: Sequence[np.ndarray],
                      output_size: str = "network") -> list[DepthPrediction]:
        """Several images (sizes may differ) in one backend call; one prediction each."""
        if output_size not in OUTPUT_SIZES:
            raise ValueError(f"output_size must be one of {OUTPUT_SIZES}, got {output_size!r}")
        if len(images_rgb) == 0:
            return []
        for image in images_rgb:
            check_rgb_image(image)
        size_hw = self.network_size_hw
        batch = np.stack([resize_image(image, size_hw) for image in images_rgb])  # (N, h, w, 3)
        depth, features = self.backend.infer(batch)  # (N, 1, h, w), (N, C, h/4, w/4)
        self._check_outputs(batch, depth, features)
        predictions = []
        for i, image in enumerate(images_rgb):
            depth_m = np.asarray(depth[i, 0], dtype=np.float32)
            if output_size == "input":
                depth_m = resize_depth(depth_m, image.shape[:2])
            predictions.append(DepthPrediction(depth_m=depth_m, features=np.asarray(features[i], np.float32)))
        return predictions

    def _check_outputs(self, batch: np.ndarray, depth: np.ndarray, features: np.ndarray) -> None:
        # A backend that returns the wrong layout is a bug or a mismatched model file; say which.
        n, h, w, _ = batch.shape
        meta = self.metadata
        expected_f = (n, meta.feature_channels, *meta.feature_size_hw)
        if depth.shape != (n, 1, h, w) or features.shape != expected_f:
            raise ModelLoadError(
                f"{self.backend.name} backend returned depth {depth.shape} and features "
                f"{features.shape}, the metadata promises {(n, 1, h, w)} and {expected_f}; the "
                "model file does not match its metadata, re-export it with depth-unet export")

    def close(self) -> None:
        """Release the backend's model and memory (``DepthBackend.close``); safe to call twice."""
        self.backend.close()

    def __enter__(self) -> "DepthEstimator":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()


def choose_backend(path: str | os.PathLike, backend: str = "auto") -> str:
    """The backend name for ``path``: explicit choices are checked against the file type;
    ``auto`` takes TensorRT for ONNX when TensorRT and a GPU are present, else ONNX Runtime."""
    path = Path(path)
    suffix = path.suffix.lower()
    if backend not in BACKEND_CHOICES:
        raise ModelLoadError(f"unknown backend {backend!r}; choose one of {', '.join(BACKEND_CHOICES)}")
    if suffix in ONNX_SUFFIXES:
        allowed = ("onnxruntime", "tensorrt")
    elif suffix in TORCH_SUFFIXES:
        allowed = ("torch",)
    elif suffix in ENGINE_SUFFIXES:
        allowed = ("tensorrt",)
    else:
        raise ModelLoadError(
            f"{path}: unknown model file type {suffix or '(no suffix)'!r}; pass an exported .onnx "
            f"(or a training checkpoint {'/'.join(TORCH_SUFFIXES)}, or a TensorRT "
            f"{'/'.join(ENGINE_SUFFIXES)})")
    if backend != "auto":
        if backend not in allowed:
            hint = ("export the checkpoint first with depth-unet export" if suffix in TORCH_SUFFIXES
                    else f"choose the {allowed[0]} backend (backend:={allowed[0]} with ros2 "
                    f"launch, backend: {allowed[0]} in the params file, --backend {allowed[0]} "
                    "on the command line)")
            raise ModelLoadError(f"{path}: the {backend} backend cannot run a {suffix} file; {hint}")
        return backend
    if len(allowed) == 1:
        log.info("backend %s: the only one that runs %s files", allowed[0], suffix)
        return allowed[0]
    from depth_unet_ros.backends.tensorrt_backend import tensorrt_unavailable_reason

    reason = tensorrt_unavailable_reason()
    if reason is None:
        log.info("backend tensorrt: TensorRT and a CUDA GPU are present")
        return "tensorrt"
    log.info("backend onnxruntime: TensorRT not used (%s)", reason)
    return "onnxruntime"


def bundled_model_path() -> Path:
    """The model shipped inside the package (what ``model_path: ""`` means)."""
    from importlib.resources import files

    return Path(str(files("depth_unet_ros") / "models" / "default.onnx"))


def resolve_model_path(model_path: str | os.PathLike = "") -> Path:
    """A model path as users give it: "" (or None) is the bundled model, ``~`` is expanded."""
    return Path(model_path).expanduser() if model_path else bundled_model_path()


def backend_options(backend_name: str, num_threads: int) -> dict[str, Any]:
    """Constructor options for a chosen backend; ``num_threads`` 0 leaves its default."""
    if num_threads <= 0:
        return {}
    return {"onnxruntime": {"intra_op_num_threads": num_threads},
            "torch": {"num_threads": num_threads}}.get(backend_name, {})


def load_backend(path: str | os.PathLike, backend: str = "auto", **options: Any) -> DepthBackend:
    """The backend object for an existing model file, the backend chosen once (``choose_backend``);
    ``options`` go to its constructor (``intra_op_num_threads``, ``precision``, ...)."""
    path = Path(path).expanduser()
    if not path.exists():
        raise ModelLoadError(f"model file {path} does not exist; pass the path of an exported .onnx "
                             "(create one with depth-unet export CHECKPOINT --out model.onnx)")
    if not path.is_file():
        raise ModelLoadError(f"model path {path} is not a file; pass the .onnx file itself")
    name = choose_backend(path, backend)
    module_name, class_name = _BACKEND_CLASSES[name]
    cls = getattr(importlib.import_module(module_name), class_name)
    return cls(path, **{**backend_options(name, options.pop("num_threads", 0)), **options})


def load_estimator(model_path: str | os.PathLike = "", backend: str = "auto", num_threads: int = 0,
                   *, fix_hint: str = "", **options: Any) -> DepthEstimator:
    """The one way every tool and the node get a model: "" is the bundled model; the path is
    resolved and the backend chosen once. ``num_threads`` 0 keeps the backend's default.

    ``fix_hint`` names the caller's own setting (the node: its parameter and launch argument);
    with it, a ModelLoadError says which model failed and how to point at another one.
    """
    try:
        return DepthEstimator(load_backend(resolve_model_path(model_path), backend,
                                           num_threads=num_threads, **options))
    except ModelLoadError as exc:
        if not fix_hint:
            raise
        what = "the bundled model" if not model_path else f"model {str(model_path)!r}"
        export = "" if "depth-unet export" in str(exc) else (
            ", or export a checkpoint with `depth-unet export CHECKPOINT --out model.onnx`")
        raise ModelLoadError(f"cannot load {what}: {exc}. {fix_hint}{export}") from exc
