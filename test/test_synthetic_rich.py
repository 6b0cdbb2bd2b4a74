"""Rich synthetic rooms (variant="rich"): clutter that is there and ray-cast exactly, windows and
lights that are bright without moving depth, camera poses, camera effects, determinism."""
from __future__ import annotations

import pickle

import numpy as np
import pytest

from depth_unet_ros.datasets.base import NYU_INTRINSICS, Intrinsics
from depth_unet_ros.datasets.synthetic import camera_fx, rich
from depth_unet_ros.datasets.synthetic import textures as tx
from depth_unet_ros.datasets.synthetic.scenes import (SyntheticIndoorDataset, _cast, _ray_dirs, _Scene,
                                                      _Solid, look_rotation, render)
from depth_unet_ros.errors import DatasetError

K = NYU_INTRINSICS.scaled(160, 120)


@pytest.fixture(scope="module")
def bank() -> tx.TextureBank:
    return tx.make_bank(np.random.default_rng([0, 2**31 - 1]))


@pytest.fixture(scope="module")
def scenes(bank) -> list:
    return [rich.sample_rich_scene(np.random.default_rng([0, i, rich.RICH_KEY]), bank)
            for i in range(40)]


def _cast_scene(scene: _Scene, k=K) -> tuple[np.ndarray, np.ndarray]:
    return _cast(scene, _ray_dirs(k, scene.cam_rot), k)


def _without(scene: _Scene, drop: set) -> _Scene:
    """The scene with the solids at indices ``drop`` removed (the room, index 0, stays)."""
    return _Scene(scene.room_m, scene.cam_pos, scene.cam_rot, scene.lights, scene.ambient,
                  [s for n, s in enumerate(scene.solids) if n not in drop])


def test_rich_frames_are_uint8_rgb_with_valid_depth_at_any_size():
    for height, width in ((480, 640), (61, 83)):
        ds = SyntheticIndoorDataset(2, seed=4, height=height, width=width, variant="rich")
        frame = ds[1]
        assert frame.image.shape == (height, width, 3) and frame.image.dtype == np.uint8
        assert frame.depth_m.shape == (height, width) and frame.depth_m.dtype == np.float32
        assert np.all(np.isfinite(frame.depth_m)) and frame.depth_m.min() >= 0.2
        assert frame.depth_m.max() <= 12.0 and frame.name == "synth_rich_4_00001"
        assert 20 < frame.image.mean() < 235 and frame.image.std() > 10


def test_rich_frames_are_a_pure_function_of_seed_and_index():
    a = SyntheticIndoorDataset(5, seed=9, height=60, width=80, variant="rich")
    b = pickle.loads(pickle.dumps(SyntheticIndoorDataset(5, seed=9, height=60, width=80,
                                                         variant="rich")))
    later, first = b[4], b[3]  # read out of order, after pickling
    np.testing.assert_array_equal(a[3].image, first.image)
    np.testing.assert_array_equal(a[3].depth_m, first.depth_m)
    np.testing.assert_array_equal(a[4].image, later.image)
    assert not np.array_equal(a[3].depth_m, a[4].depth_m)
    other = SyntheticIndoorDataset(5, seed=10, height=60, width=80, variant="rich")
    assert not np.array_equal(a[3].depth_m, other[3].depth_m)
    plain = SyntheticIndoorDataset(5, seed=9, height=60, width=80)
    assert not np.array_equal(a[3].depth_m, plain[3].depth_m)


def test_unknown_variant_is_refused():
    with pytest.raises(DatasetError, match="variant"):
        SyntheticIndoorDataset(1, variant="fancy")


def test_clutter_is_placed_and_seen_in_most_frames(scenes):
    """5-25 objects a room, several solids each; most views show some of them."""
    counts, seen = [], []
    for scene in scenes:
        start, stop = scene.groups["clutter"]
        counts.append(stop - start)
        _, key = _cast_scene(scene)
        hit = key // 6
        seen.append(len(np.unique(hit[(hit >= start) & (hit < stop)])))
        sizes = np.array([2 * s.half for s in scene.solids[start:stop]])
        assert np.all(sizes.max(axis=1) <= 0.75) and np.all(sizes.max(axis=1) >= 0.01)
    assert np.median(counts) >= 8
    assert np.mean(np.array(seen) > 0) >= 0.6 and np.median(seen) >= 3


def test_clutter_pixels_lie_on_their_solid_and_in_front_of_what_is_behind(scenes):
    """Depth is exact z-depth of the object hit: each clutter pixel, back-projected, lies on the
    surface of the solid it reports, and removing the clutter makes every such pixel farther."""
    ys, xs = np.mgrid[0:K.height, 0:K.width]
    checked = 0
    for scene in scenes[:20]:
        start, stop = scene.groups["clutter"]
        depth, key = _cast_scene(scene)
        hit = key // 6
        mask = (hit >= start) & (hit < stop)
        if not mask.any():
            continue
        rays = np.stack([(xs[mask] - K.cx) / K.fx, (ys[mask] - K.cy) / K.fy, np.ones(mask.sum())])
        cam = rays * depth[mask]
        world = scene.cam_rot @ cam + scene.cam_pos[:, None]
        for n in np.unique(hit[mask]):
            solid, pts = scene.solids[n], world[:, hit[mask] == n]
            c, s = np.cos(solid.yaw), np.sin(solid.yaw)
            q = pts - solid.center[:, None]
            local = np.stack([c * q[0] + s * q[1], -s * q[0] + c * q[1], q[2]])
            if solid.cylinder:  # on the side or the top cap
                radial = np.hypot(local[0], local[1])
                on_side = np.abs(radial - solid.half[0]) < 2e-3
                on_top = np.abs(local[2] - solid.half[2]) < 2e-3
                assert np.all((on_side | on_top) & (radial <= solid.half[0] + 2e-3))
            else:  # inside the box and on one of its faces
                excess = np.abs(local) - solid.half[:, None]
                assert np.all(excess < 2e-3) and np.all(np.abs(excess).min(axis=0) < 2e-3)
            checked += pts.shape[1]
        behind, _ = _cast_scene(_without(scene, set(range(start, stop))))
        assert np.all(behind[mask] > depth[mask])
    assert checked > 500


def test_a_known_box_renders_at_its_exact_depth(bank):
    """A 0.3 m box 2 m ahead of a level camera: the centre pixel's depth is 2 - 0.15 m."""
    room = np.array([6.0, 4.0, 2.7])
    scene = _Scene(room, np.array([0.5, 2.0, 0.15]), look_rotation(0.0, 0.0, 0.0),
                   [(np.array([3.0, 2.0, 2.5]), 4.0)], 0.2)
    tex, tint = np.zeros(6, int), np.ones((6, 3), np.float32)
    scene.solids += [_Solid(room / 2, room / 2, 0.0, tex, tint),
                     _Solid(np.array([2.5, 2.0, 0.15]), np.full(3, 0.15), 0.3, tex, tint)]
    k = Intrinsics(fx=130.0, fy=130.0, cx=80.0, cy=60.0, width=161, height=121)  # (60, 80): the axis
    image, depth = render(scene, bank, k, np.random.default_rng(0))
    to_face = 0.15 / np.cos(0.3)  # the box is turned by 0.3 rad: its face crosses the axis here
    assert depth[60, 80] == pytest.approx(2.0 - to_face, abs=1e-5)
    image, depth_rich = rich.render_rich(scene, bank, k, np.random.default_rng(0))
    np.testing.assert_array_equal(depth_rich, depth)  # camera effects never touch depth
    assert image.shape == (121, 161, 3) and image.dtype == np.uint8


def test_windows_and_ceiling_lights_are_bright_and_sit_on_their_surface(bank):
    """Emitting faces (window panes, light panels) are among the brightest pixels, and a pane
    changes depth by no more than how far it stands out of its wall."""
    found = 0
    for i in range(60):
        rng = np.random.default_rng([1, i, rich.RICH_KEY])
        scene = rich.sample_rich_scene(rng, bank)
        glowing = {n for n, s in enumerate(scene.solids) if s.emit is not None}
        depth, key = _cast_scene(scene)
        lit = np.take(rich._emit_table(scene), key) > 0
        if lit.mean() < 0.02:
            continue
        image, _ = rich.render_rich(scene, bank, K, rng)
        grey = image.mean(axis=-1)
        assert np.median(grey[lit]) >= np.percentile(grey, 75)
        panes = {n for n in glowing if scene.solids[n].emit[3] > 0}
        on_pane = np.isin(key // 6, list(panes))
        if on_pane.any():
            wall, _ = _cast_scene(_without(scene, panes))
            assert np.all(np.abs(wall[on_pane] - depth[on_pane]) <= 0.02)
        found += 1
        if found == 4:
            break
    assert found == 4


def test_camera_poses_span_robot_to_eye_height_pitch_and_close_ups(bank):
    """Heights 0.3-1.8 m, pitch -10..35 degrees, the camera clear of every solid, and a good
    share of close views (something within 1 m)."""
    heights, pitches, near = [], [], []
    for i in range(120):
        scene = rich.sample_rich_scene(np.random.default_rng([2, i, rich.RICH_KEY]), bank)
        heights.append(scene.cam_pos[2])
        pitches.append(np.degrees(-np.arcsin(scene.cam_rot[2, 2])))
        assert rich.clearance(scene, scene.cam_pos) >= rich.CLEARANCE_M - 1e-9
        near.append(_cast_scene(scene, NYU_INTRINSICS.scaled(40, 30))[0].min())
    heights, pitches = np.array(heights), np.array(pitches)
    assert heights.min() >= 0.3 and heights.max() <= 1.8 + 1e-9
    assert np.mean(heights < 0.8) > 0.1 and np.mean(heights > 1.5) > 0.1
    assert pitches.min() >= -10 - 1e-6 and pitches.max() <= 35 + 1e-6  # roll leaves the axis alone
    assert np.mean(pitches < 0) > 0.05 and np.mean(pitches > 25) > 0.1
    assert np.min(near) >= 0.2 and np.mean(np.array(near) < 1.0) > 0.25


def test_camera_effects_keep_uint8_rgb_and_are_mild():
    """expose(): uint8 RGB of the input's size; a flat grey stays near its encoded level, shows
    noise, and the corners come out no brighter than the centre."""
    h, w = 97, 131
    linear = np.full((h, w, 3), 0.25, np.float32)
    outs = [camera_fx.expose(linear.copy(), np.random.default_rng(s)) for s in range(12)]
    for out in outs:
        assert out.shape == (h, w, 3) and out.dtype == np.uint8
        centre = out[h // 2 - 5:h // 2 + 5, w // 2 - 5:w // 2 + 5].mean()
        assert 255 * 0.25**0.5 * 0.85 < centre < 255 * 0.25**0.42 * 1.15
        assert out[:8, :8].mean() <= centre + 2
        assert out[h // 2 - 10:h // 2 + 10, w // 2 - 10:w // 2 + 10].std() > 0.3
    np.testing.assert_array_equal(camera_fx.expose(linear.copy(), np.random.default_rng(3)), outs[3])
    assert not np.array_equal(outs[0], outs[1])
