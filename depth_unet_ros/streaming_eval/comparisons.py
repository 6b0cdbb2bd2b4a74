"""The comparison images of a streaming evaluation: a few answered frames spread over the bag,
chosen while streaming without holding more than those few, then drawn as input | prediction |
ground truth."""
from __future__ import annotations

from pathlib import Path
from typing import Any

NUM_COMPARISONS = 4


class ComparisonPicker:
    """Up to NUM_COMPARISONS answered frames spread over the bag, holding no more than that:
    the first answer at or after each evenly spaced position, and the last answer when the
    node dropped the frames at the end."""

    def __init__(self, positions: list[int], count: int = NUM_COMPARISONS):
        n = len(positions)
        self._targets = sorted({positions[round(k * (n - 1) / max(count - 1, 1))]
                                for k in range(min(count, n))})
        self._count = min(count, n)
        self._kept: dict[int, Any] = {}
        self._last: Any = None

    def offer(self, scored: Any) -> None:
        """One scored frame (its ``index`` is its position in the bag), in stream order."""
        if self._targets and scored.index >= self._targets[0]:
            while self._targets and scored.index >= self._targets[0]:
                self._targets.pop(0)
            self._kept[scored.index] = scored
        else:
            self._last = scored

    def picked(self) -> dict[int, Any]:
        """Position -> ScoredFrame of the frames to draw."""
        kept = dict(self._kept)
        if len(kept) < self._count and self._last is not None:
            kept[self._last.index] = self._last
        return kept


def save_comparisons(stage: Path, bag: Path, image_topic: str, kept: dict) -> list[Path]:
    """input | prediction | ground truth images of the kept frames (images read from the bag)."""
    from depth_unet_ros.bags import reader as bag_reader
    from depth_unet_ros.streaming_eval.report import COMPARISON_DIR
    from depth_unet_ros.visualize import comparison_image, save_png

    stamps = {scored.stamp_ns: scored for scored in kept.values()}
    paths = []
    for _, stamp, msg in bag_reader.decode(bag, [image_topic], stamps=stamps):
        scored = stamps.pop(stamp, None)
        if scored is None:
            continue
        name = scored.name.replace("@", "_t")
        paths.append(save_png(stage / COMPARISON_DIR / f"{name}.png",
                              comparison_image(bag_reader.rgb_of(msg), scored.depth_m,
                                               scored.gt_depth_m)))
    return sorted(paths)
