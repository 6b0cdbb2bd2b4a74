"""training.config: YAML sections, key=value overrides, type checks and helpful errors."""
from __future__ import annotations

from pathlib import Path

import pytest

from depth_unet_ros.errors import ConfigError
from training.config import (TrainConfig, config_from_dict, config_to_dict, is_higher_better,
                             load_config, save_config_yaml)

REPO = Path(__file__).resolve().parents[1]
SHIPPED = sorted((REPO / "config").glob("train_*.yaml"))


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "train.yaml"
    path.write_text(text)
    return path


def test_no_file_gives_the_dataclass_defaults():
    assert load_config(None, []) == TrainConfig()


def test_yaml_sections_map_onto_the_dataclasses(tmp_path):
    path = write(tmp_path, "model:\n  base_channels: 24\noptim:\n  lr: 2.0e-4\n  epochs: 3\n"
                           "data:\n  train: /data/nyu.mat\n  val: null\nrun:\n  amp: false\n")
    cfg = load_config(path, [])
    assert cfg.model.base_channels == 24
    assert cfg.optim.lr == pytest.approx(2e-4) and cfg.optim.epochs == 3
    assert cfg.data.train == "/data/nyu.mat" and cfg.data.val is None
    assert cfg.run.amp is False
    assert cfg.optim.batch_size == TrainConfig().optim.batch_size  # untouched keys keep defaults


def test_overrides_are_parsed_as_yaml_and_typed_by_the_field():
    cfg = load_config(None, ["optim.lr=3e-4", "model.base_channels=32", "data.train=/x.mat",
                             "optim.betas=[0.8, 0.95]", "optim.steps_per_epoch=null",
                             "data.splits=2024", "run.amp=false"])
    # YAML 1.1 reads "3e-4" (no dot) as a string; the float field takes it as a number
    assert isinstance(cfg.optim.lr, float) and cfg.optim.lr == pytest.approx(3e-4)
    assert cfg.model.base_channels == 32
    assert cfg.data.train == "/x.mat"
    assert cfg.optim.betas == (0.8, 0.95)
    assert cfg.optim.steps_per_epoch is None
    assert cfg.data.splits == "2024"  # a str field keeps the text, not the number
    assert cfg.run.amp is False


def test_overrides_win_over_the_file_in_order(tmp_path):
    path = write(tmp_path, "optim:\n  lr: 1.0e-2\n")
    cfg = load_config(path, ["optim.lr=1e-3", "optim.lr=5e-4"])
    assert cfg.optim.lr == pytest.approx(5e-4)


@pytest.mark.parametrize("override, words", [
    ("optim.batch_size=abc", ["optim.batch_size", "integer"]),
    ("optim.batch_size=2.5", ["optim.batch_size", "integer"]),
    ("run.amp=maybe", ["run.amp", "true or false"]),
    ("optim.lr=fast", ["optim.lr", "number"]),
    ("optim.betas=0.9", ["optim.betas", "list of 2"]),
])
def test_a_wrongly_typed_override_names_the_key_and_the_type(override, words):
    with pytest.raises(ConfigError) as info:
        load_config(None, [override])
    for word in words:
        assert word in str(info.value)


def test_an_unknown_yaml_key_names_key_file_valid_keys_and_a_guess(tmp_path):
    path = write(tmp_path, "optim:\n  lrr: 0.1\n")
    with pytest.raises(ConfigError) as info:
        load_config(path, [])
    message = str(info.value)
    assert "'lrr'" in message and str(path) in message
    assert "did you mean 'lr'" in message and "weight_decay" in message


def test_an_unknown_override_key_or_section_is_an_error_with_a_guess():
    with pytest.raises(ConfigError, match="did you mean 'base_channels'"):
        load_config(None, ["model.base_channel=8"])
    with pytest.raises(ConfigError, match="did you mean 'optim'"):
        load_config(None, ["optimizer.lr=0.1"])
    with pytest.raises(ConfigError, match="section.key=value"):
        load_config(None, ["optim.lr"])


def test_a_missing_or_malformed_file_is_a_config_error(tmp_path):
    with pytest.raises(ConfigError, match="does not exist"):
        load_config(tmp_path / "nope.yaml", [])
    with pytest.raises(ConfigError, match="mapping"):
        load_config(write(tmp_path, "- a\n- b\n"), [])
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_config(write(tmp_path, "optim: [1, 2\n"), [])


def test_cross_field_checks_reject_impossible_values():
    with pytest.raises(ConfigError, match="best_metric"):
        load_config(None, ["run.best_metric=accuracy"])
    with pytest.raises(ConfigError, match="min_lr"):
        load_config(None, ["optim.lr=1e-4", "optim.min_lr=1e-3"])
    with pytest.raises(ConfigError, match="input_height"):  # ModelConfig's own validation
        load_config(None, ["model.input_height=50"])


def test_model_presets_are_a_base_that_keys_override():
    cfg = load_config(None, ["model.preset=unet-large", "model.feature_channels=16"])
    assert cfg.model.base_channels == 32 and cfg.model.feature_channels == 16


def test_config_round_trips_through_yaml_and_plain_dicts(tmp_path):
    cfg = load_config(None, ["optim.lr=3e-4", "data.val=null", "optim.betas=[0.8, 0.9]"])
    again = load_config(save_config_yaml(cfg, tmp_path / "config.yaml"), [])
    assert again == cfg
    plain = config_to_dict(cfg)
    assert plain["optim"]["betas"] == [0.8, 0.9]  # lists, not tuples: weights_only-safe
    assert config_from_dict(plain) == cfg


@pytest.mark.parametrize("path", SHIPPED, ids=[p.name for p in SHIPPED])
def test_every_shipped_training_config_loads(path):
    cfg = load_config(path, [])
    assert cfg.model.validate() is cfg.model


def test_shipped_configs_exist():
    names = {p.name for p in SHIPPED}
    assert {"train_default.yaml", "train_nyu_gpu.yaml", "train_synthetic_tiny.yaml"} <= names


def test_delta_metrics_are_higher_is_better_errors_are_not():
    assert is_higher_better("delta1") and not is_higher_better("abs_rel")


def test_one_folder_for_train_and_val_needs_disjoint_frame_ranges():
    """Training and validation on one sequence folder must name disjoint ranges, so no
    validation frame is ever trained on; overlapping or missing ranges are config errors."""
    same = ["data.train=seq", "data.val=seq"]
    with pytest.raises(ConfigError, match="disjoint"):
        load_config(None, same)
    with pytest.raises(ConfigError, match="disjoint"):
        load_config(None, same + ["data.train_frames=[0,400]", "data.val_frames=[399,500]"])
    cfg = load_config(None, same + ["data.train_frames=[0,400]", "data.val_frames=[420,500]"])
    assert cfg.data.train_frames == (0, 400) and cfg.data.val_frames == (420, 500)
    with pytest.raises(ConfigError, match="start < stop"):
        load_config(None, ["data.train=seq", "data.train_frames=[5,5]"])
    with pytest.raises(ConfigError, match="synthetic_mix_frames"):
        load_config(None, ["data.synthetic_mix_frames=-1"])


def test_the_synthetic_variant_reaches_the_training_rooms():
    """data.synthetic_variant picks the room generator for both synthetic sources (the whole
    training set, or rooms mixed into a real one); an unknown name is refused with the choices."""
    from training.data import open_frames

    with pytest.raises(ConfigError, match="plain, rich"):
        load_config(None, ["data.synthetic_variant=fancy"])
    cfg = load_config(None, ["data.synthetic_variant=rich", "data.synthetic_train_frames=2"])
    data = cfg.data
    rooms = open_frames(data.train, data, data.train_split, 2, 0)
    assert rooms.variant == "rich" and len(rooms) == 2


def test_the_real_data_recipe_validates_on_frames_it_never_trains_on():
    """config/train_real_default.yaml: 7-Scenes frames 420-499 validate, 0-399 train (a gap of
    20 frames between), the registered frames are at NYU's focal, and it uses the Lite0 preset."""
    cfg = load_config(REPO / "config" / "train_real_default.yaml", [])
    assert cfg.data.train == cfg.data.val
    train, val = cfg.data.train_frames, cfg.data.val_frames
    assert train[1] + 20 <= val[0]
    assert cfg.data.target_focal_px == pytest.approx(518.8579)
    assert cfg.model.arch == "effnet-lite0"
    assert not Path(cfg.data.train).is_absolute()  # ../shared, never a path of one machine


def test_the_nyu_gpu_recipe_never_selects_on_the_nyu_test_split():
    """config/train_nyu_gpu.yaml picks best.pt on real frames outside NYU, not on the NYU test
    split (selecting on test frames would make the test score optimistic); same architecture
    as the bundled model."""
    cfg = load_config(REPO / "config" / "train_nyu_gpu.yaml", [])
    assert not str(cfg.data.val).endswith(".mat")
    assert cfg.data.train_split == "train"
    assert cfg.model == load_config(REPO / "config" / "train_real_default.yaml", []).model


@pytest.mark.parametrize("path", SHIPPED, ids=[p.name for p in SHIPPED])
def test_no_shipped_recipe_selects_its_checkpoint_on_the_nyu_test_split(path):
    """Every shipped config that validates on an NYU .mat does so on a split other than the
    654 test frames: best.pt chosen on test frames would make the test score optimistic."""
    cfg = load_config(path, [])
    if cfg.data.val and str(cfg.data.val).endswith(".mat"):
        assert cfg.data.val_split != "test", path.name
