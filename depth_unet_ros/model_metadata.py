"""What the runtime needs to know about a model, carried as ONNX ``metadata_props``.

The ONNX file is the contract between training and runtime: a path is all a user passes, so the
input size, depth range, feature layout and training focal length travel inside it as
``depth_unet.*`` string properties. This module converts between those strings and a typed
dataclass, and imports neither torch nor onnx at module level.
"""
from __future__ import annotations

import os
from dataclasses import MISSING, dataclass, fields
from pathlib import Path
from typing import Any, Mapping

from depth_unet_ros.datasets.base import NYU_INTRINSICS
from depth_unet_ros.errors import ModelLoadError

PREFIX = "depth_unet."
FORMAT_VERSION = "1"  # bump when a key changes meaning; the runtime refuses newer formats
EXPORT_FIX = "re-export with depth-unet export CHECKPOINT --out model.onnx"

# What this runtime feeds the graph; anything else in a file is refused rather than guessed at.
SUPPORTED_INPUT = {"input_layout": "NHWC", "color_order": "RGB", "input_dtype": "uint8",
                   "normalization": "in_graph"}


def training_focal_px(input_width: int) -> float:
    """NYU's RGB focal length (fx at 640 px) scaled to a network input ``input_width`` px wide."""
    return NYU_INTRINSICS.fx * input_width / NYU_INTRINSICS.width


@dataclass(frozen=True)
class ModelMetadata:
    """The ``depth_unet.*`` properties of a model artifact, typed.

    Fields without a default are required in every file (DESIGN.md's keys); the rest describe
    the tensor layout and default to what ``depth-unet export`` writes.
    """

    input_height: int  # network input size in pixels
    input_width: int
    min_depth_m: float  # the depth head's output range, metres
    max_depth_m: float
    focal_px: float  # fx of the training camera at input_width; rescale depth for other cameras
    feature_stride: int  # features are (C, H / stride, W / stride)
    feature_channels: int
    train_data: str  # free text, e.g. "NYU Depth V2 labeled, Eigen train split (795)"
    version: str = FORMAT_VERSION
    architecture: str = "unet"
    input_name: str = "image"
    depth_output: str = "depth"
    features_output: str = "features"
    input_layout: str = "NHWC"
    color_order: str = "RGB"
    input_dtype: str = "uint8"
    normalization: str = "in_graph"  # "in_graph": mean/std happen inside the model

    @property
    def input_size_hw(self) -> tuple[int, int]:
        return self.input_height, self.input_width

    @property
    def feature_size_hw(self) -> tuple[int, int]:
        return self.input_height // self.feature_stride, self.input_width // self.feature_stride

    def to_props(self) -> dict[str, str]:
        """``depth_unet.<field>`` -> string, ready for ONNX ``metadata_props``."""
        return {PREFIX + f.name: _to_str(getattr(self, f.name)) for f in fields(self)}

    @classmethod
    def from_props(cls, props: Mapping[str, str], source: str | os.PathLike = "the model") -> "ModelMetadata":
        """Parse ``metadata_props``; ModelLoadError names missing or bad keys and the fix.

        Keys outside the ``depth_unet.`` prefix are ignored, as are unknown ``depth_unet.`` keys
        (a newer exporter may add some; the format version says when meanings change).
        """
        ours = {k[len(PREFIX):]: v for k, v in props.items() if k.startswith(PREFIX)}
        if not ours:
            raise ModelLoadError(
                f"{source} has no depth_unet metadata (input size, depth range, ...): it was not "
                f"exported by depth-unet; {EXPORT_FIX}")
        required = [f.name for f in fields(cls) if f.default is MISSING]
        missing = [PREFIX + name for name in required if name not in ours]
        if missing:
            raise ModelLoadError(f"{source} lacks metadata keys {', '.join(missing)}; {EXPORT_FIX}")
        values: dict[str, Any] = {}
        for f in fields(cls):
            if f.name in ours:
                values[f.name] = _parse(f.name, ours[f.name], _field_type(f.name), source)
        metadata = cls(**values)
        metadata.check_supported(source)
        return metadata

    def check_supported(self, source: str | os.PathLike = "the model") -> None:
        """Raise ModelLoadError unless this runtime can feed and read the model as described."""
        if self.version != FORMAT_VERSION:
            raise ModelLoadError(
                f"{source} has metadata format version {self.version!r}, this runtime reads "
                f"{FORMAT_VERSION!r}; upgrade depth_unet_ros or {EXPORT_FIX}")
        for name, expected in SUPPORTED_INPUT.items():
            if getattr(self, name) != expected:
                raise ModelLoadError(f"{source} declares {PREFIX}{name}={getattr(self, name)!r}, this "
                                     f"runtime supports only {expected!r}; {EXPORT_FIX}")
        if self.input_height <= 0 or self.input_width <= 0 or self.feature_stride <= 0:
            raise ModelLoadError(f"{source} has a non-positive input size or feature stride; {EXPORT_FIX}")
        if not 0 < self.min_depth_m < self.max_depth_m:
            raise ModelLoadError(f"{source} has an invalid depth range [{self.min_depth_m}, "
                                 f"{self.max_depth_m}] m; {EXPORT_FIX}")

    @classmethod
    def for_model_config(cls, config: Any, train_data: str = "unknown",
                         feature_stride: int = 4) -> "ModelMetadata":
        """Metadata of a model built from a ``training.model_config.ModelConfig`` (duck-typed,
        so this module never imports training)."""
        return cls(
            input_height=int(config.input_height),
            input_width=int(config.input_width),
            min_depth_m=float(config.min_depth_m),
            max_depth_m=float(config.max_depth_m),
            focal_px=training_focal_px(int(config.input_width)),
            feature_stride=int(feature_stride),
            feature_channels=int(config.feature_channels),
            train_data=str(train_data),
            architecture=str(config.arch),
        )


def read_onnx_metadata(path: str | os.PathLike) -> ModelMetadata:
    """ModelMetadata of an ONNX file, with the ``onnx`` package when present, else ONNX Runtime.

    For tools that need the metadata without running the model (engine building, reports).
    """
    path = Path(path)
    if not path.is_file():
        raise ModelLoadError(f"model file {path} does not exist; pass the path of an exported .onnx")
    try:
        import onnx
    except ImportError:
        onnx = None
    try:
        if onnx is not None:
            model = onnx.load(str(path), load_external_data=False)
            props = {p.key: p.value for p in model.metadata_props}
        else:
            try:
                import onnxruntime as ort
            except ImportError:
                raise ModelLoadError(f"reading the metadata of {path} needs the onnx or onnxruntime "
                                     "package; pip install onnx") from None
            session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
            props = dict(session.get_modelmeta().custom_metadata_map)
    except ModelLoadError:
        raise
    except Exception as exc:  # protobuf decode errors have no common public type
        raise ModelLoadError(f"{path} is not a readable ONNX model ({type(exc).__name__}: {exc}); "
                             f"{EXPORT_FIX}") from exc
    return ModelMetadata.from_props(props, source=path)


def _field_type(name: str) -> type:
    return {"input_height": int, "input_width": int, "feature_stride": int, "feature_channels": int,
            "min_depth_m": float, "max_depth_m": float, "focal_px": float}.get(name, str)


def _to_str(value: Any) -> str:
    return repr(value) if isinstance(value, float) else str(value)  # repr round-trips floats exactly


def _parse(name: str, text: str, kind: type, source: Any) -> Any:
    try:
        return kind(text)
    except ValueError:
        raise ModelLoadError(f"{source} has {PREFIX}{name}={text!r}, expected a {kind.__name__}; "
                             f"{EXPORT_FIX}") from None
