"""The walker's path through a synthetic room, and the sums of sines that move the hand.

``handheld.HandheldSequence`` films a room with a camera carried by a person walking; this module
plans where that person walks (free floor well clear of walls and furniture footprints, legs and
rounded bends, stops to turn round) and when (a speed profile with gentle accelerations), apart
from the dataset API that renders frames and poses from it. Everything here is a pure function of
the scene, the ``HandheldMotion`` (defined here, since the walk is what it parameterises) and
the random generators passed in.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import cv2
import numpy as np

from depth_unet_ros.datasets.synthetic import scenes as syn
from depth_unet_ros.errors import DatasetError

@dataclass(frozen=True)
class HandheldMotion:
    """How the hand-held camera moves. Pairs are ranges, drawn once per sequence."""

    speed_mps: tuple[float, float] = (0.3, 0.8)  # a stroll while filming, slower in bends
    accel_mps2: float = 0.5  # along the path: people start and stop gently
    turn_rate_dps: float = 60.0  # path heading rate in bends and when turning round on the spot
    lateral_accel_mps2: float = 0.6
    clearance_m: float = 0.5  # path to walls and furniture footprints: keeps depth >= ~0.35 m
    height_m: tuple[float, float] = (1.2, 1.6)  # camera in hand, chest to eye height
    pitch_deg: tuple[float, float] = (3.0, 18.0)  # people film rooms looking slightly down
    pan_deg: float = 25.0  # slow look-around about the walking direction (peak)
    step_hz: float = 1.8  # walking cadence: the camera bobs once per step
    bob_m: float = 0.02  # vertical bob amplitude at 0.6 m/s (scales with speed)
    sway_m: float = 0.01  # lateral sway amplitude, once per stride (two steps)
    shake_m: tuple[float, float] = (0.002, 0.005)  # rms hand shake per axis
    shake_deg: tuple[float, float] = (0.3, 1.0)  # rms hand shake per rotation axis
    shake_band_hz: tuple[float, float] = (0.5, 6.0)  # below 15 Hz, Nyquist of a 30 Hz camera


_CELL_M = 0.05  # floor grid for free-space planning
_DS_M = 0.01  # path sampling for the speed profile


def clearance_map(scene: syn._Scene) -> np.ndarray:
    """(ny, nx) metres from each floor cell to the nearest wall or furniture footprint.

    Conservative by about two cells, so a lookup at any point of a cell never overstates it.
    """
    nx, ny = (int(math.ceil(v / _CELL_M)) for v in scene.room_m[:2])
    free = np.ones((ny + 2, nx + 2), np.uint8)  # a one-cell border of wall around the floor
    free[[0, -1], :] = free[:, [0, -1]] = 0
    shift = 4  # cv2 fixed-point coordinates: 1/16 cell

    def to_px(xy) -> np.ndarray:  # world metres -> cv2 fixed-point pixel coordinates
        return np.round((np.asarray(xy) / _CELL_M + 0.5) * 16).astype(np.int32)

    for solid in scene.solids[1:]:
        if solid.cylinder:
            cv2.circle(free, tuple(int(v) for v in to_px(solid.center[:2])),
                       int(round(solid.half[0] / _CELL_M * 16)), 0, -1, cv2.LINE_8, shift)
            continue
        c, s = math.cos(solid.yaw), math.sin(solid.yaw)
        hx, hy = solid.half[:2]
        corners = [solid.center[:2] + np.array([c * a - s * b, s * a + c * b])
                   for a, b in ((-hx, -hy), (hx, -hy), (hx, hy), (-hx, hy))]
        cv2.fillConvexPoly(free, to_px(corners), 0, cv2.LINE_8, shift)
    dist = cv2.distanceTransform(free, cv2.DIST_L2, cv2.DIST_MASK_PRECISE)[1:-1, 1:-1]
    return np.maximum(dist - 2.2, 0) * _CELL_M


class Walk:
    """The walker's path through the free floor: waypoints, bends and stops, and its timeline.

    Waypoints are drawn one by one from the free floor (clearance + 0.1 m) so that each straight
    leg keeps ``clearance_m``; a bend up to 120 degrees becomes a circular arc (the largest radius
    that stays clear, at worst one within 0.1 m of the waypoint, clear by construction); a
    sharper one becomes a stop and a turn on the spot. Speed: a slowly varying walking pace,
    capped in bends by the turn rate and lateral acceleration, with accelerations limited both
    ways (forward and backward passes), so stops are gentle and the time to reach them finite.
    """

    def __init__(self, clearance: np.ndarray, motion: HandheldMotion, rng: np.random.Generator,
                 pace_rng: np.random.Generator) -> None:
        self.clear, self.motion, self.rng = clearance, motion, rng
        wp_margin = motion.clearance_m + 0.1
        count, labels, stats, _ = cv2.connectedComponentsWithStats(
            (clearance >= wp_margin).astype(np.uint8), connectivity=8)
        if count < 2:
            raise DatasetError("no free floor")
        best = 1 + int(np.argmax(stats[1:, cv2.CC_STAT_AREA]))
        if stats[best, cv2.CC_STAT_AREA] * _CELL_M**2 < 2.0:
            raise DatasetError("free floor too small")
        iy, ix = np.nonzero(labels == best)
        self.cells = (np.stack([ix, iy], axis=1) + 0.5) * _CELL_M  # (N, 2) world xy
        self.waypoints = [self.cells[int(rng.integers(len(self.cells)))]]
        if self._next_waypoint(tries=400) is None:
            raise DatasetError("no first leg")
        # Walking pace: two slow sinusoids of distance walked, clipped to the speed range.
        lo, hi = motion.speed_mps
        self.pace = (lo, hi, pace_rng.uniform(4, 8), pace_rng.uniform(9, 16),
                     *pace_rng.uniform(0, 2 * math.pi, 2))

    def _clear_along(self, points: np.ndarray) -> bool:
        """All (N, 2) points at least ``clearance_m`` from walls and footprints."""
        ij = np.floor(points / _CELL_M).astype(int)
        h, w = self.clear.shape
        if np.any(ij < 0) or np.any(ij[:, 0] >= w) or np.any(ij[:, 1] >= h):
            return False
        return bool(np.all(self.clear[ij[:, 1], ij[:, 0]] >= self.motion.clearance_m))

    def _next_waypoint(self, tries: int = 32) -> np.ndarray | None:
        """Append the next waypoint: a visible free cell 0.8-4 m away, preferring bends up to
        120 degrees; falls back to the previous waypoint (turning round), which is always valid."""
        here = self.waypoints[-1]
        heading = here - self.waypoints[-2] if len(self.waypoints) > 1 else None
        picks = self.cells[self.rng.integers(len(self.cells), size=tries)]
        fallback = None
        for cand in picks:
            leg = cand - here
            length = float(np.hypot(*leg))
            if not 0.8 <= length <= 4.0:
                continue
            steps = np.linspace(0, 1, int(length / (_CELL_M / 2)) + 2)[:, None]
            if not self._clear_along(here + steps * leg):
                continue
            if heading is None or leg @ heading >= -0.5 * length * np.hypot(*heading):
                self.waypoints.append(cand)
                return cand
            fallback = cand if fallback is None else fallback
        if fallback is None and len(self.waypoints) > 1:
            fallback = self.waypoints[-2]
        if fallback is not None:
            self.waypoints.append(fallback)
        return fallback

    def _corner(self, a: np.ndarray, b: np.ndarray, c: np.ndarray) -> tuple[float, float]:
        """(signed turn angle, arc radius) at waypoint b; radius 0: stop and turn on the spot."""
        u, w = (b - a) / np.hypot(*(b - a)), (c - b) / np.hypot(*(c - b))
        turn = math.atan2(u[0] * w[1] - u[1] * w[0], float(u @ w))
        if abs(turn) < 1e-6:
            return 0.0, math.inf
        if abs(turn) > math.radians(120):
            return turn, 0.0
        tan_half = math.tan(abs(turn) / 2)
        max_tangent = 0.45 * min(np.hypot(*(b - a)), np.hypot(*(c - b)))
        for radius in (1.0, 0.6, 0.35, 0.2):
            if radius * tan_half <= max_tangent and self._clear_along(
                    self._arc_points(b, u, turn, radius)[0]):
                return turn, radius
        return turn, min(0.1, max_tangent) / tan_half  # within 0.1 m of b: clear

    @staticmethod
    def _arc_points(b: np.ndarray, u: np.ndarray, turn: float, radius: float
                    ) -> tuple[np.ndarray, np.ndarray]:
        """Points (N, 2) and headings (N,) of the arc that rounds the corner at b."""
        start = b - radius * math.tan(abs(turn) / 2) * u
        left = np.array([-u[1], u[0]]) * math.copysign(1.0, turn)
        centre = start + radius * left
        n = max(2, int(math.ceil(max(radius * abs(turn) / _DS_M, abs(turn) / 0.02))) + 1)
        h0 = math.atan2(u[1], u[0])
        heading = h0 + np.linspace(0, turn, n)
        ang = heading - math.copysign(math.pi / 2, turn)  # from the centre to the point
        return centre + radius * np.stack([np.cos(ang), np.sin(ang)], axis=1), heading

    def _samples(self) -> tuple[np.ndarray, ...]:
        """Path samples: xy (N, 2), unwrapped heading (N,), speed limit (N,), dwell (N,) (time
        to reach a sample when turning on the spot, else 0), and the index of the first sample
        that may still change when waypoints are appended (the last leg's)."""
        m, wps = self.motion, self.waypoints
        turn_rate = math.radians(m.turn_rate_dps)
        xy, heads, limits, dwell = [wps[0][None]], [np.zeros(1)], [np.zeros(1)], [np.zeros(1)]
        start, h_prev, open_at = wps[0], None, 0
        for k in range(1, len(wps)):
            b = wps[k]
            u = (b - start) / np.hypot(*(b - start))
            h = math.atan2(u[1], u[0])
            if h_prev is not None:  # keep the heading continuous (unwrapped)
                h = h_prev + (h - h_prev + math.pi) % (2 * math.pi) - math.pi
            last = k == len(wps) - 1
            turn, radius = (0.0, 0.0) if last else self._corner(wps[k - 1], b, wps[k + 1])
            tangent = radius * math.tan(abs(turn) / 2) if 0 < radius < math.inf else 0.0
            length = float(np.hypot(*(b - start))) - tangent
            # Fixed spacing from the leg's start, so its first samples never move.
            steps = np.arange(1, int(length / _DS_M) + 1) * _DS_M
            steps = np.append(steps[steps < length - 1e-6], length)
            if last:
                open_at = sum(len(p) for p in xy)
            xy.append(start + steps[:, None] * u)
            heads.append(np.full(len(steps), h))
            limits.append(np.full(len(steps), math.inf))
            dwell.append(np.zeros(len(steps)))
            if last or radius == 0.0:
                limits[-1][-1] = 0.0  # stop: at the end of the walk so far, or to turn round
            if 0 < radius < math.inf:
                pts, hh = self._arc_points(b, u, turn, radius)
                cap = min(turn_rate * radius, math.sqrt(m.lateral_accel_mps2 * radius))
                xy.append(pts[1:])
                heads.append(hh[1:] - hh[0] + h)
                limits.append(np.full(len(pts) - 1, cap))
                dwell.append(np.zeros(len(pts) - 1))
                start, h_prev = pts[-1], float(heads[-1][-1])
            elif radius == 0.0 and not last:  # turn on the spot, the rate a rising-falling cosine
                f = np.linspace(0, 1, 33)[1:]
                xy.append(np.repeat(b[None], len(f), axis=0))
                heads.append(h + turn * (1 - np.cos(np.pi * f)) / 2)
                limits.append(np.zeros(len(f)))
                # peak rate turn * pi / (2 T) = turn_rate
                dwell.append(np.full(len(f), abs(turn) * math.pi / (2 * turn_rate) / len(f)))
                start, h_prev = b, h + turn
            else:
                start, h_prev = start + length * u, h
        heads[0][0] = heads[1][0]  # start facing along the first leg
        return (np.concatenate(xy), np.concatenate(heads), np.concatenate(limits),
                np.concatenate(dwell), open_at)

    def timeline(self, duration_s: float) -> dict:
        """Samples of the walk (t, x, y, heading, speed), exact for t <= ``duration_s``."""
        m = self.motion
        while True:
            xy, heading, limit, dwell, open_at = self._samples()
            ds = np.hypot(*np.diff(xy, axis=0).T)
            s = np.concatenate([[0.0], np.cumsum(ds)])
            lo, hi, l1, l2, p1, p2 = self.pace
            pace = (lo + hi) / 2 + (hi - lo) * (0.35 * np.sin(2 * np.pi * s / l1 + p1)
                                                + 0.25 * np.sin(2 * np.pi * s / l2 + p2))
            speed = np.minimum(np.clip(pace, lo, hi), limit).tolist()
            two_a, dsl = 2 * m.accel_mps2, ds.tolist()
            for n in range(1, len(speed)):  # accelerate gently ...
                speed[n] = min(speed[n], math.sqrt(speed[n - 1] ** 2 + two_a * dsl[n - 1]))
            for n in range(len(speed) - 2, -1, -1):  # ... and brake gently
                speed[n] = min(speed[n], math.sqrt(speed[n + 1] ** 2 + two_a * dsl[n]))
            v = np.array(speed)
            dt = np.where(ds > 0, 2 * ds / np.maximum(v[:-1] + v[1:], 1e-12), dwell[1:])
            t = np.concatenate([[0.0], np.cumsum(dt)])
            # Braking reaches back hi^2 / 2a from a stop; before that, nothing can change.
            exact = int(np.searchsorted(s, s[open_at] - hi * hi / two_a - 0.05))
            if exact > 0 and t[exact - 1] >= duration_s:
                return {"t": t[:exact], "x": xy[:exact, 0], "y": xy[:exact, 1],
                        "heading": heading[:exact], "speed": v[:exact], "ds": ds[:exact - 1]}
            for _ in range(4):
                self._next_waypoint()


def walk_at(line: dict, t: np.ndarray) -> tuple[np.ndarray, ...]:
    """x, y, heading, speed (each (T,)) at times t (T,) s: constant acceleration between
    samples, as the speed profile assumes (linear interpolation in time would jerk)."""
    n = np.clip(np.searchsorted(line["t"], t, side="right") - 1, 0, len(line["t"]) - 2)
    t0, dt = line["t"][n], line["t"][n + 1] - line["t"][n]
    tau = np.clip(t - t0, 0, dt)
    v0, v1, ds = line["speed"][n], line["speed"][n + 1], line["ds"][n]
    walked = v0 * tau + 0.5 * (v1 - v0) / dt * tau**2
    frac = np.where(ds > 0, np.clip(walked / np.where(ds > 0, ds, 1), 0, 1), tau / dt)  # spin: time
    out = [line[k][n] + frac * (line[k][n + 1] - line[k][n]) for k in ("x", "y", "heading")]
    return (*out, v0 + (v1 - v0) * tau / dt)


def band_limited_sines(rng: np.random.Generator, count: int, band_hz: tuple[float, float],
                       rms: float, axes: int) -> tuple[np.ndarray, ...]:
    """Band-limited noise as ``count`` sines per axis: frequencies (axes, count) Hz, phases,
    amplitudes falling as 1/f^2 (equal acceleration per sine, so a few millimetres of shake
    stay within a walking hand's few m/s^2), scaled to ``rms`` per axis."""
    freq = rng.uniform(*band_hz, size=(axes, count))
    phase = rng.uniform(0, 2 * np.pi, size=(axes, count))
    amp = 1.0 / freq**2
    amp *= rms / np.sqrt((amp**2).sum(axis=1, keepdims=True) / 2)
    return freq, phase, amp


def sum_sines(t: np.ndarray, freq: np.ndarray, phase: np.ndarray, amp: np.ndarray) -> np.ndarray:
    """(axes, T) values of the sines at times ``t`` (T,) seconds."""
    return np.einsum("ak,akt->at", amp, np.sin(2 * np.pi * freq[..., None] * t + phase[..., None]))
