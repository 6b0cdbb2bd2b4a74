"""Synthetic handheld RGB-D sequences with ground-truth camera poses.

One room per sequence (``synthetic._sample_scene``), filmed by a camera carried like a person
walking with it in hand: a path of straight legs and rounded bends through the free floor space
(well clear of walls and furniture footprints), stopping to turn round where a bend is too sharp;
a slow look-around pan about the walking direction; a vertical bob once per step and a lateral
sway once per stride; and a small band-limited hand shake. Texture placement and exposure are
fixed per sequence (no flicker); only sensor noise changes from frame to frame.

Frame i and its pose are pure functions of (seed, i): neither depends on ``num_frames``. The
walk is planned lazily, far enough ahead that a longer sequence only appends to it.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, replace

import numpy as np

from depth_unet_ros.bags.clock import START_NS, stamp_ns
from depth_unet_ros.datasets.base import NYU_INTRINSICS, Intrinsics, RGBDFrame
from depth_unet_ros.datasets.synthetic import scenes as syn
from depth_unet_ros.datasets.synthetic import textures as tx
from depth_unet_ros.datasets.synthetic.handheld_walk import (HandheldMotion, Walk, band_limited_sines,
                                                             clearance_map, sum_sines, walk_at)
from depth_unet_ros.errors import DatasetError
from depth_unet_ros.rotations import quaternion_xyzw_to_rotation, rotation_to_quaternion_xyzw

_KEY = 2**31 - 2  # seed-sequence key: keeps these streams apart from SyntheticIndoorDataset's
POSE_NAME = "pose.json"  # beside rgb / depth_mm.png / camera.json in a folder dataset's frame


@dataclass(frozen=True)
class CameraPose:
    """Where the camera's optical frame is in the world (``odom``) frame at one frame's stamp.

    World: REP 103, z up, metres. ``rotation`` (3, 3) is world-from-optical: its columns are the
    camera's right, down and forward axes in the world, so a point ``p`` in the optical frame is
    at ``rotation @ p + position_m`` in the world.
    """

    stamp_ns: int
    position_m: np.ndarray  # (3,)
    rotation: np.ndarray  # (3, 3)

    @property
    def quaternion_xyzw(self) -> np.ndarray:
        """The rotation as a geometry_msgs quaternion (x, y, z, w)."""
        return rotation_to_quaternion_xyzw(self.rotation)

    def as_json(self, frame_id: str = "odom",
                child_frame_id: str = "camera_rgb_optical_frame") -> dict:
        """The ``pose.json`` record written beside each frame of a folder dataset."""
        return {"stamp_ns": int(self.stamp_ns), "position": [float(v) for v in self.position_m],
                "orientation_xyzw": [float(v) for v in self.quaternion_xyzw],
                "frame_id": frame_id, "child_frame_id": child_frame_id}

    @classmethod
    def from_json(cls, record: dict) -> "CameraPose":
        """Inverse of ``as_json`` (the frame names are not kept)."""
        return cls(stamp_ns=int(record["stamp_ns"]),
                   position_m=np.array(record["position"], dtype=np.float64),
                   rotation=quaternion_xyzw_to_rotation(record["orientation_xyzw"]))


class HandheldSequence:
    """``num_frames`` frames of one synthetic room filmed by a walking, hand-held camera.

    ``seq[i]`` is an ``RGBDFrame`` (z-depth in metres, valid everywhere); ``seq.pose(i)`` its
    ground-truth ``CameraPose`` (optical frame in the world, REP 103) stamped ``seq.stamp_ns(i)``
    = the bag writer's stamp of frame i at ``rate_hz``. Frame i and its pose depend only on
    (seed, i, rate_hz, size, intrinsics, motion), not on ``num_frames``.
    """

    def __init__(self, num_frames: int, seed: int = 0, rate_hz: float = 30.0, height: int = 480,
                 width: int = 640, intrinsics: Intrinsics = NYU_INTRINSICS,
                 motion: HandheldMotion = HandheldMotion()) -> None:
        if num_frames < 0 or height < 8 or width < 8 or not rate_hz > 0:
            raise DatasetError(f"a handheld sequence needs num_frames >= 0, rate_hz > 0 and an "
                               f"image of at least 8x8, got {num_frames} frames of {width}x"
                               f"{height} at {rate_hz} Hz")
        self.num_frames, self.seed, self.rate_hz = int(num_frames), int(seed), float(rate_hz)
        if (intrinsics.width, intrinsics.height) != (width, height):
            intrinsics = intrinsics.scaled(width, height)
        self.intrinsics, self.motion = intrinsics, motion
        self._bank: tx.TextureBank | None = None
        self.scene, walk = self._plan()
        # Exposure is metered at fixed times up to 14 s, so plan at least that far.
        self._line = walk.timeline(max((self.num_frames - 1) / self.rate_hz, 14.0) + 0.1)
        self._tables = syn._face_tables(self.scene, self.bank, self._rng(3))
        self._draw_motion(self._rng(4))
        meter = intrinsics.scaled(160, 120)
        gains = [syn.view_gain(self._posed_scene(*self._pose_at(np.array([t]))), self.bank,
                               meter, self._tables) for t in np.arange(0.0, 14.5, 2.0)]
        # One exposure for the whole sequence, on the darker side of the views' own, so that
        # walking up to a lamp-lit wall saturates less.
        self._gain = float(np.percentile(gains, 25))

    def _rng(self, *stream: int) -> np.random.Generator:
        return np.random.default_rng([self.seed, _KEY, *stream])

    @property
    def bank(self) -> tx.TextureBank:
        """SyntheticIndoorDataset's texture bank for this seed, made on first use per process."""
        if self._bank is None:
            self._bank = tx.make_bank(np.random.default_rng([self.seed, 2**31 - 1]))
        return self._bank

    def _plan(self) -> tuple[syn._Scene, Walk]:
        """The first room (in seed order) with enough free floor to walk around in."""
        for attempt in range(100):
            scene = syn._sample_scene(self._rng(0, attempt), self.bank)
            try:
                return scene, Walk(clearance_map(scene), self.motion, self._rng(1, attempt),
                                   self._rng(2, attempt))
            except DatasetError:
                continue  # too cluttered or too small: draw another room
        raise DatasetError(f"seed {self.seed}: no room with free floor in 100 draws; relax "
                           f"HandheldMotion.clearance_m ({self.motion.clearance_m} m)")

    def _draw_motion(self, rng: np.random.Generator) -> None:
        """The per-sequence constants of hand height, pitch, pan, bob and shake."""
        m = self.motion
        self._height = min(rng.uniform(*m.height_m), float(self.scene.room_m[2]) - 0.6)
        self._pitch = math.radians(rng.uniform(*m.pitch_deg))
        self._slow = (rng.uniform([0.03, 0.09, 0.05, 0.04], [0.07, 0.15, 0.12, 0.1]),
                      rng.uniform(0, 2 * np.pi, 4),
                      np.radians([0.6 * m.pan_deg, 0.4 * m.pan_deg, 4.0, 1.5]))
        self._step_phase = rng.uniform(0, 2 * np.pi)
        self._shake_pos = band_limited_sines(rng, 8, m.shake_band_hz, rng.uniform(*m.shake_m), 3)
        self._shake_rot = band_limited_sines(rng, 8, m.shake_band_hz,
                                             math.radians(rng.uniform(*m.shake_deg)), 3)

    def _pose_at(self, t: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Positions (T, 3) metres and rotations (T, 3, 3) world-from-optical at times t (T,) s."""
        x, y, heading, speed = walk_at(self._line, t)
        gait = np.clip(speed / 0.6, 0.0, 1.3)  # bob and sway grow with pace, vanish at rest
        step = 2 * np.pi * self.motion.step_hz * t + self._step_phase
        slow = sum_sines(t, self._slow[0][:, None], self._slow[1][:, None], self._slow[2][:, None])
        shake_p = sum_sines(t, *self._shake_pos)
        shake_r = sum_sines(t, *self._shake_rot)
        sway = self.motion.sway_m * gait * np.sin(step / 2)  # to the left of the walking direction
        pos = np.stack([x - sway * np.sin(heading), y + sway * np.cos(heading),
                        self._height + self.motion.bob_m * gait * np.cos(step)], axis=1) + shake_p.T
        yaw = heading + slow[0] + slow[1] + shake_r[0]
        pitch = self._pitch + slow[2] + math.radians(0.3) * gait * np.cos(step + 1.0) + shake_r[1]
        roll = slow[3] + shake_r[2]
        rot = np.stack([syn.look_rotation(a, b, c) for a, b, c in zip(yaw, pitch, roll)])
        return pos, rot

    def _posed_scene(self, pos: np.ndarray, rot: np.ndarray) -> syn._Scene:
        return replace(self.scene, cam_pos=pos[0], cam_rot=rot[0])

    def __len__(self) -> int:
        return self.num_frames

    def stamp_ns(self, i: int) -> int:
        """Stamp of frame i in nanoseconds (the bag writer's clock at ``rate_hz``)."""
        return stamp_ns(i, self.rate_hz)

    def time_s(self, i: int) -> float:
        """Seconds from the start of the walk to frame i."""
        return (self.stamp_ns(i) - START_NS) * 1e-9

    def pose(self, i: int) -> CameraPose:
        """Ground-truth pose of frame i (optical frame in the world)."""
        self._check(i)
        pos, rot = self._pose_at(np.array([self.time_s(i)]))
        return CameraPose(stamp_ns=self.stamp_ns(i), position_m=pos[0], rotation=rot[0])

    def poses(self) -> list[CameraPose]:
        """All frames' poses, in order."""
        return [self.pose(i) for i in range(self.num_frames)]

    def __getitem__(self, i: int) -> RGBDFrame:
        self._check(i)
        pose = self.pose(i)
        scene = self._posed_scene(pose.position_m[None], pose.rotation[None])
        image, depth = syn.render(scene, self.bank, self.intrinsics, self._rng(5, i),
                                  self._tables, self._gain)  # rng: this frame's sensor noise
        return RGBDFrame(image=image, depth_m=depth, intrinsics=self.intrinsics,
                         name=f"handheld_{self.seed}_{i:05d}")

    def _check(self, i: int) -> None:
        if not 0 <= i < self.num_frames:
            raise IndexError(f"handheld frame {i} out of range for {self.num_frames} frames")

    def __getstate__(self) -> dict:
        return {**self.__dict__, "_bank": None}
