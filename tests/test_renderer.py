"""The renderer against exact ground truth, the fast marcher against its reference twin, chunking."""

import copy
import math
from dataclasses import replace
from pathlib import Path

import pytest
import torch

import nerfdata.render.renderer as renderer_module
from nerfdata.cameras import Camera, Intrinsics, Rays, look_at_c2w_opengl
from nerfdata.errors import ConfigError
from nerfdata.fields.analytic import AnalyticField, Sphere
from nerfdata.fields.loading import load_field
from nerfdata.fields.occupancy import occupancy_grid_from_density
from nerfdata.render.marching import growing_round_limit
from nerfdata.render.renderer import RenderOptions, render_image, render_rays, render_rays_reference


@pytest.fixture(scope="module")
def occupancy(scene):
    return occupancy_grid_from_density(scene.density, scene.aabb, resolution=64)


@pytest.fixture(scope="module")
def renders(scene, cameras, occupancy):
    return [render_image(scene, camera, RenderOptions(), occupancy) for camera in cameras]


def test_renders_match_exact_ground_truth(scene, cameras, renders):
    extent = scene.extent
    for camera, image in zip(cameras, renders, strict=True):
        rays = camera.rays()
        truth = scene.trace(rays.origins, rays.directions)
        mask = image.accumulation.reshape(-1) > 0.5
        assert (mask == truth.hit).float().mean() >= 0.99
        both = mask & truth.hit
        depth_truth = truth.range * rays.z_per_range
        error = (image.depth_median.reshape(-1)[both] - depth_truth[both]).abs()
        # A silhouette pixel's grazing ray may see the background through a sliver: 99.9% within 1%.
        assert torch.quantile(error, 0.999) < 0.01 * extent and error.median() < 0.001 * extent
        cosine = (image.normal.reshape(-1, 3)[both] * truth.normal[both]).sum(-1).clamp(-1, 1)
        assert torch.rad2deg(torch.acos(cosine)).mean() < 3.0


def test_z_depth_and_range_are_related_by_the_ray_angle(cameras, renders):
    rays = cameras[0].rays()
    image = renders[0]
    torch.testing.assert_close(image.depth_median.reshape(-1), image.range_median.reshape(-1) * rays.z_per_range)
    assert (image.range_median >= image.depth_median).all()


def test_occupancy_grid_never_drops_a_surface(scene, cameras, renders):
    for camera, skipped in zip(cameras, renders, strict=True):
        dense = render_image(scene, camera, RenderOptions(), occupancy=None)
        # Both stop early, each missing less than the stop's transmittance T (a dropped surface misses ~1).
        tail = 2 * RenderOptions().min_transmittance
        assert (dense.rgb - skipped.rgb).abs().max() < tail
        assert (dense.accumulation - skipped.accumulation).abs().max() < tail
        assert (dense.depth_median - skipped.depth_median).abs().max() < 1e-3 * scene.extent


def test_fast_marcher_matches_reference(scene, cameras, occupancy):
    rays = cameras[1].rays()[::7]
    options = RenderOptions(return_samples=True)
    fast = render_rays(scene, rays, options, occupancy)
    reference = render_rays_reference(scene, rays, replace(options, chunk_rays=256))
    # The fast marcher stops at transmittance T: colour and accumulation miss less than T, the
    # expected range and spread less than T times the box (the median nothing).
    tail = options.min_transmittance + 1e-4
    torch.testing.assert_close(fast.rgb, reference.rgb, rtol=0, atol=tail)
    torch.testing.assert_close(fast.accumulation, reference.accumulation, rtol=0, atol=tail)
    torch.testing.assert_close(fast.range_median, reference.range_median, rtol=0, atol=1e-4 * scene.extent)
    hit = reference.accumulation > 0.5
    far = tail * scene.extent
    torch.testing.assert_close(fast.range_expected[hit], reference.range_expected[hit], rtol=0, atol=far)
    torch.testing.assert_close(fast.depth_spread[hit], reference.depth_spread[hit], rtol=0, atol=far)
    cosine = (fast.normal[hit] * reference.normal[hit]).sum(-1)
    assert cosine.min() > math.cos(math.radians(1.0))
    # Empty-space skipping and early termination evaluate far fewer samples.
    assert fast.num_samples.sum() < 0.2 * reference.num_samples.sum()


def test_returned_samples_add_up_to_the_accumulation(scene, cameras, occupancy):
    rays = cameras[0].rays()[::11]
    out = render_rays(scene, rays, RenderOptions(return_samples=True, chunk_rays=50), occupancy)
    s = out.samples
    per_ray = torch.zeros(len(rays)).index_add(0, s.ray_indices, s.weights)
    torch.testing.assert_close(per_ray, out.accumulation)
    assert (s.t_end > s.t_start).all() and s.ray_indices.max() < len(rays)
    # Front to back within each ray.
    for ray in s.ray_indices.unique()[:20]:
        t = s.t_start[s.ray_indices == ray]
        assert (t[1:] > t[:-1]).all()


def test_chunked_and_unchunked_renders_are_identical(scene, cameras, occupancy):
    rays = cameras[2].rays()[::3]
    whole = render_rays(scene, rays, RenderOptions(chunk_rays=len(rays)), occupancy)
    chunked = render_rays(scene, rays, RenderOptions(chunk_rays=97), occupancy)
    for name in ("rgb", "accumulation", "range_median", "range_expected", "depth_spread", "normal"):
        torch.testing.assert_close(getattr(chunked, name), getattr(whole, name), rtol=0, atol=1e-6)
    assert torch.equal(chunked.num_samples, whole.num_samples)


def test_render_image_marches_one_chunk_at_a_time(monkeypatch, scene):
    """Memory is bounded by the chunk: a 1920x1080 image never sends more than chunk_rays rays at once."""
    sizes = []

    def fake_render_rays(field_, rays, options, occupancy=None, generator=None):
        sizes.append(len(rays))
        n = len(rays)
        zeros = torch.zeros(n)
        return renderer_module.RayOutputs(
            torch.zeros(n, 3), zeros, zeros, zeros, zeros, zeros.long(), torch.zeros(n, 3)
        )

    monkeypatch.setattr(renderer_module, "render_rays", fake_render_rays)
    camera = Camera(torch.eye(4), Intrinsics.from_fov(1920, 1080, 60.0))
    image = render_image(scene, camera, RenderOptions(chunk_rays=16384))
    assert max(sizes) <= 16384 and sum(sizes) == 1920 * 1080
    assert image.rgb.shape == (1080, 1920, 3)


@pytest.mark.parametrize("background, value", [("white", 1.0), ("black", 0.0), ("none", 0.0)])
def test_background(background, value):
    field = AnalyticField([Sphere((0.0, 0.0, 0.0), 0.3)], aabb=[[-1, -1, -1], [1, 1, 1]])
    rays = Rays(torch.tensor([[0.0, 0.9, 3.0]]), torch.tensor([[0.0, 0.0, -1.0]]), torch.ones(1))
    out = render_rays(field, rays, RenderOptions(background=background))
    assert out.accumulation.item() == 0.0 and out.rgb.tolist() == [[value] * 3]
    assert out.range_median.item() == 0.0 and out.num_samples.item() > 0


def test_early_termination_stops_inside_the_surface():
    field = AnalyticField([Sphere((0.0, 0.0, 0.0), 0.5)], aabb=[[-1, -1, -1], [1, 1, 1]])
    rays = Rays(torch.tensor([[0.0, 0.0, 3.0]]), torch.tensor([[0.0, 0.0, -1.0]]), torch.ones(1))
    eager = render_rays(field, rays, RenderOptions(normals=False))
    full = render_rays(field, rays, RenderOptions(normals=False, min_transmittance=0.0))
    step = field.extent / RenderOptions().num_steps
    steps_to_surface = math.ceil((2.5 - 2.0) / step)  # box entry at t = 2, sphere at t = 2.5
    # No grid: a long march, whose rounds grow to the longest the schedule gives.
    longest_round = int(growing_round_limit(torch.tensor([1 << 30]), RenderOptions().samples_per_round))
    assert eager.num_samples.item() <= steps_to_surface + longest_round
    assert full.num_samples.item() >= math.floor(2.0 / step)  # the whole box
    torch.testing.assert_close(eager.rgb, full.rgb, rtol=0, atol=1e-3)


def test_renders_are_differentiable_in_the_field(scene, cameras):
    from nerfdata.encoders.hashgrid import HashGridConfig
    from nerfdata.fields.ngp import NGPField, NGPFieldConfig

    grid = HashGridConfig(num_levels=4, log2_hashmap_size=12)
    field = NGPField(NGPFieldConfig(aabb=((-1.0, -1.0, -1.0), (1.0, 1.0, 1.0)), hash_grid=grid))
    rays = cameras[0].rays()[::50]
    g = torch.Generator().manual_seed(0)
    out = render_rays(field, rays, RenderOptions(normals=False, stratified=True, num_steps=128), generator=g)
    out.rgb.sum().backward()
    assert field.encoder.params.grad.abs().sum() > 0
    assert all(p.grad.abs().sum() > 0 for p in field.density_mlp.parameters())


def _small_ngp(density_bias: float) -> "NGPField":
    from nerfdata.encoders.hashgrid import HashGridConfig
    from nerfdata.fields.ngp import NGPField, NGPFieldConfig

    torch.manual_seed(0)
    config = NGPFieldConfig(
        aabb=((-1.0, -1.0, -1.0), (1.0, 1.0, 1.0)),
        hash_grid=HashGridConfig(num_levels=4, log2_hashmap_size=12),
        density_bias=density_bias,
    )
    return NGPField(config)


def _parameter_gradients(field, render) -> dict[str, torch.Tensor]:
    """Gradients w.r.t. every field parameter of a fixed random linear function of colour,
    accumulation and expected range."""
    field.zero_grad(set_to_none=True)
    out = render()
    g = torch.Generator().manual_seed(1)
    n = len(out.accumulation)
    loss = (
        (out.rgb * torch.randn(n, 3, generator=g)).sum()
        + (out.accumulation * torch.randn(n, generator=g)).sum()
        + (out.range_expected * torch.randn(n, generator=g)).sum()
    )
    loss.backward()
    return {name: p.grad.clone() for name, p in field.named_parameters()}


@pytest.mark.parametrize(
    "min_transmittance, marcher, atol",
    [
        # Every step, in rounds of 8 samples chained through the optical depth, against one block:
        # the same samples, only the order of the float32 sums over ~5000 samples differs
        # (measured: up to 2e-6 of each parameter's largest gradient).
        (0.0, "fused", 1e-5),
        # Rays stop once their transmittance is below 1e-10: what is dropped weighs less than the
        # float32 rounding of the gradients, so the same tolerance holds (for both marchers).
        (1e-10, "fused", 1e-5),
        (1e-10, "torch", 1e-5),
        # The default stop, 1e-4 (training's): the dropped tail (transmittance ~1e-5 at the stop,
        # rounds overshoot) is large next to a density's gradient, a difference of nearly equal
        # colour terms (measured: up to 2.4e-3 of each parameter's largest gradient).
        (1e-4, "auto", 1e-2),
    ],
)
def test_fast_marcher_gradients_match_reference(cameras, min_transmittance, marcher, atol):
    """The fast marcher (rounds, scattered evaluations, early termination) differentiates like the
    reference's single block: the gradient w.r.t. every field parameter, value by value."""
    field = _small_ngp(density_bias=3.0)  # dense: rays saturate inside the box, so early termination acts
    rays = cameras[0].rays()[::48]
    options = RenderOptions(  # marched as training marches: fixed rounds (whose overshoot the tolerance allows for)
        num_steps=96, normals=False, min_transmittance=min_transmittance, marcher=marcher, adaptive_rounds=False,
        unshaded_weight=0.0,  # every colour evaluated, as the reference does (the skip is tested on its own)
    )
    fast = _parameter_gradients(field, lambda: render_rays(field, rays, options))
    reference = _parameter_gradients(field, lambda: render_rays_reference(field, rays, options))
    if min_transmittance > 0:  # early termination did skip samples
        with torch.no_grad():
            evaluated = render_rays(field, rays, options).num_samples.sum()
            every_step = render_rays_reference(field, rays, options).num_samples.sum()
        assert evaluated < 0.9 * every_step
    for name, expected in reference.items():
        scale = expected.abs().max()
        assert scale > 0, name
        message = lambda m, name=name: f"{name}: {m}"  # noqa: E731
        torch.testing.assert_close(fast[name], expected, rtol=1e-4, atol=atol * float(scale), msg=message)


def test_options_are_validated():
    with pytest.raises(ConfigError, match="near < far"):
        RenderOptions(near=2.0, far=1.0)
    with pytest.raises(ConfigError, match="chunk_rays"):
        RenderOptions(chunk_rays=0)
    field = AnalyticField([Sphere((0.0, 0.0, 0.0), 0.5)], aabb=[[-1, -1, -1], [1, 1, 1]])
    rays = Rays(torch.zeros(1, 3), torch.tensor([[0.0, 0.0, 1.0]]), torch.ones(1))
    with pytest.raises(ConfigError, match="Generator"):
        render_rays(field, rays, RenderOptions(stratified=True))



class _FlatFog(AnalyticField):
    """A fog of even density whose gradient, 1e-30, is rounding noise: no direction is a normal."""

    def density(self, positions):
        return 5.0 + 1e-30 * positions[:, 0]

    def query(self, positions, directions):
        return self.density(positions), torch.full_like(positions, 0.5)


def test_a_normal_is_unit_length_or_zero_even_where_the_gradient_vanishes():
    """Where the density gradient is negligible the normal is zero, never a vector of length 1e-6 or 1e-22."""
    fog = _FlatFog([Sphere((0.0, 0.0, 0.0), 0.5)], aabb=[[-1, -1, -1], [1, 1, 1]])
    origins = torch.tensor([[0.0, 0.0, -3.0]]).expand(64, 3).contiguous()
    tilt = torch.randn(64, 3, generator=torch.Generator().manual_seed(0)) * 0.05
    directions = torch.nn.functional.normalize(tilt + torch.tensor([0.0, 0.0, 1.0]), dim=-1)
    for render in (render_rays, render_rays_reference):
        out = render(fog, Rays(origins, directions, torch.ones(64)), RenderOptions())
        assert (out.accumulation > 0.99).all()
        assert (out.normal == 0).all()


def _renders_alike_on_cuda(field, camera, occupancy, options, rgb_tolerance, normal_deg):
    """The view rendered on CUDA against the CPU's: rgb (mean and 99.5% of pixels), median depth within one
    render step on 99% of the pixels opaque in both, normals within ``normal_deg`` on 98% of them."""
    cpu = render_image(field, camera, options, occupancy)
    moved = copy.deepcopy(field).to("cuda")  # nn.Module.to moves in place: the CPU field stays as it is
    gpu = render_image(moved, camera, options, occupancy.to("cuda"))
    assert gpu.rgb.device.type == "cuda" and gpu.normal is not None and gpu.normal.device.type == "cuda"
    gpu = gpu.cpu()
    hit = (cpu.accumulation > 0.5) & (gpu.accumulation > 0.5)
    assert hit.float().mean() > 0.05  # the view sees the field: the comparison means something
    rgb_error = (cpu.rgb - gpu.rgb).abs().amax(dim=-1).flatten()
    assert rgb_error.mean() < rgb_tolerance and torch.quantile(rgb_error, 0.995) < 10 * rgb_tolerance
    depth_error = (cpu.depth_median - gpu.depth_median).abs()[hit]
    assert torch.quantile(depth_error, 0.99) <= field.extent / options.num_steps
    both = hit & (cpu.normal.norm(dim=-1) > 0.5) & (gpu.normal.norm(dim=-1) > 0.5)
    cosine = (cpu.normal * gpu.normal).sum(dim=-1)[both]
    assert torch.quantile(cosine, 0.02) > math.cos(math.radians(normal_deg))


@pytest.mark.cuda
def test_analytic_scene_renders_alike_on_cuda_and_cpu(scene, cameras, occupancy):
    _renders_alike_on_cuda(scene, cameras[0], occupancy, RenderOptions(num_steps=512), 1e-3, 2.0)


@pytest.mark.cuda
def test_ngp_field_renders_alike_on_cuda_and_cpu():
    # The hash grid's auto backend: tiny-cuda-nn or Triton on CUDA, the fused C loops on the CPU.
    loaded = load_field("scenes/tabletop")
    aabb = loaded.field.aabb.double()
    centre, extent = (aabb[0] + aabb[1]) / 2, loaded.field.extent
    eye = centre + extent * torch.tensor([0.45, 0.4, 0.55], dtype=torch.float64)
    c2w = look_at_c2w_opengl(eye.float(), centre.float(), torch.tensor([0.0, 1.0, 0.0]))
    camera = Camera(c2w, Intrinsics.from_fov(64, 48, 50.0))
    _renders_alike_on_cuda(loaded.field, camera, loaded.occupancy_grid(), RenderOptions(num_steps=512), 5e-3, 5.0)


def _tabletop_view(size: int = 40) -> Camera:
    from nerfdata.writers.transforms import read_cameras

    camera = read_cameras(Path("scenes/tabletop/cameras.json"))[0]
    return Camera(camera.c2w_opengl, camera.intrinsics.scaled(size / camera.intrinsics.width))


def test_unshaded_samples_move_colour_by_at_most_their_budget_and_nothing_else():
    """Samples too light to matter are composited without their colour: RGB within the budget of the fully
    shaded render, accumulation, depths and normals bit for bit the same, far fewer colour evaluations."""
    loaded = load_field(Path("scenes/tabletop"))
    field, occupancy, camera = loaded.field, loaded.occupancy, _tabletop_view()
    shaded_rows = []
    shade = field.shade

    def counting(features, directions):
        shaded_rows.append(len(features))
        return shade(features, directions)

    field.shade = counting
    images = {}
    for budget in (0.0, 1e-3, 1e-2):
        shaded_rows.clear()
        options = RenderOptions(num_steps=512, unshaded_weight=budget)
        images[budget] = (render_image(field, camera, options, occupancy), sum(shaded_rows))
    (every, every_rows) = images[0.0]
    for budget in (1e-3, 1e-2):
        image, rows = images[budget]
        assert (image.rgb - every.rgb).abs().max() <= budget + 1e-6
        for name in ("accumulation", "depth_median", "range_expected", "depth_spread", "normal"):
            assert torch.equal(getattr(image, name), getattr(every, name)), name
        assert rows < 0.9 * every_rows
    assert images[1e-2][1] < images[1e-3][1]


def test_unshaded_samples_keep_the_training_gradients():
    """Training marches with the default budget: the gradients of a photometric loss stay those of a fully
    shaded render (what is left out weighs under 1e-3 per ray; measured: within 0.6% of each parameter's largest
    gradient, and 3.8% with a budget of 1e-2, which this tolerance refuses)."""
    loaded = load_field(Path("scenes/tabletop"))
    field = loaded.field.requires_grad_(True)
    rays = _tabletop_view(48).rays()
    target = torch.rand(len(rays), 3, generator=torch.Generator().manual_seed(0))
    rows = [0]
    shade = field.shade

    def counting(features, directions):
        rows[-1] += len(features)
        return shade(features, directions)

    field.shade = counting
    gradients = []
    options = RenderOptions(num_steps=512, normals=False, min_transmittance=1e-4)
    for budget in (0.0, 1e-3):
        field.zero_grad(set_to_none=True)
        out = render_rays(field, rays, replace(options, unshaded_weight=budget), loaded.occupancy)
        ((out.rgb - target) ** 2).mean().backward()
        gradients.append({name: p.grad.clone() for name, p in field.named_parameters()})
        rows.append(0)
    every, skipping, _ = rows
    assert skipping < 0.8 * every  # the colour of a fifth of the samples, at least, was never evaluated
    for name, expected in gradients[0].items():
        scale = float(expected.abs().max())
        torch.testing.assert_close(gradients[1][name], expected, rtol=0, atol=1e-2 * scale, msg=name)


def test_without_ranges_colour_and_accumulation_are_the_same(scene, cameras, occupancy):
    """``ranges=False`` (training) leaves the termination distances out, and nothing else."""
    rays = cameras[0].rays()[::7]
    full = render_rays(scene, rays, RenderOptions(normals=False), occupancy)
    lean = render_rays(scene, rays, RenderOptions(normals=False, ranges=False), occupancy)
    assert torch.equal(lean.rgb, full.rgb) and torch.equal(lean.accumulation, full.accumulation)
    assert torch.equal(lean.num_samples, full.num_samples) and full.range_median.abs().sum() > 0
    for name in ("range_expected", "range_median", "depth_spread"):
        assert not getattr(lean, name).any(), name
