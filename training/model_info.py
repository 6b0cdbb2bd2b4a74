"""Parameters, GMACs and output shapes of a model config (``depth-unet model-info``).

Prints one preset (default unet-small), the ``model:`` section of a training YAML, or with
``--all`` a table of every preset, so a width or level change can be priced before training.
"""
from __future__ import annotations

import argparse
import dataclasses
from pathlib import Path
from typing import Any

from depth_unet_ros.errors import ConfigError
from training.model_config import PRESETS, ModelConfig, config_from_section, preset


def count_parameters(model: Any) -> int:
    """Number of trainable parameters (the weights a checkpoint stores, less buffers)."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad)


def count_macs(model: Any, height: int, width: int) -> int:
    """Multiply-accumulates of one forward pass at ``height`` x ``width`` (batch 1).

    torch's FlopCounterMode counts conv and matmul FLOPs (2 per MAC) and ignores elementwise
    ops, which is the usual convention for "GMACs". A DepthModel gets a (1, H, W, 3) uint8
    image; a bare network a (1, 3, H, W) float tensor.
    """
    import torch
    from torch.utils.flop_counter import FlopCounterMode

    from training.model import DepthModel

    if isinstance(model, DepthModel):
        x = torch.zeros(1, height, width, 3, dtype=torch.uint8)
    else:
        x = torch.zeros(1, 3, height, width)
    was_training = model.training
    model.eval()  # batch norm in training mode would update its running statistics
    try:
        with FlopCounterMode(display=False) as counter, torch.no_grad():
            model(x)
    finally:
        model.train(was_training)
    return counter.get_total_flops() // 2


def describe(config: ModelConfig) -> dict[str, Any]:
    """Params (M), GMACs and output shapes of ``config`` at its input size."""
    import torch

    from training.model import build_model

    model = build_model(config).eval()
    h, w = config.input_height, config.input_width
    with torch.no_grad():
        depth, features = model(torch.zeros(1, h, w, 3, dtype=torch.uint8))
    return {
        "params_m": count_parameters(model) / 1e6,
        "gmacs": count_macs(model, h, w) / 1e9,
        "input": (1, h, w, 3),
        "depth": tuple(depth.shape),
        "features": tuple(features.shape),
        "total_stride": config.total_stride,
    }


def add_arguments(parser: argparse.ArgumentParser) -> None:
    source = parser.add_mutually_exclusive_group()
    source.add_argument("--preset", default="unet-small", choices=sorted(PRESETS),
                        help="named model preset to describe")
    source.add_argument("--config", type=Path, default=None,
                        help="training YAML whose model: section to describe (instead of --preset)")
    parser.add_argument("--height", type=int, default=None, help="input height in pixels (default: the config's)")
    parser.add_argument("--width", type=int, default=None, help="input width in pixels (default: the config's)")
    parser.add_argument("--all", action="store_true", help="print a table of every preset")


def run(args: argparse.Namespace) -> int:
    if args.all:
        configs = dict(PRESETS)
    elif args.config is not None:
        configs = {str(args.config): _config_from_yaml(args.config)}
    else:
        configs = {args.preset: preset(args.preset)}
    rows = []
    for name, config in configs.items():
        sized = dataclasses.replace(config, input_height=args.height or config.input_height,
                                    input_width=args.width or config.input_width).validate()
        rows.append((name, sized, describe(sized)))
    print(f"{'model':<14} {'arch':<12} {'input HxW':<10} {'params':>8} {'GMACs':>7} "
          f"{'stride':>6}  {'depth':<18} features")
    for name, config, info in rows:
        size = f"{config.input_height}x{config.input_width}"
        print(f"{name:<14} {config.arch:<12} {size:<10} {info['params_m']:>7.2f}M {info['gmacs']:>7.3f} "
              f"{info['total_stride']:>6}  {str(info['depth']):<18} {info['features']}")
    return 0


def _config_from_yaml(path: Path) -> ModelConfig:
    """The ``model:`` section of a training YAML, read directly so this tool needs no trainer."""
    import yaml

    if not path.is_file():
        raise ConfigError(f"config file {path} does not exist; pass a training YAML (see config/)")
    try:
        data = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as exc:
        raise ConfigError(f"config file {path} is not valid YAML: {exc}") from None
    if not isinstance(data, dict) or not isinstance(data.get("model", {}), dict):
        raise ConfigError(f"config file {path}: expected a mapping with a 'model:' section")
    try:
        return config_from_section(data.get("model"))
    except ConfigError as exc:
        raise ConfigError(f"config file {path}: {exc}") from None
