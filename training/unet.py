"""The U-Net: encoder-decoder with concatenated skips, a bounded log-depth head, stride-4 features.

Imports only torch. Input is normalised (N, 3, H, W); see normalization.py for the graph's front.
"""
from __future__ import annotations

import math
from typing import TYPE_CHECKING

import torch
import torch.nn.functional as F
from torch import nn

if TYPE_CHECKING:
    from training.model_config import ModelConfig


def norm_layer(kind: str, channels: int) -> nn.Module:
    """Batch norm folds into the conv at export; group norm suits tiny per-GPU batches."""
    if kind == "batch":
        return nn.BatchNorm2d(channels)
    if kind == "group":
        return nn.GroupNorm(math.gcd(8, channels), channels)
    return nn.Identity()


class ConvBlock(nn.Sequential):
    """3x3 conv -> norm -> ReLU; stride 2 halves the resolution, rounding odd sizes up."""

    def __init__(self, in_channels: int, out_channels: int, norm: str, stride: int = 1):
        super().__init__(
            nn.Conv2d(in_channels, out_channels, 3, stride, 1, bias=norm == "none"),
            norm_layer(norm, out_channels),
            nn.ReLU(inplace=True),
        )


def resize_to(x: torch.Tensor, size: torch.Size | tuple[int, int], mode: str) -> torch.Tensor:
    """Upsample to an exact size (not x2), so inputs that are not multiples of 32 still line up."""
    align = False if mode == "bilinear" else None
    return F.interpolate(x, size=size, mode=mode, align_corners=align)


class BoxSmoothing(nn.Module):
    """A w x w mean filter applied three times to a (N, C, H, W) map: close to a Gaussian of
    sigma sqrt((w^2 - 1) / 4) pixels (3.5 px for w = 7). Borders average only the pixels that
    exist, so they do not sag toward a padding value.

    Why: a decoder fed full-resolution skips copies image texture into depth as a +-10 % grain
    on real images, and blurring the log depth by a few pixels removes it. Mean filters export
    as AveragePool, which ONNX Runtime runs in about 0.2 ms a pass at 320x240 whatever w is, where
    a 19-tap separable Gaussian convolution of one channel took 2.5 ms (6 % of the model).
    No weights: checkpoints load with or without it.
    """

    PASSES = 3

    def __init__(self, width_px: int):
        super().__init__()
        if width_px < 3 or width_px % 2 == 0:
            raise ValueError(f"width_px must be an odd number >= 3, got {width_px}")
        self.width = int(width_px)

    @property
    def sigma_px(self) -> float:
        """The standard deviation of the combined filter (of its 1-D profile)."""
        return math.sqrt(self.PASSES * (self.width ** 2 - 1) / 12.0)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for _ in range(self.PASSES):
            x = F.avg_pool2d(x, self.width, stride=1, padding=self.width // 2,
                             count_include_pad=False)
        return x


class LogDepthHead(nn.Module):
    """Logit -> metres: exp(log_min + sigmoid(x) (log_max - log_min)), optionally with the log
    depth smoothed (``smoothing_px``: the width of BoxSmoothing's filter, 0 = none).

    Smooth, and never outside [min, max]: a ReLU head can output 0 (log(0) breaks the
    scale-invariant loss), a linear one can go negative. The blur averages log depths, so it
    cannot leave the range either.
    """

    def __init__(self, min_depth_m: float, max_depth_m: float, smoothing_px: int = 0):
        super().__init__()
        self.min_depth_m, self.max_depth_m = float(min_depth_m), float(max_depth_m)
        self.log_min = math.log(min_depth_m)
        self.log_range = math.log(max_depth_m) - self.log_min
        self.smoothing = BoxSmoothing(smoothing_px) if smoothing_px > 0 else None

    def forward(self, logit: torch.Tensor) -> torch.Tensor:
        log_depth = self.log_min + self.log_range * torch.sigmoid(logit)
        if self.smoothing is not None:
            log_depth = self.smoothing(log_depth)
        depth_m = torch.exp(log_depth)
        # exp(log(min)) can round just below min in float32; the clip makes the range exact.
        return depth_m.clamp(self.min_depth_m, self.max_depth_m)


class UNet(nn.Module):
    """Normalised (N, 3, H, W) -> depth (N, 1, H, W) metres, features (N, C, H/4, W/4).

    The feature head is on the depth path: the stride-4 decoder state is projected to
    ``feature_channels`` and the decoder continues from that projection. So the VO features are
    exactly what the depth head builds on, and a depth-only loss trains every parameter
    (DistributedDataParallel needs no ``find_unused_parameters``).
    """

    def __init__(self, config: "ModelConfig"):
        super().__init__()
        c = config
        self.upsample = c.upsample
        # widths[k]: channels at stride stem_stride * 2^k (k = 0 is the stem's resolution)
        widths = [min(c.base_channels * 2 ** k, c.max_channels) for k in range(c.levels + 1)]
        self.feature_level = int(math.log2(4 // c.stem_stride))  # the k whose stride is 4

        self.stem = ConvBlock(3, widths[0], c.norm, stride=c.stem_stride)
        self.encoder = nn.ModuleList(
            nn.Sequential(ConvBlock(widths[k], widths[k + 1], c.norm, stride=2),
                          *[ConvBlock(widths[k + 1], widths[k + 1], c.norm) for _ in range(c.blocks_per_level)])
            for k in range(c.levels)
        )
        self.decoder = nn.ModuleList()  # deepest first; stage k ends at skip k's resolution
        for k in reversed(range(c.levels)):
            below = c.feature_channels if k + 1 == self.feature_level else widths[k + 1]
            self.decoder.append(nn.Sequential(
                ConvBlock(below + widths[k], widths[k], c.norm),
                *[ConvBlock(widths[k], widths[k], c.norm) for _ in range(c.blocks_per_level)]))
        self.feature_head = nn.Conv2d(widths[self.feature_level], c.feature_channels, 1)
        head_in = c.feature_channels if self.feature_level == 0 else widths[0]
        self.depth_logit = nn.Conv2d(head_in, 1, 3, padding=1)
        self.depth_head = LogDepthHead(c.min_depth_m, c.max_depth_m, c.depth_smoothing_px)
        self.full_resolution_head = c.stem_stride == 1

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        size = x.shape[-2:]  # (H, W)
        skips = [self.stem(x)]  # (N, w0, H/s, W/s), s = stem_stride
        for stage in self.encoder:
            skips.append(stage(skips[-1]))  # (N, w_k, H/(s 2^k), W/(s 2^k)), sizes rounded up
        x = skips.pop()
        features = x  # replaced at stride 4 below; validate() guarantees that stage exists
        for stage, k in zip(self.decoder, reversed(range(len(skips)))):
            skip = skips[k]
            x = resize_to(x, skip.shape[-2:], self.upsample)
            x = stage(torch.cat([x, skip], dim=1))  # (N, w_k, ...) at skip k's resolution
            if k == self.feature_level:
                x = features = self.feature_head(x)  # (N, C, H/4, W/4)
        logit = self.depth_logit(x)  # (N, 1, H/s, W/s)
        if not self.full_resolution_head:
            logit = resize_to(logit, size, "bilinear")  # (N, 1, H, W)
        return self.depth_head(logit), features
