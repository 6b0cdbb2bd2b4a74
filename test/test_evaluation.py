"""Dataset evaluation loop, comparison images and the ``depth-unet evaluate`` command."""
import importlib
import importlib.util
import json
import sys
import types
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import pytest

from depth_unet_ros.datasets.base import NYU_INTRINSICS, RGBDFrame
from depth_unet_ros.errors import DatasetError
from depth_unet_ros.evaluation.offline import EvaluationResult, evaluate_dataset
from depth_unet_ros.evaluation.metrics import METRIC_NAMES
from depth_unet_ros.visualize import colorize_depth, comparison_image, save_png

NYU_SAMPLES = Path(__file__).resolve().parents[2] / "shared" / "data" / "nyu_samples"


def _depth_of(image: np.ndarray) -> np.ndarray:
    """The 'true' depth of a test image: a pure function of its red channel, 1..6.1 m."""
    return (1.0 + image[:, :, 0].astype(np.float32) / 50.0).astype(np.float32)


def _frames(n=3, h=24, w=32):
    rng = np.random.default_rng(0)
    frames = []
    for i in range(n):
        image = rng.integers(0, 256, (h, w, 3), dtype=np.uint8)
        frames.append(RGBDFrame(image, _depth_of(image), NYU_INTRINSICS.scaled(w, h), f"frame/{i}"))
    return frames


@dataclass
class _Prediction:
    depth_m: np.ndarray


class ScaledEstimator:
    """Predicts the true depth times ``scale``, optionally with a left-to-right gain ramp."""

    def __init__(self, scale=1.1, ramp=0.0):
        self.scale, self.ramp, self.calls = scale, ramp, []

    def predict(self, image_rgb, output_size="network"):
        self.calls.append((image_rgb.copy(), output_size))
        depth = _depth_of(image_rgb) * self.scale
        gain = 1.0 + self.ramp * np.linspace(0.0, 1.0, image_rgb.shape[1], dtype=np.float32)
        return _Prediction((depth * gain).astype(np.float32))


def test_scaled_estimator_has_known_metrics():
    """pred = 1.1 * gt everywhere: delta1 = 1, abs_rel = 0.1, log10 = log10(1.1)."""
    result = evaluate_dataset(ScaledEstimator(1.1), _frames(), progress=False)
    assert result.num_images == 3
    assert result.metrics["delta1"] == 1.0
    assert result.metrics["abs_rel"] == pytest.approx(0.1, rel=1e-5)
    assert result.metrics["log10"] == pytest.approx(np.log10(1.1), rel=1e-5)
    assert result.metrics["silog"] == pytest.approx(0.0, abs=1e-3)
    assert [row["name"] for row in result.per_image] == ["frame/0", "frame/1", "frame/2"]
    assert len(result.latency_ms) == 3 and all(t >= 0 for t in result.latency_ms)


def test_flip_tta_averages_the_mirrored_prediction():
    """A left-to-right gain ramp 1..1.2 averages with its mirror to a flat 1.1."""
    estimator = ScaledEstimator(1.0, ramp=0.2)
    frames = _frames(n=1)
    plain = evaluate_dataset(estimator, frames, progress=False)
    assert plain.metrics["silog"] > 1.0
    estimator.calls.clear()
    tta = evaluate_dataset(estimator, frames, flip_tta=True, progress=False)
    assert tta.metrics["abs_rel"] == pytest.approx(0.1, rel=1e-5)
    assert len(estimator.calls) == 2
    np.testing.assert_array_equal(estimator.calls[1][0], frames[0].image[:, ::-1])
    assert all(size == "network" for _, size in estimator.calls)


def test_to_json_dict_has_designs_layout_plus_latency():
    data = evaluate_dataset(ScaledEstimator(), _frames(), progress=False).to_json_dict()
    assert set(data) == {"num_images", "metrics", "per_image", "latency_ms"}
    assert data["num_images"] == 3 and list(data["metrics"]) == list(METRIC_NAMES)
    assert set(data["per_image"][0]) == {"name", *METRIC_NAMES}
    assert set(data["latency_ms"]) == {"median", "p90"}
    assert json.loads(json.dumps(data)) == data


def test_frames_without_valid_gt_are_skipped_and_listed():
    frames = _frames()
    frames[1].depth_m[:] = 0.0
    result = evaluate_dataset(ScaledEstimator(), frames, progress=False)
    assert result.num_images == 2 and result.skipped == ["frame/1"]
    assert result.to_json_dict()["skipped"] == ["frame/1"]


def test_no_usable_frame_raises_dataset_error():
    frames = _frames(n=2)
    for frame in frames:
        frame.depth_m[:] = 0.0
    with pytest.raises(DatasetError, match="metres"):
        evaluate_dataset(ScaledEstimator(), frames, progress=False)
    with pytest.raises(DatasetError):
        evaluate_dataset(ScaledEstimator(), [], progress=False)


def test_limit_evaluates_the_first_frames_only():
    assert evaluate_dataset(ScaledEstimator(), _frames(n=4), progress=False, limit=2).num_images == 2


def test_progress_bar_off_writes_nothing(capsys):
    evaluate_dataset(ScaledEstimator(), _frames(), progress=False)
    captured = capsys.readouterr()
    assert captured.err == "" and captured.out == ""


def test_comparison_pngs_saved_for_evenly_spaced_frames(tmp_path):
    evaluate_dataset(ScaledEstimator(), _frames(n=5), progress=False, save_images_dir=tmp_path,
                     max_images_saved=3)
    files = sorted(p.name for p in tmp_path.glob("*.png"))
    assert files == ["00000_frame_0.png", "00002_frame_2.png", "00004_frame_4.png"]
    assert cv2.imread(str(tmp_path / files[0])).shape == (24, 4 * 32, 3)


def test_network_size_predictions_are_upsampled():
    """A half-resolution constant prediction scores against the full-size constant gt."""

    class Half:
        def predict(self, image_rgb, output_size="network"):
            h, w = image_rgb.shape[:2]
            return _Prediction(np.full((h // 2, w // 2), 2.2, np.float32))

    frames = [RGBDFrame(np.zeros((24, 32, 3), np.uint8), np.full((24, 32), 2.0, np.float32),
                        NYU_INTRINSICS, "const")]
    assert evaluate_dataset(Half(), frames, progress=False).metrics["abs_rel"] == pytest.approx(0.1)


# --- colour maps -------------------------------------------------------------------------

def test_colorize_depth_shape_and_black_for_invalid():
    depth = np.array([[1.0, 2.0, 3.0], [0.0, np.nan, -1.0], [np.inf, 4.0, 5.0]], np.float32)
    rgb = colorize_depth(depth)
    assert rgb.shape == (3, 3, 3) and rgb.dtype == np.uint8
    for r, c in [(1, 0), (1, 1), (1, 2), (2, 0)]:
        assert (rgb[r, c] == 0).all()
    assert rgb[0, 0].any() and rgb[2, 2].any()


def test_colorize_depth_near_is_blue_far_is_red_and_distinct():
    depth = np.linspace(1.0, 5.0, 50, dtype=np.float32)[None, :]
    rgb = colorize_depth(depth, 1.0, 5.0).astype(int)
    near, far = rgb[0, 0], rgb[0, -1]
    assert near[2] > near[0] and far[0] > far[2]
    assert len({tuple(px) for px in rgb[0]}) > 20


def test_colorize_depth_explicit_range_is_used():
    """The colour depends on the position in [vmin, vmax]: 5 m in [0, 10] == 7 m in [4, 10]."""
    mid_a = colorize_depth(np.array([[5.0]], np.float32), 0.0, 10.0)
    mid_b = colorize_depth(np.array([[7.0]], np.float32), 4.0, 10.0)
    np.testing.assert_array_equal(mid_a, mid_b)
    depth = np.array([[2.0, 3.0]], np.float32)
    assert not np.array_equal(colorize_depth(depth, 0.0, 10.0), colorize_depth(depth))


def test_comparison_uses_one_scale_for_prediction_and_gt():
    image = np.zeros((24, 32, 3), np.uint8)
    gt = np.tile(np.linspace(1, 4, 32, dtype=np.float32), (24, 1))
    gt[0, 0] = 0.0
    pred = gt.copy()
    pred[0, 0] = 2.0
    out = comparison_image(image, pred, gt)
    assert out.shape == (24, 4 * 32, 3)
    pred_panel, gt_panel, err_panel = out[:, 32:64], out[:, 64:96], out[:, 96:]
    np.testing.assert_array_equal(pred_panel[1:], gt_panel[1:])
    assert (gt_panel[0, 0] == 0).all() and (err_panel[0, 0] == 0).all()


def test_comparison_resizes_panels_to_the_image_height():
    out = comparison_image(np.zeros((48, 64, 3), np.uint8), np.ones((24, 32), np.float32))
    assert out.shape == (48, 128, 3)


def test_save_png_round_trips_rgb(tmp_path):
    rgb = np.random.default_rng(1).integers(0, 256, (5, 7, 3), dtype=np.uint8)
    path = save_png(tmp_path / "sub" / "x.png", rgb)
    np.testing.assert_array_equal(cv2.cvtColor(cv2.imread(str(path)), cv2.COLOR_BGR2RGB), rgb)


# --- the evaluate command ----------------------------------------------------------------

def _has(module_name: str, attr: str) -> bool:
    try:
        return importlib.util.find_spec(module_name) is not None and \
            hasattr(importlib.import_module(module_name), attr)
    except ImportError:
        return False


@pytest.fixture
def fake_model(monkeypatch):
    """load_estimator -> ScaledEstimator(1.1); the real one is patched, or a stand-in module
    is installed while depth_unet_ros.inference does not exist yet."""
    calls = []

    def load_estimator(path, backend="auto", **options):
        calls.append((path, backend))
        return ScaledEstimator(1.1)

    if _has("depth_unet_ros.inference", "load_estimator"):
        monkeypatch.setattr("depth_unet_ros.inference.load_estimator", load_estimator)
    else:
        monkeypatch.setitem(sys.modules, "depth_unet_ros.inference",
                            types.SimpleNamespace(load_estimator=load_estimator))
    return calls


@pytest.fixture
def fake_data(monkeypatch):
    calls = []

    def open_dataset(path, splits=None, split="test", depth="dense"):
        calls.append({"path": path, "splits": splits, "split": split, "depth": depth})
        return _frames()

    monkeypatch.setattr("depth_unet_ros.datasets.open_dataset", open_dataset, raising=False)
    return calls


def _evaluate(*argv):
    from depth_unet_ros.cli import main

    return main(["evaluate", *argv])


def test_cli_prints_table_and_writes_json(tmp_path, capsys, fake_model, fake_data):
    out = tmp_path / "m.json"
    code = _evaluate("--model", "m.onnx", "--data", "nyu.mat", "--splits", "splits.mat",
                     "--backend", "onnxruntime", "--json", str(out), "--no-progress")
    assert code == 0
    text = capsys.readouterr().out
    assert "m.onnx" in text and "abs_rel" in text and "0.100" in text and "latency" in text
    data = json.loads(out.read_text())
    assert data["num_images"] == 3 and data["metrics"]["delta1"] == 1.0
    assert fake_model == [("m.onnx", "onnxruntime")]
    assert fake_data[0]["split"] == "test" and fake_data[0]["splits"] == "splits.mat"


def test_cli_split_defaults_to_all_without_splits_file(capsys, fake_model, fake_data):
    assert _evaluate("--model", "m.onnx", "--data", "d", "--depth", "raw", "--no-progress") == 0
    assert fake_data[0]["split"] == "all" and fake_data[0]["depth"] == "raw"


def test_cli_refuses_to_overwrite_json_without_flag(tmp_path, capsys, fake_model, fake_data):
    out = tmp_path / "m.json"
    out.write_text("keep")
    assert _evaluate("--model", "m", "--data", "d", "--json", str(out), "--no-progress") == 1
    assert "--overwrite" in capsys.readouterr().err and out.read_text() == "keep"
    assert fake_model == []  # refused before loading anything
    assert _evaluate("--model", "m", "--data", "d", "--json", str(out), "--overwrite",
                     "--no-progress") == 0
    assert json.loads(out.read_text())["num_images"] == 3


def test_cli_saves_images_and_honours_limit(tmp_path, capsys, fake_model, fake_data):
    code = _evaluate("--model", "m", "--data", "d", "--images", str(tmp_path / "img"),
                     "--limit", "2", "--flip-tta", "--no-progress")
    assert code == 0
    assert len(list((tmp_path / "img").glob("*.png"))) == 2
    assert "2 images" in capsys.readouterr().out


def test_cli_every_option_has_help():
    import argparse

    from depth_unet_ros.commands import evaluate as evaluate_cli

    parser = argparse.ArgumentParser()
    evaluate_cli.add_arguments(parser)
    for action in parser._actions:
        if not isinstance(action, argparse._HelpAction):
            assert action.help, action.dest


def test_cli_module_imports_nothing_heavy():
    """Importing the command (as `depth-unet --help` does) loads neither torch nor tqdm."""
    import subprocess

    code = ("import sys, depth_unet_ros.commands.evaluate; "
            "bad = [m for m in ('torch', 'tqdm', 'onnxruntime', 'rclpy') if m in sys.modules]; "
            "sys.exit(1 if bad else 0)")
    assert subprocess.run([sys.executable, "-c", code]).returncode == 0


def test_cli_on_real_nyu_samples_with_real_open_dataset(tmp_path, capsys, fake_model):
    """The real folder reader feeds the command (skipped until datasets.open_dataset exists)."""
    if not NYU_SAMPLES.is_dir():
        pytest.skip(f"{NYU_SAMPLES} not present")
    if not _has("depth_unet_ros.datasets", "open_dataset"):
        pytest.skip("depth_unet_ros.datasets.open_dataset not written yet")
    out = tmp_path / "r.json"
    assert _evaluate("--model", "m", "--data", str(NYU_SAMPLES), "--json", str(out),
                     "--no-progress") == 0
    data = json.loads(out.read_text())
    assert data["num_images"] >= 1 and 0.0 <= data["metrics"]["delta1"] <= 1.0


def test_evaluation_result_latency_summary():
    result = EvaluationResult(2, {}, latency_ms=[float(v) for v in range(1, 11)])
    assert result.latency_summary() == {"median": 5.5, "p90": pytest.approx(9.1)}
    assert EvaluationResult(0, {}).latency_summary() == {"median": None, "p90": None}


def test_cli_with_a_real_onnx_model_scores_the_real_nyu_samples(tmp_path, tiny_onnx_model):
    """No stand-ins: `evaluate` loads an exported ONNX model with ONNX Runtime, reads the real
    NYU folder, writes DESIGN's JSON, and its numbers equal evaluate_dataset's on the same data."""
    if not NYU_SAMPLES.is_dir():
        pytest.skip(f"{NYU_SAMPLES} not present")
    from depth_unet_ros.datasets import open_dataset
    from depth_unet_ros.evaluation.offline import evaluate_dataset
    from depth_unet_ros.inference import load_estimator

    out = tmp_path / "real.json"
    assert _evaluate("--model", str(tiny_onnx_model), "--data", str(NYU_SAMPLES),
                     "--backend", "onnxruntime", "--json", str(out), "--no-progress") == 0
    data = json.loads(out.read_text())
    assert set(data) >= {"num_images", "metrics", "per_image"}
    assert data["num_images"] == 4 and len(data["per_image"]) == 4
    direct = evaluate_dataset(load_estimator(tiny_onnx_model, "onnxruntime"),
                              open_dataset(NYU_SAMPLES), progress=False)
    for name, value in direct.metrics.items():
        assert data["metrics"][name] == pytest.approx(value, abs=1e-9), name
