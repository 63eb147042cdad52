"""Occupancy grid: bit packing, lookups, and a builder that never drops a surface."""

import math

import torch

from nerfdata.fields.occupancy import (
    OccupancyGrid,
    occupancy_grid_from_density,
    pack_bits,
    refine_occupancy_grid,
    unpack_bits,
)


def test_pack_unpack_round_trip():
    g = torch.Generator().manual_seed(0)
    mask = torch.rand(1001, generator=g) > 0.7
    bits = pack_bits(mask)
    assert bits.dtype == torch.uint8 and bits.numel() == 126
    assert torch.equal(unpack_bits(bits, 1001), mask)


def test_lookup_matches_the_mask():
    mask = torch.zeros(4, 4, 4, dtype=torch.bool)
    mask[1, 2, 3] = True
    grid = OccupancyGrid.from_mask(mask, torch.tensor([[0.0, 0.0, 0.0], [4.0, 4.0, 4.0]]))
    points = torch.tensor([[1.5, 2.5, 3.5], [1.5, 2.5, 2.5], [2.5, 2.5, 3.5], [-0.1, 2.5, 3.5], [1.5, 2.5, 4.1]])
    assert grid.occupied(points).tolist() == [True, False, False, False, False]
    assert torch.equal(grid.to_mask(), mask) and grid.occupied_fraction == 1 / 64


def test_builder_keeps_every_surface_point(scene):
    grid = occupancy_grid_from_density(scene.density, scene.aabb, resolution=48)
    # Points exactly on every primitive's surface: project random points onto the zero level set.
    g = torch.Generator().manual_seed(1)
    x = scene.aabb[0] + torch.rand(20000, 3, generator=g) * (scene.aabb[1] - scene.aabb[0])
    for _ in range(30):
        x = x - scene.sdf(x)[:, None] * scene.surface_normals(x)
    on_surface = (scene.sdf(x).abs() < 1e-4) & ((x > scene.aabb[0]) & (x < scene.aabb[1])).all(dim=-1)
    assert on_surface.sum() > 5000
    assert grid.occupied(x[on_surface]).all()
    assert grid.occupied_fraction < 0.5  # and it does skip space


def _surface_points(scene, count: int = 20000) -> torch.Tensor:
    g = torch.Generator().manual_seed(1)
    x = scene.aabb[0] + torch.rand(count, 3, generator=g) * (scene.aabb[1] - scene.aabb[0])
    for _ in range(30):
        x = x - scene.sdf(x)[:, None] * scene.surface_normals(x)
    on_surface = (scene.sdf(x).abs() < 1e-4) & ((x > scene.aabb[0]) & (x < scene.aabb[1])).all(dim=-1)
    return x[on_surface]


def test_refined_grid_only_clears_bits_and_keeps_every_surface_point(scene):
    coarse = occupancy_grid_from_density(scene.density, scene.aabb, resolution=24)
    step = scene.extent / 512
    fine = refine_occupancy_grid(coarse, scene.density, step, factor=3, step_opacity=1e-2)
    assert fine.resolution == 72
    inside_coarse = coarse.to_mask().repeat_interleave(3, 0).repeat_interleave(3, 1).repeat_interleave(3, 2)
    assert not (fine.to_mask() & ~inside_coarse).any()
    points = _surface_points(scene)
    assert len(points) > 5000 and fine.occupied(points).all()
    assert fine.occupied_fraction < 0.8 * coarse.occupied_fraction  # and it skips more space


def test_refined_grid_is_the_full_build_restricted_to_the_coarse_one(scene):
    """Evaluating only inside the coarse grid's cells gives the same bits as a full build there."""
    coarse = occupancy_grid_from_density(scene.density, scene.aabb, resolution=16, dilation=0)
    step = scene.extent / 256
    threshold = 1e-3
    fine = refine_occupancy_grid(coarse, scene.density, step, factor=2, step_opacity=threshold, dilation=0)
    full = occupancy_grid_from_density(
        scene.density, scene.aabb, 32, opacity_threshold=-math.log1p(-threshold) / step * fine.cell_size.mean().item(),
        dilation=0,
    )
    inside_coarse = coarse.to_mask().repeat_interleave(2, 0).repeat_interleave(2, 1).repeat_interleave(2, 2)
    assert torch.equal(fine.to_mask(), full.to_mask() & inside_coarse)
