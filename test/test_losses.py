"""Training losses (training.losses) against hand-computed values."""
import math

import pytest
import torch

from depth_unet_ros.errors import ConfigError
from training.losses import (
    LOSS_NAMES, LossConfig, bts_loss, build_loss, edge_aware_smoothness, l2_loss, l2_smooth_loss,
    log_gradient_matching, silog_loss)


def _t(values, dtype=torch.float64):
    """(H, W) nested list -> (1, 1, H, W) tensor."""
    return torch.tensor(values, dtype=dtype)[None, None]


def _random_batch(n=2, h=6, w=7, seed=0, dtype=torch.float64):
    g = torch.Generator().manual_seed(seed)
    gt = 0.5 + 5 * torch.rand(n, 1, h, w, generator=g, dtype=dtype)
    pred = gt * torch.exp(0.3 * torch.randn(n, 1, h, w, generator=g, dtype=dtype))
    valid = torch.rand(n, 1, h, w, generator=g) > 0.3
    image = torch.rand(n, 3, h, w, generator=g, dtype=dtype)
    return pred, gt, valid, image


def test_silog_hand_example():
    """pred [2,1,1,1] vs gt 1: d = [ln2,0,0,0], L = ln2^2/4 - 0.5 * (ln2/4)^2 = ln2^2 * 7/32."""
    pred, gt = _t([[2.0, 1.0], [1.0, 1.0]]), _t([[1.0, 1.0], [1.0, 1.0]])
    loss = silog_loss(pred, gt, torch.ones_like(pred, dtype=torch.bool))
    assert loss.item() == pytest.approx(math.log(2) ** 2 * 7 / 32, rel=1e-12)


def test_silog_lambda_one_is_invariant_to_a_global_scale():
    pred, gt, valid, _ = _random_batch()
    base = silog_loss(pred, gt, valid, lambd=1.0)
    for scale in (0.3, 1.7, 12.0):
        torch.testing.assert_close(silog_loss(pred * scale, gt, valid, lambd=1.0), base,
                                   rtol=0, atol=1e-13)
    assert silog_loss(pred * 1.7, gt, valid, lambd=0.5) != pytest.approx(base.item())


def test_silog_lambda_zero_is_mean_log_l2():
    pred, gt, valid, _ = _random_batch(n=1)
    d = (pred.log() - gt.log())[valid]
    torch.testing.assert_close(silog_loss(pred, gt, valid, lambd=0.0), (d ** 2).mean())


def test_silog_matches_definition_with_lambda_half():
    pred, gt, valid, _ = _random_batch(n=1)
    d = (pred.log() - gt.log())[valid]
    torch.testing.assert_close(silog_loss(pred, gt, valid), (d ** 2).mean() - 0.5 * d.mean() ** 2)


@pytest.mark.parametrize("name", LOSS_NAMES)
def test_invalid_pixels_change_neither_loss_nor_gradient(name):
    """Wild values (0, negative, NaN, inf, huge) in pred and gt where valid is False change nothing."""
    loss_fn = build_loss(LossConfig(name=name))
    pred, gt, valid, image = _random_batch()
    wild_pred, wild_gt = pred.clone(), gt.clone()
    wild = torch.tensor([0.0, -5.0, float("nan"), float("inf"), 1e9], dtype=pred.dtype)
    idx = (~valid).nonzero(as_tuple=True)
    wild_gt[idx] = wild[torch.arange(len(idx[0])) % 5]
    if name != "l2_smooth":  # smoothness is defined on the whole prediction, by design
        wild_pred[idx] = wild[(torch.arange(len(idx[0])) + 2) % 5]
    grads = []
    for p, g in ((pred, gt), (wild_pred, wild_gt)):
        p = p.clone().requires_grad_(True)
        loss = loss_fn(p, g, valid, image)
        loss.backward()
        grads.append((loss.detach(), p.grad))
    torch.testing.assert_close(grads[1][0], grads[0][0])
    torch.testing.assert_close(grads[1][1], grads[0][1])
    assert torch.isfinite(grads[1][1]).all()
    if name != "l2_smooth":
        assert (grads[1][1][~valid] == 0).all()


@pytest.mark.parametrize("loss_fn", [silog_loss, bts_loss])
def test_log_losses_average_per_image_not_per_pixel(loss_fn):
    """Image A has 2 valid pixels, image B 5: the batch loss is (L_A + L_B) / 2."""
    pred, gt, _, _ = _random_batch(n=2, h=3, w=3)
    valid = torch.zeros_like(pred, dtype=torch.bool)
    valid[0, 0, 0, :2] = True
    valid[1, 0, 1:, :] = True
    valid[1, 0, 2, 2] = False
    per_image = [loss_fn(pred[i:i + 1], gt[i:i + 1], valid[i:i + 1]) for i in range(2)]
    torch.testing.assert_close(loss_fn(pred, gt, valid), (per_image[0] + per_image[1]) / 2)


@pytest.mark.parametrize("loss_fn", [silog_loss, bts_loss, l2_loss])
def test_images_without_valid_pixels_contribute_nothing(loss_fn):
    pred, gt, valid, _ = _random_batch(n=2)
    valid[1] = False
    torch.testing.assert_close(loss_fn(pred, gt, valid), loss_fn(pred[:1], gt[:1], valid[:1]))


@pytest.mark.parametrize("name", LOSS_NAMES)
def test_batch_without_valid_pixels_gives_zero_with_a_gradient(name):
    pred, gt, _, image = _random_batch()
    pred.requires_grad_(True)
    loss = build_loss(LossConfig(name=name, smooth_weight=0.0))(
        pred, gt, torch.zeros_like(pred, dtype=torch.bool), image)
    assert loss.item() == 0.0
    loss.backward()
    assert pred.grad is not None and (pred.grad == 0).all()


def test_bts_hand_example():
    """d = [ln2,0,0,0]: 10 * sqrt(ln2^2/4 - 0.85 * (ln2/4)^2) = 10 ln2 sqrt(1/4 - 0.85/16)."""
    pred, gt = _t([[2.0, 1.0], [1.0, 1.0]]), _t([[1.0, 1.0], [1.0, 1.0]])
    loss = bts_loss(pred, gt, torch.ones_like(pred, dtype=torch.bool))
    assert loss.item() == pytest.approx(10 * math.log(2) * math.sqrt(1 / 4 - 0.85 / 16), rel=1e-12)


def test_bts_gradient_is_finite_for_a_perfect_prediction():
    gt = _t([[1.0, 2.0], [3.0, 4.0]])
    pred = gt.clone().requires_grad_(True)
    bts_loss(pred, gt, torch.ones_like(gt, dtype=torch.bool)).backward()
    assert torch.isfinite(pred.grad).all()


def test_l2_hand_example():
    """Batch of two: valid errors 0, 1 (image 1) and 3 (image 2) m -> (0 + 1 + 9) / 3."""
    pred = torch.cat([_t([[1.0, 2.0, 7.0]]), _t([[4.0, 0.0, 0.0]])])
    gt = torch.cat([_t([[1.0, 1.0, 1.0]]), _t([[1.0, 5.0, 5.0]])])
    valid = torch.tensor([[True, True, False], [True, False, False]])[:, None, None, :]
    assert l2_loss(pred, gt, valid).item() == pytest.approx(10 / 3)


def test_smoothness_is_zero_for_constant_depth_and_positive_for_noise():
    _, _, _, image = _random_batch()
    assert edge_aware_smoothness(torch.full((2, 1, 6, 7), 3.0, dtype=torch.float64),
                                 image).item() == 0.0
    noisy = 3.0 + torch.rand(2, 1, 6, 7, dtype=torch.float64)
    assert edge_aware_smoothness(noisy, image).item() > 0


def test_smoothness_is_weaker_across_image_edges():
    """A depth step costs less where the image has an edge at the same place."""
    depth = torch.ones(1, 1, 8, 8, dtype=torch.float64)
    depth[..., 4:] = 3.0
    flat = torch.full((1, 3, 8, 8), 0.5, dtype=torch.float64)
    edged = flat.clone()
    edged[..., 4:] = 1.0
    edged[..., :4] = 0.0
    assert edge_aware_smoothness(depth, edged) < edge_aware_smoothness(depth, flat)


def test_smoothness_ignores_a_global_depth_scale():
    """Mean-normalised inverse depth: scaling all depths cannot lower the term."""
    pred, _, _, image = _random_batch()
    torch.testing.assert_close(edge_aware_smoothness(pred * 5, image),
                               edge_aware_smoothness(pred, image), rtol=1e-5, atol=0)


def test_l2_smooth_is_l2_plus_weighted_smoothness():
    pred, gt, valid, image = _random_batch()
    expected = l2_loss(pred, gt, valid) + 0.3 * edge_aware_smoothness(pred, image)
    torch.testing.assert_close(l2_smooth_loss(pred, gt, valid, image, smooth_weight=0.3), expected)
    with pytest.raises(ValueError, match="image"):
        l2_smooth_loss(pred, gt, valid)


@pytest.mark.parametrize("name", LOSS_NAMES)
def test_gradients_finite_with_invalid_pixels_and_tiny_predictions(name):
    pred, gt, valid, image = _random_batch(dtype=torch.float32)
    pred = pred.clone()
    pred[0, 0, 0, :3] = torch.tensor([0.0, 1e-9, -1.0])
    gt[~valid] = 0.0
    pred.requires_grad_(True)
    loss = build_loss(LossConfig(name=name))(pred, gt, valid, image)
    loss.backward()
    assert torch.isfinite(loss) and torch.isfinite(pred.grad).all()


def test_build_loss_binds_config_weights():
    pred, gt, valid, image = _random_batch()
    torch.testing.assert_close(build_loss(LossConfig(silog_lambda=1.0))(pred, gt, valid),
                               silog_loss(pred, gt, valid, lambd=1.0))
    torch.testing.assert_close(
        build_loss(LossConfig(name="bts", bts_variance_focus=0.5))(pred, gt, valid),
        bts_loss(pred, gt, valid, variance_focus=0.5))
    torch.testing.assert_close(build_loss(LossConfig(name="l2"))(pred, gt, valid, image),
                               l2_loss(pred, gt, valid))


def test_unknown_loss_name_lists_the_valid_ones():
    with pytest.raises(ConfigError) as info:
        build_loss(LossConfig(name="huber"))
    assert all(name in str(info.value) for name in LOSS_NAMES)


def test_mismatched_shapes_are_rejected():
    pred, gt, valid, _ = _random_batch()
    with pytest.raises(ValueError, match="shape"):
        silog_loss(pred, gt[:, :, :-1], valid)


def test_gradient_matching_is_zero_for_a_scaled_truth_and_charges_grain():
    """d = ln(pred / gt): a prediction off by one factor everywhere has no gradient to pay for;
    the same prediction with a +-10 % checkerboard grain pays about (2 * 0.1)^2 per pixel pair
    at full resolution (the coarser scales average the grain away)."""
    pred, gt, valid, _ = _random_batch(h=8, w=8)
    assert float(log_gradient_matching(1.7 * gt, gt, torch.ones_like(valid))) == pytest.approx(0, abs=1e-12)
    checker = torch.tensor([[1.1 if (r + c) % 2 else 1 / 1.1 for c in range(8)] for r in range(8)],
                           dtype=gt.dtype)[None, None]
    full = float(log_gradient_matching(gt * checker, gt, torch.ones_like(valid), scales=1))
    assert full == pytest.approx((2 * math.log(1.1)) ** 2, rel=1e-6)
    assert float(log_gradient_matching(gt * checker, gt, torch.ones_like(valid), scales=3)) < full


def test_gradient_matching_ignores_invalid_pixels_and_pairs_across_them():
    """Whatever invalid pixels hold changes nothing; a step between a valid and an invalid
    pixel is not a pair."""
    pred, gt, valid, _ = _random_batch(seed=3)
    base = log_gradient_matching(pred, gt, valid)
    wild = torch.where(valid, pred, torch.full_like(pred, 1e6))
    torch.testing.assert_close(log_gradient_matching(wild, gt, valid), base)
    lonely = torch.zeros_like(valid)
    lonely[..., 0, 0] = True  # one valid pixel: no pair anywhere
    assert float(log_gradient_matching(pred, gt, lonely)) == 0.0


def test_build_loss_adds_the_weighted_gradient_term():
    pred, gt, valid, image = _random_batch()
    with_term = build_loss(LossConfig(gradient_weight=0.5))(pred, gt, valid, image)
    torch.testing.assert_close(with_term, silog_loss(pred, gt, valid)
                               + 0.5 * log_gradient_matching(pred, gt, valid))
