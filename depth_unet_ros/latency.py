"""The latency summary every report gives: median and 90th percentile, in milliseconds.

One definition, so the node's /diagnostics, ``evaluate``, ``bag-eval`` and the benchmarks
compute the same figure the same way (linear interpolation between samples).
"""
from __future__ import annotations

import math
from typing import Sequence

import numpy as np


def percentile(values: Sequence[float], q: float) -> float:
    """The q-th percentile (0..100) by linear interpolation; NaN for no values."""
    if len(values) == 0:
        return math.nan
    return float(np.percentile(np.asarray(values, dtype=np.float64), q))


def latency_summary_ms(values: Sequence[float]) -> dict[str, float | None]:
    """``{"median": ..., "p90": ...}`` of latencies in ms; both None without values (JSON null)."""
    if len(values) == 0:
        return {"median": None, "p90": None}
    return {"median": percentile(values, 50), "p90": percentile(values, 90)}
