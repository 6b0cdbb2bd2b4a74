"""Default inference thread counts: physical cores from sysfs, and ONNX Runtime left unpinned."""
from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

from depth_unet_ros.cpu_cores import allowed_cpus, physical_cores
from depth_unet_ros.inference import bundled_model_path


def _fake_sysfs(root: Path, topology: dict[int, tuple[int, int]]) -> Path:
    """cpu<N>/topology/{physical_package_id,core_id} as Linux lays them out."""
    for cpu, (package, core) in topology.items():
        folder = root / f"cpu{cpu}" / "topology"
        folder.mkdir(parents=True)
        (folder / "physical_package_id").write_text(f"{package}\n")
        (folder / "core_id").write_text(f"{core}\n")
    return root


def test_hyperthread_siblings_count_once(tmp_path):
    # 2 cores x 2 threads, siblings numbered as Linux does on x86 (cpu0/cpu2 share core 0).
    sysfs = _fake_sysfs(tmp_path, {0: (0, 0), 1: (0, 1), 2: (0, 0), 3: (0, 1)})
    assert physical_cores([0, 1, 2, 3], sysfs) == 2
    assert physical_cores([0, 2], sysfs) == 1  # an affinity mask of one core's two threads


def test_equal_core_ids_on_two_packages_are_two_cores(tmp_path):
    sysfs = _fake_sysfs(tmp_path, {0: (0, 0), 1: (1, 0)})
    assert physical_cores([0, 1], sysfs) == 2


def test_without_topology_every_logical_cpu_counts(tmp_path):
    assert physical_cores([0, 1, 2], tmp_path / "absent") == 3
    sysfs = _fake_sysfs(tmp_path / "partial", {0: (0, 0)})
    assert physical_cores([0, 1], sysfs) == 2  # cpu1 unreadable: no guessing from half a topology
    assert physical_cores([], tmp_path) == 1


def test_this_machine_has_at_least_one_core_within_its_affinity():
    cpus = allowed_cpus()
    assert cpus and min(cpus) >= 0 and len(cpus) <= (os.cpu_count() or 1)
    assert 1 <= physical_cores() <= len(cpus)


def _affinity(task: str) -> str:
    for line in Path(f"/proc/self/task/{task}/status").read_text().splitlines():
        if line.startswith("Cpus_allowed_list"):
            return line.split(":", 1)[1].strip()
    raise AssertionError(f"no affinity for thread {task}")


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc thread affinities")
def test_onnxruntime_default_threads_are_one_per_core_and_not_pinned():
    """ONNX Runtime's own default pins each worker to one core; a pinned worker whose core a
    camera driver or DDS thread holds stalls every parallel operator (measured: 5 Hz camera,
    inference median 7.5 ms unpinned against 8.6-18.8 ms pinned)."""
    pytest.importorskip("onnxruntime")
    from depth_unet_ros.backends.onnxruntime_backend import OnnxRuntimeBackend

    model = Path(bundled_model_path())
    if not model.is_file():
        pytest.skip(f"bundled model absent at {model}")
    if physical_cores() < 2:
        pytest.skip("one core: ONNX Runtime starts no worker threads to pin")
    before = set(os.listdir("/proc/self/task"))
    backend = OnnxRuntimeBackend(model, providers=["CPUExecutionProvider"])
    workers = set(os.listdir("/proc/self/task")) - before
    assert backend.session.get_session_options().intra_op_num_threads == physical_cores()
    assert len(workers) >= physical_cores() - 1  # the calling thread is the last worker
    process = _affinity(str(os.getpid()))
    assert {task: _affinity(task) for task in workers} == {task: process for task in workers}
