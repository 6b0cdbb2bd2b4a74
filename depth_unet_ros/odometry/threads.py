"""One math thread for pose tracking, set by the programs that track (vo_node, ``odometry``).

The tracker's solves are many small products: OpenBLAS's pool threads busy-wait between them and
OpenCV spreads each small remap over every core, so beside the depth node on a small CPU they
cost more than they save (bench_tracker: about 21 ms of CPU a frame with one thread each, about
50 ms with the pools). The library never changes process-wide settings itself; executables call
this once at start. ``threadpoolctl`` (the scikit-learn team's) sets BLAS's thread count after
numpy has loaded, which the OPENBLAS_NUM_THREADS variable cannot.
"""
from __future__ import annotations


def use_one_math_thread() -> None:
    """OpenCV and the BLAS numpy uses run on the calling thread only, from now on."""
    import cv2
    from threadpoolctl import threadpool_limits

    cv2.setNumThreads(1)
    threadpool_limits(limits=1, user_api="blas")
