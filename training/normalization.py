"""uint8 NHWC RGB -> normalised float NCHW, as graph ops.

This module sits at the front of the exported ONNX graph (Cast, Sub, Div, Transpose), so
TensorRT does this arithmetic on the GPU and the runtime hands the camera's bytes straight in.
"""
from __future__ import annotations

from typing import Sequence

import torch
from torch import nn


class InputNormalization(nn.Module):
    """(N, H, W, 3) uint8 or float RGB in 0..255 -> (N, 3, H, W) float32 ``(x - mean) / std``."""

    def __init__(self, mean_rgb: Sequence[float], std_rgb: Sequence[float]):
        super().__init__()
        # Not persistent: the config is their source of truth, so checkpoints need not carry them.
        self.register_buffer("mean", torch.tensor(mean_rgb, dtype=torch.float32), persistent=False)
        self.register_buffer("std", torch.tensor(std_rgb, dtype=torch.float32), persistent=False)

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        x = image.to(torch.float32)  # (N, H, W, 3)
        x = (x - self.mean) / self.std  # broadcasts over the last (channel) axis
        return x.permute(0, 3, 1, 2)  # (N, 3, H, W)
