"""The training configuration: a dataclass tree loaded from YAML plus ``key=value`` overrides.

A YAML file has one section per dataclass (``model:``, ``data:``, ``loss:``, ``augment:``,
``optim:``, ``run:``); every key is optional and falls back to the defaults below. Unknown keys
and wrongly typed values are errors that name the key, where it came from and what is valid,
so a typo never silently trains with a default.
"""
from __future__ import annotations

import dataclasses
import difflib
import types
import typing
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any, Mapping, Sequence

import yaml

from depth_unet_ros.errors import ConfigError
from training.augment import AugmentConfig
from training.losses import LossConfig
from training.model_config import ModelConfig, config_from_section

# Validation metrics where a larger value is better; every other metric is an error (lower wins).
HIGHER_IS_BETTER = ("delta1", "delta2", "delta3")
SYNTHETIC = "synthetic"  # data.train / data.val value that selects SyntheticIndoorDataset


@dataclass
class DataConfig:
    train: str = SYNTHETIC  # NYU labeled .mat, a folder dataset, or "synthetic"
    val: str | None = SYNTHETIC  # same kinds; None skips validation (and so best.pt)
    splits: str | None = None  # splits.mat for a .mat file; None = every frame of the file
    train_split: str = "train"  # Eigen split names inside splits.mat
    val_split: str = "test"
    depth: str = "dense"  # .mat: "dense" (in-painted, a target everywhere) or "raw" (Kinect holes)
    synthetic_train_frames: int = 512  # enough distinct scenes that the net cannot memorise them
    synthetic_val_frames: int = 64
    synthetic_seed: int = 0  # validation uses synthetic_seed + 1000: held-out scenes, never seen
    synthetic_height: int = 480  # NYU's frame size, so the resize path matches real data
    synthetic_width: int = 640
    # "plain": the rooms earlier models were trained on (bit for bit); "rich": clutter of known
    # size, windows, trim, robot-to-eye camera poses, close-ups and camera effects.
    synthetic_variant: str = "plain"
    augment_train: bool = True  # Eigen's augmentation (the augment: section) on training frames
    cache_frames: bool = False  # hold decoded source frames in RAM (small sets: synthetic, samples)
    num_workers: int = 2  # decoding + augmentation per frame is light; more only helps on big CPUs
    val_max_frames: int | None = None  # cap validation cost on large val sets; None = all
    # Recorded sequences whose depth is not registered to colour (Kinect v1, 7-Scenes): the
    # colour camera's fx, fy, cx, cy at the stored size, and t in X_colour = X_depth + t (m).
    # null = the depth is already registered. See depth_unet_ros/datasets/registration.py.
    register_colour: tuple[float, float, float, float] | None = None
    register_shift_m: tuple[float, float, float] = (0.0, 0.0, 0.0)
    # Resample folder frames to this focal length (px at the stored width), so real frames share
    # the focal the model records (NYU: 518.86 at 640); null = keep each camera's own.
    target_focal_px: float | None = None
    # [start, stop) of a folder sequence for training / validation; a run whose train and val
    # are one folder must give disjoint ranges (checked), so validation frames are never trained on.
    train_frames: tuple[int, int] | None = None
    val_frames: tuple[int, int] | None = None
    drop_duplicates: bool = False  # skip byte-identical repeats of the previous frame (folders)
    # Synthetic rooms (seed synthetic_seed) added to a real training set, so a network trained on
    # one real place also sees many layouts; 0 = none.
    synthetic_mix_frames: int = 0


@dataclass
class OptimConfig:
    # AdamW at 1e-3 trains a batch-normed U-Net from scratch quickly; warmup keeps the first
    # steps (random weights, large log-depth errors) from blowing up the BN statistics.
    lr: float = 1e-3
    min_lr: float = 1e-5  # cosine floor: the last epochs still make small progress
    weight_decay: float = 1e-4  # decoupled; applied to conv weights only, not to norms or biases
    betas: tuple[float, float] = (0.9, 0.999)
    batch_size: int = 8  # per process; under torchrun the global batch is batch_size x world size
    epochs: int = 50
    steps_per_epoch: int | None = None  # None = one full pass over the training frames
    warmup_steps: int = 200
    grad_clip_norm: float | None = 1.0  # None or 0 disables; guards against rare bad frames
    # Multiplier of lr for the ImageNet-pretrained encoder (a model's ``pretrained_prefixes``):
    # below 1 keeps its general features from being rewritten to fit the few real scenes.
    encoder_lr_scale: float = 1.0


@dataclass
class RunConfig:
    out_dir: str = "runs/default"  # last.pt, best.pt, config.yaml, metrics.jsonl, tb/
    seed: int = 0  # weights, data order and augmentation all derive from it
    amp: bool = True  # mixed precision; only used on CUDA (bf16 where supported, else fp16)
    device: str = "auto"  # "auto" (CUDA if present), "cpu", "cuda", "cuda:1", ...
    log_every: int = 50  # steps between TensorBoard scalar writes
    val_every_epochs: int = 1  # the last epoch is always validated
    best_metric: str = "abs_rel"  # decides best.pt; delta1..3 higher is better, others lower
    tensorboard: bool = True
    num_sample_images: int = 4  # validation frames drawn into TensorBoard each validation
    progress: bool = True  # tqdm bar (rank 0, and only when stderr is a terminal)


@dataclass
class TrainConfig:
    model: ModelConfig = field(default_factory=ModelConfig)
    data: DataConfig = field(default_factory=DataConfig)
    loss: LossConfig = field(default_factory=LossConfig)
    augment: AugmentConfig = field(default_factory=AugmentConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)
    run: RunConfig = field(default_factory=RunConfig)


_SECTIONS: dict[str, type] = {f.name: f.default_factory for f in fields(TrainConfig)}


def load_config(path: str | Path | None, overrides: Sequence[str] = ()) -> TrainConfig:
    """Read ``path`` (None = defaults only), then apply ``section.key=value`` overrides in order.

    Override values are parsed as YAML (``optim.lr=3e-4``, ``data.val=null``,
    ``optim.betas=[0.9,0.99]``) and type-checked against the field.
    """
    source = "the defaults" if path is None else str(path)
    raw = _read_yaml(Path(path)) if path is not None else {}
    merged = {name: dict(raw.get(name) or {}) for name in _SECTIONS}
    for name, section in merged.items():
        for key, value in section.items():
            merged[name][key] = _coerce_field(name, key, value, source)
    for text in overrides:
        name, key, value = _parse_override(text)
        merged[name][key] = value
    return config_from_dict(merged, source)


def config_from_dict(values: Mapping[str, Any], source: str = "a config dict") -> TrainConfig:
    """Build a TrainConfig from plain sections (as config_to_dict or a checkpoint stores them)."""
    _check_keys(values.keys(), list(_SECTIONS), "section", source)
    built: dict[str, Any] = {}
    for name, cls in _SECTIONS.items():
        section = dict(values.get(name) or {})
        for key, value in section.items():
            section[key] = _coerce_field(name, key, value, source)
        try:
            built[name] = config_from_section(section) if cls is ModelConfig else cls(**section)
        except ConfigError as exc:
            raise ConfigError(f"{source}: {exc}") from None
        except (TypeError, ValueError) as exc:  # a section dataclass's own validation
            raise ConfigError(f"{source}: invalid {name} section: {exc}") from None
    config = TrainConfig(**built)
    validate_config(config, source)
    return config


def config_to_dict(config: TrainConfig) -> dict[str, dict[str, Any]]:
    """Plain nested dicts (lists, not tuples): YAML-, JSON- and ``weights_only``-safe."""
    return {name: _plain(dataclasses.asdict(getattr(config, name))) for name in _SECTIONS}


def save_config_yaml(config: TrainConfig, path: str | Path) -> Path:
    """Write ``config`` as YAML that ``load_config`` reads back to an equal config."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump(config_to_dict(config), sort_keys=False))
    return path


def validate_config(config: TrainConfig, source: str = "the config") -> None:
    """Cross-field checks the per-field types cannot express."""
    from depth_unet_ros.evaluation.metrics import METRIC_NAMES

    if config.run.best_metric not in METRIC_NAMES:
        raise ConfigError(f"{source}: run.best_metric={config.run.best_metric!r} is not a metric; "
                          f"choose one of {', '.join(METRIC_NAMES)}")
    positive = {"optim.batch_size": config.optim.batch_size, "optim.epochs": config.optim.epochs,
                "run.log_every": config.run.log_every,
                "run.val_every_epochs": config.run.val_every_epochs}
    for key, value in positive.items():
        if value < 1:
            raise ConfigError(f"{source}: {key} must be >= 1, got {value}")
    if config.optim.lr <= 0 or config.optim.min_lr < 0 or config.optim.min_lr > config.optim.lr:
        raise ConfigError(f"{source}: need 0 <= optim.min_lr <= optim.lr and optim.lr > 0, got "
                          f"lr={config.optim.lr}, min_lr={config.optim.min_lr}")
    if config.loss.gradient_weight < 0:
        raise ConfigError(f"{source}: loss.gradient_weight must be >= 0 (0 = off), got "
                          f"{config.loss.gradient_weight}")
    if not 0 < config.optim.encoder_lr_scale <= 1:
        raise ConfigError(f"{source}: optim.encoder_lr_scale must be in (0, 1], got "
                          f"{config.optim.encoder_lr_scale}")
    if config.optim.steps_per_epoch is not None and config.optim.steps_per_epoch < 1:
        raise ConfigError(f"{source}: optim.steps_per_epoch must be >= 1 or null (a full pass)")
    if config.data.num_workers < 0:
        raise ConfigError(f"{source}: data.num_workers must be >= 0, got {config.data.num_workers}")
    _validate_frame_ranges(config.data, source)


def _validate_frame_ranges(data: DataConfig, source: str) -> None:
    """Ranges must be non-empty, and disjoint when training and validation read one folder."""
    if data.synthetic_mix_frames < 0:
        raise ConfigError(f"{source}: data.synthetic_mix_frames must be >= 0")
    from depth_unet_ros.datasets.synthetic.scenes import VARIANTS

    if data.synthetic_variant not in VARIANTS:
        raise ConfigError(f"{source}: data.synthetic_variant must be one of {', '.join(VARIANTS)}, "
                          f"got {data.synthetic_variant!r}")
    for key in ("train_frames", "val_frames"):
        span = getattr(data, key)
        if span is not None and not 0 <= span[0] < span[1]:
            raise ConfigError(f"{source}: data.{key}={list(span)} must be [start, stop) with "
                              "0 <= start < stop")
    if (data.val is None or data.train == SYNTHETIC or Path(data.train) != Path(data.val)
            or Path(data.train).suffix.lower() == ".mat"):  # a .mat separates by its splits file
        return
    train, val = data.train_frames, data.val_frames
    if train is None or val is None or (train[0] < val[1] and val[0] < train[1]):
        raise ConfigError(f"{source}: data.train and data.val are the same folder {data.train}; "
                          "give disjoint data.train_frames and data.val_frames so no validation "
                          f"frame is trained on (got {train} and {val})")


def is_higher_better(metric: str) -> bool:
    """Whether a larger value of validation ``metric`` is an improvement."""
    return metric in HIGHER_IS_BETTER


# --- parsing helpers -------------------------------------------------------------------------

def _read_yaml(path: Path) -> dict[str, Any]:
    if not path.is_file():
        raise ConfigError(f"config file {path} does not exist; pass an existing YAML file with "
                          "--config (see config/train_default.yaml)")
    try:
        raw = yaml.safe_load(path.read_text())
    except yaml.YAMLError as exc:
        raise ConfigError(f"config file {path} is not valid YAML: {exc}") from None
    raw = raw or {}
    if not isinstance(raw, dict):
        raise ConfigError(f"config file {path} must be a mapping of sections "
                          f"({', '.join(_SECTIONS)}), got {type(raw).__name__}")
    _check_keys(raw.keys(), list(_SECTIONS), "section", str(path))
    for name, section in raw.items():
        if section is not None and not isinstance(section, dict):
            raise ConfigError(f"{path}: section {name!r} must be a mapping of keys, got {section!r}")
    return raw


def _parse_override(text: str) -> tuple[str, str, Any]:
    where = f"override {text!r}"
    if "=" not in text:
        raise ConfigError(f"{where} is not of the form section.key=value (e.g. optim.lr=3e-4)")
    dotted, raw_value = text.split("=", 1)
    parts = dotted.strip().split(".")
    if len(parts) != 2 or not all(parts):
        raise ConfigError(f"{where}: the key must be section.key (e.g. optim.lr), got {dotted!r}")
    name, key = parts
    _check_keys([name], list(_SECTIONS), "section", where)
    try:
        value = yaml.safe_load(raw_value) if raw_value.strip() else ""
    except yaml.YAMLError:
        value = raw_value  # e.g. a path with a colon: let the field's type decide
    if _is_str_field(name, key) and value is not None and not isinstance(value, str):
        value = raw_value  # data.train=2024 is a path named "2024", not a number
    return name, key, _coerce_field(name, key, value, where)


def _field_types(name: str) -> dict[str, Any]:
    cls = _SECTIONS[name]
    hints = typing.get_type_hints(cls)
    return {f.name: hints[f.name] for f in fields(cls)}


def _is_str_field(name: str, key: str) -> bool:
    hint = _field_types(name).get(key)
    return hint is str or (_is_optional(hint) and str in typing.get_args(hint))


def _check_keys(keys: Any, valid: list[str], kind: str, source: str,
                extra_valid: Sequence[str] = ()) -> None:
    allowed = list(valid) + list(extra_valid)
    for key in keys:
        if key not in allowed:
            close = difflib.get_close_matches(str(key), allowed, n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            raise ConfigError(f"unknown {kind} {key!r} in {source}{hint}; valid: {', '.join(allowed)}")


def _coerce_field(section: str, key: str, value: Any, source: str) -> Any:
    types_ = _field_types(section)
    extra = ("preset",) if section == "model" else ()
    _check_keys([key], list(types_), f"{section} key", source, extra)
    if key == "preset":
        return value
    try:
        return _coerce(value, types_[key])
    except (TypeError, ValueError):
        raise ConfigError(f"{source}: {section}.{key}={value!r} should be "
                          f"{_type_name(types_[key])}") from None


def _is_optional(hint: Any) -> bool:
    is_union = typing.get_origin(hint) in (typing.Union, types.UnionType)
    return is_union and type(None) in typing.get_args(hint)


def _coerce(value: Any, hint: Any) -> Any:
    """``value`` as type ``hint``; raises TypeError/ValueError when it does not fit."""
    if _is_optional(hint):
        if value is None:
            return None
        (inner,) = [a for a in typing.get_args(hint) if a is not type(None)]
        return _coerce(value, inner)
    origin = typing.get_origin(hint)
    if origin is tuple:
        args = typing.get_args(hint)
        if not isinstance(value, (list, tuple)) or len(value) != len(args):
            raise TypeError(value)
        return tuple(_coerce(v, a) for v, a in zip(value, args))
    if hint is bool:
        if not isinstance(value, bool):
            raise TypeError(value)
        return value
    if hint is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise TypeError(value)
        return value
    if hint is float:
        if isinstance(value, str):
            return float(value)  # YAML 1.1 reads "3e-4" (no dot) as a string
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise TypeError(value)
        return float(value)
    if hint is str:
        if not isinstance(value, str):
            raise TypeError(value)
        return value
    return value


def _type_name(hint: Any) -> str:
    if _is_optional(hint):
        (inner,) = [a for a in typing.get_args(hint) if a is not type(None)]
        return f"{_type_name(inner)} or null"
    if typing.get_origin(hint) is tuple:
        return f"a list of {len(typing.get_args(hint))} values"
    return {bool: "true or false", int: "an integer", float: "a number", str: "a string"}.get(
        hint, str(hint))


def _plain(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return value
