"""training.real_eval: the real-data table of the model card, models beside constant depths."""
from __future__ import annotations

import numpy as np

from training.real_eval import COLUMNS, ConstantDepth, markdown


def test_constant_depth_predicts_one_value_at_the_image_size():
    """The baseline predicts its depth everywhere, at the size of the image it is given."""
    out = ConstantDepth(2.5).predict(np.zeros((48, 64, 3), np.uint8))
    assert out.depth_m.shape == (48, 64) and np.all(out.depth_m == 2.5)


def test_markdown_names_each_set_once_with_its_frame_count():
    """One row per model, the set's name and frame count only on its first row."""
    metrics = {c: 0.5 for c in COLUMNS}
    table = {"real": {"frames": 80, "rows": {"new.onnx": metrics, "constant 2.50 m": metrics}}}
    lines = markdown(table).splitlines()
    assert lines[2].startswith("| real | 80 | new.onnx | 0.500")
    assert lines[3].startswith("| | | constant 2.50 m |")
    assert len(lines) == 4


def test_score_reports_the_scale_factor_between_truth_and_prediction():
    """A constant at half the true depth is 2x too near on every frame: scale 2.0, and the
    ordinary metrics are still there."""
    from depth_unet_ros.datasets.base import NYU_INTRINSICS, RGBDFrame
    from training.real_eval import score

    frames = []
    for true_m in (2.0, 3.0):
        depth = np.full((120, 160), true_m, np.float32)
        frames.append(RGBDFrame(np.zeros((120, 160, 3), np.uint8), depth,
                                NYU_INTRINSICS.scaled(160, 120), f"f{true_m}"))
    half = score(ConstantDepth(1.0), frames[:1])
    assert half["scale"] == 2.0 and half["abs_rel"] == np.float32(0.5)
    assert set(COLUMNS) <= set(half)
    assert score(ConstantDepth(3.0), frames[1:])["scale"] == 1.0
