"""The package builds with colcon as a ROS 2 ament_python package with everything ros2 launch needs."""
from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
COLCON = shutil.which("colcon", path=str(Path(sys.executable).parent)) or shutil.which("colcon")

pytestmark = pytest.mark.skipif(COLCON is None, reason="colcon is not installed (pip install .[dev])")


def _colcon(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run([COLCON, "--log-base", str(cwd / "log"), *args], cwd=cwd,
                          capture_output=True, text=True, timeout=300)


def test_colcon_identifies_an_ament_python_package(tmp_path: Path) -> None:
    """catkin_pkg accepts package.xml, so colcon sees ros.ament_python, not a plain Python package."""
    result = _colcon("list", "--base-paths", str(REPO), cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    name, _, kind = result.stdout.split("\t")
    assert name == "depth_unet_ros"
    assert kind.strip() == "(ros.ament_python)"


def test_colcon_build_installs_marker_manifest_launch_config_node_model_and_sample_bag(
        tmp_path: Path) -> None:
    """The install space holds what `ros2 launch depth_unet_ros depth.launch.py` looks up."""
    result = _colcon("build", "--base-paths", str(REPO), "--build-base", str(tmp_path / "build"),
                     "--install-base", str(tmp_path / "install"), cwd=tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    prefix = tmp_path / "install" / "depth_unet_ros"
    share = prefix / "share" / "depth_unet_ros"
    assert (prefix / "share/ament_index/resource_index/packages/depth_unet_ros").is_file()
    assert (share / "package.xml").is_file()
    assert (share / "launch" / "depth.launch.py").is_file()
    assert (share / "config" / "depth.yaml").is_file()
    assert (share / "config" / "vo.yaml").is_file()  # launch's vo:=true
    for executable in ("depth_node", "vo_node"):
        node = prefix / "lib" / "depth_unet_ros" / executable
        assert node.is_file() and node.stat().st_mode & 0o111, f"{executable} must be an executable"
    assert (prefix / "lib" / "depth_unet_ros" / "depth-unet").is_file()
    # The bundled model and sample bag travel with the Python package, so `depth-unet demo`
    # and the node's default model work from a colcon install too.
    packages = list(prefix.glob("lib/python3*/site-packages/depth_unet_ros"))
    assert len(packages) == 1, packages
    assert (packages[0] / "models" / "default.onnx").stat().st_size > 1_000_000
    bag = packages[0] / "data" / "sample_handheld"
    assert (bag / "metadata.yaml").is_file() and (bag / "sample_handheld.mcap").is_file()
