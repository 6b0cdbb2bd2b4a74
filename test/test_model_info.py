"""Parameter and MAC counting, the compute budget of the presets, and ``depth-unet model-info``."""
from __future__ import annotations

import argparse

import pytest

torch = pytest.importorskip("torch")

from depth_unet_ros import cli  # noqa: E402
from depth_unet_ros.errors import ConfigError  # noqa: E402
from training import model_info  # noqa: E402
from training.model import build_model  # noqa: E402
from training.model_config import PRESETS, ModelConfig  # noqa: E402


def test_count_parameters_counts_weights_and_biases():
    """count_parameters sums every trainable tensor: Linear(3, 4) has 3 * 4 + 4 = 16."""
    assert model_info.count_parameters(torch.nn.Linear(3, 4)) == 16
    frozen = torch.nn.Linear(3, 4)
    frozen.bias.requires_grad_(False)
    assert model_info.count_parameters(frozen) == 12


def test_count_macs_of_a_single_conv_is_kernel_times_channels_times_pixels():
    """A 3x3 conv 3 -> 8 channels on 10x12 is 3 * 8 * 9 * 120 MACs (FLOPs / 2)."""
    conv = torch.nn.Conv2d(3, 8, 3, padding=1)
    assert model_info.count_macs(conv, 10, 12) == 3 * 8 * 9 * 10 * 12


def test_count_macs_leaves_the_training_mode_and_batch_norm_statistics_alone():
    """Counting runs in eval mode and restores train mode; running statistics do not move."""
    model = build_model(ModelConfig(input_height=64, input_width=96)).train()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    model_info.count_macs(model, 64, 96)
    assert model.training
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())


def test_default_unet_costs_about_one_gmac_at_240x320():
    """The default (unet-small) is 0.7-1.3 GMACs at 240x320: real time on a 2-core CPU."""
    model = build_model(PRESETS["unet-small"])
    gmacs = model_info.count_macs(model, 240, 320) / 1e9
    assert 0.7 <= gmacs <= 1.3, gmacs


def test_fastdepth_baseline_matches_the_papers_compute_at_224x224():
    """The FastDepth layout (unpruned MobileNet + NNConv5) is ~0.74 GMACs at 224x224 (0.6-0.9)."""
    model = build_model(PRESETS["fastdepth"])
    gmacs = model_info.count_macs(model, 224, 224) / 1e9
    assert 0.6 <= gmacs <= 0.9, gmacs


def test_unet_large_is_bigger_than_the_default():
    """unet-large is the GPU preset: more parameters and several times the MACs of unet-small."""
    small, large = (build_model(PRESETS[n]) for n in ("unet-small", "unet-large"))
    assert model_info.count_parameters(large) > 3 * model_info.count_parameters(small)
    assert model_info.count_macs(large, 64, 96) > 3 * model_info.count_macs(small, 64, 96)


def parse(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    model_info.add_arguments(parser)
    return parser.parse_args(argv)


def test_model_info_all_prints_every_preset(capsys):
    """--all prints one row per preset with its output shapes."""
    assert model_info.run(parse(["--all", "--height", "64", "--width", "96"])) == 0
    out = capsys.readouterr().out
    for name in PRESETS:
        assert name in out
    assert "(1, 1, 64, 96)" in out and "(1, 32, 16, 24)" in out


def test_model_info_reads_the_model_section_of_a_training_yaml(tmp_path, capsys):
    """--config reads only the model: section (a preset plus overrides); other sections are ignored."""
    path = tmp_path / "train.yaml"
    path.write_text("model:\n  preset: fastdepth\n  feature_channels: 8\n"
                    "  input_height: 64\n  input_width: 96\noptim:\n  lr: 0.001\n")
    assert model_info.run(parse(["--config", str(path)])) == 0
    out = capsys.readouterr().out
    assert "fastdepth" in out and "(1, 8, 16, 24)" in out


def test_model_info_names_the_file_and_key_of_a_bad_model_section(tmp_path):
    """An unknown key in the YAML's model: section is a ConfigError naming the file and the key."""
    path = tmp_path / "bad.yaml"
    path.write_text("model:\n  depth_levels: 3\n")
    with pytest.raises(ConfigError, match="depth_levels") as info:
        model_info.run(parse(["--config", str(path)]))
    assert str(path) in str(info.value)


def test_model_info_is_registered_in_the_cli(capsys):
    """`depth-unet model-info --preset fastdepth` runs through the one entry point and exits 0."""
    assert cli.main(["model-info", "--preset", "fastdepth", "--height", "64", "--width", "96"]) == 0
    assert "fastdepth" in capsys.readouterr().out


def test_model_info_rejects_an_input_size_that_does_not_tile_the_feature_stride(capsys):
    """--height 66 is not a multiple of 4: the CLI reports it and exits 1 (no traceback)."""
    assert cli.main(["model-info", "--height", "66", "--width", "96"]) == 1
    assert "input_height" in capsys.readouterr().err
