"""The frame type every dataset reader returns, and camera intrinsics."""
from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np


@dataclass(frozen=True)
class Intrinsics:
    """Pinhole intrinsics in pixels for an image of ``width`` x ``height``."""

    fx: float
    fy: float
    cx: float
    cy: float
    width: int
    height: int

    def scaled(self, width: int, height: int) -> "Intrinsics":
        """Intrinsics of the same camera after resizing the image to ``width`` x ``height``.

        Uses the pixel-edge convention (cx' = (cx + 0.5) * s - 0.5) that OpenCV resizing follows.
        """
        sx, sy = width / self.width, height / self.height
        return replace(
            self,
            fx=self.fx * sx,
            fy=self.fy * sy,
            cx=(self.cx + 0.5) * sx - 0.5,
            cy=(self.cy + 0.5) * sy - 0.5,
            width=int(width),
            height=int(height),
        )

    def as_dict(self) -> dict:
        return {"fx": self.fx, "fy": self.fy, "cx": self.cx, "cy": self.cy,
                "width": self.width, "height": self.height}


# The NYU Depth V2 RGB camera at 640x480 (Silberman et al. 2012 toolbox values).
NYU_INTRINSICS = Intrinsics(fx=518.8579, fy=519.4696, cx=325.5824, cy=253.7362, width=640, height=480)


@dataclass
class RGBDFrame:
    """One RGB-D frame.

    ``image``: (H, W, 3) uint8 RGB. ``depth_m``: (H, W) float32 metres, 0 where invalid.
    ``name`` identifies the frame in reports (file folder, or ``nyu_00042`` for .mat index 42).
    """

    image: np.ndarray
    depth_m: np.ndarray
    intrinsics: Intrinsics
    name: str
