"""Backends and the estimator: ONNX Runtime vs PyTorch parity, output sizes, backend choice,
and a clear ModelLoadError / ImageFormatError for each kind of bad input."""
from __future__ import annotations

import logging
from pathlib import Path

import cv2
import numpy as np
import onnx
import pytest

torch = pytest.importorskip("torch")

from depth_unet_ros.errors import ImageFormatError, ModelLoadError  # noqa: E402
from depth_unet_ros.inference import (DepthEstimator, backend_options, choose_backend,  # noqa: E402
                                      load_estimator, resolve_model_path)
from depth_unet_ros.node_core import MODEL_FIX_HINT  # noqa: E402
from depth_unet_ros.model_metadata import ModelMetadata  # noqa: E402
from training.checkpoint import CHECKPOINT_FORMAT, save_checkpoint  # noqa: E402
from training.export import export_onnx  # noqa: E402
from training.model import build_model  # noqa: E402
from training.model_config import preset  # noqa: E402

NYU_SAMPLES = Path(__file__).resolve().parents[2] / "shared" / "data" / "nyu_samples"
PARITY_M = 1e-3  # fp32: ONNX Runtime and PyTorch agree to a millimetre
CONFIG = preset("unet-small")  # the default model at its real 240x320 input


def _spread_batch_norm(model) -> None:
    """Random-init batch norm is the identity; give it real statistics so the export's BN
    folding is exercised and the outputs vary enough for parity to mean something."""
    gen = torch.Generator().manual_seed(1)
    for module in model.modules():
        if isinstance(module, torch.nn.BatchNorm2d):
            n = module.num_features
            module.running_mean.copy_(0.2 * torch.randn(n, generator=gen))
            module.running_var.copy_(0.5 + torch.rand(n, generator=gen))
            module.weight.data.copy_(0.5 + torch.rand(n, generator=gen))
            module.bias.data.copy_(0.2 * torch.randn(n, generator=gen))


@pytest.fixture(scope="module")
def artifacts(tmp_path_factory):
    """(checkpoint path, onnx path) of one seeded random-init default model."""
    folder = tmp_path_factory.mktemp("model")
    torch.manual_seed(0)
    model = build_model(CONFIG).eval()
    _spread_batch_norm(model)
    ckpt = save_checkpoint(folder / "model.pt", {"format": CHECKPOINT_FORMAT, "model": model.state_dict(),
                                                 "model_config": CONFIG.to_dict()})
    onnx_path = export_onnx(model, folder / "model.onnx", ModelMetadata.for_model_config(CONFIG))
    return ckpt, onnx_path


@pytest.fixture(scope="module")
def ort_estimator(artifacts):
    return load_estimator(artifacts[1], backend="onnxruntime", intra_op_num_threads=2)


@pytest.fixture(scope="module")
def torch_estimator(artifacts):
    return load_estimator(artifacts[0])  # .pt -> torch, chosen by suffix


def _nyu_images() -> list[np.ndarray]:
    paths = sorted(NYU_SAMPLES.glob("*/rgb.jpg"))
    if not paths:
        pytest.skip(f"NYU samples not found at {NYU_SAMPLES}")
    return [cv2.cvtColor(cv2.imread(str(p)), cv2.COLOR_BGR2RGB) for p in paths]


def _synthetic_images() -> list[np.ndarray]:
    try:
        from depth_unet_ros.datasets.synthetic.scenes import SyntheticIndoorDataset
    except ImportError:
        rng = np.random.default_rng(0)
        return [rng.integers(0, 256, (480, 640, 3), dtype=np.uint8) for _ in range(2)]
    dataset = SyntheticIndoorDataset(2, seed=0, height=240, width=320)
    return [dataset[i].image for i in range(len(dataset))]


def _assert_parity(ort_estimator, torch_estimator, images):
    for image in images:
        a, b = ort_estimator.predict(image), torch_estimator.predict(image)
        assert a.depth_m.shape == b.depth_m.shape == (240, 320)
        assert a.features.shape == b.features.shape == (CONFIG.feature_channels, 60, 80)
        assert float(np.ptp(a.depth_m)) > 0.05, "outputs too flat for parity to be a real check"
        assert np.abs(a.depth_m - b.depth_m).max() < PARITY_M
        assert np.abs(a.features - b.features).max() < 1e-3


def test_onnxruntime_matches_torch_on_real_nyu_frames(ort_estimator, torch_estimator):
    """fp32 parity on real Kinect frames (640x480 and a cropped 565x427): < 1 mm, features < 1e-3."""
    _assert_parity(ort_estimator, torch_estimator, _nyu_images())


def test_onnxruntime_matches_torch_on_synthetic_frames(ort_estimator, torch_estimator):
    """fp32 parity on synthetic rooms at the network size (no resize in the path)."""
    _assert_parity(ort_estimator, torch_estimator, _synthetic_images())


def test_backends_report_the_same_metadata(ort_estimator, torch_estimator):
    """The ONNX metadata and the checkpoint's model config describe the same model."""
    assert ort_estimator.metadata == torch_estimator.metadata
    assert ort_estimator.backend.name == "onnxruntime" and torch_estimator.backend.name == "torch"


def test_output_size_input_resizes_depth_only(ort_estimator):
    """output_size='input' gives depth at the image's size (bilinear from the network output);
    features stay at the network stride."""
    image = np.random.default_rng(3).integers(0, 256, (123, 457, 3), dtype=np.uint8)
    net = ort_estimator.predict(image, output_size="network")
    full = ort_estimator.predict(image, output_size="input")
    assert net.depth_m.shape == (240, 320) and full.depth_m.shape == (123, 457)
    assert full.depth_m.dtype == np.float32
    expected = cv2.resize(net.depth_m, (457, 123), interpolation=cv2.INTER_LINEAR)
    assert np.abs(full.depth_m - expected).max() < 1e-6
    assert np.array_equal(net.features, full.features)
    with pytest.raises(ValueError, match="output_size"):
        ort_estimator.predict(image, output_size="camera")


def test_predict_batch_equals_single_predictions(ort_estimator):
    """Mixed-size images in one call give the same depth as one call each (fixed-batch model)."""
    rng = np.random.default_rng(4)
    images = [rng.integers(0, 256, shape, dtype=np.uint8) for shape in ((240, 320, 3), (100, 90, 3))]
    batch = ort_estimator.predict_batch(images, output_size="input")
    for image, pred in zip(images, batch):
        single = ort_estimator.predict(image, output_size="input")
        assert pred.depth_m.shape == image.shape[:2]
        assert np.abs(pred.depth_m - single.depth_m).max() < 1e-6
    assert ort_estimator.predict_batch([]) == []


@pytest.mark.parametrize("image, match", [
    (np.zeros((240, 320, 3), np.float32), "uint8"),
    (np.zeros((240, 320, 4), np.uint8), r"\(H, W, 3\)"),
    (np.zeros((240, 320), np.uint8), r"\(H, W, 3\)"),
    ([[0, 0, 0]], "numpy array"),
])
def test_bad_images_are_refused_with_the_fix(ort_estimator, image, match):
    """Wrong dtype, channel count or type -> ImageFormatError that says what is expected."""
    with pytest.raises(ImageFormatError, match=match):
        ort_estimator.predict(image)


def test_missing_model_file(tmp_path):
    """A missing path -> ModelLoadError naming it and how to create a model."""
    with pytest.raises(ModelLoadError, match=r"absent\.onnx does not exist.*depth-unet export"):
        load_estimator(tmp_path / "absent.onnx")


def test_random_bytes_are_not_a_model(tmp_path):
    """A .onnx file of random bytes -> ModelLoadError, not an ONNX Runtime traceback."""
    path = tmp_path / "junk.onnx"
    path.write_bytes(np.random.default_rng(0).bytes(4096))
    with pytest.raises(ModelLoadError, match=r"junk\.onnx could not be loaded.*re-export"):
        load_estimator(path, backend="onnxruntime")


def test_onnx_without_our_metadata_is_refused(artifacts, tmp_path):
    """A valid ONNX model stripped of depth_unet metadata -> ModelLoadError that says re-export."""
    proto = onnx.load(str(artifacts[1]))
    del proto.metadata_props[:]
    path = tmp_path / "foreign.onnx"
    onnx.save(proto, str(path))
    with pytest.raises(ModelLoadError, match="no depth_unet metadata.*depth-unet export"):
        load_estimator(path)


def test_unknown_suffix_and_wrong_backend_are_refused(tmp_path, artifacts):
    """File types and explicit backends are checked before anything is loaded."""
    weird = tmp_path / "model.tflite"
    weird.write_bytes(b"x")
    with pytest.raises(ModelLoadError, match="unknown model file type"):
        load_estimator(weird)
    with pytest.raises(ModelLoadError, match="export the checkpoint first"):
        load_estimator(artifacts[0], backend="onnxruntime")
    with pytest.raises(ModelLoadError, match="cannot run a .onnx"):
        load_estimator(artifacts[1], backend="torch")
    with pytest.raises(ModelLoadError, match="unknown backend"):
        load_estimator(artifacts[1], backend="openvino")


def test_auto_picks_onnxruntime_without_tensorrt_and_says_why(caplog):
    """Without TensorRT and a GPU, auto runs ONNX files with ONNX Runtime and logs the reason."""
    from depth_unet_ros.backends.tensorrt_backend import tensorrt_unavailable_reason

    reason = tensorrt_unavailable_reason()
    if reason is None:
        pytest.skip("TensorRT and a GPU are present here")
    with caplog.at_level(logging.INFO, logger="depth_unet_ros.inference"):
        assert choose_backend("m.onnx") == "onnxruntime"
    assert reason in caplog.text
    assert choose_backend("m.pth") == "torch" and choose_backend("m.plan") == "tensorrt"


def test_engine_without_tensorrt_says_how_to_get_it(tmp_path):
    """An .engine on a machine without TensorRT -> ModelLoadError pointing to the ONNX backend."""
    from depth_unet_ros.backends.tensorrt_backend import tensorrt_unavailable_reason

    if tensorrt_unavailable_reason() is None:
        pytest.skip("TensorRT and a GPU are present here")
    engine = tmp_path / "m.engine"
    engine.write_bytes(b"\0" * 16)
    with pytest.raises(ModelLoadError, match="TensorRT cannot run on this machine.*onnxruntime"):
        load_estimator(engine)


def test_estimator_refuses_outputs_that_contradict_the_metadata(artifacts):
    """A backend whose output shapes disagree with its metadata is reported, not passed on."""
    meta = ModelMetadata.for_model_config(CONFIG)

    class WrongBackend:
        name, metadata = "fake", meta

        def infer(self, batch):
            return np.zeros((len(batch), 1, 10, 10), np.float32), np.zeros((len(batch), 1, 1, 1), np.float32)

    with pytest.raises(ModelLoadError, match="does not match its metadata"):
        DepthEstimator(WrongBackend()).predict(np.zeros((240, 320, 3), np.uint8))


def test_infer_command_writes_three_files_per_image(artifacts, tmp_path, capsys):
    """`depth-unet infer` writes <stem>_depth.png (uint16 mm), _depth.npy (float32 m) and
    _color.png per image, at the image's own size by default."""
    from depth_unet_ros.cli import main

    image = np.random.default_rng(5).integers(0, 256, (150, 200, 3), dtype=np.uint8)
    image_path = tmp_path / "frame.png"
    cv2.imwrite(str(image_path), image)
    out = tmp_path / "out"
    assert main(["infer", "--model", str(artifacts[1]), str(image_path), "--out", str(out)]) == 0
    depth_m = np.load(out / "frame_depth.npy")
    assert depth_m.dtype == np.float32 and depth_m.shape == (150, 200)
    depth_mm = cv2.imread(str(out / "frame_depth.png"), cv2.IMREAD_UNCHANGED)
    assert depth_mm.dtype == np.uint16
    assert np.abs(depth_mm.astype(np.float64) - depth_m * 1000).max() <= 0.5
    color = cv2.imread(str(out / "frame_color.png"), cv2.IMREAD_UNCHANGED)
    assert color.shape == (150, 200, 3) and color.dtype == np.uint8
    assert main(["infer", "--model", str(artifacts[1]), str(tmp_path / "none.png"), "--out", str(out)]) == 1
    assert "none.png" in capsys.readouterr().err


def test_depth_to_mm_marks_invalid_as_zero():
    """NaN, inf and negative depth become 0 mm (= invalid); far depth saturates at 65535."""
    from depth_unet_ros.commands.infer import depth_to_mm

    mm = depth_to_mm(np.array([[np.nan, np.inf, -1.0, 1.2344, 70.0]], np.float32))
    assert mm.tolist() == [[0, 0, 0, 1234, 65535]]


def test_empty_model_path_means_the_bundled_model():
    """"" (the node's model_path default, the commands' absent --model) resolves to the package's
    models/default.onnx, and loading it needs no path at all; ~ is expanded."""
    assert resolve_model_path("").parts[-3:] == ("depth_unet_ros", "models", "default.onnx")
    assert not str(resolve_model_path("~/m.onnx")).startswith("~")
    with load_estimator() as estimator:
        assert estimator.backend.name == "onnxruntime"


def test_num_threads_maps_to_each_backends_own_option():
    """0 keeps the backend default; otherwise ONNX Runtime and torch get their own keyword."""
    assert backend_options("onnxruntime", 0) == {}
    assert backend_options("onnxruntime", 2) == {"intra_op_num_threads": 2}
    assert backend_options("torch", 3) == {"num_threads": 3}
    assert backend_options("tensorrt", 3) == {}


@pytest.mark.parametrize("content", [None, b"this is not an onnx model"])
def test_missing_or_corrupt_model_error_says_how_to_fix_it(tmp_path, content):
    """With the node's hint, ModelLoadError names the file, the parameter, the launch argument
    and depth-unet export."""
    path = tmp_path / "model.onnx"
    if content is not None:
        path.write_bytes(content)
    with pytest.raises(ModelLoadError) as info:
        load_estimator(str(path), "onnxruntime", 1, fix_hint=MODEL_FIX_HINT)
    message = str(info.value)
    assert "model_path" in message and "model:=" in message and "depth-unet export" in message
    assert str(path) in message
