"""Test-session setup shared by every test file.

ROS isolation happens at import time, before any test module imports rclpy: DDS reads the
domain and discovery range when a participant is created, and subprocesses (the node under
test) inherit this environment, so parallel test sessions on one machine never see each other.
"""
from __future__ import annotations

import os
from pathlib import Path

import pytest

from depth_unet_ros.fastdds_transports import TRANSPORT_SETTINGS


# Domains 1..101 (0 is everyone's default; 101 is the highest whose ports are valid on Linux).
ROS_DOMAINS = range(1, 102)
_domain_lock = None  # held open for the session: the claim lasts until this process exits


def _claim_ros_domain() -> int:
    """A ROS domain no other test session on this machine holds: the first free one from a
    pid-derived start, claimed by an exclusive lock file (a pid-derived id alone let two
    concurrent sessions share a domain, and each scored the other's depth answers)."""
    import fcntl
    import tempfile

    global _domain_lock
    start = os.getpid() % len(ROS_DOMAINS)
    for offset in range(len(ROS_DOMAINS)):
        domain = ROS_DOMAINS[(start + offset) % len(ROS_DOMAINS)]
        lock = open(Path(tempfile.gettempdir()) / f"depth_unet_ros-test-domain-{domain}.lock", "w")
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            lock.close()
            continue
        _domain_lock = lock
        return domain
    raise RuntimeError("every ROS domain 1..101 is held by another test session")


def _isolate_ros_graph() -> None:
    os.environ["ROS_DOMAIN_ID"] = str(_claim_ros_domain())
    os.environ["ROS_AUTOMATIC_DISCOVERY_RANGE"] = "LOCALHOST"  # Iron and newer
    if os.environ.get("ROS_DISTRO") == "humble":
        os.environ["ROS_LOCALHOST_ONLY"] = "1"  # Humble's spelling of the same thing
    os.environ.setdefault("RCUTILS_LOGGING_BUFFERED_STREAM", "0")  # node logs reach files at once


_isolate_ros_graph()


def pytest_configure(config: pytest.Config) -> None:
    for line in ("slow: takes more than a few seconds; CI runs them",
                 "gpu: needs TensorRT and an NVIDIA GPU; skipped cleanly elsewhere",
                 "ros: starts a real rclpy graph over DDS"):
        config.addinivalue_line("markers", line)


# The process-wide settings every DDS participant of this session is created with.
DDS_ENV_KEYS = ("ROS_DOMAIN_ID", "RMW_IMPLEMENTATION", *TRANSPORT_SETTINGS)


@pytest.fixture(autouse=True)
def _dds_environment_unchanged():
    """A test that leaves the session's DDS settings changed fails (and they are put back): an
    in-process bag-eval once left FASTDDS_BUILTIN_TRANSPORTS=LARGE_DATA behind, and every later
    participant of the session then missed nodes started on the default transports."""
    before = {key: os.environ.get(key) for key in DDS_ENV_KEYS}
    yield
    after = {key: os.environ.get(key) for key in DDS_ENV_KEYS}
    for key, value in before.items():
        if value is None:
            os.environ.pop(key, None)
        else:
            os.environ[key] = value
    changed = {key: (before[key], after[key]) for key in DDS_ENV_KEYS if before[key] != after[key]}
    if changed:
        pytest.fail(f"the test left DDS settings changed (before, after): {changed}")


@pytest.fixture(scope="module")
def context():
    """An rclpy context of the test module's own (its participant lives as long as the module's
    tests), shut down after them; rclpy is imported only by the tests that ask for it."""
    import rclpy
    from rclpy.context import Context

    ctx = Context()
    rclpy.init(context=ctx)
    yield ctx
    rclpy.shutdown(context=ctx)


@pytest.fixture(scope="session")
def tiny_onnx_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A real exported ONNX model small enough for fast tests: 64x96 input, 8 feature channels,
    random weights (seeded). Needs torch and onnx (the [train] extra); skips without them."""
    pytest.importorskip("torch")
    pytest.importorskip("onnx")
    import torch

    from depth_unet_ros.model_metadata import ModelMetadata
    from training.export import export_onnx
    from training.model import build_model
    from training.model_config import ModelConfig

    torch.manual_seed(0)
    config = ModelConfig(base_channels=4, input_height=64, input_width=96, feature_channels=8)
    path = tmp_path_factory.mktemp("tiny_model") / "tiny.onnx"
    export_onnx(build_model(config), path, ModelMetadata.for_model_config(config, "test: random weights"))
    return path


@pytest.fixture(scope="session")
def small_bag(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A rosbag2 (MCAP) of 5 held-out synthetic 640x480 frames at 10 Hz, as nyu-to-bag writes."""
    from depth_unet_ros.bags.writer import write_bag
    from depth_unet_ros.datasets.synthetic.scenes import SyntheticIndoorDataset

    frames = SyntheticIndoorDataset(5, seed=2000)
    out = tmp_path_factory.mktemp("bags") / "synthetic5"
    return write_bag((frames[i] for i in range(5)), out, rate_hz=10.0, progress=False)
