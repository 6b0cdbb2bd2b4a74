"""DESIGN.md's evaluation protocol (depth_unet_ros.evaluation.metrics), checked against hand arithmetic."""
import math
from pathlib import Path

import cv2
import numpy as np
import pytest

from depth_unet_ros.evaluation.metrics import (
    METRIC_NAMES, EvalProtocol, MetricAverager, depth_metrics, evaluate_frame, format_metric_table)

NYU_SAMPLES = Path(__file__).resolve().parents[2] / "shared" / "data" / "nyu_samples"


def test_metric_names_are_designs_nine_keys():
    assert METRIC_NAMES == ("delta1", "delta2", "delta3", "abs_rel", "sq_rel", "rmse",
                            "rmse_log", "log10", "silog")


def test_depth_metrics_match_hand_computation():
    """pred [1, 2, 3] vs gt [1, 1, 5], every metric written out by hand."""
    m = depth_metrics(np.array([1.0, 2.0, 3.0]), np.array([1.0, 1.0, 5.0]))
    # ratios max(p/g, g/p): 1, 2, 5/3 = 1.667
    assert m["delta1"] == pytest.approx(1 / 3)  # only 1 < 1.25
    assert m["delta2"] == pytest.approx(1 / 3)  # 1.5625: 1.667 and 2 fail
    assert m["delta3"] == pytest.approx(2 / 3)  # 1.953: 1.667 passes, 2 fails
    assert m["abs_rel"] == pytest.approx((0 / 1 + 1 / 1 + 2 / 5) / 3)
    assert m["sq_rel"] == pytest.approx((0 / 1 + 1 / 1 + 4 / 5) / 3)
    assert m["rmse"] == pytest.approx(math.sqrt((0 + 1 + 4) / 3))
    d = [0.0, math.log(2.0), math.log(3 / 5)]
    assert m["rmse_log"] == pytest.approx(math.sqrt(sum(x * x for x in d) / 3))
    assert m["log10"] == pytest.approx((0 + math.log10(2) + abs(math.log10(0.6))) / 3)
    mean_d = sum(d) / 3
    assert m["silog"] == pytest.approx(100 * math.sqrt(sum(x * x for x in d) / 3 - mean_d ** 2))
    assert list(m) == list(METRIC_NAMES) and all(isinstance(v, float) for v in m.values())


def test_perfect_prediction_scores_perfectly():
    gt = np.array([0.5, 2.0, 7.0])
    m = depth_metrics(gt.copy(), gt)
    assert m["delta1"] == 1.0 and m["abs_rel"] == 0.0 and m["rmse"] == 0.0 and m["silog"] == 0.0


def test_silog_ignores_a_global_scale_but_abs_rel_does_not():
    gt = np.array([1.0, 2.0, 4.0, 3.0])
    m = depth_metrics(gt * 1.1, gt)
    assert m["silog"] == pytest.approx(0.0, abs=1e-5)
    assert m["abs_rel"] == pytest.approx(0.1)


def test_delta_threshold_is_strict_at_exactly_1_25():
    """pred = 1.25 * gt exactly (5/4, 10/8) fails delta1; a hair below passes."""
    gt = np.array([4.0, 8.0])
    at = depth_metrics(np.array([5.0, 10.0]), gt)
    assert at["delta1"] == 0.0 and at["delta2"] == 1.0
    below = depth_metrics(np.array([4.999, 9.999]), gt)
    assert below["delta1"] == 1.0
    under = depth_metrics(np.array([3.2, 6.4]), gt)  # gt/pred = 1.25 exactly too
    assert under["delta1"] == 0.0


def test_depth_metrics_with_mask_equals_selected_pixels():
    pred = np.array([[1.0, 5.0], [2.0, 3.0]])
    gt = np.array([[1.0, 0.0], [1.0, 5.0]])
    valid = gt > 0
    assert depth_metrics(pred, gt, valid) == depth_metrics(pred[valid], gt[valid])


def test_depth_metrics_reject_empty_and_non_positive():
    with pytest.raises(ValueError, match="no valid"):
        depth_metrics(np.array([]), np.array([]))
    with pytest.raises(ValueError, match="positive"):
        depth_metrics(np.array([0.0, 1.0]), np.array([1.0, 1.0]))


def _nyu_frame(value=2.0):
    return np.full((480, 640), value, np.float32)


@pytest.mark.parametrize("row,col,counted", [
    (45, 300, True), (470, 300, True), (44, 300, False), (471, 300, False),
    (200, 41, True), (200, 600, True), (200, 40, False), (200, 601, False)])
def test_eigen_crop_rows_45_471_cols_41_601(row, col, counted):
    """A wrong pixel changes the score exactly when it lies inside the Eigen crop."""
    gt = _nyu_frame()
    pred = gt.copy()
    pred[row, col] = 8.0
    m = evaluate_frame(pred, gt)
    assert (m["abs_rel"] > 0) == counted


def test_garbage_outside_the_crop_is_ignored():
    gt = _nyu_frame()
    pred = np.full_like(gt, 50.0)
    pred[45:471, 41:601] = 2.0
    gt[:45] = 100.0
    m = evaluate_frame(pred, gt)
    assert m["abs_rel"] == 0.0 and m["delta1"] == 1.0


def test_frames_of_other_sizes_are_not_cropped():
    """An already cropped 427x565 frame: its border counts."""
    gt = np.full((427, 565), 2.0, np.float32)
    pred = gt.copy()
    pred[0, 0] = 4.0
    m = evaluate_frame(pred, gt)
    assert m["abs_rel"] == pytest.approx(1.0 / (427 * 565))


def test_crop_none_counts_the_whole_frame():
    gt = _nyu_frame()
    pred = gt.copy()
    pred[0, 0] = 4.0
    assert evaluate_frame(pred, gt, EvalProtocol(crop="none"))["abs_rel"] > 0


def test_valid_mask_is_finite_strictly_in_range_and_cropped():
    """The one mask rule: NaN, 0, exactly min or max, and pixels outside the crop do not count."""
    protocol = EvalProtocol()
    gt = np.full((480, 640), 2.0, dtype=np.float32)
    gt[100, 100], gt[100, 101], gt[100, 102] = np.nan, 0.0, protocol.min_depth_m
    gt[100, 103], gt[100, 104] = protocol.max_depth_m, 9.99
    mask = protocol.valid_mask(gt)
    assert not mask[100, 100:104].any() and mask[100, 104]
    assert not mask[0, 0] and mask[240, 320]  # row 0 is outside the Eigen crop
    assert mask.sum() == (471 - 45) * (601 - 41) - 4


def test_prediction_is_clipped_to_the_depth_range():
    """pred 20 m -> 10 m and pred -1 m -> 1e-3 m before scoring."""
    gt = np.array([[9.0, 2.0]], np.float32)
    m = evaluate_frame(np.array([[20.0, -1.0]], np.float32), gt)
    assert m["abs_rel"] == pytest.approx(((10 - 9) / 9 + (2 - 1e-3) / 2) / 2, rel=1e-6)


def test_invalid_gt_pixels_are_ignored():
    """gt 0, NaN, inf, <= 1e-3 and >= 10 m do not count, whatever the prediction there."""
    gt = np.array([[2.0, 0.0, np.nan, np.inf, 1e-3, 10.0, 12.0]], np.float32)
    pred = np.array([[2.0, 9.0, 9.0, 9.0, 9.0, 0.5, 0.5]], np.float32)
    m = evaluate_frame(pred, gt)
    assert m["abs_rel"] == 0.0 and m["delta1"] == 1.0


def test_prediction_is_upsampled_bilinearly_to_the_gt_size():
    gt = _nyu_frame(3.0)
    m = evaluate_frame(np.full((240, 320), 3.0, np.float32), gt)
    assert m["abs_rel"] == pytest.approx(0.0, abs=1e-7)
    ramp = np.tile(np.linspace(1, 5, 320, dtype=np.float32), (240, 1))
    assert evaluate_frame(ramp, gt)["abs_rel"] > 0.1


def test_no_valid_pixel_raises_a_clear_error():
    with pytest.raises(ValueError, match="no valid ground-truth pixel"):
        evaluate_frame(np.ones((4, 4), np.float32), np.zeros((4, 4), np.float32))


def test_protocol_rejects_bad_settings():
    with pytest.raises(ValueError):
        EvalProtocol(crop="garg")
    with pytest.raises(ValueError):
        EvalProtocol(min_depth_m=5.0, max_depth_m=1.0)
    with pytest.raises(ValueError):
        EvalProtocol(eval_size_hw=(240, 320))
    EvalProtocol(eval_size_hw=(240, 320), crop="none")


def test_average_is_per_image_then_mean():
    """Image A: 1 pixel with abs_rel 0.5; image B: 3 perfect pixels -> mean 0.25, not 0.125."""
    averager = MetricAverager()
    averager.add(evaluate_frame(np.array([[3.0]], np.float32), np.array([[2.0]], np.float32)), "a")
    averager.add(evaluate_frame(np.full((1, 3), 1.0, np.float32),
                                np.full((1, 3), 1.0, np.float32)), "b")
    assert averager.count == 2
    assert averager.mean()["abs_rel"] == pytest.approx(0.25)
    assert averager.mean()["delta1"] == pytest.approx(0.5)  # A: ratio 1.5 fails; B passes
    assert [row["name"] for row in averager.per_image] == ["a", "b"]
    assert averager.per_image[0]["abs_rel"] == pytest.approx(0.5)
    assert list(averager.mean()) == list(METRIC_NAMES)


def test_averager_without_images_raises():
    with pytest.raises(ValueError):
        MetricAverager().mean()


def test_metric_table_is_fixed_width_with_three_decimals():
    rows = {"unet16": {k: 0.123456 for k in METRIC_NAMES},
            "a_much_longer_model_name": {"delta1": 0.9, "abs_rel": 0.1}}
    table = format_metric_table(rows)
    lines = table.splitlines()
    assert len({len(line) for line in lines}) == 1, table
    assert all(k in lines[0] for k in METRIC_NAMES)
    assert "0.123" in lines[2] and "0.1235" not in lines[2]
    assert lines[3].startswith("a_much_longer_model_name") and "-" in lines[3].split()
    assert "0.900" in lines[3]


@pytest.mark.parametrize("folder", ["basement_0001a_00000", "bedroom_0004_crop"])
def test_real_kinect_frame_holes_are_ignored(folder):
    """On real raw Kinect depth (0 = no reading), pred = 1.1 * gt with garbage in the holes
    scores abs_rel 0.1 and delta1 1, on a full 640x480 frame and an already cropped one."""
    path = NYU_SAMPLES / folder / "depth_mm.png"
    if not path.exists():
        pytest.skip(f"{path} not present")
    gt_m = cv2.imread(str(path), cv2.IMREAD_UNCHANGED).astype(np.float32) / 1000.0
    assert (gt_m == 0).any()
    pred = np.where(gt_m > 0, gt_m * 1.1, 123.0).astype(np.float32)
    m = evaluate_frame(pred, gt_m)
    assert m["abs_rel"] == pytest.approx(0.1, rel=1e-4) and m["delta1"] == 1.0
