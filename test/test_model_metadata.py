"""ModelMetadata <-> ONNX metadata_props: round trips, and refusals that say how to fix the file."""
from __future__ import annotations

import dataclasses

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper

from depth_unet_ros.backends.onnxruntime_backend import OnnxRuntimeBackend
from depth_unet_ros.errors import ModelLoadError
from depth_unet_ros.model_metadata import (PREFIX, ModelMetadata, read_onnx_metadata,
                                           training_focal_px)

H, W, C = 8, 12, 3


def _metadata(**changes) -> ModelMetadata:
    base = ModelMetadata(input_height=H, input_width=W, min_depth_m=0.1, max_depth_m=10.0,
                         focal_px=training_focal_px(W), feature_stride=4, feature_channels=C,
                         train_data="NYU Depth V2, Eigen train split")
    return dataclasses.replace(base, **changes)


def _tiny_onnx(path, props: dict[str, str] | None) -> None:
    """A graph with our I/O contract, no torch: depth = channel mean, features = 4x4 average pool."""
    nodes = [
        helper.make_node("Cast", ["image"], ["x"], to=TensorProto.FLOAT),
        helper.make_node("Transpose", ["x"], ["nchw"], perm=[0, 3, 1, 2]),
        helper.make_node("ReduceMean", ["nchw"], ["depth"], axes=[1], keepdims=1),
        helper.make_node("AveragePool", ["nchw"], ["features"], kernel_shape=[4, 4], strides=[4, 4]),
    ]
    graph = helper.make_graph(
        nodes, "tiny",
        [helper.make_tensor_value_info("image", TensorProto.UINT8, [1, H, W, 3])],
        [helper.make_tensor_value_info("depth", TensorProto.FLOAT, [1, 1, H, W]),
         helper.make_tensor_value_info("features", TensorProto.FLOAT, [1, C, H // 4, W // 4])])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    for key, value in (props or {}).items():
        model.metadata_props.add(key=key, value=value)
    onnx.checker.check_model(model, full_check=True)
    onnx.save(model, str(path))


def test_props_round_trip_is_exact():
    """to_props -> from_props gives back the same metadata, floats included."""
    meta = _metadata(focal_px=259.42895, min_depth_m=0.123456789)
    props = meta.to_props()
    assert all(k.startswith(PREFIX) and isinstance(v, str) for k, v in props.items())
    assert ModelMetadata.from_props(props) == meta


def test_design_keys_are_written():
    """Every key DESIGN.md names is present in the props, plus the layout keys."""
    props = _metadata().to_props()
    for key in ("version", "input_height", "input_width", "min_depth_m", "max_depth_m", "focal_px",
                "feature_stride", "feature_channels", "train_data", "input_layout", "color_order",
                "input_dtype", "normalization", "architecture", "depth_output", "features_output"):
        assert PREFIX + key in props
    assert props[PREFIX + "input_layout"] == "NHWC" and props[PREFIX + "color_order"] == "RGB"


def test_training_focal_scales_nyu_fx_to_the_input_width():
    """focal_px is NYU's fx 518.8579 at 640 px scaled to the network width."""
    assert training_focal_px(640) == pytest.approx(518.8579)
    assert training_focal_px(320) == pytest.approx(518.8579 / 2)


def test_missing_keys_are_listed_with_the_fix():
    """A file lacking required keys names each missing key and says to re-export."""
    props = _metadata().to_props()
    del props[PREFIX + "focal_px"], props[PREFIX + "max_depth_m"]
    with pytest.raises(ModelLoadError, match="re-export with depth-unet export") as info:
        ModelMetadata.from_props(props, source="m.onnx")
    assert "depth_unet.focal_px" in str(info.value) and "depth_unet.max_depth_m" in str(info.value)
    assert "m.onnx" in str(info.value)


def test_no_metadata_at_all_says_not_exported_by_us():
    """Props without any depth_unet key are refused as a foreign model."""
    with pytest.raises(ModelLoadError, match="not exported by depth-unet"):
        ModelMetadata.from_props({"author": "someone"})


@pytest.mark.parametrize("key, value, match", [
    ("input_layout", "NCHW", "supports only 'NHWC'"),
    ("version", "99", "format version"),
    ("input_height", "tall", "expected a int"),
    ("min_depth_m", "20.0", "invalid depth range"),
])
def test_unsupported_or_malformed_values_are_refused(key, value, match):
    """Values this runtime cannot honour are errors, never silently guessed around."""
    props = _metadata().to_props()
    props[PREFIX + key] = value
    with pytest.raises(ModelLoadError, match=match):
        ModelMetadata.from_props(props)


def test_unknown_extra_keys_are_ignored():
    """A newer exporter's additional keys do not break this runtime."""
    props = {**_metadata().to_props(), PREFIX + "future_key": "x", "other": "y"}
    assert ModelMetadata.from_props(props) == _metadata()


def test_metadata_round_trips_through_an_onnx_file(tmp_path):
    """Metadata written into an ONNX file is read back from the path alone (onnx and ORT)."""
    meta = _metadata()
    path = tmp_path / "tiny.onnx"
    _tiny_onnx(path, meta.to_props())
    assert read_onnx_metadata(path) == meta
    backend = OnnxRuntimeBackend(path)
    assert backend.metadata == meta
    depth, features = backend.infer(np.full((1, H, W, 3), 7, np.uint8))
    assert depth.shape == (1, 1, H, W) and np.allclose(depth, 7.0)
    assert features.shape == (1, C, H // 4, W // 4)


def test_onnx_file_without_metadata_is_refused(tmp_path):
    """An ONNX graph with the right tensors but no depth_unet metadata cannot be loaded."""
    path = tmp_path / "foreign.onnx"
    _tiny_onnx(path, None)
    with pytest.raises(ModelLoadError, match="foreign.onnx.*no depth_unet metadata"):
        read_onnx_metadata(path)
    with pytest.raises(ModelLoadError, match="re-export"):
        OnnxRuntimeBackend(path)


def test_read_metadata_of_missing_or_garbage_file(tmp_path):
    """A missing path and a file of random bytes both raise ModelLoadError naming the file."""
    with pytest.raises(ModelLoadError, match="does not exist"):
        read_onnx_metadata(tmp_path / "absent.onnx")
    junk = tmp_path / "junk.onnx"
    junk.write_bytes(np.random.default_rng(0).bytes(1000))
    with pytest.raises(ModelLoadError, match="junk.onnx"):
        read_onnx_metadata(junk)
