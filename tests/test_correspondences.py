"""Dense correspondences: termination-distribution math, matches against exact analytic geometry,
pair selection, the export's files and determinism, the reader, and clear errors on bad input."""

import copy
import json
import math
import shutil
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch

from nerfdata.bench.correspondences import true_matches
from nerfdata.errors import ConfigError, NerfDataError
from nerfdata.fields.analytic import AnalyticField, Box, Sphere
from nerfdata.jobs.correspond import CorrespondJobConfig, run_correspond
from nerfdata.jobs.render import CameraConfig, RenderJobConfig, run_render
from nerfdata.labels.correspondences import correspondence_folder, load_pairs, read_pair, sample_at
from nerfdata.labels.depth_modes import render_depth_modes
from nerfdata.labels.matching import MatchConfig, match_pixels, project_points
from nerfdata.labels.pair_selection import choose_pairs
from nerfdata.poses import OrbitConfig, SamplerConfig
from nerfdata.render.renderer import RenderOptions
from nerfdata.render.termination import sample_termination, weight_in_window, weight_modes
from tests.conftest import look_at

FIELD = Path("scenes/analytic_demo")
OPTIONS = RenderOptions(num_steps=768)


def packed(rays: list[int], t_start: list[float], width: float, weights: list[float], density: float = 0.0):
    t = torch.tensor(t_start)
    return (torch.tensor(rays), t, t + width, torch.tensor(weights), torch.full_like(t, density))


# --------------------------------------------------------------------------------------------------
# Termination distribution over packed samples
# --------------------------------------------------------------------------------------------------


def test_sample_termination_inverts_the_cdf_of_interleaved_rays():
    # Ray 0: weight 0.1 in [1, 2], 0.3 in [2, 3]; ray 1: 0.5 in [4, 5]; ray 2: no samples. Interleaved.
    samples = packed([0, 1, 0], [1.0, 4.0, 2.0], 1.0, [0.1, 0.5, 0.3])
    u = torch.tensor([[0.0, 0.125, 0.625], [0.5, 0.0, 1.0], [0.3, 0.3, 0.3]])
    t = sample_termination(*samples, u)
    torch.testing.assert_close(t, torch.tensor([[1.0, 1.5, 2.5], [4.5, 4.0, 5.0], [0.0, 0.0, 0.0]]))


def test_sample_termination_follows_the_weights_and_the_exponential_inside_an_interval():
    g = torch.Generator().manual_seed(0)
    u = torch.rand(1, 20000, generator=g)
    t = sample_termination(*packed([0, 0], [1.0, 3.0], 0.5, [0.2, 0.6]), u)[0]
    assert ((t >= 1.0) & (t <= 1.5)).float().mean().item() == pytest.approx(0.25, abs=0.015)
    # One interval of density 4 over [0, 1]: the inverse of F(s) = (1 - e^{-4s}) / (1 - e^{-4}).
    q = torch.tensor([[0.1, 0.5, 0.9]])
    t = sample_termination(*packed([0], [0.0], 1.0, [1.0 - math.exp(-4.0)], density=4.0), q)
    expected = -torch.log1p(-q.double() * (1 - math.exp(-4.0))) / 4.0
    torch.testing.assert_close(t, expected.float())
    # An opaque interval ends the ray at its very start, as the median crossing does.
    t = sample_termination(*packed([0], [2.0], 0.1, [1.0], density=1e6), q)
    torch.testing.assert_close(t, torch.full_like(t, 2.0), atol=1e-4, rtol=0)


def test_weight_in_window_by_hand():
    samples = packed([0, 0, 1], [1.0, 2.0, 1.0], 1.0, [0.5, 0.25, 0.75])
    low, high = torch.tensor([0.0, 1.5]), torch.tensor([10.0, 1.75])
    torch.testing.assert_close(weight_in_window(*samples, low, high), torch.tensor([0.75, 0.1875]))
    # Exponential inside an interval of density 2 over [0, 1]: mass in [0.25, 0.5].
    w = 1.0 - math.exp(-2.0)
    mass = weight_in_window(*packed([0], [0.0], 1.0, [w], density=2.0), torch.tensor([0.25]), torch.tensor([0.5]))
    assert mass.item() == pytest.approx(math.exp(-0.5) - math.exp(-1.0), rel=1e-5)


def test_weight_modes_split_at_gaps_and_deep_valleys_only():
    step = 0.1
    # Ray 0: one bumpy surface (shallow valley) at t ~ 1.1, then a second one after empty space.
    # Ray 1: two peaks with a deep valley between, contiguous. Ray 2: nothing. Ray 3: three modes, k = 2.
    rays = [0] * 5 + [0] * 2 + [1] * 3 + [3] * 3
    t0 = [1.0, 1.1, 1.2, 1.3, 1.4, 3.0, 3.1, 2.0, 2.1, 2.2, 1.0, 2.0, 3.0]
    w = [0.1, 0.3, 0.25, 0.3, 0.05, 0.1, 0.1, 0.4, 0.01, 0.3, 0.2, 0.5, 0.3]
    within = torch.tensor([rays[:i].count(r) for i, r in enumerate(rays)])
    order = torch.argsort(within * 10 + torch.tensor(rays), stable=True)  # rays interleaved, each front to back
    samples = [x[order] for x in packed(rays, t0, step, w)]
    distance, weight = weight_modes(*samples, num_rays=4, k=2)
    torch.testing.assert_close(weight, torch.tensor([[1.0, 0.2], [0.41, 0.3], [0.0, 0.0], [0.5, 0.3]]))
    mid = [x + step / 2 for x in t0]
    bump = sum(m * x for m, x in zip(mid[:5], w[:5], strict=True)) / 1.0
    torch.testing.assert_close(distance[0], torch.tensor([bump, 3.1]))
    torch.testing.assert_close(distance[3], torch.tensor([2.05, 3.05]))


def test_depth_modes_of_an_opaque_analytic_view(scene):
    camera = look_at((2.2, 1.2, 2.4), size=24)
    modes = render_depth_modes(scene, camera, RenderOptions(num_steps=512, chunk_rays=200))
    assert modes.shape == (24, 24, 4, 2) and modes.dtype == torch.float16
    rays = camera.rays()
    truth = scene.trace(rays.origins, rays.directions)
    hit = truth.hit.reshape(24, 24)
    depth = (truth.range * rays.z_per_range).reshape(24, 24)
    first = modes[..., 0, :].float()
    assert (first[..., 0][hit] - depth[hit]).abs().median() < 2 * scene.extent / 512
    assert (first[..., 1][hit] > 0.99).float().mean() > 0.95
    assert (modes[~hit][..., 1].float() < 1e-3).all() and (modes[..., 1:, 1].float()[hit] < 0.01).all()


# --------------------------------------------------------------------------------------------------
# Matching against exact geometry
# --------------------------------------------------------------------------------------------------


def test_project_points_inverts_camera_rays():
    camera = look_at((2.2, 1.2, 2.4), size=32)
    g = torch.Generator().manual_seed(0)
    pixels = torch.rand(50, 2, generator=g) * 32
    rays = camera.rays(pixels)
    ranges = 1.0 + torch.rand(50, generator=g) * 3
    uv, z = project_points(camera, rays.origins + rays.directions * ranges[:, None])
    torch.testing.assert_close(uv, pixels, atol=1e-3, rtol=0)
    torch.testing.assert_close(z, ranges * rays.z_per_range, atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("mode", ["distribution", "median", "expected"])
def test_matches_agree_with_the_analytic_projection(scene, mode):
    camera_a, camera_b = look_at((2.2, 1.2, 2.4), size=48), look_at((-0.6, 1.4, 2.9), size=48)
    pixels = torch.cartesian_prod(torch.arange(48), torch.arange(48)).flip(-1).float() + 0.5
    generator = torch.Generator().manual_seed(0)
    matches = match_pixels(scene, camera_a, camera_b, pixels, MatchConfig(mode=mode), OPTIONS, None, generator)
    truth = true_matches(lambda o, d: scene.trace(o, d).range, camera_a, camera_b, pixels)
    torch.testing.assert_close(matches.uv_a, pixels)
    valid = matches.valid
    assert valid.sum() > 150
    error = (matches.uv_b - truth["uv"]).norm(dim=-1)[valid & truth["hit"]]
    assert error.median() < 0.05 and torch.quantile(error, 0.98) < 0.5  # sub-pixel
    assert (valid == truth["visible"]).float().mean() > 0.97
    # Rays grazing a silhouette are opaque in the field (its density has a soft edge) but miss the exact surface.
    assert ((valid & truth["hit"] & ~truth["visible"]).sum() / valid.sum()) < 0.01
    assert ((matches.confidence >= 0) & (matches.confidence <= 1)).all()
    assert (matches.confidence[valid] > 0.5).float().mean() > 0.95


def test_a_point_hidden_behind_a_box_in_view_b_is_invalid():
    sphere = Sphere((0.0, 0.0, 0.0), 0.3)
    aabb = [[-1.0, -1.0, -1.0], [1.0, 1.0, 1.5]]
    hidden = AnalyticField([sphere, Box((0.15, 0.0, 1.0), (0.15, 0.15, 0.05))], aabb)
    open_view = AnalyticField([sphere], aabb)
    # A's centre pixel sees the sphere at P (facing both cameras); the box sits on B's line of sight to P only.
    camera_a, camera_b = look_at((2.1, 0.0, 2.1), size=32, fov=30.0), look_at((0.0, 0.0, 3.0), size=32, fov=30.0)
    point = torch.tensor([[0.3, 0.0, 0.3]]) / math.sqrt(2.0)
    centre = torch.tensor([[16.0, 16.0]])
    generator = torch.Generator().manual_seed(0)
    for field_, seen in ((hidden, False), (open_view, True)):
        matches = match_pixels(field_, camera_a, camera_b, centre, MatchConfig(), OPTIONS, None, generator)
        uv, _ = project_points(camera_b, point)
        torch.testing.assert_close(matches.uv_b, uv, atol=0.05, rtol=0)  # inside B's image either way
        assert matches.valid.item() is seen


def test_a_pair_with_no_overlap_is_not_chosen():
    field_ = AnalyticField([Sphere((0.0, 0.0, 0.0), 0.5)], [[-1.0, -1.0, -1.0], [1.0, 1.0, 1.0]])
    cameras = [look_at(eye, size=32) for eye in ((0.0, 0.0, 3.0), (0.8, 0.3, 2.8), (0.0, 0.0, -3.0))]
    depths = []
    for camera in cameras:
        rays = camera.rays()
        hits = field_.trace(rays.origins, rays.directions)
        depths.append(torch.where(hits.hit, hits.range * rays.z_per_range, 0.0).reshape(32, 32).numpy())
    pairs = choose_pairs(cameras, depths, num_pairs=3, min_overlap=0.2, seed=0)
    assert [(p.a, p.b) for p in pairs] == [(0, 1)]
    assert pairs[0].overlap > 0.6 and 10 < pairs[0].rotation_deg < 30
    with pytest.raises(NerfDataError, match="no pair of the 2 views"):
        choose_pairs([cameras[0], cameras[2]], [depths[0], depths[2]], num_pairs=3, min_overlap=0.2, seed=0)


def test_pairs_mix_small_and_wide_baselines():
    # 12 views on a ring around the sphere: overlapping pairs range from 30 to 90+ degrees apart.
    field_ = AnalyticField([Sphere((0.0, 0.0, 0.0), 0.5)], [[-1.0, -1.0, -1.0], [1.0, 1.0, 1.0]])
    cameras = [look_at((3 * math.cos(a), 0.5, 3 * math.sin(a)), size=24) for a in np.arange(12) * math.pi / 6]
    depths = []
    for camera in cameras:
        rays = camera.rays()
        hits = field_.trace(rays.origins, rays.directions)
        depths.append(torch.where(hits.hit, hits.range * rays.z_per_range, 0.0).reshape(24, 24).numpy())
    angles = sorted(p.rotation_deg for p in choose_pairs(cameras, depths, num_pairs=4, min_overlap=0.1, seed=0))
    assert angles[0] < 35 and angles[-1] > 85


# --------------------------------------------------------------------------------------------------
# The job: files, determinism, reader, errors
# --------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def dataset(tmp_path_factory) -> Path:
    orbit = SamplerConfig(orbit=OrbitConfig(count=4, radius=3.2, elevation_deg=30.0, target=(0.0, -0.2, 0.0)))
    job = RenderJobConfig(field=FIELD, out=tmp_path_factory.mktemp("correspond") / "data", views=(orbit,),
                          camera=CameraConfig(width=40, height=32, fov_deg=45.0), outputs=("rgb", "depth"),
                          render=OPTIONS, preview_views=0)
    return run_render(job, show_progress=False)


def job(dataset: Path, **kwargs) -> CorrespondJobConfig:
    return replace(CorrespondJobConfig(field=FIELD, dataset=dataset, pairs=3, per_pair=150, preview_pairs=1), **kwargs)


@pytest.fixture(scope="module")
def export(dataset) -> Path:
    return run_correspond(job(dataset), show_progress=False).folder


def files_of(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir())}


def test_export_files_follow_the_design(dataset, export):
    assert export == dataset / "correspondences"
    index = json.loads((export / "pairs.json").read_text())
    assert index["kind"] == "correspondences" and index["config"]["mode"] == "distribution"
    assert (export / index["dataset"]).resolve() == (dataset / "transforms.json").resolve()
    assert 1 <= len(index["pairs"]) <= 3
    for record in index["pairs"]:
        assert record["file"] == f"{record['a']:05d}_{record['b']:05d}.npz" and 0 <= record["a"] < record["b"] < 4
        assert record["overlap"] >= 0.3 and record["matches"] == 150
        with np.load(export / record["file"]) as data:
            assert sorted(data.files) == ["confidence", "uv_a", "uv_b", "valid"]
            assert data["uv_a"].dtype == np.float32 and data["uv_a"].shape == (150, 2)
            assert data["uv_b"].dtype == np.float32 and data["uv_b"].shape == (150, 2)
            assert data["valid"].dtype == bool and data["confidence"].dtype == np.float32
            assert record["valid"] == data["valid"].sum() > 50
            assert np.all(data["uv_a"] % 1 == 0.5)  # pixel centres
            inside = data["uv_b"][data["valid"]]
            assert (inside >= 0).all() and (inside[:, 0] < 40).all() and (inside[:, 1] < 32).all()
    assert (export / index["pairs"][0]["preview"]).is_file()
    assert sum("preview" in r for r in index["pairs"]) == 1


def test_same_seed_gives_identical_files(dataset, export, tmp_path):
    before = files_of(export)
    run_correspond(job(dataset), show_progress=False)
    assert files_of(export) == before
    other = run_correspond(job(dataset, out=tmp_path, seed=1), show_progress=False).folder
    changed = files_of(other)
    assert any(changed[name] != before[name] for name in changed if name.endswith(".npz") and name in before)


def test_reader_yields_the_documented_shapes(export):
    batches = list(load_pairs(export.parent, batch_size=2, matches_per_pair=16, seed=0))
    pairs = len(json.loads((export / "pairs.json").read_text())["pairs"])
    assert sum(len(b.frames) for b in batches) == pairs
    first = batches[0]
    assert first.frames.shape == (min(2, pairs), 2) and first.frames.dtype == torch.int64
    assert first.uv_a.shape == first.uv_b.shape == (len(first.frames), 16, 2) and first.uv_a.dtype == torch.float32
    assert first.confidence.shape == (len(first.frames), 16)
    assert first.image_a.shape == first.image_b.shape == (len(first.frames), 3, 32, 40)
    assert 0.0 <= first.image_a.min() and first.image_a.max() <= 1.0
    again = next(iter(load_pairs(export, batch_size=2, matches_per_pair=16, seed=0, images=False)))
    torch.testing.assert_close(again.uv_b, first.uv_b)
    assert again.image_a is None
    # Sampling an image at uv_a (pixel centres) returns that pixel's colour exactly.
    colours = sample_at(first.image_a, first.uv_a)
    cols, rows = (first.uv_a[..., 0] - 0.5).long(), (first.uv_a[..., 1] - 0.5).long()
    for b in range(len(first.frames)):
        torch.testing.assert_close(colours[b], first.image_a[b][:, rows[b], cols[b]].T)
    record, matches = read_pair(export / "pairs.json", 0)
    assert matches.uv_a.shape == (record["matches"], 2) and matches.valid.dtype == torch.bool


def test_bad_inputs_give_one_clear_line(dataset, export, tmp_path):
    with pytest.raises(NerfDataError, match=r"pairs\.json: pair index 7 out of range"):
        read_pair(export, 7)
    with pytest.raises(NerfDataError, match=r"no correspondences/pairs\.json"):
        correspondence_folder(tmp_path)
    with pytest.raises(NerfDataError, match=r"no transforms\.json"):
        run_correspond(job(tmp_path), show_progress=False)
    no_depth = tmp_path / "no_depth"
    shutil.copytree(dataset, no_depth, ignore=shutil.ignore_patterns("correspondences"))
    content = json.loads((no_depth / "transforms.json").read_text())
    for frame in content["frames"]:
        frame.pop("depth_file_path")
    (no_depth / "transforms.json").write_text(json.dumps(content))
    with pytest.raises(NerfDataError, match=r"transforms\.json frame 0: no depth_file_path"):
        run_correspond(job(no_depth), show_progress=False)


def test_config_is_validated_and_parses_as_flags(tmp_path):
    from nerfdata.cli import command
    from nerfdata.flags import parse_command

    for key, value in (("per_pair", 0), ("pairs", 0), ("depth_tolerance", 0.0), ("min_overlap", 2.0)):
        with pytest.raises(ConfigError, match=key):
            CorrespondJobConfig(field=FIELD, dataset=tmp_path, **{key: value})
    config = parse_command(command("correspond"), ["--field", "f", "--dataset", "d", "--pairs", "5", "--per-pair", "64",
                                                    "--mode", "median", "--out", "o", "--seed", "3"]).config
    assert (config.pairs, config.per_pair, config.mode, config.out, config.seed) == (5, 64, "median", Path("o"), 3)


@pytest.mark.cuda
def test_matches_on_cuda_agree_with_the_cpu(scene):
    camera_a, camera_b = look_at((2.2, 1.2, 2.4), size=48), look_at((-0.6, 1.4, 2.9), size=48)
    pixels = torch.cartesian_prod(torch.arange(48), torch.arange(48)).flip(-1).float() + 0.5
    seeded = lambda: torch.Generator().manual_seed(0)  # noqa: E731  the same draws on both devices
    cpu = match_pixels(scene, camera_a, camera_b, pixels, MatchConfig(), OPTIONS, None, seeded())
    on_cuda = copy.deepcopy(scene).to("cuda")  # the session's scene stays on the CPU
    gpu = match_pixels(on_cuda, camera_a, camera_b, pixels, MatchConfig(), OPTIONS, None, seeded())
    assert gpu.valid.device.type == "cuda"
    gpu = gpu.cpu()
    assert cpu.valid.sum() > 150 and (gpu.valid == cpu.valid).float().mean() > 0.98
    error = (gpu.uv_b - cpu.uv_b).norm(dim=-1)[gpu.valid & cpu.valid]
    assert error.median() < 0.02 and torch.quantile(error, 0.98) < 0.5
    torch.testing.assert_close(gpu.confidence, cpu.confidence, atol=0.05, rtol=0)
