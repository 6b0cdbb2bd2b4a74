"""Latency of the inference backends per model preset, input size and CPU thread count.

Each preset is built with random weights (speed does not depend on their values), exported to a
temporary ONNX file, and run by ONNX Runtime and PyTorch on a (1, H, W, 3) uint8 frame at the
network size: ``backend.infer``, the network alone, without the camera-image resize. For each
(size, threads), every selected preset x backend is timed in interleaved rounds (unet-small ORT,
unet-small torch, fastdepth ORT, fastdepth torch, ..., then again) so that all of them see the
same machine state (thermal throttling, other processes): both the backend ratio and the
default-vs-FastDepth ratio are side-by-side measurements. Writes JSON and prints Markdown tables.

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
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

BACKENDS = ("onnxruntime", "torch")
PRESETS = ("unet-small", "unet-large", "fastdepth", "effnet-lite0")
DEFAULT_PRESET = "effnet-lite0"  # the model the node ships with
BASELINE_PRESET = "fastdepth"  # the requirement: the default is no slower than this at the same input


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    parser.add_argument("--presets", nargs="+", default=list(PRESETS), choices=PRESETS,
                        help="model presets to measure")
    parser.add_argument("--sizes", nargs="+", default=["240x320"],
                        help="network input sizes as HxW (multiples of 4)")
    parser.add_argument("--threads", nargs="+", type=int, default=[1, 2], help="CPU thread counts")
    parser.add_argument("--backends", nargs="+", default=list(BACKENDS), choices=BACKENDS)
    parser.add_argument("--rounds", type=int, default=10, help="interleaved rounds per preset x backend")
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


@dataclass
class BuiltPreset:
    """One preset at one input size: the PyTorch model, its ONNX export and its cost."""

    name: str
    model: Any  # torch.nn.Module, in eval mode
    metadata: Any  # ModelMetadata
    onnx_path: Path
    gmacs: float
    params_m: float


def build_preset(preset_name: str, size_hw: tuple[int, int], folder: Path) -> BuiltPreset:
    """Random-weight model for `preset_name` at `size_hw`, exported to ONNX under `folder`."""
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
    return BuiltPreset(preset_name, model, metadata, onnx_path,
                       gmacs=count_macs(model, *size_hw) / 1e9, params_m=count_parameters(model) / 1e6)


def make_runners(built: BuiltPreset, threads: int, backends: list[str], spinning: bool) -> dict:
    """(preset, backend) -> (set-up callable run before each round, backend object)."""
    import torch

    from depth_unet_ros.backends.onnxruntime_backend import OnnxRuntimeBackend
    from depth_unet_ros.backends.torch_backend import TorchBackend

    runners = {}
    if "onnxruntime" in backends:
        ort_backend = OnnxRuntimeBackend(built.onnx_path, intra_op_num_threads=threads,
                                         providers=["CPUExecutionProvider"], allow_spinning=spinning)
        runners[(built.name, "onnxruntime")] = (lambda: None, ort_backend)
    if "torch" in backends:
        runners[(built.name, "torch")] = (lambda: torch.set_num_threads(threads),
                                          TorchBackend.from_model(built.model, built.metadata))
    return runners


def time_interleaved(runners: dict, frame: np.ndarray, rounds: int, iters: int, warmup: int) -> dict:
    """runner key -> per-inference latencies in ms; each round runs every runner once, in order."""
    samples: dict[Any, list[float]] = {key: [] for key in runners}
    for setup, backend in runners.values():
        setup()
        for _ in range(warmup):
            backend.infer(frame)
    for _ in range(rounds):
        for key, (setup, backend) in runners.items():
            setup()
            for _ in range(iters):
                start = time.perf_counter()
                backend.infer(frame)
                samples[key].append((time.perf_counter() - start) * 1e3)
    return samples


def summarize(latencies_ms: list[float]) -> dict[str, float]:
    values = np.asarray(latencies_ms)
    median = float(np.median(values))
    return {"median_ms": round(median, 3), "p90_ms": round(float(np.percentile(values, 90)), 3),
            "fps": round(1e3 / median, 2), "samples": int(values.size)}


def bench_size(size_hw: tuple[int, int], folder: Path, args: argparse.Namespace) -> list[dict]:
    """Every (preset, backend, threads) row at one input size, all presets x backends interleaved."""
    built = {name: build_preset(name, size_hw, folder) for name in args.presets}
    frame = np.random.default_rng(0).integers(0, 256, (1, *size_hw, 3), dtype=np.uint8)
    size = f"{size_hw[0]}x{size_hw[1]}"
    rows = []
    for threads in args.threads:
        runners = {}
        for model in built.values():
            runners.update(make_runners(model, threads, args.backends, args.ort_spinning))
        samples = time_interleaved(runners, frame, args.rounds, args.iters, args.warmup)
        group = [{"preset": name, "input": size, "backend": backend, "threads": threads,
                  "gmacs": round(built[name].gmacs, 3), "params_m": round(built[name].params_m, 3),
                  **summarize(latencies)} for (name, backend), latencies in samples.items()]
        print(f"  {size} threads={threads}: "
              + ", ".join(f"{r['preset']} {r['backend']} {r['median_ms']:.1f} ms" for r in group),
              file=sys.stderr)
        rows.extend(group)
    return rows


def add_vs_onnxruntime(rows: list[dict]) -> None:
    """Each row's median relative to ONNX Runtime's for the same preset, input and threads."""
    base = {(r["preset"], r["input"], r["threads"]): r["median_ms"] for r in rows if r["backend"] == "onnxruntime"}
    for row in rows:
        ref = base.get((row["preset"], row["input"], row["threads"]))
        row["vs_onnxruntime"] = round(row["median_ms"] / ref, 3) if ref else None


def default_speedups(rows: list[dict]) -> list[dict]:
    """Per (input, threads, backend): baseline median / default median; > 1: the default is faster."""
    medians = {(r["preset"], r["input"], r["threads"], r["backend"]): r["median_ms"] for r in rows}
    ratios = []
    for (preset_name, size, threads, backend), default_ms in medians.items():
        baseline_ms = medians.get((BASELINE_PRESET, size, threads, backend))
        if preset_name != DEFAULT_PRESET or baseline_ms is None:
            continue
        ratios.append({"input": size, "threads": threads, "backend": backend,
                       f"{DEFAULT_PRESET}_ms": default_ms, f"{BASELINE_PRESET}_ms": baseline_ms,
                       "speedup": round(baseline_ms / default_ms, 3)})
    return ratios


def markdown_table(rows: list[dict]) -> str:
    header = ("| preset | input | GMACs | params (M) | backend | threads | median ms | p90 ms | fps | x ORT |\n"
              "|---|---|---|---|---|---|---|---|---|---|")
    lines = [f"| {r['preset']} | {r['input']} | {r['gmacs']:.2f} | {r['params_m']:.2f} | {r['backend']} | "
             f"{r['threads']} | {r['median_ms']:.1f} | {r['p90_ms']:.1f} | {r['fps']:.1f} | "
             f"{'' if r['vs_onnxruntime'] is None else format(r['vs_onnxruntime'], '.2f')} |" for r in rows]
    return "\n".join([header, *lines])


def markdown_speedups(ratios: list[dict]) -> str:
    """One line per ratio: how much faster the default is than the baseline, measured interleaved."""
    if not ratios:
        return f"(no {DEFAULT_PRESET} vs {BASELINE_PRESET} ratio: select both presets to get one)"
    return "\n".join(
        f"- {r['input']}, {r['backend']}, {r['threads']} thread(s): {DEFAULT_PRESET} is "
        f"{r['speedup']:.2f}x as fast as {BASELINE_PRESET} ({BASELINE_PRESET}_ms / {DEFAULT_PRESET}_ms = "
        f"{r[f'{BASELINE_PRESET}_ms']:.1f} / {r[f'{DEFAULT_PRESET}_ms']:.1f})" for r in ratios)


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
        for size_hw in sizes:
            rows.extend(bench_size(size_hw, Path(tmp), args))
    add_vs_onnxruntime(rows)
    ratios = default_speedups(rows)
    report = {"environment": environment(),
              "settings": {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()},
              "method": "backend.infer on one (1, H, W, 3) uint8 frame at the network size; for each "
                        "(input, threads), all presets x backends interleaved round by round; latency per "
                        f"inference; ratios: speedup = {BASELINE_PRESET}_ms / {DEFAULT_PRESET}_ms (medians, "
                        f"> 1: {DEFAULT_PRESET} is faster)",
              "results": rows, "ratios": ratios, "wall_s": round(time.perf_counter() - started, 1)}
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(report, indent=2) + "\n")
    print(markdown_table(rows))
    print(f"\n{DEFAULT_PRESET} vs {BASELINE_PRESET}, same input, measured interleaved:")
    print(markdown_speedups(ratios))
    print(f"\n{len(rows)} rows in {report['wall_s']} s; JSON: {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
