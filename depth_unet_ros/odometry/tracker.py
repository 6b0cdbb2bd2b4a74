"""Visual-odometry pose tracker on the depth node's decoder features (numpy + cv2 only).

Each frame is aligned directly to the current keyframe: the keyframe's pixels, lifted to 3D by
the keyframe's predicted depth (smoothed: the model's is rough from pixel to pixel), are warped
into the frame, and the SE(3) motion that makes the frame's normalised features match the
keyframe's is solved coarse to fine by robust Levenberg-Marquardt (``alignment.py``), then
refined on grey-level intensity when the image is given. On real frames the decoder features
are noisy from pixel to pixel: they bring the solve near, the intensity levels set the final
pose (7-Scenes 0-499: ATE 24 cm on features alone, 6.2 cm with intensity). A constant-velocity
model gives the first guess. A solve that leaves too few keyframe pixels in view or fitting,
is not constrained in every direction, or jumps implausibly far from the guess is reported as
``ok=False`` with the guess as the pose (and ``reason`` saying why), never as a wild pose. The
keyframe moves on when the view has moved or turned enough, or too little of it stays in view,
so drift grows per keyframe rather than per frame. The image may come and go between frames
(vo_node tracks a frame whose image did not arrive on features alone): a frame without it is
aligned on the keyframe's feature levels only, and a keyframe made without it gives way to the
next well-tracked frame that has one, so intensity is back one frame after the image is.
"""
from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from depth_unet_ros.errors import ImageFormatError
from depth_unet_ros.odometry import se3
from depth_unet_ros.odometry.alignment import LevelResult, ReferenceLevel, align_level, make_reference
from depth_unet_ros.odometry.pyramid import (depth_at, depth_edges, halve, normalize_features,
                                             resize, scale_k, shrink_depth)


@dataclass(frozen=True)
class TrackerConfig:
    """How the tracker aligns, judges and picks keyframes. Defaults tuned on 7-Scenes 0-499."""

    feature_levels: int = 2  # the features' own size and one halving (80x60, 40x30); a 20x15
    #                          level has too few pixels to pin 6 degrees of freedom and was
    #                          worse on 7-Scenes 0-499 (ATE 6.3 vs 5.9 cm, 2 failures vs 0, with
    #                          0.10 m keyframes); 0 = intensity only
    feature_norm: str = "pixel"  # "pixel" | "channel" | "none": features only learnt for depth
    #                              have unrelated channel scales; see pyramid.normalize_features
    feature_blur_px: float = 0.0  # Gaussian sigma (feature pixels); blurring cost accuracy
    features_with_image: bool = False  # align the features too when the frame has its image;
    #                                   off, they serve only frames without it. On every
    #                                   sequence here intensity alone had the lower ATE, an RPE
    #                                   at most 0.1 cm higher, at half the cost: 7-Scenes 0-499
    #                                   ATE / RPE 4.7 / 5.1 cm against 5.2 / 5.0 with both,
    #                                   420-499 2.2 / 5.7 against 2.2 / 5.8,
    #                                   synthetic seeds 11 / 12 17.2 / 25.6 cm ATE with no failed
    #                                   frame against 31.0 / 27.7 with 8 / 3 (features trained
    #                                   only for depth do not yet pay their way)
    use_intensity: bool = True  # finish on grey image intensity when image_rgb is given: finer
    #                             than the stride-4 features, so it sharpens the estimate
    intensity_width: int = 160  # width (px) of the finest intensity level: finer costs more
    intensity_levels: int = 2  # intensity levels (160, 80 px wide): the decoder features are
    #                            noisy from pixel to pixel, so grey levels set the final pose
    intensity_standardise: bool = False  # zero mean, unit std per frame: absorbs exposure changes
    max_points: int = 2000  # per level, strongest gradients first: time grows linearly with
    #                         it; 3000 points and 12 iterations were no more accurate (7-Scenes
    #                         0-499 ATE 5.4 vs 6.0 cm, RPE 5.2 vs 5.0; 420-499 1.8 vs 1.7, 5.7 vs
    #                         5.3) and cost about a third more time, too much beside the model
    max_iterations: int = 8  # per level; coarse-to-fine leaves little to do at each level
    min_relative_gain: float = 0.01  # a level stops once a step lowers its robust cost by less
    #                                  than this share: 0.001 spent ~70 % more residual
    #                                  evaluations (28 vs 17 a frame) on steps that no longer
    #                                  moved the pose (7-Scenes 420-499 ATE / RPE 3.09 / 7.18 cm
    #                                  vs 3.03 / 7.21; 0-499 10.4 / 6.9 vs 8.6 / 5.7)
    huber_k: float = 1.5  # Huber threshold in robust standard deviations of the level's residual
    min_depth_m: float = 0.1  # nearer readings (and points behind the camera) are ignored
    max_depth_m: float = 10.0  # farther ones carry little translation information
    depth_blur_px: float = 3.0  # Gaussian sigma (pixels at 320 px width) over valid depth: the
    #                             model's depth jumps ~13 % between neighbouring pixels; 3 px
    #                             took 7-Scenes 420-499 from ATE 3.6 to 1.9 cm (0-499: 5.9 -> 5.7;
    #                             0.10 m keyframes)
    depth_near_px: float = 8.0  # each keyframe pixel takes the nearest smoothed depth within this
    #                            radius (pixels at 320 px width): an intensity edge at an
    #                            occlusion moves with the occluder, but smoothed (or slightly
    #                            misregistered) depth gives it a mix of near and far, and the
    #                            solve answered the too-small parallax with a too-long
    #                            translation. 7-Scenes 0-499, bundled model, features and
    #                            intensity both aligned: ATE / RPE 9.1 / 6.0
    #                            -> 5.2 / 5.0 cm (translation over 1 s 1.16x -> 1.03x the
    #                            truth); 420-499 2.5 / 5.7 -> 2.2 / 5.8; on the sensor's own depth
    #                            12.7 / 8.6 -> 4.8 / 4.2 with the trajectory's scale 1.00. Radii
    #                            4, 6, 8, 10: sensor-depth scale 0.97, 0.99, 1.00, 1.03; 0 = off
    depth_edge_spread: float = 0.5  # a depth jump over 50 % between neighbouring pixels is an
    #                                  edge; coarse pixels over one are dropped (see depth_at)
    # Failure tests: any one makes the frame ok=False (pose = the motion model's prediction).
    min_inside_fraction: float = 0.3  # of the keyframe's pixels must land in the current view
    min_inlier_fraction: float = 0.5  # within the Huber threshold at the finest feature level
    max_residual: float = 1.0  # mean feature residual norm at the finest feature level ("pixel"
    #                            normalisation: 0 same, 2 opposite). Not discriminative on its
    #                            own (real frames 3-6 apart sit at 0.4-0.6, unrelated views at
    #                            0.55-0.95): it only rejects garbage; the motion bounds below
    #                            are what catch a solve into an unrelated view
    max_speed_mps: float = 3.0  # correction to the prediction: a hand-held camera moves slower
    max_angular_speed_dps: float = 360.0  # ... and turns slower than this
    min_correction_dt_s: float = 1.0 / 15.0  # floor of the time used in those two limits
    max_condition: float = 1e7  # Hessian condition number: above it the motion is not observed
    # Keyframe selection: the current frame becomes the keyframe when any of these is reached.
    keyframe_translation_m: float = 0.15  # baseline from the keyframe; 7-Scenes 0-499: 0.10 m
    #                                       / 8 deg gave ATE 5.7 cm, 0.15 / 12 5.4, 0.20 / 15 6.5
    keyframe_rotation_deg: float = 12.0  # turn from the keyframe
    keyframe_min_inside: float = 0.7  # share of keyframe pixels still in view
    max_motion_dt_s: float = 0.5  # after a longer gap the constant-velocity guess is dropped


def _nearest_depth(depth_m: np.ndarray, radius_px: float) -> np.ndarray:
    """Each valid pixel's smallest valid depth within ``radius_px`` (a square window); NaN stays."""
    radius = int(round(radius_px))
    if radius < 1:
        return depth_m
    valid = np.isfinite(depth_m) & (depth_m > 0)
    far = np.where(valid, depth_m, np.float32(np.inf)).astype(np.float32)
    nearest = cv2.erode(far, np.ones((2 * radius + 1, 2 * radius + 1), np.uint8))
    return np.where(valid, nearest, np.nan).astype(np.float32)


def _smooth_depth(depth_m: np.ndarray, sigma_px: float) -> np.ndarray:
    """Gaussian-smoothed depth over valid readings only (normalised convolution); NaN stays."""
    valid = np.isfinite(depth_m) & (depth_m > 0)
    d0 = np.where(valid, depth_m, 0.0).astype(np.float32)
    num = cv2.GaussianBlur(d0, (0, 0), sigma_px)
    den = cv2.GaussianBlur(valid.astype(np.float32), (0, 0), sigma_px)
    return np.where(valid, num / np.maximum(den, 1e-6), np.nan).astype(np.float32)


@dataclass(frozen=True)
class TrackResult:
    """One frame's pose and how it was obtained."""

    stamp_ns: int
    world_from_camera: np.ndarray  # (4, 4) float64; camera = optical frame; world = first frame's
    ok: bool                       # False: alignment failed; the pose is the motion model's guess
    keyframe: bool                 # this frame became the new keyframe
    residual: float                # final robust mean residual of the accepted solve
    covariance: np.ndarray | None  # (6, 6) over (tx, ty, tz, rx, ry, rz): see FeatureTracker.track
    iterations: int
    reason: str = ""  # why ok is False, in words (for logs and diagnostics); "" when ok


@dataclass
class _Keyframe:
    world_from_kf: np.ndarray
    feature_refs: list[ReferenceLevel]  # finest first
    intensity_refs: list[ReferenceLevel]  # finest first; empty without intensity


@dataclass
class _Frame:
    raw_features: np.ndarray  # (h, w, C) as given: the feature pyramid is built only when a
    #                           feature level is aligned or the frame becomes a keyframe (a
    #                           frame with its image usually needs neither; ~1 ms saved)
    k: np.ndarray  # (3, 3) of the full-size depth
    intensity: list[np.ndarray]  # finest first, (h, w, 1) float32; empty without intensity
    intensity_k: list[np.ndarray]
    depth_m: np.ndarray  # (H, W) as given: resampled per level only if the frame becomes a
    #                      keyframe (most frames never do)
    feature_pyramid: tuple[list[np.ndarray], list[np.ndarray]] | None = None  # built once:
    #                      (levels finest first, normalised (h, w, C); their camera matrices)


class FeatureTracker:
    """Frame-to-keyframe direct alignment of the depth model's features; call ``track`` per
    frame in time order, ``reset`` to start a new trajectory."""

    def __init__(self, config: TrackerConfig = TrackerConfig()) -> None:
        self.config = config
        self.reset()

    def reset(self) -> None:
        """Forget the keyframe and the motion: the next frame starts a new world frame."""
        self._keyframe: _Keyframe | None = None
        self._world_from_prev: np.ndarray | None = None
        self._velocity: np.ndarray | None = None  # twist per second of prev_from_cur
        self._prev_stamp_ns: int | None = None

    def track(self, stamp_ns: int, depth_m: np.ndarray, features: np.ndarray, k: np.ndarray,
              image_rgb: np.ndarray | None = None) -> TrackResult:
        """Pose of this frame's optical frame in the first frame's.

        ``depth_m`` (H, W) metres, NaN or <= 0 invalid; ``k`` its 3x3 camera matrix;
        ``features`` (h, w, C) over the same field of view; ``image_rgb`` optional (H', W', 3)
        uint8 for the intensity level. ``covariance`` is the uncertainty of the pose relative
        to the keyframe, as a perturbation ``world_from_camera @ exp(xi)`` in the camera's own
        axes (Gauss-Newton Hessian x residual variance; an underestimate, since neighbouring
        features are correlated); None when the frame failed or is the first.
        """
        frame = self._prepare(depth_m, features, k, image_rgb)
        cfg = self.config
        if self._keyframe is None:
            pose = np.eye(4)
            self._keyframe = self._make_keyframe(frame, pose)
            self._advance(stamp_ns, pose, ok=True)
            return TrackResult(int(stamp_ns), pose, True, True, 0.0, None, 0)
        dt_s = (stamp_ns - self._prev_stamp_ns) * 1e-9 if self._prev_stamp_ns is not None else 0.0
        predicted = self._predict(dt_s)
        kf = self._keyframe
        guess = se3.inverse(predicted) @ kf.world_from_kf  # cur_from_kf
        pose_ck = guess.copy()
        iterations = 0
        finest: LevelResult | None = None
        # Features align a frame that intensity cannot (no image, or a keyframe without one).
        use_features = cfg.features_with_image or not (frame.intensity and kf.intensity_refs)
        for level in reversed(range(len(kf.feature_refs) if use_features else 0)):
            res = align_level(kf.feature_refs[level], self._features(frame)[0][level], pose_ck,
                              cfg.max_iterations, cfg.huber_k, cfg.min_depth_m,
                              cost_tolerance=cfg.min_relative_gain)
            iterations += res.iterations
            if not np.isfinite(res.residual):
                finest = res
                break
            pose_ck, finest = res.cur_from_kf, res
        judged = finest
        usable = ((finest is not None and np.isfinite(finest.residual)) or not kf.feature_refs
                  or not use_features)
        levels = min(len(kf.intensity_refs), len(frame.intensity)) if usable else 0
        for level in reversed(range(levels)):
            res = align_level(kf.intensity_refs[level], frame.intensity[level], pose_ck,
                              cfg.max_iterations, cfg.huber_k, cfg.min_depth_m,
                              cost_tolerance=cfg.min_relative_gain)
            iterations += res.iterations
            if not (np.isfinite(res.residual) and res.inside_fraction >= cfg.min_inside_fraction):
                break
            pose_ck, finest = res.cur_from_kf, res
        judged = judged or finest  # intensity only: judge its finest level
        reason = ("no keyframe level could be aligned" if judged is None
                  else self._failure(judged, finest, pose_ck, guess, dt_s))
        ok = not reason
        if ok:
            world_from_cur = se3.orthonormalize(kf.world_from_kf @ se3.inverse(pose_ck))
            hessian = finest.hessian
            cov_kf = finest.sigma2 * np.linalg.inv(hessian)
            ad = se3.adjoint(pose_ck)
            covariance = ad @ cov_kf @ ad.T
            residual = judged.residual
        else:
            world_from_cur, covariance = predicted, None
            residual = judged.residual if judged is not None else float("inf")
        new_keyframe = ((not ok) or self._needs_keyframe(kf, world_from_cur, judged)
                        or (bool(frame.intensity) and not kf.intensity_refs))
        if new_keyframe:
            self._keyframe = self._make_keyframe(frame, world_from_cur)
        self._advance(stamp_ns, world_from_cur, ok)
        return TrackResult(int(stamp_ns), world_from_cur, bool(ok), bool(new_keyframe),
                           float(residual), covariance, int(iterations), reason)

    # -- frames and keyframes ------------------------------------------------------------------

    def _prepare(self, depth_m: np.ndarray, features: np.ndarray, k: np.ndarray,
                 image_rgb: np.ndarray | None) -> _Frame:
        cfg = self.config
        depth = np.asarray(depth_m)
        feats = np.asarray(features)
        if depth.ndim != 2:
            raise ImageFormatError(f"depth_m must be (H, W), got shape {depth.shape}")
        if feats.ndim != 3 or min(feats.shape[:2]) < 8:
            raise ImageFormatError(f"features must be (h, w, C) HWC with h, w >= 8, got shape "
                                   f"{feats.shape}; transpose a CHW prediction first")
        if np.asarray(k).shape != (3, 3):
            raise ImageFormatError(f"k must be a 3x3 camera matrix, got shape {np.shape(k)}")
        full_hw = depth.shape
        intensity, intensity_k = [], []
        if image_rgb is not None and cfg.use_intensity:
            rgb = np.asarray(image_rgb)
            if rgb.ndim != 3 or rgb.shape[2] != 3 or rgb.dtype != np.uint8:
                raise ImageFormatError(f"image_rgb must be (H, W, 3) uint8, got {rgb.shape} "
                                       f"{rgb.dtype}")
            grey = cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY).astype(np.float32)[:, :, None] / 255.0
            if cfg.intensity_standardise:
                grey = (grey - grey.mean()) / max(float(grey.std()), 1e-3)
            for i in range(cfg.intensity_levels):
                width = cfg.intensity_width >> i
                height = round(width * full_hw[0] / full_hw[1])
                if min(width, height) < 16:
                    break
                intensity.append(resize(grey, height, width))
                intensity_k.append(scale_k(k, full_hw, (height, width)))
        return _Frame(feats, np.asarray(k), intensity, intensity_k, depth)

    def _features(self, frame: _Frame) -> tuple[list[np.ndarray], list[np.ndarray]]:
        """The frame's feature pyramid (levels finest first, their camera matrices), built on
        first use."""
        if frame.feature_pyramid is None:
            cfg = self.config
            level = normalize_features(frame.raw_features, cfg.feature_norm)
            if cfg.feature_blur_px > 0:
                level = cv2.GaussianBlur(level, (0, 0), cfg.feature_blur_px).reshape(level.shape)
            levels, ks = [], []
            for i in range(cfg.feature_levels):
                if i > 0:
                    if min(level.shape[:2]) < 16:
                        break
                    level = halve(level)
                levels.append(level)
                ks.append(scale_k(frame.k, frame.depth_m.shape, level.shape[:2]))
            frame.feature_pyramid = (levels, ks)
        return frame.feature_pyramid

    def _level_depths(self, frame: _Frame) -> tuple[list[np.ndarray], list[np.ndarray]]:
        """The keyframe's depth at every feature and intensity level (0 = invalid): smoothed
        (the model's is rough from pixel to pixel) and with depth edges dropped."""
        cfg = self.config
        widths = ([f.shape[1] for f in self._features(frame)[0]]
                  + [g.shape[1] for g in frame.intensity])
        if not widths:  # intensity only (feature_levels 0) and no image: nothing to align on
            return [], []
        depth = np.where(frame.depth_m <= cfg.max_depth_m, frame.depth_m, np.nan)
        # Every level is at most half as wide as this: shrink larger depth first (a 640x480
        # depth image otherwise costs more to smooth than the whole alignment).
        work_w = 2 * max(widths)
        if depth.shape[1] > work_w:
            depth = shrink_depth(depth, round(work_w * depth.shape[0] / depth.shape[1]), work_w)
        if cfg.depth_blur_px > 0:
            depth = _smooth_depth(depth, cfg.depth_blur_px * depth.shape[1] / 320.0)
        if cfg.depth_near_px > 0:
            depth = _nearest_depth(depth, cfg.depth_near_px * depth.shape[1] / 320.0)
        depth, edges = depth_edges(depth, cfg.depth_edge_spread)

        def at(image: np.ndarray) -> np.ndarray:
            return depth_at(depth, image.shape[0], image.shape[1], cfg.depth_edge_spread, edges)

        return [at(f) for f in self._features(frame)[0]], [at(g) for g in frame.intensity]

    def _make_keyframe(self, frame: _Frame, world_from_kf: np.ndarray) -> _Keyframe:
        cfg = self.config
        depths, intensity_depths = self._level_depths(frame)
        levels, ks = self._features(frame)
        refs = [make_reference(f, d, kk, cfg.min_depth_m, cfg.max_points)
                for f, d, kk in zip(levels, depths, ks)]
        intensity_refs = [make_reference(g, d, kk, cfg.min_depth_m, cfg.max_points)
                          for g, d, kk in zip(frame.intensity, intensity_depths,
                                              frame.intensity_k)]
        return _Keyframe(np.array(world_from_kf, dtype=np.float64), refs, intensity_refs)

    def _needs_keyframe(self, kf: _Keyframe, world_from_cur: np.ndarray,
                        judged: LevelResult) -> bool:
        cfg = self.config
        kf_from_cur = se3.inverse(kf.world_from_kf) @ world_from_cur
        return (se3.translation_norm_m(kf_from_cur) > cfg.keyframe_translation_m
                or np.degrees(se3.rotation_angle_rad(kf_from_cur)) > cfg.keyframe_rotation_deg
                or judged.inside_fraction < cfg.keyframe_min_inside)

    # -- motion model and failure tests --------------------------------------------------------

    def _predict(self, dt_s: float) -> np.ndarray:
        """World-from-camera guess: the last pose moved on at the last velocity."""
        prev = self._world_from_prev
        if self._velocity is None or not 0 < dt_s <= self.config.max_motion_dt_s:
            return prev.copy()
        return se3.orthonormalize(prev @ se3.exp(self._velocity * dt_s))

    def _advance(self, stamp_ns: int, world_from_cur: np.ndarray, ok: bool) -> None:
        prev, prev_stamp = self._world_from_prev, self._prev_stamp_ns
        if ok and prev is not None and prev_stamp is not None and stamp_ns > prev_stamp:
            dt_s = (stamp_ns - prev_stamp) * 1e-9
            if dt_s <= self.config.max_motion_dt_s:
                self._velocity = se3.log(se3.inverse(prev) @ world_from_cur) / dt_s
            else:
                self._velocity = None
        elif not ok:
            self._velocity = None  # the guess just failed: do not extrapolate it further
        self._world_from_prev = np.array(world_from_cur, dtype=np.float64)
        self._prev_stamp_ns = int(stamp_ns)

    def _failure(self, judged: LevelResult, finest: LevelResult, cur_from_kf: np.ndarray,
                 guess: np.ndarray, dt_s: float) -> str:
        """Why the solve cannot be trusted ("" if it can): see TrackerConfig's failure fields."""
        cfg = self.config
        if not (np.isfinite(judged.residual) and np.isfinite(finest.residual)):
            return "too few keyframe pixels with depth and texture land in view"
        if judged.inside_fraction < cfg.min_inside_fraction:
            return f"only {judged.inside_fraction:.0%} of the keyframe stays in view"
        if judged.inlier_fraction < cfg.min_inlier_fraction:
            return f"only {judged.inlier_fraction:.0%} of the pixels fit the solution"
        if judged.residual > cfg.max_residual:
            return f"feature residual {judged.residual:.2f} > {cfg.max_residual}"
        eig = np.linalg.eigvalsh(finest.hessian)
        if eig[0] <= 0 or eig[-1] / eig[0] > cfg.max_condition:
            return "the image does not constrain every direction of motion"
        correction = se3.inverse(guess) @ cur_from_kf
        t = max(dt_s, cfg.min_correction_dt_s)
        if se3.translation_norm_m(correction) > cfg.max_speed_mps * t:
            return (f"the solve moves {se3.translation_norm_m(correction):.2f} m from the "
                    f"motion model's guess")
        turn_deg = float(np.degrees(se3.rotation_angle_rad(correction)))
        if turn_deg > cfg.max_angular_speed_dps * t:
            return f"the solve turns {turn_deg:.1f} degrees from the motion model's guess"
        return ""
