"""Time per frame of the feature tracker, alone and with the depth model running beside it.

The issue's requirement: the tracker keeps up with a 30 Hz camera (33 ms a frame) while the
depth node runs beside it on the same machine. Inputs are real model outputs, not random arrays
(the number of solver iterations depends on them): a synthetic hand-held sequence is rendered,
the bundled model predicts its depth and features once, and the tracker is then timed over the
frames at each depth size the node can publish (``output_size``: network = 240x320, input =
the camera's 480x640). The "beside" rows run the same frames while a second process runs the
bundled model's inference on a 640x480 image, paced at the camera rate as the node does
(``--depth-rate 0``: flat out, the worst case). Writes JSON and prints a Markdown table.

    python benchmarks/bench_tracker.py            # full run (about 2 minutes on 2 cores)
    python benchmarks/bench_tracker.py --quick    # CI smoke run (< 60 s)
"""
from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import platform
import sys
import time
from pathlib import Path
from typing import Any

# One BLAS thread, set before numpy loads: the tracker's products are small, and OpenBLAS's
# idle threads busy-wait, which doubled the tracker's CPU time here (21 -> 50 ms a frame) and
# takes a core from the depth process beside it. Export the variable to measure otherwise.
for _name in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_name, "1")

import numpy as np  # noqa: E402

CAMERA_HZ = 30.0
SIZES = {"network": (240, 320), "input": (480, 640)}  # the node's output_size choices


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    parser.add_argument("--frames", type=int, default=90, help="frames of the sequence (30 Hz)")
    parser.add_argument("--rounds", type=int, default=3, help="passes over the frames per row")
    parser.add_argument("--sizes", nargs="+", default=list(SIZES), choices=list(SIZES),
                        help="depth sizes the tracker is fed (the node's output_size)")
    parser.add_argument("--no-intensity", action="store_true",
                        help="also time the tracker on features alone (no image_rgb)")
    parser.add_argument("--depth-rate", type=float, default=CAMERA_HZ,
                        help="inference rate (Hz) of the depth process beside; 0 = flat out")
    parser.add_argument("--threads", type=int, default=1,
                        help="OpenCV threads in the tracker's process (0: OpenCV's default); its "
                             "arrays are small, so extra threads mostly add hand-over cost")
    parser.add_argument("--seed", type=int, default=1, help="synthetic sequence seed")
    parser.add_argument("--json", type=Path, default=Path("out/bench_tracker.json"))
    parser.add_argument("--quick", action="store_true",
                        help="CI smoke run: few frames, one round (numbers are indicative only)")
    args = parser.parse_args(argv)
    if args.quick:
        args.frames, args.rounds = 12, 1
    return args


def model_outputs(frames: int, seed: int) -> list[dict[str, Any]]:
    """Rendered frames with the bundled model's depth (network size) and HWC features."""
    from depth_unet_ros.datasets.synthetic.handheld import HandheldSequence
    from depth_unet_ros.inference import bundled_model_path, load_estimator

    seq = HandheldSequence(frames, seed=seed, height=480, width=640)
    i = seq.intrinsics
    k = np.array([[i.fx, 0.0, i.cx], [0.0, i.fy, i.cy], [0.0, 0.0, 1.0]])
    out = []
    with load_estimator(bundled_model_path()) as estimator:
        for n in range(frames):
            frame = seq[n]
            pred = estimator.predict(frame.image)
            out.append({"stamp_ns": seq.stamp_ns(n), "rgb": frame.image, "k": k,
                        "depth": pred.depth_m, "features": pred.features.transpose(1, 2, 0).copy()})
    return out


def depth_loop(rate_hz: float, ready: Any, stop: Any) -> None:
    """The depth node's work in another process: bundled-model inference at ``rate_hz``."""
    from depth_unet_ros.inference import bundled_model_path, load_estimator

    image = np.random.default_rng(0).integers(0, 256, (480, 640, 3), dtype=np.uint8)
    estimator = load_estimator(bundled_model_path())
    estimator.predict(image)
    ready.set()
    period = 1.0 / rate_hz if rate_hz > 0 else 0.0
    next_t = time.perf_counter()
    while not stop.is_set():
        estimator.predict(image, output_size="input")
        next_t += period
        time.sleep(max(0.0, next_t - time.perf_counter()))
        if period == 0.0 or time.perf_counter() - next_t > 1.0:
            next_t = time.perf_counter()  # fell behind (or flat out): do not try to catch up


def time_tracker(frames: list[dict[str, Any]], size: str, intensity: bool,
                 rounds: int) -> tuple[list[float], list[float]]:
    """(wall, CPU) seconds per ``track`` call over ``rounds`` passes (a reset before each).

    CPU time counts every thread of this process; on a loaded machine it shows the tracker's
    own cost where wall time also shows the wait for a core."""
    import cv2

    from depth_unet_ros.odometry.pyramid import scale_k
    from depth_unet_ros.odometry.tracker import FeatureTracker

    h, w = SIZES[size]
    inputs = []
    for f in frames:
        depth = f["depth"]
        if depth.shape != (h, w):
            depth = cv2.resize(depth, (w, h), interpolation=cv2.INTER_LINEAR)
        inputs.append((f["stamp_ns"], depth, f["features"], scale_k(f["k"], (480, 640), (h, w)),
                       f["rgb"] if intensity else None))
    tracker = FeatureTracker()
    wall, cpu = [], []
    for _ in range(rounds):
        tracker.reset()
        for stamp, depth, feats, k, rgb in inputs:
            t0, c0 = time.perf_counter(), time.process_time()
            tracker.track(stamp, depth, feats, k, rgb)
            wall.append(time.perf_counter() - t0)
            cpu.append(time.process_time() - c0)
    return wall, cpu


def summarise(wall: list[float], cpu: list[float]) -> dict[str, float]:
    ms = np.asarray(wall) * 1000.0
    median, p90 = float(np.median(ms)), float(np.percentile(ms, 90))
    return {"median_ms": median, "p90_ms": p90, "fps": 1000.0 / median,
            "cpu_median_ms": float(np.median(cpu)) * 1000.0,
            "within_budget": float(np.mean(ms <= 1000.0 / CAMERA_HZ))}


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    import cv2

    if args.threads > 0:
        cv2.setNumThreads(args.threads)
    print(f"rendering {args.frames} frames and running the bundled model once ...", flush=True)
    frames = model_outputs(args.frames, args.seed)
    variants = [True, False] if args.no_intensity else [True]
    rows = []
    for beside in (False, True):
        proc = stop = None
        if beside:
            ctx = mp.get_context("spawn")
            ready, stop = ctx.Event(), ctx.Event()
            proc = ctx.Process(target=depth_loop, args=(args.depth_rate, ready, stop), daemon=True)
            proc.start()
            if not ready.wait(120):
                print("the depth process did not start", file=sys.stderr)
                return 1
        try:
            for size in args.sizes:
                for intensity in variants:
                    wall, cpu = time_tracker(frames, size, intensity, args.rounds)
                    rows.append({"depth_size": size, "intensity": intensity,
                                 "depth_model_beside": beside, "frames": len(wall),
                                 **summarise(wall, cpu)})
        finally:
            if proc is not None:
                stop.set()
                proc.join(10)
    beside_text = (f"bundled model at {args.depth_rate:g} Hz" if args.depth_rate > 0
                   else "bundled model flat out")
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(f"\n{os.cpu_count()} CPUs, load average {load:.1f} at the end, OpenCV threads "
          f"{cv2.getNumThreads()}, BLAS threads {os.environ['OPENBLAS_NUM_THREADS']}")
    print("\n| depth size | inputs | beside | median ms | p90 ms | fps | CPU ms | frames <= 33 ms |")
    print("|---|---|---|---:|---:|---:|---:|---:|")
    for r in rows:
        h, w = SIZES[r["depth_size"]]
        print(f"| {r['depth_size']} {w}x{h} | {'features + image' if r['intensity'] else 'features'} "
              f"| {beside_text if r['depth_model_beside'] else 'nothing'} | {r['median_ms']:.1f} "
              f"| {r['p90_ms']:.1f} | {r['fps']:.0f} | {r['cpu_median_ms']:.1f} "
              f"| {100 * r['within_budget']:.0f} % |")
    report = {"rows": rows, "camera_hz": CAMERA_HZ, "depth_rate_hz": args.depth_rate,
              "frames": args.frames, "rounds": args.rounds, "seed": args.seed,
              "cpu_count": os.cpu_count(), "load_average_end": load,
              "opencv_threads": cv2.getNumThreads(), "python": platform.python_version(),
              "numpy": np.__version__}
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(report, indent=2))
    print(f"\nwrote {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
