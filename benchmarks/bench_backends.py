"""Latency of the inference backends per model preset, input size and CPU thread count.

Each preset is built with random weights (speed does not depend on their values), exported to a
temporary ONNX file, and run by ONNX Runtime and PyTorch on a (1, H, W, 3) uint8 frame at the
network size: ``backend.infer``, the network alone, without the camera-image resize. The
backends of one (preset, size, threads) group are timed in interleaved rounds (A, B, A, B, ...)
so that both see the same machine state (thermal throttling, other processes), and their ratio
is measured side by side. Writes JSON and prints a Markdown table.

    python benchmarks/bench_backends.py                # full run (minutes)
    python benchmarks/bench_backends.py --quick        # CI smoke run (< 60 s on 2 cores)
"""
from __future__ import annotations

import argparse
import json
import platform
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

BACKENDS = ("onnxruntime", "torch")
PRESETS = ("unet-small", "unet-large", "fastdepth")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    parser.add_argument("--presets", nargs="+", default=list(PRESETS), choices=PRESETS,
                        help="model presets to measure")
    parser.add_argument("--sizes", nargs="+", default=["240x320"],
                        help="network input sizes as HxW (multiples of 4)")
    parser.add_argument("--threads", nargs="+", type=int, default=[1, 2], help="CPU thread counts")
    parser.add_argument("--backends", nargs="+", default=list(BACKENDS), choices=BACKENDS)
    parser.add_argument("--rounds", type=int, default=10, help="interleaved rounds per backend")
    parser.add_argument("--iters", type=int, default=10, help="timed inferences per round")
    parser.add_argument("--warmup", type=int, default=5, help="untimed inferences before the first round")
    parser.add_argument("--json", type=Path, default=Path("out/bench_backends.json"), help="JSON output file")
    parser.add_argument("--ort-spinning", action="store_true",
                        help="let ONNX Runtime's idle threads busy-wait (its default; faster alone, but "
                             "it steals the CPU from the backend timed next)")
    parser.add_argument("--quick", action="store_true",
                        help="CI smoke run: small inputs, few rounds (numbers are indicative only)")
    args = parser.parse_args(argv)
    if args.quick:
        args.sizes, args.rounds, args.iters, args.warmup = ["96x128"], 2, 3, 1
    return args


def parse_size(text: str) -> tuple[int, int]:
    try:
        h, w = (int(v) for v in text.lower().split("x"))
    except ValueError:
        raise SystemExit(f"--sizes: expected HxW such as 240x320, got {text!r}") from None
    return h, w


def make_runners(model: Any, onnx_path: Path, metadata: Any, threads: int, backends: list[str],
                 spinning: bool) -> dict:
    """backend name -> (set-up callable run before each round, backend object)."""
    import torch

    from depth_unet_ros.backends.onnxruntime_backend import OnnxRuntimeBackend
    from depth_unet_ros.backends.torch_backend import TorchBackend

    runners = {}
    if "onnxruntime" in backends:
        ort_backend = OnnxRuntimeBackend(onnx_path, intra_op_num_threads=threads,
                                         providers=["CPUExecutionProvider"], allow_spinning=spinning)
        runners["onnxruntime"] = (lambda: None, ort_backend)
    if "torch" in backends:
        runners["torch"] = (lambda: torch.set_num_threads(threads), TorchBackend.from_model(model, metadata))
    return runners


def time_interleaved(runners: dict, frame: np.ndarray, rounds: int, iters: int, warmup: int) -> dict:
    """backend name -> per-inference latencies in ms, rounds interleaved A, B, A, B, ..."""
    samples: dict[str, list[float]] = {name: [] for name in runners}
    for setup, backend in runners.values():
        setup()
        for _ in range(warmup):
            backend.infer(frame)
    for _ in range(rounds):
        for name, (setup, backend) in runners.items():
            setup()
            for _ in range(iters):
                start = time.perf_counter()
                backend.infer(frame)
                samples[name].append((time.perf_counter() - start) * 1e3)
    return samples


def summarize(latencies_ms: list[float]) -> dict[str, float]:
    values = np.asarray(latencies_ms)
    median = float(np.median(values))
    return {"median_ms": round(median, 3), "p90_ms": round(float(np.percentile(values, 90)), 3),
            "fps": round(1e3 / median, 2), "samples": int(values.size)}


def bench_group(preset_name: str, size_hw: tuple[int, int], folder: Path, args: argparse.Namespace) -> list[dict]:
    """Every (backend, threads) row for one preset at one input size."""
    import dataclasses

    import torch

    from depth_unet_ros.model_metadata import ModelMetadata
    from training.export import export_onnx
    from training.model import build_model
    from training.model_config import preset
    from training.model_info import count_macs, count_parameters

    config = dataclasses.replace(preset(preset_name), input_height=size_hw[0], input_width=size_hw[1])
    torch.manual_seed(0)
    model = build_model(config).eval()
    metadata = ModelMetadata.for_model_config(config, train_data="random init (benchmark)")
    onnx_path = export_onnx(model, folder / f"{preset_name}_{size_hw[0]}x{size_hw[1]}.onnx", metadata)
    gmacs = count_macs(model, *size_hw) / 1e9
    params_m = count_parameters(model) / 1e6
    frame = np.random.default_rng(0).integers(0, 256, (1, *size_hw, 3), dtype=np.uint8)
    rows = []
    for threads in args.threads:
        runners = make_runners(model, onnx_path, metadata, threads, args.backends, args.ort_spinning)
        samples = time_interleaved(runners, frame, args.rounds, args.iters, args.warmup)
        for name, latencies in samples.items():
            rows.append({"preset": preset_name, "input": f"{size_hw[0]}x{size_hw[1]}", "backend": name,
                         "threads": threads, "gmacs": round(gmacs, 3), "params_m": round(params_m, 3),
                         **summarize(latencies)})
        print(f"  {preset_name} {size_hw[0]}x{size_hw[1]} threads={threads}: "
              + ", ".join(f"{r['backend']} {r['median_ms']:.1f} ms" for r in rows[-len(samples):]),
              file=sys.stderr)
    return rows


def add_ratios(rows: list[dict]) -> None:
    """Each row's median relative to ONNX Runtime's in the same group (measured interleaved)."""
    base = {(r["preset"], r["input"], r["threads"]): r["median_ms"] for r in rows if r["backend"] == "onnxruntime"}
    for row in rows:
        ref = base.get((row["preset"], row["input"], row["threads"]))
        row["vs_onnxruntime"] = round(row["median_ms"] / ref, 3) if ref else None


def markdown_table(rows: list[dict]) -> str:
    header = ("| preset | input | GMACs | params (M) | backend | threads | median ms | p90 ms | fps | x ORT |\n"
              "|---|---|---|---|---|---|---|---|---|---|")
    lines = [f"| {r['preset']} | {r['input']} | {r['gmacs']:.2f} | {r['params_m']:.2f} | {r['backend']} | "
             f"{r['threads']} | {r['median_ms']:.1f} | {r['p90_ms']:.1f} | {r['fps']:.1f} | "
             f"{'' if r['vs_onnxruntime'] is None else format(r['vs_onnxruntime'], '.2f')} |" for r in rows]
    return "\n".join([header, *lines])


def environment() -> dict[str, Any]:
    import os

    import onnxruntime
    import torch

    return {"python": platform.python_version(), "machine": platform.machine(),
            "processor": platform.processor() or platform.machine(), "cpu_count": os.cpu_count(),
            "onnxruntime": onnxruntime.__version__, "torch": torch.__version__,
            "time": time.strftime("%Y-%m-%dT%H:%M:%S%z")}


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    sizes = [parse_size(s) for s in args.sizes]
    started = time.perf_counter()
    rows: list[dict] = []
    with tempfile.TemporaryDirectory(prefix="bench_backends_") as tmp:
        for preset_name in args.presets:
            for size_hw in sizes:
                rows.extend(bench_group(preset_name, size_hw, Path(tmp), args))
    add_ratios(rows)
    report = {"environment": environment(),
              "settings": {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()},
              "method": "backend.infer on one (1, H, W, 3) uint8 frame at the network size; "
                        "backends interleaved round by round; latency per inference",
              "results": rows, "wall_s": round(time.perf_counter() - started, 1)}
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(report, indent=2) + "\n")
    print(markdown_table(rows))
    print(f"\n{len(rows)} rows in {report['wall_s']} s; JSON: {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
