"""Pose samplers: geometry each one promises, seeds, and composition into a job's view list."""

import itertools
import math
from pathlib import Path

import pytest
import torch

from nerfdata.cameras import Camera, Intrinsics, look_at_c2w_opengl, validate_c2w
from nerfdata.errors import ConfigError
from nerfdata.poses import (
    FileConfig,
    Keyframe,
    OrbitConfig,
    PathConfig,
    PerturbConfig,
    SamplerConfig,
    ShellConfig,
    SpiralConfig,
    sample_views,
)

TARGET = (0.1, -0.2, 0.3)


def _source_cameras() -> list[Camera]:
    eyes = [(2.0, 0.5, 0.0), (0.0, 1.0, 2.5), (-2.0, 0.2, -0.5)]
    return [
        Camera(
            look_at_c2w_opengl(torch.tensor(e), torch.zeros(3), torch.tensor([0.0, 1.0, 0.0])),
            Intrinsics.from_fov(40 + 8 * i, 30, 50.0),
        )
        for i, e in enumerate(eyes)
    ]


def _no_files(path, split):
    raise AssertionError("this sampler must not read files")


def _views(sampler: SamplerConfig, seed: int = 0):
    return sample_views((sampler,), seed, lambda path, split: _source_cameras())


def _angle_deg(r_a: torch.Tensor, r_b: torch.Tensor) -> float:
    cosine = ((torch.trace(r_a.T @ r_b) - 1) / 2).clamp(-1, 1)
    return math.degrees(math.acos(float(cosine)))


def _looks_at(c2w: torch.Tensor, target: tuple[float, float, float]) -> bool:
    to_target = torch.tensor(target) - c2w[:3, 3]
    forward = -c2w[:3, 2]  # OpenGL: the camera looks down -z
    return bool(torch.nn.functional.cosine_similarity(forward, to_target, dim=0) > 1 - 1e-5)


def test_orbit_is_a_circle_at_fixed_elevation_looking_at_the_target():
    orbit = SamplerConfig(orbit=OrbitConfig(count=8, radius=2.5, elevation_deg=30.0, target=TARGET))
    views = sample_views((orbit,), 0, _no_files)
    assert len(views) == 8
    for view in views:
        validate_c2w(view.c2w_opengl)
        offset = view.c2w_opengl[:3, 3] - torch.tensor(TARGET)
        assert offset.norm() == pytest.approx(2.5, rel=1e-5)
        assert math.degrees(math.asin(offset[1] / offset.norm())) == pytest.approx(30.0, abs=1e-3)
        assert _looks_at(view.c2w_opengl, TARGET)
        assert view.c2w_opengl[:3, 0][1].abs() < 1e-5  # no roll: the x axis stays horizontal
    azimuths = [math.atan2(v.c2w_opengl[0, 3] - TARGET[0], v.c2w_opengl[2, 3] - TARGET[2]) for v in views]
    steps = [(b - a) % (2 * math.pi) for a, b in itertools.pairwise(azimuths)]
    assert steps == pytest.approx([2 * math.pi / 8] * 7, abs=1e-5)


def test_shell_stays_between_its_radii_and_above_the_target_for_a_hemisphere():
    shell = SamplerConfig(shell=ShellConfig(count=200, radius=(2.0, 3.0), hemisphere=True, target=TARGET))
    views = sample_views((shell,), 3, _no_files)
    offsets = torch.stack([v.c2w_opengl[:3, 3] for v in views]) - torch.tensor(TARGET)
    radii = offsets.norm(dim=-1)
    assert radii.min() >= 2.0 - 1e-5 and radii.max() <= 3.0 + 1e-5
    assert (offsets[:, 1] >= 0).all()
    # Uniform on the hemisphere: the mean direction's height is 1/2 (not skewed to the pole or equator).
    assert (offsets[:, 1] / radii).mean() == pytest.approx(0.5, abs=0.06)
    assert all(_looks_at(v.c2w_opengl, TARGET) for v in views)


def test_spiral_sweeps_its_elevation_range():
    spiral = SamplerConfig(spiral=SpiralConfig(count=11, radius=2.0, elevation_deg=(10.0, 60.0), turns=1.5))
    views = sample_views((spiral,), 0, _no_files)
    heights = [math.degrees(math.asin(float(v.c2w_opengl[1, 3]) / 2.0)) for v in views]
    assert heights[0] == pytest.approx(10.0, abs=1e-3) and heights[-1] == pytest.approx(60.0, abs=1e-3)
    assert all(b > a for a, b in itertools.pairwise(heights))


def test_roll_jitter_rolls_about_the_optical_axis_within_its_bound():
    plain = sample_views((SamplerConfig(orbit=OrbitConfig(count=16)),), 0, _no_files)
    rolled = sample_views((SamplerConfig(orbit=OrbitConfig(count=16, roll_jitter_deg=10.0)),), 0, _no_files)
    angles = []
    for a, b in zip(plain, rolled, strict=True):
        torch.testing.assert_close(a.c2w_opengl[:3, 3], b.c2w_opengl[:3, 3])
        torch.testing.assert_close(a.c2w_opengl[:3, 2], b.c2w_opengl[:3, 2], atol=1e-5, rtol=0)
        angles.append(_angle_deg(a.c2w_opengl[:3, :3], b.c2w_opengl[:3, :3]))
    assert max(angles) <= 10.0 + 1e-3 and max(angles) > 1.0


def test_perturb_moves_each_source_pose_by_at_most_the_given_noise():
    sources = _source_cameras()
    perturb = PerturbConfig(poses=Path("t.json"), per_pose=20, rotation_deg=5.0, translation=0.1)
    views = _views(SamplerConfig(perturb=perturb))
    assert len(views) == 60
    rotations, shifts = [], []
    for i, view in enumerate(views):
        source = sources[i // 20]
        validate_c2w(view.c2w_opengl)
        assert view.source_intrinsics == source.intrinsics
        rotations.append(_angle_deg(view.c2w_opengl[:3, :3], source.c2w_opengl[:3, :3]))
        shifts.append(float((view.c2w_opengl[:3, 3] - source.c2w_opengl[:3, 3]).norm()))
    assert max(rotations) <= 5.0 + 1e-3 and max(rotations) > 3.0
    assert max(shifts) <= 0.1 + 1e-6 and max(shifts) > 0.06


def test_path_passes_through_its_keyframes():
    keys = (Keyframe((2.0, 0.5, 0.0)), Keyframe((0.0, 0.5, 2.0)), Keyframe((-2.0, 1.0, 0.0), target=TARGET))
    views = sample_views((SamplerConfig(path=PathConfig(count=9, keyframes=keys)),), 0, _no_files)
    assert len(views) == 9
    for k, index in zip(keys, (0, 4, 8), strict=True):
        torch.testing.assert_close(views[index].c2w_opengl[:3, 3], torch.tensor(k.eye))
        assert _looks_at(views[index].c2w_opengl, k.target)
    for view in views:
        validate_c2w(view.c2w_opengl)
    closed = sample_views((SamplerConfig(path=PathConfig(count=6, keyframes=keys[:2], closed=True)),), 0, _no_files)
    torch.testing.assert_close(closed[3].c2w_opengl[:3, 3], torch.tensor(keys[1].eye))


def test_file_sampler_keeps_order_and_intrinsics():
    views = _views(SamplerConfig(file=FileConfig(path=Path("t.json"))))
    for view, camera in zip(views, _source_cameras(), strict=True):
        torch.testing.assert_close(view.c2w_opengl, camera.c2w_opengl)
        assert view.source_intrinsics == camera.intrinsics


def test_seeds_fix_the_views_and_samplers_draw_independently():
    shell = SamplerConfig(shell=ShellConfig(count=5))
    first = sample_views((shell,), 1, _no_files)
    again = sample_views((shell,), 1, _no_files)
    assert all(torch.equal(a.c2w_opengl, b.c2w_opengl) for a, b in zip(first, again, strict=True))
    assert not torch.equal(first[0].c2w_opengl, sample_views((shell,), 2, _no_files)[0].c2w_opengl)
    # Adding a sampler after another does not change the views the first one draws.
    composed = sample_views((shell, SamplerConfig(orbit=OrbitConfig(count=3))), 1, _no_files)
    assert len(composed) == 8 and [v.label for v in composed[4:6]] == ["shell[4]", "orbit[0]"]
    assert all(torch.equal(a.c2w_opengl, b.c2w_opengl) for a, b in zip(first, composed[:5], strict=True))


@pytest.mark.parametrize(
    "build, message",
    [
        (lambda: SamplerConfig(), "exactly one sampler"),
        (lambda: SamplerConfig(orbit=OrbitConfig(), shell=ShellConfig()), "exactly one sampler"),
        (lambda: OrbitConfig(radius=-1.0), "orbit radius must be positive"),
        (lambda: OrbitConfig(elevation_deg=90.0), "elevation_deg must be in"),
        (lambda: ShellConfig(radius=(3.0, 2.0)), "shell radius must be [smallest, largest]"),
        (lambda: PerturbConfig(poses=Path("t.json"), rotation_deg=-1.0), "must be >= 0"),
        (lambda: PathConfig(), "path needs either keyframes or poses"),
        (lambda: SpiralConfig(count=0), "spiral count must be >= 1"),
    ],
)
def test_bad_sampler_configs_name_the_problem(build, message):
    with pytest.raises(ConfigError, match=message.replace("[", r"\[").replace("]", r"\]")):
        build()
