"""glibc tuning for per-frame buffers: it removes the page faults, and stays out of the way."""
from __future__ import annotations

import os
import subprocess
import sys
import textwrap

import pytest

from depth_unet_ros import allocator
from depth_unet_ros.allocator import (M_MMAP_THRESHOLD, M_TRIM_THRESHOLD, MMAP_THRESHOLD_BYTES,
                                      TRIM_THRESHOLD_BYTES, reuse_frame_buffers)

FRAMES = 50
# One 640x480 depth frame and its serialized copy per iteration, as the node makes them.
FAULT_PROBE = textwrap.dedent(f"""
    import resource, sys
    import numpy as np
    from depth_unet_ros.allocator import reuse_frame_buffers
    applied = reuse_frame_buffers() if sys.argv[1] == "tuned" else False
    before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    for _ in range({FRAMES}):
        depth = np.empty((480, 640), np.float32)
        depth.fill(1.0)
        wire = bytes(depth.data)
        del depth, wire
    print(applied, resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)
""")


class FakeLibc:
    def __init__(self, accepts: bool = True):
        self.calls: list[tuple[int, int]] = []
        self.accepts = accepts

    def mallopt(self, param: int, value: int) -> int:
        self.calls.append((param, value))
        return int(self.accepts)


def _page_faults(mode: str) -> tuple[bool, int]:
    env = {k: v for k, v in os.environ.items() if k not in allocator.USER_SETTINGS}
    out = subprocess.run([sys.executable, "-c", FAULT_PROBE, mode], capture_output=True, text=True,
                         check=True, env=env).stdout.split()
    return out[0] == "True", int(out[1])


@pytest.mark.skipif(allocator._glibc() is None, reason="glibc only")
def test_tuned_process_stops_faulting_in_fresh_pages_for_every_frame():
    applied_plain, plain = _page_faults("plain")
    applied_tuned, tuned = _page_faults("tuned")
    assert (applied_plain, applied_tuned) == (False, True)
    pages_per_frame = 2 * 480 * 640 * 4 // 4096
    if plain < FRAMES * pages_per_frame // 2:
        pytest.skip(f"this glibc reuses frame buffers by itself ({plain} faults in {FRAMES} frames)")
    assert tuned < plain / 10, (plain, tuned)


def test_sets_both_thresholds_through_mallopt():
    libc = FakeLibc()
    assert reuse_frame_buffers(environ={}, load_libc=lambda: libc)
    assert libc.calls == [(M_MMAP_THRESHOLD, MMAP_THRESHOLD_BYTES), (M_TRIM_THRESHOLD, TRIM_THRESHOLD_BYTES)]
    assert MMAP_THRESHOLD_BYTES >= 1920 * 1080 * 4 * 3  # a full-HD float32 3-channel frame fits


@pytest.mark.parametrize("variable", ["MALLOC_MMAP_THRESHOLD_", "MALLOC_TRIM_THRESHOLD_"])
def test_a_users_own_glibc_setting_wins(variable):
    libc = FakeLibc()
    assert not reuse_frame_buffers(environ={variable: "1048576"}, load_libc=lambda: libc)
    assert libc.calls == []


def test_other_c_libraries_and_refusals_are_reported_not_raised():
    assert not reuse_frame_buffers(environ={}, load_libc=lambda: None)
    assert not reuse_frame_buffers(environ={}, load_libc=lambda: FakeLibc(accepts=False))
