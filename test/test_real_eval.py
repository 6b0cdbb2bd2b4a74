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
