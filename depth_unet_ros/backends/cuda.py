"""The CUDA runtime calls the TensorRT backend and INT8 calibration share (cuda-python).

Imported only by those two, and cuda-python itself only when a call is made, so the runtime
package loads where there is no GPU.
"""
from __future__ import annotations

from typing import Any


def import_cudart() -> Any:
    """cuda-python's runtime module, under its new or its old import path."""
    try:
        from cuda.bindings import runtime as cudart  # cuda-python >= 12.6
    except ImportError:
        from cuda import cudart  # older cuda-python (JetPack 5/6 wheels)
    return cudart


def check_cuda(result: Any) -> Any:
    """Unwrap cuda-python's ``(err, *values)`` tuples, raising on errors."""
    cudart = import_cudart()
    err, *values = result
    if err != cudart.cudaError_t.cudaSuccess:
        raise RuntimeError(f"CUDA call failed: {cudart.cudaGetErrorString(err)[1]!r} ({err})")
    return values[0] if len(values) == 1 else (values or None)
