"""PyTorch backend: runs a training checkpoint directly, for development and parity checks.

The only runtime module that imports torch (and ``training``), and only when constructed:
deployments run the exported ONNX with ONNX Runtime or TensorRT instead.
"""
from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Any

import numpy as np

from depth_unet_ros.errors import BackendClosedError, ModelLoadError
from depth_unet_ros.model_metadata import ModelMetadata

log = logging.getLogger(__name__)


class TorchBackend:
    """A DepthModel from a checkpoint (``path``) run under ``torch.inference_mode``.

    ``device``: "cpu" or "cuda[:i]"; ``num_threads``: CPU threads (None keeps torch's default).
    """

    name = "torch"

    def __init__(self, path: str | os.PathLike, device: str = "cpu", num_threads: int | None = None):
        self.path = Path(path)
        try:
            import torch

            from training.export import load_checkpoint_model
        except ImportError as exc:
            raise ModelLoadError(
                f"{self.path} is a training checkpoint, and running it needs PyTorch and the "
                f"training package ({exc}); export it with depth-unet export on the training "
                "machine and run the .onnx here") from None

        if num_threads is not None:
            torch.set_num_threads(int(num_threads))
        model, metadata = load_checkpoint_model(self.path)
        self._setup(model, metadata, device)
        log.info("torch %s: checkpoint %s on %s", torch.__version__, self.path, device)

    @classmethod
    def from_model(cls, model: Any, metadata: ModelMetadata, device: str = "cpu") -> "TorchBackend":
        """Wrap an in-memory DepthModel (e.g. fresh from training or a test) without a file."""
        backend = cls.__new__(cls)
        backend.path = None
        backend._setup(model, metadata, device)
        return backend

    def _setup(self, model: Any, metadata: ModelMetadata, device: str) -> None:
        import torch

        self.device = torch.device(device)
        self.model = model.to(self.device).eval()
        self.metadata = metadata

    def infer(self, batch: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(N, H, W, 3) uint8 -> depth (N, 1, H, W) m, features (N, C, H/4, W/4), float32."""
        import torch

        if self.model is None:
            raise BackendClosedError(f"the torch model of {self.path} was closed; load the "
                                     "model again (load_estimator) to infer")
        with torch.inference_mode():
            image = torch.from_numpy(np.ascontiguousarray(batch, dtype=np.uint8)).to(self.device)
            depth, features = self.model(image)  # (N, 1, H, W), (N, C, H/4, W/4)
            return (depth.float().cpu().numpy(), features.float().cpu().numpy())

    def close(self) -> None:
        """Drop the model; on a GPU also hand torch's cached blocks back to the driver, so the
        memory shows as free. Safe to call twice."""
        import torch

        self.model = None
        if self.device.type == "cuda":
            torch.cuda.empty_cache()

    def describe(self) -> dict[str, Any]:
        """What diagnostics report about this backend."""
        return {"backend": self.name, "device": str(self.device), "model": str(self.path)}
