"""The networks' contract: (N, H, W, 3) uint8 RGB -> depth (N, 1, H, W) m, features (N, C, H/4, W/4)."""
from __future__ import annotations

import dataclasses
import warnings

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from depth_unet_ros.errors import ConfigError  # noqa: E402
from training.model import DepthModel, build_model  # noqa: E402
from training.model_config import PRESETS, ModelConfig, config_from_section, preset  # noqa: E402
from training.normalization import InputNormalization  # noqa: E402

SMALL = (64, 96)  # tiny but still >= the total stride 32 in both axes


def small(config: ModelConfig, height: int = SMALL[0], width: int = SMALL[1]) -> ModelConfig:
    return dataclasses.replace(config, input_height=height, input_width=width)


def random_image(n: int, height: int, width: int, seed: int = 0) -> torch.Tensor:
    generator = torch.Generator().manual_seed(seed)
    return torch.randint(0, 256, (n, height, width, 3), dtype=torch.uint8, generator=generator)


@pytest.fixture(scope="module", params=sorted(PRESETS))
def preset_model(request) -> DepthModel:
    torch.manual_seed(0)
    return build_model(small(PRESETS[request.param])).eval()


# --- shapes and dtypes -------------------------------------------------------------------------

def test_every_preset_outputs_depth_at_input_size_and_features_at_stride_4(preset_model):
    """Every preset maps (2, H, W, 3) uint8 to float32 depth (2, 1, H, W) and features (2, C, H/4, W/4)."""
    config = preset_model.config
    with torch.no_grad():
        depth, features = preset_model(random_image(2, *SMALL))
    assert depth.shape == (2, 1, *SMALL) and depth.dtype == torch.float32
    assert features.shape == (2, config.feature_channels, SMALL[0] // 4, SMALL[1] // 4)
    assert features.dtype == torch.float32


@pytest.mark.parametrize("arch", ["unet", "fastdepth"])
@pytest.mark.parametrize("size", [(96, 128), (72, 100), (36, 44)])
def test_sizes_that_are_not_multiples_of_32_still_give_exact_shapes(arch, size):
    """Multiples of 4 that are not multiples of 32 (like 240) give depth at H x W, features at H/4 x W/4."""
    model = build_model(small(ModelConfig(arch=arch), *size)).eval()
    with torch.no_grad():
        depth, features = model(random_image(1, *size))
    assert depth.shape == (1, 1, *size)
    assert features.shape == (1, model.config.feature_channels, size[0] // 4, size[1] // 4)


@pytest.mark.parametrize("overrides", [
    {"stem_stride": 1, "levels": 3}, {"stem_stride": 4, "levels": 2}, {"levels": 2},
    {"blocks_per_level": 2, "feature_channels": 8}, {"norm": "group"}, {"norm": "none"},
    {"upsample": "nearest"},
])
def test_unet_variants_keep_the_contract(overrides):
    """Stem stride, levels, blocks, norm and upsampling options all keep the output contract."""
    config = small(dataclasses.replace(ModelConfig(), **overrides))
    model = build_model(config).eval()
    with torch.no_grad():
        depth, features = model(random_image(1, *SMALL))
    assert depth.shape == (1, 1, *SMALL)
    assert features.shape == (1, config.feature_channels, SMALL[0] // 4, SMALL[1] // 4)


def test_uint8_and_float_images_give_the_same_output():
    """The model takes uint8 or float 0..255 RGB alike (training may feed floats after augmenting)."""
    model = build_model(small(ModelConfig())).eval()
    image = random_image(1, *SMALL)
    with torch.no_grad():
        from_uint8 = model(image)
        from_float = model(image.float())
    for a, b in zip(from_uint8, from_float):
        torch.testing.assert_close(a, b)


def test_input_normalization_subtracts_mean_divides_std_and_moves_channels_first():
    """InputNormalization: (N, H, W, 3) 0..255 -> (N, 3, H, W) (x - mean) / std per channel."""
    norm = InputNormalization((10.0, 20.0, 30.0), (2.0, 4.0, 5.0))
    image = torch.tensor([[[[10, 24, 40], [12, 20, 30]]]], dtype=torch.uint8)  # (1, 1, 2, 3)
    out = norm(image)
    assert out.shape == (1, 3, 1, 2) and out.dtype == torch.float32
    expected = torch.tensor([[[[0.0, 1.0]], [[1.0, 0.0]], [[2.0, 0.0]]]])
    torch.testing.assert_close(out, expected)


# --- the depth range ---------------------------------------------------------------------------

@pytest.mark.parametrize("arch", ["unet", "fastdepth"])
@pytest.mark.parametrize("logit_bias", [-1e4, -20.0, 0.0, 20.0, 1e4])
def test_depth_never_leaves_the_configured_range(arch, logit_bias):
    """Even with the head saturated either way, depth stays in [min_depth_m, max_depth_m] and finite."""
    config = small(ModelConfig(arch=arch, min_depth_m=0.1, max_depth_m=10.0))
    model = build_model(config).eval()
    with torch.no_grad():
        model.network.depth_logit.bias.fill_(logit_bias)
        for image in (torch.zeros(1, *SMALL, 3, dtype=torch.uint8),
                      torch.full((1, *SMALL, 3), 255, dtype=torch.uint8), random_image(1, *SMALL)):
            depth, _ = model(image)
            assert torch.isfinite(depth).all()
            assert depth.min() >= 0.1 and depth.max() <= 10.0
    if abs(logit_bias) == 1e4:  # saturated: the ends of the range are reached exactly
        assert torch.all(depth == (10.0 if logit_bias > 0 else 0.1))


def test_zero_logit_gives_the_geometric_mean_of_the_range():
    """The head is log-linear: a logit of 0 is sqrt(min * max) metres (1 m for 0.1..10 m)."""
    model = build_model(small(ModelConfig())).eval()
    with torch.no_grad():
        model.network.depth_logit.weight.zero_()
        model.network.depth_logit.bias.zero_()
        depth, _ = model(random_image(1, *SMALL))
    torch.testing.assert_close(depth, torch.ones_like(depth))


# --- training ----------------------------------------------------------------------------------

@pytest.mark.parametrize("name", sorted(PRESETS))
def test_a_depth_only_loss_reaches_every_parameter(name):
    """Features sit on the depth path, so a loss on depth alone gives every parameter a gradient
    (DistributedDataParallel then needs no find_unused_parameters)."""
    torch.manual_seed(0)
    model = build_model(small(PRESETS[name])).train()
    depth, _ = model(random_image(2, *SMALL))
    torch.log(depth).mean().backward()
    missing = [n for n, p in model.named_parameters() if p.grad is None]
    assert not missing, f"parameters without gradient: {missing}"
    assert all(torch.isfinite(p.grad).all() for p in model.parameters())


# --- config ------------------------------------------------------------------------------------

def test_config_round_trips_through_a_plain_dict():
    """from_dict(to_dict(c)) == c, and to_dict holds only plain YAML/JSON types."""
    for config in PRESETS.values():
        values = config.to_dict()
        assert isinstance(values["mean_rgb"], list)
        assert ModelConfig.from_dict(values) == config


def test_from_dict_rejects_unknown_keys_naming_the_key_and_the_valid_ones():
    """A typo in the model section fails with the key and the valid keys in the message."""
    with pytest.raises(ConfigError, match="base_chanels") as info:
        ModelConfig.from_dict({"base_chanels": 32})
    assert "base_channels" in str(info.value)


@pytest.mark.parametrize("values", [{"levels": "4"}, {"levels": 2.5}, {"mean_rgb": [1, 2]},
                                    {"min_depth_m": "0.1"}, {"levels": True}])
def test_from_dict_rejects_wrong_types(values):
    """Wrong value types fail in from_dict, with the field named, not later inside torch."""
    with pytest.raises(ConfigError, match=next(iter(values))):
        ModelConfig.from_dict(values)


def test_from_dict_accepts_yaml_lists_and_ints_for_floats():
    """YAML gives lists for tuples and ints for floats; both are accepted and normalised."""
    config = ModelConfig.from_dict({"mean_rgb": [0, 0, 0], "max_depth_m": 80})
    assert config.mean_rgb == (0.0, 0.0, 0.0) and config.max_depth_m == 80.0


@pytest.mark.parametrize("overrides, field", [
    ({"input_height": 242}, "input_height"),  # not a multiple of the feature stride 4
    ({"input_width": 318}, "input_width"),
    ({"input_height": 16}, "input_height"),  # smaller than the total stride 32
    ({"arch": "fastdepth", "input_width": 28}, "input_width"),
    ({"min_depth_m": 0.0}, "depth"),
    ({"min_depth_m": 10.0, "max_depth_m": 1.0}, "depth"),
    ({"arch": "resnet"}, "arch"),
    ({"norm": "layer"}, "norm"),
    ({"stem_stride": 3}, "stem_stride"),
    ({"stem_stride": 1, "levels": 2}, "levels"),  # no decoder stage at stride 4
    ({"std_rgb": (1.0, 0.0, 1.0)}, "std_rgb"),
])
def test_validate_rejects_bad_configs_naming_the_field(overrides, field):
    """validate() raises ConfigError naming the offending field (sizes must tile the strides)."""
    with pytest.raises(ConfigError, match=field):
        dataclasses.replace(ModelConfig(), **overrides).validate()


def test_build_model_validates_the_config():
    """An invalid config never becomes a model."""
    with pytest.raises(ConfigError, match="input_height"):
        build_model(ModelConfig(input_height=250))


def test_presets_are_valid_and_the_default_is_unet_small():
    """Every preset validates; unet-small is ModelConfig(); unknown names list the valid ones."""
    for config in PRESETS.values():
        config.validate()
    assert preset("unet-small") == ModelConfig()
    assert preset("fastdepth").arch == "fastdepth"
    with pytest.raises(ConfigError, match="unet-small"):
        preset("unet-huge")


def test_config_from_section_applies_overrides_on_a_preset():
    """A YAML model section may name a preset and override single fields."""
    config = config_from_section({"preset": "unet-large", "feature_channels": 16})
    assert config == dataclasses.replace(PRESETS["unet-large"], feature_channels=16)
    assert config_from_section(None) == ModelConfig()


# --- export ------------------------------------------------------------------------------------

@pytest.mark.parametrize("arch", ["unet", "fastdepth"])
def test_onnx_export_runs_in_onnxruntime_like_pytorch(arch, tmp_path):
    """torch.onnx.export (opset 17) of DepthModel runs in ONNX Runtime within 1e-3 of PyTorch."""
    ort = pytest.importorskip("onnxruntime")
    pytest.importorskip("onnx")
    torch.manual_seed(0)
    model = build_model(small(ModelConfig(arch=arch))).eval()
    image = random_image(1, *SMALL)
    path = tmp_path / "model.onnx"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the TorchScript exporter's deprecation notice
        torch.onnx.export(model, (image,), str(path), input_names=["image"],
                          output_names=["depth", "features"], opset_version=17, dynamo=False)
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    got = session.run(["depth", "features"], {"image": image.numpy()})
    with torch.no_grad():
        want = [t.numpy() for t in model(image)]
    for g, w in zip(got, want):
        assert g.shape == w.shape and g.dtype == np.float32
        assert np.abs(g - w).max() < 1e-3
