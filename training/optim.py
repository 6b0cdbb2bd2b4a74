"""Optimiser, learning-rate schedule and mixed-precision choice: pure builders the trainer calls."""
from __future__ import annotations

import math

import torch

from training.config import OptimConfig, RunConfig


def lr_factor(step: int, warmup_steps: int, total_steps: int, min_ratio: float) -> float:
    """Multiplier of the base lr at optimiser ``step`` (0-based): linear warmup, then cosine.

    Rises linearly to 1 over ``warmup_steps``, then follows half a cosine down to ``min_ratio``
    at ``total_steps``, and stays there.
    """
    if step < warmup_steps:
        return (step + 1) / warmup_steps
    progress = min(1.0, (step - warmup_steps) / max(1, total_steps - warmup_steps))
    return min_ratio + (1.0 - min_ratio) * 0.5 * (1.0 + math.cos(math.pi * progress))


def pretrained_prefixes(model: torch.nn.Module) -> tuple[str, ...]:
    """Parameter-name prefixes of pretrained parts, from any submodule's ``pretrained_prefixes``
    (so wrappers such as DepthModel need not repeat them)."""
    return tuple(f"{path}.{prefix}" if path else prefix for path, module in model.named_modules()
                 for prefix in getattr(module, "pretrained_prefixes", ()))


def build_optimizer(model: torch.nn.Module, optim: OptimConfig) -> torch.optim.Optimizer:
    """AdamW; weight decay on conv/linear weights only (decaying norms and biases only hurts).

    Parameters under the model's ``pretrained_prefixes`` (its ImageNet encoder, if any) train at
    ``optim.encoder_lr_scale`` times the rate of the rest; the scheduler scales every group alike.
    """
    prefixes = pretrained_prefixes(model)
    groups = []
    for pretrained, scale in ((False, 1.0), (True, optim.encoder_lr_scale)):
        params = [(n, p) for n, p in model.named_parameters()
                  if p.requires_grad and n.startswith(prefixes) == pretrained]
        for decays in (True, False):
            chosen = [p for _, p in params if (p.ndim > 1) == decays]
            if chosen:
                groups.append({"params": chosen, "lr": optim.lr * scale,
                               "weight_decay": optim.weight_decay if decays else 0.0})
    return torch.optim.AdamW(groups, lr=optim.lr, betas=tuple(optim.betas))


def build_scheduler(optimizer: torch.optim.Optimizer, optim: OptimConfig,
                    total_steps: int) -> torch.optim.lr_scheduler.LambdaLR:
    """Per-step warmup + cosine; warmup is capped at the run length so short runs still decay."""
    warmup = min(optim.warmup_steps, total_steps)
    min_ratio = optim.min_lr / optim.lr

    def factor(step: int) -> float:
        return lr_factor(step, warmup, total_steps, min_ratio)

    return torch.optim.lr_scheduler.LambdaLR(optimizer, factor)


def amp_dtype(run: RunConfig, device: torch.device) -> torch.dtype | None:
    """bf16 where the GPU has it (fp32's range: no loss scaling, no overflow of exp/log depth);
    fp16 with a GradScaler on older GPUs; None (fp32) on the CPU or when run.amp is off."""
    if not run.amp or device.type != "cuda":
        return None
    return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
