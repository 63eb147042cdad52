"""Volume rendering math: hand-computed weights, exact median crossing, blocks compose."""

import math

import pytest
import torch

from nerfdata.render.volume import block_weights, median_crossing


def test_weights_by_hand():
    # densities 0, ln 2, ln 2 over unit intervals: T = 1, 1, 0.5; alpha = 0, 0.5, 0.5.
    density = torch.tensor([[0.0, math.log(2.0), math.log(2.0)]])
    out = block_weights(density, torch.ones(1, 3), torch.zeros(1))
    torch.testing.assert_close(out.transmittance, torch.tensor([[1.0, 1.0, 0.5]]))
    torch.testing.assert_close(out.weights, torch.tensor([[0.0, 0.5, 0.25]]))
    assert out.optical_depth_end.item() == pytest.approx(2 * math.log(2.0))


def test_two_blocks_equal_one():
    g = torch.Generator().manual_seed(0)
    density = torch.rand(4, 10, generator=g) * 3
    deltas = torch.rand(4, 10, generator=g) * 0.2
    whole = block_weights(density, deltas, torch.zeros(4))
    first = block_weights(density[:, :6], deltas[:, :6], torch.zeros(4))
    second = block_weights(density[:, 6:], deltas[:, 6:], first.optical_depth_end)
    torch.testing.assert_close(torch.cat([first.weights, second.weights], dim=1), whole.weights)
    torch.testing.assert_close(second.optical_depth_end, whole.optical_depth_end)


def test_median_crossing_is_exact_for_a_constant_slab():
    # A slab of density 3 starting at t = 1.0, sampled in steps of 0.1: T(t) = exp(-3 (t - 1)).
    sigma, step = 3.0, 0.1
    t_start = torch.arange(20, dtype=torch.float32)[None] * step + 0.5
    density = torch.where(t_start >= 1.0 - 1e-6, sigma, 0.0)
    out = block_weights(density, torch.full_like(density, step), torch.zeros(1))
    found, median = median_crossing(t_start, torch.full_like(density, step), density, out.transmittance)
    assert found.item() and median.item() == pytest.approx(1.0 + math.log(2.0) / sigma, abs=1e-5)


def test_no_crossing_when_the_ray_stays_transparent():
    density = torch.full((1, 5), 0.1)
    out = block_weights(density, torch.ones(1, 5), torch.zeros(1))
    found, median = median_crossing(torch.arange(5.0)[None], torch.ones(1, 5), density, out.transmittance)
    assert not found.item() and median.item() == 0.0


def test_distortion_loss_matches_the_pairwise_definition():
    from nerfdata.render.volume import distortion_loss

    g = torch.Generator().manual_seed(0)
    counts = [5, 1, 7]
    rays = torch.cat([torch.full((c,), i) for i, c in enumerate(counts)])
    t_start = torch.cat([torch.sort(torch.rand(c, generator=g)).values for c in counts])
    t_end = t_start + 0.01
    weights = torch.rand(len(rays), generator=g) * 0.3
    # Round-robin across rays (as the marcher's rounds produce them), front to back within each ray.
    within = torch.cat([torch.arange(c) for c in counts])
    interleaved = torch.argsort(within * 10 + rays, stable=True)
    assert not torch.equal(interleaved, torch.arange(len(rays)))
    loss = distortion_loss(rays[interleaved], t_start[interleaved], t_end[interleaved], weights[interleaved], 3)
    for ray in range(3):
        m = rays == ray
        w, s = weights[m], (t_start[m] + t_end[m]) / 2
        expected = (w[:, None] * w[None] * (s[:, None] - s[None]).abs()).sum() + (w**2 * 0.01).sum() / 3
        assert loss[ray].item() == pytest.approx(expected.item(), rel=1e-5)
