"""Training losses on metric depth, each taking an explicit valid mask.

Every loss has the signature ``loss(pred_m, gt_m, valid, image=None) -> scalar tensor`` with
pred_m, gt_m (N, 1, H, W) in metres, valid (N, 1, H, W) bool and image (N, 3, H, W) float in
[0, 1] (used only by the smoothness term). Invalid pixels are replaced before any log or
division, so whatever they hold (0, NaN, inf) changes neither the loss nor its gradient.
"""
from __future__ import annotations

from dataclasses import dataclass
from functools import partial
from typing import Callable

import torch

from depth_unet_ros.errors import ConfigError

LossFn = Callable[..., torch.Tensor]

_MIN_DEPTH_M = 1e-6  # log/inverse guard: a fresh network can output ~0 depth
_SQRT_EPS = 1e-8  # keeps sqrt's gradient finite when the log error is constant


def _prepare(pred_m: torch.Tensor, gt_m: torch.Tensor,
             valid: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Check shapes; return (pred, gt, valid) with invalid pixels set to 1 m, in >= float32."""
    if not (pred_m.shape == gt_m.shape == valid.shape) or pred_m.ndim != 4 or pred_m.shape[1] != 1:
        raise ValueError(
            "losses need pred_m, gt_m and valid of one shape (N, 1, H, W), got "
            f"{tuple(pred_m.shape)}, {tuple(gt_m.shape)}, {tuple(valid.shape)}")
    dtype = torch.promote_types(pred_m.dtype, torch.float32)  # fp16 logs under AMP are too coarse
    valid = valid.bool()
    one = torch.ones((), dtype=dtype, device=pred_m.device)
    pred = torch.where(valid, pred_m.to(dtype), one)  # (N, 1, H, W)
    gt = torch.where(valid, gt_m.to(dtype), one)  # (N, 1, H, W)
    return pred, gt, valid


def _log_error(pred_m: torch.Tensor, gt_m: torch.Tensor, valid: torch.Tensor
               ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(d = ln pred - ln gt, 0 on invalid pixels; the prepared pred; the bool valid mask)."""
    pred, gt, valid = _prepare(pred_m, gt_m, valid)
    d = torch.log(pred.clamp(min=_MIN_DEPTH_M)) - torch.log(gt.clamp(min=_MIN_DEPTH_M))  # (N,1,H,W)
    return d * valid, pred, valid  # invalid pixels are exactly 0 already (1 m vs 1 m); be explicit


def _log_error_moments(pred_m: torch.Tensor, gt_m: torch.Tensor, valid: torch.Tensor
                       ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """Per image: (mean d, variance of d, has-valid mask, a zero that keeps the graph)."""
    d, pred, valid = _log_error(pred_m, gt_m, valid)
    count = valid.sum(dim=(1, 2, 3))  # (N,)
    n = count.clamp(min=1).to(d.dtype)
    mean_d = d.sum(dim=(1, 2, 3)) / n  # (N,)
    # Centred form: mean(d^2) - mean(d)^2 = mean((d - mean d)^2), without the cancellation.
    centred = (d - mean_d.view(-1, 1, 1, 1)) * valid
    var_d = (centred ** 2).sum(dim=(1, 2, 3)) / n  # (N,)
    return mean_d, var_d, count > 0, (pred * 0).sum()


def _mean_over_images(per_image: torch.Tensor, has_valid: torch.Tensor,
                      zero: torch.Tensor) -> torch.Tensor:
    """Average per-image losses over images with any valid pixel; 0 (with a graph) if none."""
    if not bool(has_valid.any()):
        return zero
    return per_image[has_valid].mean() + zero


def silog_loss(pred_m: torch.Tensor, gt_m: torch.Tensor, valid: torch.Tensor,
               image: torch.Tensor | None = None, lambd: float = 0.5) -> torch.Tensor:
    """Eigen et al. 2014 scale-invariant log loss, mean(d^2) - lambd * mean(d)^2 per image.

    d = ln(pred) - ln(gt) over valid pixels; lambd = 1 ignores a global scale error, 0 is the
    plain log-L2. Averaged over the images that have valid pixels.
    """
    mean_d, var_d, has_valid, zero = _log_error_moments(pred_m, gt_m, valid)
    per_image = var_d + (1.0 - lambd) * mean_d ** 2  # == mean(d^2) - lambd * mean(d)^2
    return _mean_over_images(per_image, has_valid, zero)


def bts_loss(pred_m: torch.Tensor, gt_m: torch.Tensor, valid: torch.Tensor,
             image: torch.Tensor | None = None, variance_focus: float = 0.85) -> torch.Tensor:
    """BTS (Lee et al. 2019): 10 * sqrt(mean(d^2) - variance_focus * mean(d)^2) per image, averaged."""
    mean_d, var_d, has_valid, zero = _log_error_moments(pred_m, gt_m, valid)
    inside = var_d + (1.0 - variance_focus) * mean_d ** 2
    per_image = 10.0 * torch.sqrt(inside.clamp(min=_SQRT_EPS))
    return _mean_over_images(per_image, has_valid, zero)


def l2_loss(pred_m: torch.Tensor, gt_m: torch.Tensor, valid: torch.Tensor,
            image: torch.Tensor | None = None) -> torch.Tensor:
    """Mean squared error in metres^2 over all valid pixels of the batch."""
    pred, gt, valid = _prepare(pred_m, gt_m, valid)
    zero = (pred * 0).sum()
    count = valid.sum()
    if int(count) == 0:
        return zero
    return ((pred - gt) ** 2).sum() / count + zero


def log_gradient_matching(pred_m: torch.Tensor, gt_m: torch.Tensor, valid: torch.Tensor,
                          scales: int = 3) -> torch.Tensor:
    """Eigen & Fergus (2015)'s first-order term: the mean squared x and y gradient of
    d = ln(pred) - ln(gt) over pairs of valid neighbours, averaged over ``scales`` resolutions
    (each half the last, a block's d the mean of its valid pixels).

    Why: the scale-invariant term hardly sees depth that copies the image's texture (a grain of
    +-10 % around the right value), which is what a decoder fed full-resolution skips learns
    from few scenes; this term charges every such step where the truth is smooth.
    """
    d, pred, valid = _log_error(pred_m, gt_m, valid)
    weight = valid.to(pred.dtype)
    zero = (pred * 0).sum()
    per_scale = []
    for scale in range(scales):
        if scale:
            if min(d.shape[-2:]) < 2:
                break
            total = torch.nn.functional.avg_pool2d(d, 2)
            weight = torch.nn.functional.avg_pool2d(weight, 2)
            d = total / weight.clamp(min=1e-6)
            weight = (weight > 0).to(d.dtype)
        terms, pairs = [], []
        for dim in (-1, -2):
            n = d.shape[dim] - 1
            step = d.narrow(dim, 1, n) - d.narrow(dim, 0, n)
            both = weight.narrow(dim, 1, n) * weight.narrow(dim, 0, n)
            terms.append((step ** 2 * both).sum(dim=(1, 2, 3)))
            pairs.append(both.sum(dim=(1, 2, 3)))
        count = pairs[0] + pairs[1]  # (N,)
        per_image = (terms[0] + terms[1]) / count.clamp(min=1)
        per_scale.append(_mean_over_images(per_image, count > 0, zero))
    return torch.stack(per_scale).mean()


def edge_aware_smoothness(pred_m: torch.Tensor, image: torch.Tensor) -> torch.Tensor:
    """Monodepth-style smoothness: |grad| of mean-normalised inverse depth times exp(-|grad image|).

    Normalising by each image's mean inverse depth stops the term from rewarding a network that
    pushes everything far away. Applies to every pixel: it needs no ground truth.
    """
    if image.ndim != 4 or image.shape[0] != pred_m.shape[0] or image.shape[2:] != pred_m.shape[2:]:
        raise ValueError(f"image {tuple(image.shape)} must be (N, 3, H, W) matching depth "
                         f"{tuple(pred_m.shape)}")
    dtype = torch.promote_types(pred_m.dtype, torch.float32)
    inv = 1.0 / pred_m.to(dtype).clamp(min=_MIN_DEPTH_M)  # (N, 1, H, W)
    inv = inv / (inv.mean(dim=(2, 3), keepdim=True) + 1e-7)
    image = image.to(dtype)
    grad_inv_x = (inv[:, :, :, 1:] - inv[:, :, :, :-1]).abs()  # (N, 1, H, W-1)
    grad_inv_y = (inv[:, :, 1:, :] - inv[:, :, :-1, :]).abs()  # (N, 1, H-1, W)
    grad_img_x = (image[:, :, :, 1:] - image[:, :, :, :-1]).abs().mean(dim=1, keepdim=True)
    grad_img_y = (image[:, :, 1:, :] - image[:, :, :-1, :]).abs().mean(dim=1, keepdim=True)
    return ((grad_inv_x * torch.exp(-grad_img_x)).mean()
            + (grad_inv_y * torch.exp(-grad_img_y)).mean())


def l2_smooth_loss(pred_m: torch.Tensor, gt_m: torch.Tensor, valid: torch.Tensor,
                   image: torch.Tensor | None = None, smooth_weight: float = 0.1) -> torch.Tensor:
    """l2_loss + smooth_weight * edge_aware_smoothness; needs the (N, 3, H, W) image in [0, 1]."""
    if image is None:
        raise ValueError("l2_smooth_loss needs the input image (N, 3, H, W) in [0, 1] for its "
                         "edge-aware smoothness term; pass image=")
    return l2_loss(pred_m, gt_m, valid) + smooth_weight * edge_aware_smoothness(pred_m, image)


@dataclass(frozen=True)
class LossConfig:
    """Which loss trains the model, and its weights."""

    name: str = "silog"  # one of LOSS_NAMES
    silog_lambda: float = 0.5  # Eigen 2014: 0.5 balances absolute and scale-invariant error
    smooth_weight: float = 0.1  # l2_smooth only
    bts_variance_focus: float = 0.85  # BTS paper value
    # Weight of Eigen & Fergus (2015)'s gradient-matching term (log_gradient_matching), added to
    # any loss above; 0 = off (Eigen 2014's loss alone).
    gradient_weight: float = 0.0


LOSS_NAMES: tuple[str, ...] = ("silog", "l2", "l2_smooth", "bts")


def build_loss(config: LossConfig) -> LossFn:
    """The loss function ``config`` names, with its weights bound (and the gradient term added
    when ``gradient_weight`` > 0)."""
    base = _named_loss(config)
    if config.gradient_weight <= 0:
        return base
    weight = float(config.gradient_weight)

    def with_gradients(pred_m: torch.Tensor, gt_m: torch.Tensor, valid: torch.Tensor,
                       image: torch.Tensor | None = None) -> torch.Tensor:
        return base(pred_m, gt_m, valid, image) + weight * log_gradient_matching(pred_m, gt_m, valid)

    return with_gradients


def _named_loss(config: LossConfig) -> LossFn:
    if config.name == "silog":
        return partial(silog_loss, lambd=config.silog_lambda)
    if config.name == "l2":
        return l2_loss
    if config.name == "l2_smooth":
        return partial(l2_smooth_loss, smooth_weight=config.smooth_weight)
    if config.name == "bts":
        return partial(bts_loss, variance_focus=config.bts_variance_focus)
    raise ConfigError(f"unknown loss {config.name!r}; set loss.name to one of {', '.join(LOSS_NAMES)}")
