"""The optional blur of the log depth inside the model's head (``depth_smoothing_px``)."""
from __future__ import annotations

import dataclasses

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from depth_unet_ros.cli import main as cli_main  # noqa: E402
from depth_unet_ros.errors import ConfigError  # noqa: E402
from training.checkpoint import CHECKPOINT_FORMAT, save_checkpoint  # noqa: E402
from training.model import build_model  # noqa: E402
from training.model_config import ModelConfig, preset  # noqa: E402
from training.unet import BoxSmoothing, LogDepthHead  # noqa: E402

CONFIG = dataclasses.replace(preset("unet-small"), input_height=64, input_width=96)


def test_three_mean_filters_make_a_gaussian_like_blur_that_keeps_constants():
    """A constant map stays itself, borders included; an impulse spreads into a symmetric
    bell whose standard deviation is sigma_px; even or too-small widths are refused."""
    blur = BoxSmoothing(7)
    assert blur.sigma_px == pytest.approx(np.sqrt(3 * 48 / 12))  # 3.46 px
    constant = torch.full((2, 1, 20, 30), -0.7)
    torch.testing.assert_close(blur(constant), constant)
    impulse = torch.zeros(1, 1, 41, 41)
    impulse[0, 0, 20, 20] = 1.0
    bell = blur(impulse)[0, 0]
    assert float(bell.sum()) == pytest.approx(1.0, abs=1e-5)
    profile = bell.sum(dim=0)  # (41,) the horizontal marginal
    offsets = torch.arange(-20, 21, dtype=torch.float32)
    assert float((profile * offsets ** 2).sum()) ** 0.5 == pytest.approx(blur.sigma_px, rel=1e-4)
    torch.testing.assert_close(bell, bell.T)
    assert int(profile.argmax()) == 20 and float(profile[20]) > 2 * float(profile[25])
    for width in (2, 1, 8):
        with pytest.raises(ValueError, match="odd"):
            BoxSmoothing(width)


def test_it_removes_a_pixel_grain_but_keeps_a_broad_ramp():
    """A +-10 % checkerboard grain on a smooth ramp is mostly removed; the ramp is kept inside
    (border pixels average only pixels that exist, so they do not sag toward zero)."""
    ramp = torch.linspace(0.0, 1.0, 60).repeat(40, 1)[None, None]  # (1, 1, 40, 60)
    grain = 0.1 * (torch.arange(40)[:, None] + torch.arange(60)[None, :]).remainder(2).float()
    out = BoxSmoothing(7)(ramp + grain - 0.05)
    core = (slice(None), slice(None), slice(10, 30), slice(10, 50))
    assert (out - ramp)[core].abs().max() < 0.01
    assert out.min() > -0.06 and out.max() < 1.06  # no ringing, no zero padding at the borders


def test_the_head_stays_inside_its_depth_range_when_smoothed():
    """Blurring log depth averages values of the range, so the output cannot leave it."""
    head = LogDepthHead(0.1, 10.0, smoothing_px=5)
    logit = torch.randn(1, 1, 32, 48) * 50.0  # saturated both ways, pixel to pixel
    depth = head(logit)
    assert torch.isfinite(depth).all() and depth.min() >= 0.1 and depth.max() <= 10.0
    assert float(depth.std()) < float(LogDepthHead(0.1, 10.0)(logit).std())


@pytest.mark.parametrize("width", [-1, 1, 4, 9])
def test_the_config_rejects_widths_that_are_not_odd_or_too_wide(width):
    """0 is off; a width must be odd, at least 3 and at most 1/8 of the smaller side (8 here)."""
    with pytest.raises(ConfigError, match="depth_smoothing_px"):
        dataclasses.replace(CONFIG, depth_smoothing_px=width).validate()
    assert ModelConfig.from_dict({"depth_smoothing_px": 7}).depth_smoothing_px == 7
    with pytest.raises(ConfigError, match="integer"):
        ModelConfig.from_dict({"depth_smoothing_px": 3.5})


def test_the_blur_has_no_weights_so_checkpoints_load_with_or_without_it():
    """The blur is a fixed filter, not weights: a state dict moves between both ways."""
    plain = build_model(CONFIG)
    smoothed = build_model(dataclasses.replace(CONFIG, depth_smoothing_px=5))
    assert set(plain.state_dict()) == set(smoothed.state_dict())
    smoothed.load_state_dict(plain.state_dict())  # strict


def test_export_sets_the_blur_and_onnx_runtime_matches_torch(tmp_path):
    """``depth-unet export --depth-smoothing-px`` exports a trained-without-blur checkpoint with
    the blur in the graph; ONNX Runtime gives torch's smoothed depth, features are unchanged."""
    import onnxruntime as ort

    torch.manual_seed(0)
    model = build_model(CONFIG).eval()
    ckpt = save_checkpoint(tmp_path / "m.pt", {"format": CHECKPOINT_FORMAT, "model": model.state_dict(),
                                               "model_config": CONFIG.to_dict()})
    paths = {}
    for width in ("0", "5"):
        paths[width] = tmp_path / f"s{width}.onnx"
        assert cli_main(["export", str(ckpt), "--out", str(paths[width]),
                         "--depth-smoothing-px", width]) == 0
    image = torch.randint(0, 256, (1, 64, 96, 3), dtype=torch.uint8, generator=torch.Generator().manual_seed(1))
    outputs = {s: ort.InferenceSession(str(p), providers=["CPUExecutionProvider"]).run(
        None, {"image": image.numpy()}) for s, p in paths.items()}
    reference = build_model(dataclasses.replace(CONFIG, depth_smoothing_px=5)).eval()
    reference.load_state_dict(model.state_dict())
    with torch.no_grad():
        want_depth = reference(image)[0].numpy()
    np.testing.assert_allclose(outputs["5"][0], want_depth, rtol=1e-4)
    np.testing.assert_array_equal(outputs["5"][1], outputs["0"][1])
    assert np.abs(outputs["5"][0] - outputs["0"][0]).max() > 1e-3  # the blur did something
