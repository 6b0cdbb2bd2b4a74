"""Depth for image files (``depth-unet infer``): 16-bit PNG, float32 .npy and a colour map each.

Per image ``<stem>_depth.png`` (uint16 millimetres, 0 = invalid), ``<stem>_depth.npy`` (float32
metres) and ``<stem>_color.png`` (turbo colour map, near = blue).
"""
from __future__ import annotations

import argparse
from pathlib import Path

import cv2
import numpy as np

from depth_unet_ros.errors import ImageFormatError
from depth_unet_ros.backends import BACKEND_CHOICES
from depth_unet_ros.inference import OUTPUT_SIZES

MM_PER_M = 1000.0
MAX_MM = np.iinfo(np.uint16).max  # 65.5 m: anything farther saturates


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("images", nargs="+", type=Path, help="image files (any OpenCV-readable format)")
    parser.add_argument("--model", default="",
                        help="model: .onnx, .engine, or a .pt checkpoint; default: the bundled model")
    parser.add_argument("--out", type=Path, required=True, help="output folder (created)")
    parser.add_argument("--backend", choices=BACKEND_CHOICES, default="auto", help="inference backend")
    parser.add_argument("--output-size", choices=OUTPUT_SIZES, default="input",
                        help="depth at each image's own size, or at the network's input size")


def depth_to_mm(depth_m: np.ndarray) -> np.ndarray:
    """(H, W) metres -> uint16 millimetres; NaN, inf and <= 0 become 0 (= invalid)."""
    depth = np.nan_to_num(np.asarray(depth_m, np.float64), nan=0.0, posinf=0.0, neginf=0.0)
    return np.clip(np.rint(depth * MM_PER_M), 0, MAX_MM).astype(np.uint16)


def read_rgb(path: Path) -> np.ndarray:
    """An image file as (H, W, 3) uint8 RGB (OpenCV reads BGR)."""
    bgr = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if bgr is None:
        raise ImageFormatError(f"cannot read image {path}; check the path and that it is a PNG/JPEG")
    return cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)


def write_outputs(out_dir: Path, stem: str, depth_m: np.ndarray) -> list[Path]:
    """The three files for one image; returns their paths."""
    from depth_unet_ros.visualize import colorize_depth, save_png

    out_dir.mkdir(parents=True, exist_ok=True)
    png, npy, color = (out_dir / f"{stem}_depth.png", out_dir / f"{stem}_depth.npy",
                       out_dir / f"{stem}_color.png")
    if not cv2.imwrite(str(png), depth_to_mm(depth_m)):
        raise OSError(f"could not write {png}; check the folder is writable")
    np.save(npy, np.asarray(depth_m, np.float32))
    save_png(color, colorize_depth(depth_m))
    return [png, npy, color]


def run(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from depth_unet_ros.inference import load_estimator

    missing = [str(p) for p in args.images if not p.is_file()]
    if missing:
        raise ImageFormatError(f"image file(s) not found: {', '.join(missing)}")
    stems = [p.stem for p in args.images]
    duplicates = sorted({s for s in stems if stems.count(s) > 1})
    if duplicates:
        raise ImageFormatError(f"several images share the name(s) {', '.join(duplicates)}; their "
                               "outputs would overwrite each other, run them into separate --out folders")
    with load_estimator(args.model or "", backend=args.backend) as estimator:
        for path in tqdm(args.images, desc="depth", unit="img"):
            prediction = estimator.predict(read_rgb(path), output_size=args.output_size)
            write_outputs(args.out, path.stem, prediction.depth_m)
    print(f"wrote {3 * len(args.images)} files to {args.out} ({estimator.backend.name} backend)")
    return 0
