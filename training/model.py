"""DepthModel: the whole exported graph, camera bytes in, metres and features out."""
from __future__ import annotations

import torch
from torch import nn

from training.effnet_lite import EffNetLiteUNet
from training.fastdepth import FastDepth
from training.model_config import ModelConfig
from training.normalization import InputNormalization
from training.unet import UNet

NETWORKS = {"unet": UNet, "fastdepth": FastDepth, "effnet-lite0": EffNetLiteUNet}


class DepthModel(nn.Module):
    """(N, H, W, 3) uint8 or float RGB in 0..255 -> depth (N, 1, H, W) metres, features (N, C, H/4, W/4).

    Normalisation is part of the model, so training, evaluation and the exported ONNX graph
    all take the same raw image and cannot disagree about preprocessing.
    """

    def __init__(self, config: ModelConfig):
        super().__init__()
        config.validate()
        self.config = config
        self.normalize = InputNormalization(config.mean_rgb, config.std_rgb)
        self.network = NETWORKS[config.arch](config)

    def forward(self, image: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return self.network(self.normalize(image))


def build_model(config: ModelConfig) -> DepthModel:
    """The model a config describes, with fresh weights (nothing is downloaded)."""
    return DepthModel(config)
