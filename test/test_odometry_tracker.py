"""The feature tracker recovers known camera motion and reports failure instead of wild poses.

Inputs are synthetic hand-held frames (exact depth and poses) at 320x240; the "features" are a
stride-4 function of the rendered image, so no depth model is needed.
"""
from __future__ import annotations

from functools import lru_cache
from pathlib import Path

import cv2
import numpy as np
import pytest

from depth_unet_ros.datasets.synthetic.handheld import HandheldSequence
from depth_unet_ros.errors import ImageFormatError
from depth_unet_ros.odometry import se3
from depth_unet_ros.odometry.pyramid import bilinear, depth_at, scale_k
from depth_unet_ros.odometry.tracker import FeatureTracker, TrackerConfig, TrackResult

FRAME_NS = 33_333_333
REPO = Path(__file__).resolve().parents[1]
SEVEN_SCENES = REPO / ".." / "shared" / "data" / "real_handheld_7scenes"


@lru_cache(maxsize=None)
def _sequence(seed: int) -> HandheldSequence:
    return HandheldSequence(40, seed=seed, height=240, width=320)


def _k(seq: HandheldSequence) -> np.ndarray:
    i = seq.intrinsics
    return np.array([[i.fx, 0.0, i.cx], [0.0, i.fy, i.cy], [0.0, 0.0, 1.0]])


def _features(image_rgb: np.ndarray) -> np.ndarray:
    """(60, 80, 9) float32 stand-in for decoder features: smoothed colour and two nonlinear
    functions of it, at a quarter of the image size like the bundled model's."""
    f = cv2.resize(image_rgb.astype(np.float32) / 255.0, (80, 60), interpolation=cv2.INTER_AREA)
    f = cv2.GaussianBlur(f, (3, 3), 0)
    return np.concatenate([f, f * f, np.sqrt(f)], axis=2).astype(np.float32)


def _pose(seq: HandheldSequence, i: int) -> np.ndarray:
    p = seq.pose(i)
    out = np.eye(4)
    out[:3, :3], out[:3, 3] = p.rotation, p.position_m
    return out


def _track(tracker: FeatureTracker, seq: HandheldSequence, i: int, stamp_ns: int,
           image: bool = True) -> TrackResult:
    frame = seq[i]
    return tracker.track(stamp_ns, frame.depth_m, _features(frame.image), _k(seq),
                         frame.image if image else None)


def _errors(result: TrackResult, truth: np.ndarray) -> tuple[float, float]:
    err = se3.inverse(truth) @ result.world_from_camera
    return se3.translation_norm_m(err), float(np.degrees(se3.rotation_angle_rad(err)))


def test_se3_exp_log_round_trip_and_inverse():
    """log inverts exp (also near 180 degrees), and inverse is the matrix inverse."""
    rng = np.random.default_rng(0)
    for xi in [rng.normal(size=6), np.array([0.1, -0.2, 0.3, 0.0, 0.0, 0.0]),
               np.array([0.0, 0.0, 0.0, 0.0, np.pi - 1e-6, 0.0]), np.zeros(6)]:
        pose = se3.exp(xi)
        np.testing.assert_allclose(se3.exp(se3.log(pose)), pose, atol=1e-9)
        np.testing.assert_allclose(se3.inverse(pose) @ pose, np.eye(4), atol=1e-12)
    pose, xi = se3.exp(rng.normal(size=6)), rng.normal(size=6) * 0.1
    np.testing.assert_allclose(pose @ se3.exp(xi) @ se3.inverse(pose),
                               se3.exp(se3.adjoint(pose) @ xi), atol=1e-9)


@pytest.mark.parametrize("use_image", [False, True])
def test_recovers_known_motion(use_image):
    """Frame 20 of a hand-held walk, 1/4 s after frame 12 with no motion guess, is placed
    within 1 cm and 0.3 degrees of its true pose relative to frame 12, with features alone and
    with the intensity level."""
    seq = _sequence(3)
    truth = se3.inverse(_pose(seq, 12)) @ _pose(seq, 20)
    assert se3.translation_norm_m(truth) > 0.05  # a real motion, not a near-identity
    tracker = FeatureTracker()
    _track(tracker, seq, 12, 0, use_image)
    result = _track(tracker, seq, 20, 8 * FRAME_NS, use_image)
    t_err, r_err = _errors(result, truth)
    assert result.ok
    assert t_err < 0.01 and r_err < 0.3
    assert result.covariance is not None and result.covariance.shape == (6, 6)
    assert np.all(np.linalg.eigvalsh(result.covariance) > 0)


@pytest.mark.parametrize("features_with_image", [False, True])
def test_frames_with_their_image_align_intensity_alone_unless_asked(monkeypatch, features_with_image):
    """By default a frame with its image (and a keyframe with one) is aligned on intensity
    only; features_with_image aligns the features first; a frame without its image always
    uses the features."""
    import depth_unet_ros.odometry.tracker as tracker_module

    channels: list[int] = []
    real_align = tracker_module.align_level

    def counting(ref, *args, **kwargs):
        channels.append(ref.values.shape[1])
        return real_align(ref, *args, **kwargs)

    monkeypatch.setattr(tracker_module, "align_level", counting)
    seq = _sequence(3)
    tracker = FeatureTracker(TrackerConfig(features_with_image=features_with_image))
    _track(tracker, seq, 12, 0)
    result = _track(tracker, seq, 13, FRAME_NS)
    assert result.ok and 1 in channels
    assert (9 in channels) == features_with_image
    channels.clear()
    assert _track(tracker, seq, 14, 2 * FRAME_NS, image=False).ok
    assert set(channels) == {9}


def test_follows_a_sequence_with_keyframes():
    """Over 30 frames (about 1 s) the drift stays under 2 cm, every frame is ok, and the
    keyframe moves on at least once but not every frame."""
    seq = _sequence(3)
    tracker = FeatureTracker()
    results = [_track(tracker, seq, i, i * FRAME_NS) for i in range(30)]
    truth = se3.inverse(_pose(seq, 0)) @ _pose(seq, 29)
    t_err, r_err = _errors(results[-1], truth)
    assert all(r.ok for r in results)
    assert 2 <= sum(r.keyframe for r in results) <= 20
    assert t_err < 0.02 and r_err < 0.5


def test_the_image_coming_and_going_between_frames_keeps_tracking_sane():
    """vo_node tracks a frame whose image did not arrive on features alone. Over 30 frames
    with the image on every other one, starting without: every frame is ok, drift stays small
    (under 3 cm: each image comeback can cost a keyframe), a keyframe made without the image
    gives way to the next frame, which has one (so intensity is back after one frame), and
    keyframes do not thrash (under a quarter of the frames)."""
    seq = _sequence(3)
    tracker = FeatureTracker()
    results = [_track(tracker, seq, i, i * FRAME_NS, image=i % 2 == 1) for i in range(30)]
    truth = se3.inverse(_pose(seq, 0)) @ _pose(seq, 29)
    t_err, r_err = _errors(results[-1], truth)
    assert all(r.ok for r in results), [r.reason for r in results]
    assert t_err < 0.03 and r_err < 0.5
    imageless_keyframes = [i for i, r in enumerate(results) if r.keyframe and i % 2 == 0]
    assert 0 in imageless_keyframes
    for i in imageless_keyframes:
        assert results[i + 1].keyframe, f"frame {i + 1} (with the image) kept keyframe {i}"
    assert sum(r.keyframe for r in results) < 30 / 4


def test_a_keyframe_without_the_image_gives_way_to_a_frame_with_it():
    """Still camera, first frame without the image: the next frame, with it, becomes the
    keyframe (it brings the grey levels); the frame after that, with it too, does not."""
    seq = _sequence(3)
    tracker = FeatureTracker()
    _track(tracker, seq, 5, 0, image=False)
    with_image = _track(tracker, seq, 5, FRAME_NS)
    again = _track(tracker, seq, 5, 2 * FRAME_NS)
    without = _track(tracker, seq, 5, 3 * FRAME_NS, image=False)
    assert with_image.ok and with_image.keyframe
    assert again.ok and not again.keyframe
    assert without.ok and not without.keyframe  # the keyframe's grey levels just go unused


def test_identical_frames_give_identity():
    """The same frame twice: the pose stays within 1 mm and 0.05 degrees of the first."""
    seq = _sequence(3)
    tracker = FeatureTracker()
    _track(tracker, seq, 5, 0)
    result = _track(tracker, seq, 5, FRAME_NS)
    t_err, r_err = _errors(result, np.eye(4))
    assert result.ok and not result.keyframe
    assert t_err < 1e-3 and r_err < 0.05


@pytest.mark.parametrize("kind", ["unrelated", "blank", "noise"])
def test_failure_is_reported_not_a_wild_pose(kind):
    """A frame of another room, a blank frame or noise gives ok=False and the motion model's
    prediction (here: the pose held, as the camera had not moved yet)."""
    seq = _sequence(3)
    tracker = FeatureTracker()
    _track(tracker, seq, 0, 0)
    _track(tracker, seq, 0, FRAME_NS)  # a still camera: the predicted pose is the identity
    other = _sequence(11)[0]
    rng = np.random.default_rng(1)
    feats = {"unrelated": _features(other.image), "blank": np.ones((60, 80, 9), np.float32),
             "noise": rng.random((60, 80, 9), dtype=np.float32)}[kind]
    image = {"unrelated": other.image, "blank": np.zeros((240, 320, 3), np.uint8),
             "noise": rng.integers(0, 256, (240, 320, 3), dtype=np.uint8)}[kind]
    result = tracker.track(2 * FRAME_NS, other.depth_m, feats, _k(seq), image)
    assert not result.ok
    assert result.covariance is None
    t_err, r_err = _errors(result, np.eye(4))
    assert t_err < 1e-3 and r_err < 0.05


def test_first_frame_is_the_world_and_reset_starts_over():
    """The first frame is the identity keyframe; reset makes the next frame the first again."""
    seq = _sequence(3)
    tracker = FeatureTracker()
    first = _track(tracker, seq, 10, 0)
    assert first.ok and first.keyframe
    np.testing.assert_array_equal(first.world_from_camera, np.eye(4))
    _track(tracker, seq, 14, 4 * FRAME_NS)
    tracker.reset()
    again = _track(tracker, seq, 20, 5 * FRAME_NS)
    assert again.keyframe
    np.testing.assert_array_equal(again.world_from_camera, np.eye(4))


def test_intensity_only_without_an_image_has_no_level_and_no_crash():
    """feature_levels 0 (intensity only) on a frame whose image did not come: the keyframe has
    no level to align on, so the next frame is reported as failed, not an exception (the depth
    pyramid, built only for keyframes, once took the widest of no levels)."""
    from depth_unet_ros.odometry.tracker import TrackerConfig

    k = np.array([[100.0, 0.0, 32.0], [0.0, 100.0, 24.0], [0.0, 0.0, 1.0]])
    depth, feats = np.full((48, 64), 2.0, np.float32), np.zeros((12, 16, 8), np.float32)
    tracker = FeatureTracker(TrackerConfig(feature_levels=0))
    assert tracker.track(0, depth, feats, k).ok
    second = tracker.track(FRAME_NS, depth, feats, k)
    assert not second.ok and second.reason


def test_depth_at_any_size_and_nan_holes():
    """Depth at twice the feature size with NaN holes works like depth at the network size:
    the camera matrix is scaled by the size ratio."""
    seq = _sequence(3)
    frames = [seq[0], seq[8]]
    k2 = scale_k(_k(seq), (240, 320), (480, 640))
    tracker = FeatureTracker()
    for n, (i, frame) in enumerate(zip((0, 8), frames)):
        depth = cv2.resize(frame.depth_m, (640, 480), interpolation=cv2.INTER_NEAREST)
        depth[100:140, 200:260] = np.nan
        depth[300:310] = 0.0
        result = tracker.track(i * FRAME_NS, depth, _features(frame.image), k2)
    t_err, r_err = _errors(result, se3.inverse(_pose(seq, 0)) @ _pose(seq, 8))
    assert result.ok and t_err < 0.01 and r_err < 0.3


def test_bad_inputs_raise_typed_errors():
    """Wrong shapes say what is expected instead of failing deep inside numpy."""
    tracker = FeatureTracker()
    depth = np.ones((240, 320), np.float32)
    k = np.eye(3)
    with pytest.raises(ImageFormatError):
        tracker.track(0, depth, np.ones((9, 60, 80), np.float32)[:, :, :2].T, k)  # too small
    with pytest.raises(ImageFormatError):
        tracker.track(0, depth[None], np.ones((60, 80, 9), np.float32), k)
    with pytest.raises(ImageFormatError):
        tracker.track(0, depth, np.ones((60, 80, 9), np.float32), k,
                      np.ones((240, 320, 3), np.float32))


def test_pyramid_helpers():
    """bilinear interpolates exactly on a linear ramp and flags points outside; depth_at drops
    footprints with holes or depth edges."""
    ramp = (np.arange(5)[None, :, None] + 10 * np.arange(4)[:, None, None]).astype(np.float32)
    values, inside = bilinear(ramp, np.array([1.25, 3.5, -0.1]), np.array([2.5, 0.0, 1.0]))
    np.testing.assert_allclose(values[:2, 0], [26.25, 3.5])
    assert inside.tolist() == [True, True, False]
    depth = np.full((8, 8), 2.0, np.float32)
    depth[0:2, 0:4] = np.nan  # half of the top-left footprint: kept, the mean of the rest
    depth[:, 4:] = 2.0 * (1.0 + 0.01 * np.arange(1, 5))  # a slanted surface, no edge
    depth[0:2, 6:8] = 5.0  # a foreground object: the top-right footprint straddles an edge
    small = depth_at(depth, 2, 2, max_spread=0.05)
    assert small[0, 0] == pytest.approx(2.0) and small[1, 0] == pytest.approx(2.0)
    assert small[0, 1] == 0.0
    assert small[1, 1] == pytest.approx(2.05)
    depth[0:3, 0:4] = np.nan  # now over half of the footprint has no reading
    assert depth_at(depth, 2, 2, max_spread=0.05)[0, 0] == 0.0


def test_keyframe_pixels_take_the_nearest_depth_around_them():
    """At an occlusion an image edge moves with the occluder: a pixel within depth_near_px of
    the near side takes its depth, farther ones keep their own, and holes stay holes."""
    from depth_unet_ros.odometry.tracker import _nearest_depth

    depth = np.full((6, 10), 3.0, np.float32)
    depth[:, :4] = 1.0  # the occluder on the left
    depth[0, 9] = np.nan
    near = _nearest_depth(depth, 2.0)
    np.testing.assert_array_equal(near[:, :6], 1.0)  # up to 2 px past the occluder's edge
    np.testing.assert_array_equal(near[1:, 6:], 3.0)
    assert np.isnan(near[0, 9]) and near[0, 8] == 3.0  # a hole neither spreads nor is filled
    assert _nearest_depth(depth, 0.0) is depth


@pytest.mark.slow
@pytest.mark.skipif(not SEVEN_SCENES.is_dir(), reason="../shared/data/real_handheld_7scenes absent")
def test_beats_opencv_rgbd_on_the_same_model_depth_on_held_out_real_frames():
    """The issue's bar on the real frames the bundled model never trained on (7-Scenes 420-499,
    as depth_node publishes them): the tracker's ATE is below OpenCV RGB-D odometry's on the same
    model depth and its RPE (1 s) no worse, with no failed frame. Measured 2.2 / 5.7 cm against
    3.2 / 6.3 cm with the bundled model (2.2 / 5.8 with the features aligned too, 2.5 / 5.7
    before the tracker took the nearest depth around each keyframe pixel; 1.7 / 5.6 against
    3.5 / 6.8 with the recipe before); run-to-run noise moved RPE by about 0.4 cm."""
    from depth_unet_ros.datasets.registered import FrameRange
    from depth_unet_ros.inference import bundled_model_path, load_estimator
    from depth_unet_ros.odometry.offline import RunSpec, open_sequence, run_odometry
    from depth_unet_ros.odometry.trajectory import score_trajectory

    frames = open_sequence(SEVEN_SCENES, FrameRange(420, 500),
                           str(REPO / "config" / "train_real_default.yaml"),
                           load_sensor_depth=False)
    specs = [RunSpec("feature", "model"), RunSpec("opencv", "model")]
    with load_estimator(bundled_model_path()) as estimator:
        output = run_odometry(frames, specs, estimator, progress=False)
    reference = frames.reference
    ours, opencv = (score_trajectory(run.trajectory, reference) for run in output.runs)
    assert output.runs[0].failures == 0
    assert ours.ate.rmse_m < opencv.ate.rmse_m, (ours.ate, opencv.ate)
    assert ours.rpe.rmse_m <= opencv.rpe.rmse_m, (ours.rpe, opencv.rpe)
