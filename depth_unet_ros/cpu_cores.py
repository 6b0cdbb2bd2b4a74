"""How many physical cores this process may run on, for default inference thread counts."""
from __future__ import annotations

import os
from pathlib import Path
from typing import Iterable

SYSFS_CPU = Path("/sys/devices/system/cpu")


def allowed_cpus() -> list[int]:
    """The logical CPUs this process may be scheduled on (its affinity mask where the OS has one)."""
    get_affinity = getattr(os, "sched_getaffinity", None)  # Linux only
    if get_affinity is not None:
        return sorted(get_affinity(0))
    return list(range(os.cpu_count() or 1))


def physical_cores(cpus: Iterable[int] | None = None, sysfs: Path = SYSFS_CPU) -> int:
    """Distinct (package, core) pairs among ``cpus`` (default: ``allowed_cpus()``).

    Hyperthread siblings count once, as in ONNX Runtime's and PyTorch's own defaults. Where sysfs
    has no topology (macOS, Windows, some sandboxes) every logical CPU counts.
    """
    cpus = list(allowed_cpus() if cpus is None else cpus)
    cores: set[tuple[int, int]] = set()
    for cpu in cpus:
        topology = sysfs / f"cpu{cpu}" / "topology"
        try:
            cores.add((int((topology / "physical_package_id").read_text()),
                       int((topology / "core_id").read_text())))
        except (OSError, ValueError):
            return max(1, len(cpus))
    return max(1, len(cores))
