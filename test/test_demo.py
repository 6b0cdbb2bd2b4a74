"""``depth-unet demo``: the end-to-end run through a real node, its files and JSON, and its
refusals and time-outs, which must say what to do and never hang."""
from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from depth_unet_ros import cli
from depth_unet_ros.demo import prepare_ros_environment
from depth_unet_ros.metrics import METRIC_NAMES


def test_a_started_node_gets_large_data_a_private_domain_and_no_restricted_discovery():
    """Starting its own node, the demo sets LARGE_DATA, picks a domain only when none is set,
    and drops the discovery range that disables LARGE_DATA."""
    env = {"ROS_AUTOMATIC_DISCOVERY_RANGE": "LOCALHOST"}
    notes = prepare_ros_environment(env, start_node=True, pid=205)
    assert env == {"FASTDDS_BUILTIN_TRANSPORTS": "LARGE_DATA", "ROS_DOMAIN_ID": str(1 + 205 % 101)}
    assert any("ROS_AUTOMATIC_DISCOVERY_RANGE" in n for n in notes)
    env = {"ROS_DOMAIN_ID": "7", "FASTDDS_BUILTIN_TRANSPORTS": "UDPv4"}
    prepare_ros_environment(env, start_node=True)
    assert env == {"ROS_DOMAIN_ID": "7", "FASTDDS_BUILTIN_TRANSPORTS": "UDPv4"}


def test_attaching_keeps_the_users_domain_and_discovery_settings():
    """With --no-node nothing but the default transport changes: it must match the running node."""
    env = {"ROS_AUTOMATIC_DISCOVERY_RANGE": "LOCALHOST"}
    notes = prepare_ros_environment(env, start_node=False)
    assert env == {"ROS_AUTOMATIC_DISCOVERY_RANGE": "LOCALHOST", "FASTDDS_BUILTIN_TRANSPORTS": "LARGE_DATA"}
    assert notes and "ROS_DOMAIN_ID" not in env


def test_an_existing_report_is_refused_without_overwrite(tmp_path, capsys):
    """An out folder holding report.md is not overwritten unless --overwrite is given."""
    (tmp_path / "report.md").write_text("old\n")
    code = cli.main(["demo", "--model", str(tmp_path / "whatever.onnx"), "--out", str(tmp_path)])
    assert code == 1
    assert "--overwrite" in capsys.readouterr().err
    assert (tmp_path / "report.md").read_text() == "old\n"


def test_a_missing_model_names_the_path_and_depth_unet_export(tmp_path, capsys):
    """A model path that does not exist ends with exit 1, the path and how to make a model."""
    missing = tmp_path / "nope.onnx"
    code = cli.main(["demo", "--model", str(missing), "--out", str(tmp_path / "out")])
    err = capsys.readouterr().err
    assert code == 1 and str(missing) in err and "depth-unet export" in err
    assert not (tmp_path / "out").exists()


@pytest.mark.ros
def test_no_running_node_fails_within_the_timeout_with_the_diagnosis(tmp_path, capsys, monkeypatch):
    """--no-node with nothing running exits non-zero within --timeout (plus start-up), saying
    what to check."""
    pytest.importorskip("rclpy", reason="rclpy not installed (pip install .[ros])")
    monkeypatch.setenv("FASTDDS_BUILTIN_TRANSPORTS", os.environ.get("FASTDDS_BUILTIN_TRANSPORTS", "LARGE_DATA"))
    start = time.monotonic()
    code = cli.main(["demo", "--no-node", "--timeout", "2", "--frames", "1",
                     "--out", str(tmp_path / "out")])
    took_s = time.monotonic() - start
    err = capsys.readouterr().err
    assert code == 1, err
    assert "no depth_node publishing /depth/image after 2 s" in err and "ROS_DOMAIN_ID" in err
    assert took_s < 15.0  # 2 s wait + one synthetic frame + rclpy start


@pytest.mark.ros
@pytest.mark.slow
def test_a_node_that_cannot_load_its_model_ends_the_demo_with_its_log(tmp_path, capsys, monkeypatch):
    """A corrupt model makes the node exit; the demo stops waiting at once and quotes its log."""
    pytest.importorskip("rclpy", reason="rclpy not installed (pip install .[ros])")
    for key in ("FASTDDS_BUILTIN_TRANSPORTS", "ROS_AUTOMATIC_DISCOVERY_RANGE", "ROS_LOCALHOST_ONLY"):
        monkeypatch.delenv(key, raising=False)  # the demo mutates these; restore after
    corrupt = tmp_path / "corrupt.onnx"
    corrupt.write_bytes(b"\x00not a model" * 10)
    start = time.monotonic()
    code = cli.main(["demo", "--model", str(corrupt), "--frames", "1", "--timeout", "30",
                     "--out", str(tmp_path / "out")])
    err = capsys.readouterr().err
    assert code == 1, err
    assert "depth_node exited with code 1" in err and "depth-unet export" in err
    assert time.monotonic() - start < 25.0  # not the 30 s timeout


@pytest.mark.ros
@pytest.mark.slow
def test_demo_end_to_end_writes_report_metrics_and_figures(tiny_onnx_model, tmp_path):
    """`depth-unet demo --model tiny.onnx --frames 4` exits 0 and writes report.md, metrics.json
    (DESIGN's keys, 4 per-image rows, stream counts), latency_hist.png and comparisons."""
    pytest.importorskip("rclpy", reason="rclpy not installed (pip install .[ros])")
    out = tmp_path / "demo"
    exe = Path(sys.executable).with_name("depth-unet")
    command = [str(exe)] if exe.exists() else [sys.executable, "-m", "depth_unet_ros.cli"]
    result = subprocess.run(command + ["demo", "--model", str(tiny_onnx_model), "--frames", "4",
                                       "--rate", "10", "--out", str(out)],
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr
    for name in ("report.md", "metrics.json", "latency_hist.png", "error_vs_depth.png"):
        assert (out / name).stat().st_size > 0, name
    assert (out / "latency_hist.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    data = json.loads((out / "metrics.json").read_text())
    assert {"num_images", "metrics", "per_image"} <= set(data)
    assert set(data["metrics"]) == set(METRIC_NAMES)
    assert data["num_images"] == 4 and len(data["per_image"]) == 4
    assert data["stream"]["sent"] == 4 and data["stream"]["received"] + data["stream"]["missing"] == 4
    assert data["latency_ms"]["median"] > 0
    assert len(list((out / "comparisons").glob("*.png"))) >= 2
    report = (out / "report.md").read_text()
    assert "latency_hist.png" in report and "abs_rel" in report
    assert "end-to-end latency" in result.stdout and "report:" in result.stdout
    assert "delta1" in result.stdout  # the metric table
    # A second run into the same folder is refused.
    again = subprocess.run(command + ["demo", "--model", str(tiny_onnx_model), "--out", str(out)],
                           capture_output=True, text=True, timeout=60)
    assert again.returncode == 1 and "--overwrite" in again.stderr
