"""The FastDepth baseline (Wofk et al., ICRA 2019): MobileNet v1 encoder + NNConv5 decoder.

Written from the paper's description: a width-1.0 MobileNet (depthwise-separable 3x3 convs,
total stride 32), five decoder stages of depthwise 5x5 + pointwise conv each followed by a
nearest-neighbour x2 upsample, additive skips from the encoder at strides 8, 4 and 2, and a
final 1x1 conv to one channel. Unpruned. It shares the U-Net's log-depth head and stride-4
feature head, so both follow one contract: forward(x) -> (depth, features).
"""
from __future__ import annotations

from typing import TYPE_CHECKING

import torch
from torch import nn

from training.unet import LogDepthHead, norm_layer, resize_to

if TYPE_CHECKING:
    from training.model_config import ModelConfig

# MobileNet v1: (out_channels, stride) of the depthwise-separable layers after the first conv.
MOBILENET_V1 = [(64, 1), (128, 2), (128, 1), (256, 2), (256, 1), (512, 2),
                (512, 1), (512, 1), (512, 1), (512, 1), (512, 1), (1024, 2), (1024, 1)]
# Encoder layer index (0 = first conv) whose output is taken, keyed by its stride.
TAPS = {2: 1, 4: 3, 8: 5, 16: 11}
DECODER_CHANNELS = [512, 256, 128, 64, 32]  # NNConv5, stages ending at strides 16, 8, 4, 2, 1


def conv_norm_relu(in_channels: int, out_channels: int, kernel: int, norm: str, stride: int = 1,
                   groups: int = 1) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(in_channels, out_channels, kernel, stride, kernel // 2, groups=groups, bias=norm == "none"),
        norm_layer(norm, out_channels),
        nn.ReLU(inplace=True),
    )


def separable(in_channels: int, out_channels: int, kernel: int, norm: str, stride: int = 1) -> nn.Sequential:
    """Depthwise kxk (per channel) then pointwise 1x1: ~k^2 fewer MACs than a full conv."""
    return nn.Sequential(conv_norm_relu(in_channels, in_channels, kernel, norm, stride, groups=in_channels),
                         conv_norm_relu(in_channels, out_channels, 1, norm))


class FastDepth(nn.Module):
    """Normalised (N, 3, H, W) -> depth (N, 1, H, W) metres, features (N, C, H/4, W/4)."""

    def __init__(self, config: "ModelConfig"):
        super().__init__()
        norm = config.norm
        layers, channels = [conv_norm_relu(3, 32, 3, norm, stride=2)], 32
        for out_channels, stride in MOBILENET_V1:
            layers.append(separable(channels, out_channels, 3, norm, stride))
            channels = out_channels
        self.encoder = nn.ModuleList(layers)

        self.decoder = nn.ModuleList()
        for out_channels in DECODER_CHANNELS:
            self.decoder.append(separable(channels, out_channels, 5, norm))
            # The stride-4 stage feeds the feature head, whose output the next stage reads.
            channels = config.feature_channels if out_channels == DECODER_CHANNELS[2] else out_channels
        self.feature_head = nn.Conv2d(DECODER_CHANNELS[2], config.feature_channels, 1)
        self.depth_logit = nn.Conv2d(channels, 1, 1)
        self.depth_head = LogDepthHead(config.min_depth_m, config.max_depth_m,
                                        config.depth_smoothing_px)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        sizes = {1: x.shape[-2:]}  # stride -> (h, w) of the tensor the decoder must land on
        skips = {}
        for index, layer in enumerate(self.encoder):
            x = layer(x)
            for stride, tap in TAPS.items():
                if index == tap:
                    sizes[stride] = x.shape[-2:]
                    skips[stride] = x
        # x: (N, 1024, H/32, W/32), sizes rounded up
        features = x
        for stage, stride in zip(self.decoder, (16, 8, 4, 2, 1)):
            x = resize_to(stage(x), sizes[stride], "nearest")
            if stride in (8, 4, 2):
                x = x + skips[stride]  # additive skip: no extra channels, unlike the U-Net's concat
            if stride == 4:
                x = features = self.feature_head(x)  # (N, C, H/4, W/4)
        return self.depth_head(self.depth_logit(x)), features  # (N, 1, H, W), (N, C, H/4, W/4)
