"""Estimate a colour-depth rig (colour focal, principal point, baseline) from edge alignment.

Why: 7-Scenes ships no colour calibration. Depth discontinuities (an object in front of a wall)
are also colour edges, so the calibration under which the registered depth's edges fall on the
colour image's edges is the right one. The score is the mean distance, in colour pixels, from
each depth edge to the nearest colour edge (capped, so clutter without a depth edge does not
dominate); lower is better. numpy + OpenCV only.

    python -m training.rig_calibration --data ../shared/data/real_handheld_7scenes --frames 0:400:20
"""
from __future__ import annotations

import argparse
import itertools
import json
from typing import Sequence

import cv2
import numpy as np

from depth_unet_ros.datasets.base import Intrinsics, RGBDFrame
from depth_unet_ros.datasets.registration import register_depth

DISTANCE_CAP_PX = 8.0  # depth edges farther than this from any colour edge count as this far
EDGE_LOG_STEP = 0.08  # a depth edge: neighbours differ by more than 8 % in depth


def colour_edge_distance(image: np.ndarray) -> np.ndarray:
    """(H, W) distance in pixels from each pixel to the nearest Canny edge of the colour image."""
    gray = cv2.GaussianBlur(cv2.cvtColor(image, cv2.COLOR_RGB2GRAY), (5, 5), 1.2)
    edges = cv2.Canny(gray, 30, 90)
    return cv2.distanceTransform((edges == 0).astype(np.uint8), cv2.DIST_L2, 3)


def depth_edges(depth_m: np.ndarray) -> np.ndarray:
    """(H, W) bool: valid pixels beside a valid neighbour more than EDGE_LOG_STEP away in log depth."""
    log_d = np.log(np.where(depth_m > 0, depth_m, 1.0))
    valid = depth_m > 0
    edge = np.zeros_like(valid)
    for axis in (0, 1):
        step = np.abs(np.diff(log_d, axis=axis)) > EDGE_LOG_STEP
        both = valid[1:, :] & valid[:-1, :] if axis == 0 else valid[:, 1:] & valid[:, :-1]
        jump = step & both
        if axis == 0:
            edge[1:, :] |= jump
            edge[:-1, :] |= jump
        else:
            edge[:, 1:] |= jump
            edge[:, :-1] |= jump
    return edge


def alignment_score(frames: Sequence[RGBDFrame], distances: Sequence[np.ndarray],
                    colour: Intrinsics, t_m: tuple[float, float, float]) -> float:
    """Mean capped edge distance (pixels) over ``frames`` for one candidate calibration."""
    total, count = 0.0, 0
    for frame, dist in zip(frames, distances):
        registered = register_depth(frame.depth_m, frame.intrinsics, colour, t_m)
        edges = depth_edges(registered)
        total += float(np.minimum(dist[edges], DISTANCE_CAP_PX).sum())
        count += int(edges.sum())
    return total / max(count, 1)


def grid_search(frames: Sequence[RGBDFrame], fx_values: Sequence[float],
                cx_values: Sequence[float], cy_values: Sequence[float],
                tx_values: Sequence[float]) -> list[tuple[float, dict]]:
    """(score, parameters) of every grid point, best first; fy = fx (square pixels)."""
    distances = [colour_edge_distance(f.image) for f in frames]
    h, w = frames[0].image.shape[:2]
    results = []
    for fx, cx, cy, tx in itertools.product(fx_values, cx_values, cy_values, tx_values):
        colour = Intrinsics(fx, fx, cx, cy, w, h)
        score = alignment_score(frames, distances, colour, (tx, 0.0, 0.0))
        results.append((score, {"fx": fx, "cx": cx, "cy": cy, "tx_m": tx}))
    return sorted(results, key=lambda r: r[0])


def main(argv: Sequence[str] | None = None) -> int:
    from depth_unet_ros.datasets.folder import FolderDataset

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", required=True, help="folder dataset with unregistered depth")
    parser.add_argument("--frames", default="0:400:20", help="start:stop:step of frames to use")
    parser.add_argument("--fx", default="505:546:5", help="colour focal candidates, start:stop:step")
    parser.add_argument("--cx", default="320", help="comma-separated principal point x candidates")
    parser.add_argument("--cy", default="240", help="comma-separated principal point y candidates")
    parser.add_argument("--tx", default="-0.05:0.051:0.01", help="baseline x candidates (m)")
    args = parser.parse_args(argv)

    def span(text: str) -> list[float]:
        if "," in text or ":" not in text:
            return [float(v) for v in text.split(",")]
        start, stop, step = (float(v) for v in text.split(":"))
        return list(np.arange(start, stop, step))

    dataset = FolderDataset(args.data)
    start, stop, step = (int(v) for v in args.frames.split(":"))
    frames = [dataset[i] for i in range(start, min(stop, len(dataset)), step)]
    results = grid_search(frames, span(args.fx), span(args.cx), span(args.cy), span(args.tx))
    for score, params in results[:10]:
        print(f"{score:.3f} px  {json.dumps({k: round(float(v), 4) for k, v in params.items()})}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
