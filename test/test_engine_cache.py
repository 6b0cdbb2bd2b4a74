"""Engine cache rules, without TensorRT: an engine is reused only for the exact model, TensorRT
version, GPU, precision and shape it was built for; anything else rebuilds or is refused."""
from __future__ import annotations

import dataclasses
import json
import logging

import pytest

from depth_unet_ros.backends.engine_cache import (CACHE_ENV, EngineCache, EngineKey, RuntimeFingerprint,
                                                  check_engine_file, default_cache_dir, file_sha256,
                                                  sidecar_path, write_engine)
from depth_unet_ros.errors import ModelLoadError

ORIN = RuntimeFingerprint(tensorrt_version="10.3.0", gpu_name="Orin (nvgpu)", compute_capability="8.7")
PROPS = {"depth_unet.input_height": "240"}


def _key(**changes) -> EngineKey:
    key = EngineKey.for_model("ab" * 32, ORIN, "fp16", (1, 240, 320, 3))
    return dataclasses.replace(key, **changes)


def test_key_digest_depends_on_every_field():
    """Changing any one key field changes the digest (and so the cached file name)."""
    base = _key()
    variants = [_key(onnx_sha256="cd" * 32), _key(tensorrt_version="10.4.0"), _key(gpu_name="RTX 4090"),
                _key(compute_capability="8.9"), _key(precision="int8"), _key(input_shape=(1, 480, 640, 3))]
    digests = {base.digest()} | {v.digest() for v in variants}
    assert len(digests) == 1 + len(variants)
    assert base.digest() == _key().digest(), "the digest must be deterministic"


def test_key_round_trips_through_json():
    """to_dict -> JSON -> from_dict gives the same key (input_shape back as a tuple)."""
    key = _key()
    assert EngineKey.from_dict(json.loads(json.dumps(key.to_dict()))) == key


def test_unknown_precision_is_refused():
    """Only fp32, fp16 and int8 engines exist."""
    with pytest.raises(ValueError, match="precision"):
        EngineKey.for_model("00", ORIN, "bf16", (1, 8, 8, 3))


def test_file_sha256_hashes_content(tmp_path):
    """The ONNX hash follows the file's bytes, not its name or time."""
    a, b = tmp_path / "a.onnx", tmp_path / "b.onnx"
    a.write_bytes(b"model v1")
    b.write_bytes(b"model v1")
    assert file_sha256(a) == file_sha256(b)
    b.write_bytes(b"model v2")
    assert file_sha256(a) != file_sha256(b)


def test_default_cache_dir_honours_the_environment(monkeypatch, tmp_path):
    """$DEPTH_UNET_ENGINE_CACHE overrides ~/.cache/depth_unet_ros/engines."""
    monkeypatch.delenv(CACHE_ENV, raising=False)
    assert default_cache_dir().parts[-3:] == (".cache", "depth_unet_ros", "engines")
    monkeypatch.setenv(CACHE_ENV, str(tmp_path / "engines"))
    assert default_cache_dir() == tmp_path / "engines"
    assert EngineCache().cache_dir == tmp_path / "engines"


def test_store_then_lookup_hits_with_a_sidecar(tmp_path):
    """A stored engine is found again for the same key, with a JSON sidecar holding every field."""
    cache = EngineCache(tmp_path)
    path = cache.store(_key(), b"engine-bytes", PROPS, "model")
    assert path.read_bytes() == b"engine-bytes"
    record = json.loads(sidecar_path(path).read_text())
    assert EngineKey.from_dict(record["key"]) == _key()
    assert record["metadata"] == PROPS and len(record["engine_sha256"]) == 64
    assert cache.lookup(_key(), "model") == path
    assert not list(tmp_path.glob(".*tmp")), "atomic writes must not leave temporary files"


@pytest.mark.parametrize("field, value", [
    ("onnx_sha256", "cd" * 32), ("tensorrt_version", "10.4.0"), ("gpu_name", "NVIDIA RTX 4090"),
    ("compute_capability", "8.9"), ("precision", "fp32"), ("input_shape", (2, 240, 320, 3)),
])
def test_any_field_mismatch_misses_and_logs_the_field(tmp_path, caplog, field, value):
    """A lookup with one field different returns None (-> rebuild) and logs which field differs."""
    cache = EngineCache(tmp_path)
    cache.store(_key(), b"engine", PROPS, "model")
    with caplog.at_level(logging.INFO, logger="depth_unet_ros.backends.engine_cache"):
        assert cache.lookup(_key(**{field: value}), "model") is None
    if field != "onnx_sha256":  # another model is simply not in the cache
        assert field in caplog.text


def test_tampered_sidecar_is_not_trusted(tmp_path, caplog):
    """If the sidecar under the key's file name records another key, the engine is not loaded."""
    cache = EngineCache(tmp_path)
    path = cache.store(_key(), b"engine", PROPS, "model")
    record = json.loads(sidecar_path(path).read_text())
    record["key"]["tensorrt_version"] = "8.6.1"
    sidecar_path(path).write_text(json.dumps(record))
    with caplog.at_level(logging.INFO):
        assert cache.lookup(_key(), "model") is None
    assert "tensorrt_version" in caplog.text


def test_corrupted_engine_or_missing_sidecar_misses(tmp_path):
    """A truncated engine (hash mismatch) or one without a sidecar is never returned."""
    cache = EngineCache(tmp_path)
    path = cache.store(_key(), b"engine-bytes", PROPS, "model")
    path.write_bytes(b"engine-by")
    assert cache.lookup(_key(), "model") is None
    cache.store(_key(), b"engine-bytes", PROPS, "model")
    sidecar_path(path).unlink()
    assert cache.lookup(_key(), "model") is None


def test_get_or_build_builds_once_then_reuses(tmp_path):
    """The first call builds, the second reuses, a changed key or force rebuilds."""
    cache = EngineCache(tmp_path)
    builds = []

    def build() -> bytes:
        builds.append(1)
        return f"engine {len(builds)}".encode()

    path, built = cache.get_or_build(_key(), build, PROPS, "model")
    assert built and path.read_bytes() == b"engine 1"
    assert cache.get_or_build(_key(), build, PROPS, "model") == (path, False)
    new_trt, built = cache.get_or_build(_key(tensorrt_version="10.4.0"), build, PROPS, "model")
    assert built and new_trt != path and new_trt.read_bytes() == b"engine 2"
    assert path.read_bytes() == b"engine 1", "an engine for another TensorRT must stay untouched"
    assert cache.get_or_build(_key(), build, PROPS, "model", force=True)[1] is True
    assert len(builds) == 3


def test_user_engine_for_this_machine_is_accepted(tmp_path):
    """An .engine given directly loads when its sidecar matches the running TensorRT and GPU."""
    engine = write_engine(tmp_path / "my.engine", b"engine", _key(), PROPS)
    assert check_engine_file(engine, ORIN)["metadata"] == PROPS


@pytest.mark.parametrize("running, field", [
    (dataclasses.replace(ORIN, tensorrt_version="10.7.0"), "tensorrt_version"),
    (dataclasses.replace(ORIN, gpu_name="NVIDIA GeForce RTX 4090", compute_capability="8.9"), "gpu_name"),
])
def test_stale_user_engine_is_refused_with_the_fix(tmp_path, running, field):
    """An .engine built for another TensorRT or GPU -> ModelLoadError naming both and the rebuild."""
    engine = write_engine(tmp_path / "my.engine", b"engine", _key(), PROPS)
    with pytest.raises(ModelLoadError, match="rebuild with depth-unet build-engine model.onnx") as info:
        check_engine_file(engine, running)
    assert field in str(info.value) and getattr(running, field) in str(info.value)


def test_user_engine_without_sidecar_is_refused(tmp_path):
    """A bare .engine cannot prove what it was built for, so it is refused with the fix."""
    engine = tmp_path / "bare.plan"
    engine.write_bytes(b"engine")
    with pytest.raises(ModelLoadError, match="no sidecar bare.json.*build-engine"):
        check_engine_file(engine, ORIN)


def test_modified_user_engine_is_refused(tmp_path):
    """An engine whose bytes no longer match its sidecar hash is refused."""
    engine = write_engine(tmp_path / "my.engine", b"engine", _key(), PROPS)
    engine.write_bytes(b"other engine")
    with pytest.raises(ModelLoadError, match="hash"):
        check_engine_file(engine, ORIN)


def test_build_engine_command_without_tensorrt_is_a_clear_error(tmp_path, capsys):
    """`depth-unet build-engine` on a machine without TensorRT exits 1 saying what is missing."""
    from depth_unet_ros.backends.tensorrt_backend import tensorrt_unavailable_reason
    from depth_unet_ros.cli import main

    if tensorrt_unavailable_reason() is None:
        pytest.skip("TensorRT and a GPU are present here")
    model = tmp_path / "model.onnx"
    model.write_bytes(b"not really onnx")
    assert main(["build-engine", str(model), "--precision", "fp16", "--cache-dir", str(tmp_path)]) == 1
    assert "TensorRT cannot run on this machine" in capsys.readouterr().err
    assert main(["build-engine", str(tmp_path / "absent.onnx")]) == 1
    assert "depth-unet export" in capsys.readouterr().err


# int8 calibration data: the part of the TensorRT path that needs no TensorRT.

def test_calibration_reads_only_colour_frames_of_a_folder_dataset(tmp_path):
    """In a folder dataset only rgb.* are colour images; 16-bit depth_mm.png is never fed."""
    import cv2
    import numpy as np

    from depth_unet_ros.backends.calibration import calibration_images, image_files

    for i in range(3):
        frame = tmp_path / f"frame_{i}"
        frame.mkdir()
        cv2.imwrite(str(frame / "rgb.png"), np.full((48, 64, 3), 40 * i, np.uint8))
        cv2.imwrite(str(frame / "depth_mm.png"), np.full((48, 64), 1000, np.uint16))
    assert [p.name for p in image_files(tmp_path)] == ["rgb.png"] * 3
    images = list(calibration_images(tmp_path, (24, 32)))
    assert [im.shape for im in images] == [(24, 32, 3)] * 3 and images[0].dtype == np.uint8
    assert [int(im[0, 0, 0]) for im in images] == [0, 40, 80]


def test_calibration_spreads_a_capped_selection_over_the_folder(tmp_path):
    """With more images than max_images, the picks span the whole (sorted) folder."""
    import cv2
    import numpy as np

    from depth_unet_ros.backends.calibration import calibration_batches, calibration_images

    for i in range(10):
        cv2.imwrite(str(tmp_path / f"img_{i:02d}.jpg"), np.full((16, 16, 3), 20 * i, np.uint8))
    images = list(calibration_images(tmp_path, (8, 8), max_images=3))
    assert [round(float(im.mean()) / 20) for im in images] == [0, 4, 9]
    batches = list(calibration_batches(iter(images), batch_size=2))
    assert [b.shape for b in batches] == [(2, 8, 8, 3)], "the short last batch is dropped"


def test_calibration_without_images_says_what_to_pass(tmp_path):
    """An empty folder or a missing path -> DatasetError naming --calib."""
    from depth_unet_ros.backends.calibration import calibration_images
    from depth_unet_ros.errors import DatasetError

    with pytest.raises(DatasetError, match="--calib"):
        list(calibration_images(tmp_path, (8, 8)))
    with pytest.raises(DatasetError, match="--calib"):
        list(calibration_images(tmp_path / "absent", (8, 8)))
