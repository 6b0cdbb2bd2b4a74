"""The ONNX artifact: I/O contract, metadata, checker, and the ``depth-unet export`` command."""
from __future__ import annotations

import dataclasses

import numpy as np
import onnx
import pytest

torch = pytest.importorskip("torch")

from depth_unet_ros.cli import main as cli_main  # noqa: E402
from depth_unet_ros.errors import ConfigError, ModelLoadError  # noqa: E402
from depth_unet_ros.model_metadata import ModelMetadata, read_onnx_metadata  # noqa: E402
from training.checkpoint import CHECKPOINT_FORMAT, save_checkpoint  # noqa: E402
from training.export import export_onnx, train_data_from_checkpoint  # noqa: E402
from training.model import build_model  # noqa: E402
from training.model_config import preset  # noqa: E402

# Small input keeps each export well under a second on two cores.
CONFIG = dataclasses.replace(preset("unet-small"), input_height=64, input_width=96)


@pytest.fixture(scope="module")
def model():
    torch.manual_seed(0)
    return build_model(CONFIG).eval()


def _dims(value_info) -> list:
    return [d.dim_value if d.HasField("dim_value") else d.dim_param
            for d in value_info.type.tensor_type.shape.dim]


@pytest.mark.parametrize("dynamic_batch", [False, True])
def test_export_has_the_io_contract(model, tmp_path, dynamic_batch):
    """Input `image` uint8 (N, H, W, 3); outputs `depth` (N, 1, H, W), `features` (N, C, H/4, W/4)."""
    meta = ModelMetadata.for_model_config(CONFIG, train_data="test")
    path = export_onnx(model, tmp_path / "m.onnx", meta, dynamic_batch=dynamic_batch)
    proto = onnx.load(str(path))
    onnx.checker.check_model(proto, full_check=True)
    assert min(op.version for op in proto.opset_import if op.domain in ("", "ai.onnx")) >= 17
    (image,) = proto.graph.input
    assert image.name == "image" and image.type.tensor_type.elem_type == onnx.TensorProto.UINT8
    batch = "batch" if dynamic_batch else 1
    assert _dims(image) == [batch, 64, 96, 3]
    outputs = {o.name: o for o in proto.graph.output}
    assert set(outputs) == {"depth", "features"}
    assert _dims(outputs["depth"]) == [batch, 1, 64, 96]
    assert _dims(outputs["features"]) == [batch, CONFIG.feature_channels, 16, 24]
    assert all(o.type.tensor_type.elem_type == onnx.TensorProto.FLOAT for o in outputs.values())
    assert read_onnx_metadata(path) == meta
    assert not list(tmp_path.glob(".*tmp")), "the temporary file of the atomic write was left behind"


def test_dynamic_batch_export_runs_several_frames(model, tmp_path):
    """A --dynamic-batch export accepts N = 3 in ONNX Runtime and matches torch per frame."""
    import onnxruntime as ort

    meta = ModelMetadata.for_model_config(CONFIG)
    path = export_onnx(model, tmp_path / "m.onnx", meta, dynamic_batch=True)
    batch = np.random.default_rng(1).integers(0, 256, (3, 64, 96, 3), dtype=np.uint8)
    depth, features = ort.InferenceSession(str(path)).run(None, {"image": batch})
    with torch.inference_mode():
        ref_depth, ref_features = model(torch.from_numpy(batch))
    assert np.abs(depth - ref_depth.numpy()).max() < 1e-3
    assert np.abs(features - ref_features.numpy()).max() < 1e-3


def test_opset_below_17_is_refused(model, tmp_path):
    """Opsets older than 17 are a ConfigError, and nothing is written."""
    with pytest.raises(ConfigError, match="opset"):
        export_onnx(model, tmp_path / "m.onnx", ModelMetadata.for_model_config(CONFIG), opset=13)
    assert not (tmp_path / "m.onnx").exists()


def test_export_command_writes_metadata_from_the_checkpoint(model, tmp_path, capsys):
    """`depth-unet export CKPT --out M` derives metadata from the checkpoint; --train-data overrides."""
    ckpt = save_checkpoint(tmp_path / "best.pt", {
        "format": CHECKPOINT_FORMAT, "model": model.state_dict(), "model_config": CONFIG.to_dict(),
        "config": {"data": {"train": "/data/nyu_depth_v2_labeled.mat", "splits": "/data/splits.mat",
                            "train_split": "train", "depth": "dense"}}})
    out = tmp_path / "out" / "model.onnx"
    assert cli_main(["export", str(ckpt), "--out", str(out), "--simplify"]) == 0
    meta = read_onnx_metadata(out)
    assert meta.train_data == "nyu_depth_v2_labeled.mat (split train of splits.mat), dense depth"
    assert (meta.input_height, meta.input_width, meta.feature_channels) == (64, 96, CONFIG.feature_channels)
    assert meta.focal_px == pytest.approx(518.8579 * 96 / 640)
    assert "wrote" in capsys.readouterr().out
    assert cli_main(["export", str(ckpt), "--out", str(out), "--train-data", "my room"]) == 0
    assert read_onnx_metadata(out).train_data == "my room"


def test_export_command_reports_a_missing_checkpoint(tmp_path, capsys):
    """A missing checkpoint exits 1 with the path in the message, no traceback."""
    assert cli_main(["export", str(tmp_path / "nope.pt"), "--out", str(tmp_path / "m.onnx")]) == 1
    assert "nope.pt" in capsys.readouterr().err


def test_train_data_description_defaults_to_unknown():
    """A checkpoint without a data config is described as 'unknown', not invented."""
    assert train_data_from_checkpoint({}) == "unknown"
    assert train_data_from_checkpoint({"config": {"data": {"train": "synthetic"}}}) == "synthetic"


def test_checkpoint_without_model_config_is_refused(model, tmp_path):
    """A checkpoint lacking model_config cannot be exported, and the message says why."""
    from training.export import load_checkpoint_model

    ckpt = save_checkpoint(tmp_path / "old.pt", {"format": CHECKPOINT_FORMAT, "model": model.state_dict()})
    with pytest.raises(ModelLoadError, match="model_config"):
        load_checkpoint_model(ckpt)
