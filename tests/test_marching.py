"""The fast marcher's sample selection: the C loop against its PyTorch twin."""

from dataclasses import replace

import pytest
import torch

from nerfdata.cameras import ray_aabb_intersect
from nerfdata.fields.occupancy import OccupancyGrid, occupancy_grid_from_density
from nerfdata.render.marching import (
    MarchState,
    fused_marching_available,
    next_samples,
    next_samples_fused,
    next_samples_torch,
    round_limit,
    truncate_round,
)
from nerfdata.render.renderer import RenderOptions, render_rays

pytestmark = pytest.mark.skipif(not fused_marching_available(), reason="C marcher unavailable (no C compiler)")


def all_steps(select, state, occupancy, k):
    """Every candidate step of every ray, by calling ``select`` round after round."""
    found = [[] for _ in range(len(state))]
    while (state.cursor < state.num_steps).any():
        steps, count, cursor = select(state, occupancy, k)
        state = replace(state, cursor=cursor)
        for i in range(len(state)):
            found[i].extend(steps[i, : count[i]].tolist())
    return found


@pytest.mark.parametrize("with_grid", [True, False])
def test_fused_and_torch_pick_the_same_steps(with_grid):
    g = torch.Generator().manual_seed(0)
    aabb = torch.tensor([[-1.0, -0.5, -1.0], [1.0, 1.5, 0.5]])
    occupancy = OccupancyGrid.from_mask(torch.rand(16, 16, 16, generator=g) < 0.2, aabb) if with_grid else None
    origins = torch.randn(200, 3, generator=g) * 3
    targets = aabb[0] + torch.rand(200, 3, generator=g) * (aabb[1] - aabb[0])
    directions = torch.nn.functional.normalize(targets - origins, dim=-1)
    t_near, t_far = ray_aabb_intersect(origins, directions, aabb)
    step = 0.02
    num_steps = torch.ceil((t_far - t_near) / step).clamp(min=0).long()
    state = MarchState(origins, directions, t_near, num_steps, torch.zeros(200, dtype=torch.int64), step)
    torch_twin = lambda *args: next_samples_torch(*args, window=9)  # noqa: E731  a short window: many rounds
    expected = all_steps(torch_twin, state, occupancy, 5)
    actual = all_steps(next_samples_fused, state, occupancy, 5)
    assert actual == expected
    assert sum(map(len, expected)) > 500


def test_fused_and_torch_marchers_render_the_same(scene, cameras):
    occupancy = occupancy_grid_from_density(scene.density, scene.aabb, resolution=48)
    rays = cameras[0].rays()[::5]
    fused = render_rays(scene, rays, RenderOptions(marcher="fused"), occupancy)
    twin = render_rays(scene, rays, RenderOptions(marcher="torch"), occupancy)
    # The same samples, evaluated in differently sized batches: float32 sums in another order. Unit
    # normals (sums of per-sample gradients) were seen to differ by up to 1.03e-4 on one pixel of 5532.
    for name in ("rgb", "accumulation", "range_median", "range_expected", "normal"):
        torch.testing.assert_close(getattr(fused, name), getattr(twin, name), rtol=0, atol=2e-4)


def _meta_state() -> MarchState:
    meta = torch.device("meta")
    origins = torch.zeros(8, 3, device=meta)
    counts = torch.full((8,), 20, dtype=torch.int64, device=meta)
    return MarchState(origins, origins, torch.zeros(8, device=meta), counts, torch.zeros_like(counts), 0.1)


def _cpu_state() -> MarchState:
    directions = torch.tensor([[0.0, 0.0, 1.0]]).expand(8, 3)
    counts = torch.full((8,), 20, dtype=torch.int64)
    return MarchState(torch.zeros(8, 3), directions, torch.zeros(8), counts, torch.zeros_like(counts), 0.1)


@pytest.mark.parametrize("on_meta", ["rays", "occupancy"])
def test_fused_marcher_refuses_tensors_off_the_cpu(on_meta):
    """C reads host memory: a device tensor's pointer (null for ``meta``) must never reach it."""
    box = torch.tensor([[-1.0, -1.0, -1.0], [1.0, 1.0, 1.0]])
    grid = OccupancyGrid.from_mask(torch.ones(4, 4, 4, dtype=torch.bool), box)
    if on_meta == "occupancy":
        state, occupancy = _cpu_state(), replace(grid, bits=grid.bits.to("meta"))
    else:
        state, occupancy = _meta_state(), grid
    with pytest.raises(ValueError, match="CPU only"):
        next_samples_fused(state, occupancy, 4)
    with pytest.raises(ValueError, match="CPU only"):
        next_samples(state, occupancy, 4, 8, implementation="fused")
    # "auto" picks the PyTorch twin for rays off the CPU.
    if on_meta == "rays":
        steps, _, _ = next_samples(state, None, 4, 8, implementation="auto")
        assert steps.device.type == "meta"


def test_truncated_rounds_take_the_same_steps_in_the_same_order():
    """Cutting each round to a per-ray limit (the adaptive schedule) changes when steps are taken, not which."""
    g = torch.Generator().manual_seed(3)
    aabb = torch.tensor([[-1.0, -1.0, -1.0], [1.0, 1.0, 1.0]])
    occupancy = OccupancyGrid.from_mask(torch.rand(12, 12, 12, generator=g) < 0.3, aabb)
    origins = torch.randn(100, 3, generator=g) * 3
    directions = torch.nn.functional.normalize(aabb[0] + torch.rand(100, 3, generator=g) * 2 - origins, dim=-1)
    t_near, t_far = ray_aabb_intersect(origins, directions, aabb)
    num_steps = torch.ceil((t_far - t_near) / 0.03).clamp(min=0).long()
    state = MarchState(origins, directions, t_near, num_steps, torch.zeros(100, dtype=torch.int64), 0.03)

    def cut(state, occupancy, k):
        steps, count, cursor = next_samples_fused(state, occupancy, k)
        count, cursor = truncate_round(steps, count, cursor, torch.randint(1, k + 1, (len(state),), generator=g))
        return steps, count, cursor

    expected = all_steps(next_samples_fused, state, occupancy, 6)
    assert all_steps(cut, state, occupancy, 6) == expected
    assert sum(map(len, expected)) > 300


def test_round_limit_never_exceeds_k_and_is_k_in_empty_space():
    depth = torch.tensor([0.0, 0.0, 5.0, 9.0, 20.0])
    rate = torch.tensor([0.0, 1e-9, 1.0, 0.1, 3.0])
    limit = round_limit(depth, rate, 9.2, 8)
    assert limit.tolist() == [8, 8, 5, 2, 1]
    assert round_limit(depth, rate, float("inf"), 8).tolist() == [8] * 5  # no termination: full rounds


@pytest.mark.parametrize("marcher", ["fused", "torch"])
def test_adaptive_rounds_render_the_same_with_fewer_samples(scene, cameras, marcher):
    occupancy = occupancy_grid_from_density(scene.density, scene.aabb, resolution=48)
    rays = cameras[0].rays()[::7]
    fixed = RenderOptions(marcher=marcher, adaptive_rounds=False, min_transmittance=2e-3)
    adaptive = replace(fixed, adaptive_rounds=True)
    a, b = render_rays(scene, rays, fixed, occupancy), render_rays(scene, rays, adaptive, occupancy)
    assert (b.num_samples <= a.num_samples).all() and b.num_samples.sum() < a.num_samples.sum()
    # Samples left out come after termination: colour and accumulation move by less than T, the median not at all.
    assert (b.rgb - a.rgb).abs().max() < 2e-3 and (b.accumulation - a.accumulation).abs().max() < 2e-3
    torch.testing.assert_close(b.range_median, a.range_median, rtol=0, atol=0)
    # Without termination the schedule changes nothing at all.
    a0 = render_rays(scene, rays, replace(fixed, min_transmittance=0.0), occupancy)
    b0 = render_rays(scene, rays, replace(adaptive, min_transmittance=0.0), occupancy)
    assert torch.equal(a0.num_samples, b0.num_samples) and torch.equal(a0.rgb, b0.rgb)
