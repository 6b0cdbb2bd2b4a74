"""Let per-frame megabyte buffers reuse warm heap pages instead of fresh mmap pages (glibc).

glibc serves an allocation at or above its mmap threshold (128 KiB, raised only when a larger
mapped block is freed) from newly mapped pages, page-faulted in on first touch and unmapped
again on free. A node that receives, post-processes and serializes a VGA frame every few
milliseconds then faults in megabytes per frame: measured 1.5-2 ms more end-to-end latency per
640x480 frame in a depth_node whose model did not happen to raise the threshold (ONNX Runtime's
own allocations do; a TensorRT or another backend's may not). ROS 2's real-time guidance tunes
glibc's allocator with mallopt for the same reason.
"""
from __future__ import annotations

import ctypes
import os
from typing import Any, Callable, Mapping

M_TRIM_THRESHOLD, M_MMAP_THRESHOLD = -1, -3  # glibc <malloc.h>
# Heap-served below 32 MiB (a 4K float32 frame is 25 MiB); 32 MiB is the largest threshold that
# every 64-bit glibc accepts. Up to 64 MiB of freed heap is kept for the next frames.
MMAP_THRESHOLD_BYTES = 32 << 20
TRIM_THRESHOLD_BYTES = 64 << 20
USER_SETTINGS = ("MALLOC_MMAP_THRESHOLD_", "MALLOC_TRIM_THRESHOLD_")


def _glibc() -> Any | None:
    """glibc's handle, or None on another C library (musl, macOS, Windows)."""
    try:
        libc = ctypes.CDLL(None)  # this process's own symbols: no library search at start-up
    except OSError:
        return None
    is_glibc = hasattr(libc, "gnu_get_libc_version") and hasattr(libc, "mallopt")
    return libc if is_glibc else None


def reuse_frame_buffers(environ: Mapping[str, str] = os.environ,
                        load_libc: Callable[[], Any | None] = _glibc) -> bool:
    """Raise glibc's mmap and trim thresholds for this process; True when applied.

    Leaves everything as it is off glibc and when the user set either threshold through glibc's
    environment variables (theirs win).
    """
    if any(name in environ for name in USER_SETTINGS):
        return False
    libc = load_libc()
    if libc is None:
        return False
    return bool(libc.mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD_BYTES)) and bool(
        libc.mallopt(M_TRIM_THRESHOLD, TRIM_THRESHOLD_BYTES))
