"""Occupancy grid: bit packing, lookups, and a builder that never drops a surface."""

import torch

from nerfdata.fields.occupancy import OccupancyGrid, occupancy_grid_from_density, pack_bits, unpack_bits


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
