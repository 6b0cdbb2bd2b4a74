"""Export a training checkpoint to the ONNX artifact the runtime loads.

The graph takes the camera's bytes: input ``image`` uint8 (N, H, W, 3) RGB, normalisation
inside; outputs ``depth`` (N, 1, H, W) metres and ``features`` (N, C, H/4, W/4). Its
``metadata_props`` carry ModelMetadata, so the runtime needs only the file. We use the
TorchScript exporter (``dynamo=False``): on torch 2.13 it writes opset 17 natively in a fraction
of a second, while the dynamo exporter starts at opset 18 and converts down (TensorRT 8.5 on
JetPack 5 reads at most opset 17). The file is checked with ``onnx.checker`` (full check) and
written atomically.
"""
from __future__ import annotations

import argparse
import copy
import dataclasses
import logging
import os
import warnings
from pathlib import Path
from typing import Any

from depth_unet_ros.atomic_file import atomic_output
from depth_unet_ros.errors import ConfigError, ModelLoadError
from depth_unet_ros.model_metadata import ModelMetadata

log = logging.getLogger(__name__)

MIN_OPSET = 17  # LayerNormalization and the resize modes we use; what TensorRT 8.6+/10 parse
EXPORT_TOLERANCE = 1e-3  # max abs difference (metres, feature units) between ONNX Runtime and torch
# With weights stored as float16 the graph computes in float32 but from rounded weights, so it
# is compared with PyTorch relative to each output's scale: depth within 2 % of itself,
# features within 2 % of their largest magnitude (the bundled model on one random frame: at most
# 1.0 %, mean 0.07 %; on 20 real frames depth at most 2.1 %, mean 0.12 %, features 1.7 %, 0.05 %).
FP16_WEIGHTS_RELATIVE_TOLERANCE = 2e-2


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("checkpoint", type=Path, help="training checkpoint (.pt) to export")
    parser.add_argument("--out", type=Path, required=True, help="ONNX file to write (e.g. model.onnx)")
    parser.add_argument("--opset", type=int, default=17, help=f"ONNX opset (>= {MIN_OPSET})")
    parser.add_argument("--simplify", action="store_true",
                        help="run onnxsim on the graph when it is installed (skipped otherwise)")
    parser.add_argument("--dynamic-batch", action="store_true",
                        help="leave the batch dimension free (default: fixed batch 1, simplest for TensorRT)")
    parser.add_argument("--fp16-weights", action="store_true",
                        help="store weights as float16 with a Cast to float32 (half the file; ONNX "
                             "Runtime and TensorRT fold the Cast at load and compute in float32)")
    parser.add_argument("--depth-smoothing-px", type=int, default=None, metavar="WIDTH",
                        help="blur the log depth in the graph: a WIDTH x WIDTH mean filter three "
                             "times (odd WIDTH; about a Gaussian of sigma sqrt((WIDTH^2 - 1) / 4) "
                             "px; 0 = none; default: as the checkpoint was trained). It removes the "
                             "image texture a decoder copies into depth on real images")
    parser.add_argument("--train-data", default=None,
                        help="training data description stored in the metadata (default: from the checkpoint)")


def run(args: argparse.Namespace) -> int:
    try:
        import onnx  # noqa: F401
        import torch  # noqa: F401
    except ImportError as exc:
        raise ConfigError(f"depth-unet export needs PyTorch and onnx ({exc}); install the training "
                          "extra: pip install 'depth_unet_ros[train]' (with the torch build you want)") from None
    model, metadata = load_checkpoint_model(args.checkpoint, args.depth_smoothing_px)
    if args.train_data is not None:
        metadata = dataclasses.replace(metadata, train_data=args.train_data)
    path = export_onnx(model, args.out, metadata, opset=args.opset,
                       dynamic_batch=args.dynamic_batch, simplify=args.simplify,
                       fp16_weights=args.fp16_weights)
    print(f"wrote {path} ({metadata.architecture}, input {metadata.input_height}x"
          f"{metadata.input_width} uint8 RGB, depth {metadata.min_depth_m}-{metadata.max_depth_m} m, "
          f"features {metadata.feature_channels}ch at 1/{metadata.feature_stride})")
    return 0


def train_data_from_checkpoint(state: dict[str, Any]) -> str:
    """A one-line description of the training data, from the checkpoint's TrainConfig dict."""
    data = (state.get("config") or {}).get("data") or {}
    train = data.get("train")
    if not train:
        return "unknown"
    text = Path(str(train)).name
    if data.get("splits"):
        text += f" (split {data.get('train_split', 'train')} of {Path(str(data['splits'])).name})"
    if str(train).endswith(".mat"):
        text += f", {data.get('depth', 'dense')} depth"
    return text


def load_checkpoint_model(path: str | os.PathLike, depth_smoothing_px: int | None = None
                          ) -> tuple[Any, ModelMetadata]:
    """(DepthModel in eval mode on the CPU, its ModelMetadata) from a training checkpoint;
    ``depth_smoothing_px`` replaces the checkpoint's blur of the log depth (it has no weights)."""
    from training.checkpoint import load_checkpoint
    from training.model import build_model
    from training.model_config import ModelConfig

    state = load_checkpoint(path, map_location="cpu")
    if "model_config" not in state:
        raise ModelLoadError(f"checkpoint {path} has no 'model_config'; it predates the model "
                             "config format, retrain or re-save it with the current trainer")
    config = ModelConfig.from_dict(state["model_config"])
    if depth_smoothing_px is not None:
        config = dataclasses.replace(config, depth_smoothing_px=int(depth_smoothing_px)).validate()
    model = build_model(config)
    try:
        model.load_state_dict(state["model"])
    except RuntimeError as exc:
        raise ModelLoadError(f"checkpoint {path}: weights do not fit its model_config ({exc}); "
                             "the checkpoint is inconsistent, retrain") from None
    return model.eval(), ModelMetadata.for_model_config(config, train_data_from_checkpoint(state))


def export_onnx(model: Any, path: str | os.PathLike, metadata: ModelMetadata, opset: int = 17,
                dynamic_batch: bool = False, simplify: bool = False,
                fp16_weights: bool = False) -> Path:
    """Write ``model`` (a DepthModel) as the ONNX artifact at ``path``; returns the path.

    Input ``image`` (N, H, W, 3) uint8 with N = 1 unless ``dynamic_batch``.
    """
    import onnx
    import torch

    if opset < MIN_OPSET:
        raise ConfigError(f"--opset {opset} is too old; use {MIN_OPSET} or newer")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    model = copy.deepcopy(model).cpu().eval()  # the caller's model keeps its device and mode
    meta = metadata
    dummy = torch.zeros((1, meta.input_height, meta.input_width, 3), dtype=torch.uint8)
    axes = ({name: {0: "batch"} for name in (meta.input_name, meta.depth_output, meta.features_output)}
            if dynamic_batch else None)
    with atomic_output(path) as tmp:
        with warnings.catch_warnings():
            # The TorchScript exporter is a deliberate choice (see the module docstring).
            warnings.filterwarnings("ignore", message=".*legacy TorchScript-based ONNX export.*")
            warnings.filterwarnings("ignore", category=DeprecationWarning, module=r"torch\.onnx")
            torch.onnx.export(model, (dummy,), str(tmp), input_names=[meta.input_name],
                              output_names=[meta.depth_output, meta.features_output],
                              opset_version=opset, dynamic_axes=axes, do_constant_folding=True,
                              dynamo=False)
        proto = onnx.load(str(tmp))
        if simplify:
            proto = _simplify(proto)
        _declare_output_shapes(proto, meta)
        if fp16_weights:
            store_weights_fp16(proto)
        del proto.metadata_props[:]
        for key, value in meta.to_props().items():
            proto.metadata_props.add(key=key, value=value)
        proto.producer_name = "depth_unet_ros"
        onnx.checker.check_model(proto, full_check=True)
        onnx.save(proto, str(tmp))
        _verify_with_onnxruntime(model, tmp, meta, relative=fp16_weights)
    log.info("exported %s (opset %d, dynamic batch %s)", path, opset, dynamic_batch)
    return path


def _declare_output_shapes(proto: Any, meta: ModelMetadata) -> None:
    """Write the static output shapes into the graph; the exporter leaves symbolic names
    (``Clipdepth_dim_2``) when the batch is dynamic, and readers deserve the real contract."""
    h, w = meta.input_size_hw
    fh, fw = meta.feature_size_hw
    tails = {meta.depth_output: (1, h, w), meta.features_output: (meta.feature_channels, fh, fw)}
    for output in proto.graph.output:
        dims = output.type.tensor_type.shape.dim
        for dim, size in zip(list(dims)[1:], tails[output.name]):
            dim.Clear()
            dim.dim_value = size


def store_weights_fp16(proto: Any, min_elements: int = 64) -> None:
    """Replace each float32 initializer of at least ``min_elements`` by float16 plus a Cast.

    Why: the ImageNet encoder's 3 M weights are 12 MB in float32, over the 10 MB budget of the
    bundled model; float16 storage halves that without an int8 calibration, and the Cast nodes
    are constant inputs that ONNX Runtime and TensorRT fold away when they load the model, so
    inference stays float32. Small tensors (biases, scalars) stay float32.
    """
    import numpy as np
    from onnx import TensorProto, helper, numpy_helper

    casts = []
    for index, init in enumerate(proto.graph.initializer):
        if init.data_type != TensorProto.FLOAT or int(np.prod(init.dims)) < min_elements:
            continue
        half = numpy_helper.from_array(numpy_helper.to_array(init).astype(np.float16),
                                       f"{init.name}__fp16")
        casts.append(helper.make_node("Cast", [half.name], [init.name], to=TensorProto.FLOAT,
                                      name=f"{init.name}__to_fp32"))
        proto.graph.initializer[index].CopyFrom(half)
    nodes = casts + list(proto.graph.node)  # the Casts first: nodes stay topologically sorted
    del proto.graph.node[:]
    proto.graph.node.extend(nodes)


def _verify_with_onnxruntime(model: Any, onnx_path: Path, meta: ModelMetadata,
                             relative: bool = False) -> None:
    """Run the exported file on one random frame and compare it with PyTorch, so a graph that
    differs from the model (a broken op conversion, a wrong shape) never reaches a robot."""
    import numpy as np
    import onnxruntime as ort
    import torch

    image = np.random.default_rng(0).integers(0, 256, (1, *meta.input_size_hw, 3), dtype=np.uint8)
    session = ort.InferenceSession(str(onnx_path), providers=["CPUExecutionProvider"])
    got = session.run([meta.depth_output, meta.features_output], {meta.input_name: image})
    with torch.inference_mode():
        want = [t.numpy() for t in model(torch.from_numpy(image))]
    for name, a, b in zip((meta.depth_output, meta.features_output), got, want):
        if a.shape != b.shape:
            raise ModelLoadError(f"exported output {name!r} has shape {a.shape}, PyTorch gives "
                                 f"{b.shape}; export bug, please report it")
        diff = float(np.abs(a - b).max())
        if relative:
            scale = np.abs(b) if name == meta.depth_output else float(np.abs(b).max())
            diff = float((np.abs(a - b) / np.maximum(scale, 1e-6)).max())
        limit = FP16_WEIGHTS_RELATIVE_TOLERANCE if relative else EXPORT_TOLERANCE
        if diff > limit:
            kind = "relative difference" if relative else "difference"
            raise ModelLoadError(f"exported output {name!r} differs from PyTorch by a {kind} of "
                                 f"{diff:.2e} (> {limit}); an op did not convert faithfully, try "
                                 "another --opset")


def _simplify(proto: Any) -> Any:
    try:
        import onnxsim
    except ImportError:
        log.warning("--simplify: onnxsim is not installed, exporting the graph unsimplified "
                    "(pip install onnxsim to enable it)")
        return proto
    simplified, ok = onnxsim.simplify(proto)
    if not ok:
        log.warning("--simplify: onnxsim could not validate the simplified graph; keeping the original")
        return proto
    return simplified
