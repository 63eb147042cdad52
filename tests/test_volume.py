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


# Float64 gradchecks of the compositing with gradcheck's default tolerances (atol 1e-5, rtol 1e-3,
# eps 1e-6): in float64 the central differences are off by O(eps^2) from truncation and ~1e-10
# from rounding, far inside them; the inputs stay away from the kinks (where a crossing starts or
# ends, ``clamp`` and ``minimum`` bounds), so the functions are smooth within eps of every input.


def _block(rays: int = 3, samples: int = 7, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    density = (torch.rand(rays, samples, generator=g, dtype=torch.float64) * 4 + 0.1).requires_grad_()
    deltas = (torch.rand(rays, samples, generator=g, dtype=torch.float64) * 0.2 + 0.05).requires_grad_()
    optical_depth0 = (torch.rand(rays, generator=g, dtype=torch.float64) * 0.3).requires_grad_()
    return density, deltas, optical_depth0


def test_block_weights_gradcheck():
    def composite(density, deltas, optical_depth0):
        out = block_weights(density, deltas, optical_depth0)
        return out.weights, out.transmittance, out.optical_depth_end

    assert torch.autograd.gradcheck(composite, _block())


def test_two_chained_blocks_gradcheck():
    """The optical depth carried from one block to the next passes gradients back to the first."""

    def chained(density, deltas, optical_depth0):
        first = block_weights(density[:, :4], deltas[:, :4], optical_depth0)
        second = block_weights(density[:, 4:], deltas[:, 4:], first.optical_depth_end)
        return torch.cat([first.weights, second.weights], dim=1), second.optical_depth_end

    assert torch.autograd.gradcheck(chained, _block())


def test_median_crossing_gradcheck():
    density, deltas, _ = _block(rays=4, samples=9, seed=1)
    t_start = (torch.cumsum(deltas, dim=1) - deltas + 2.0).detach().requires_grad_()
    transmittance = block_weights(density, deltas, torch.zeros(4, dtype=torch.float64)).transmittance
    transmittance = transmittance.detach().requires_grad_()
    after = transmittance * torch.exp(-density * deltas)
    found = (transmittance > 0.5) & (after <= 0.5)
    assert found.any(dim=1).all()  # every ray crosses inside the block ...
    margin = torch.minimum((transmittance - 0.5).abs(), (after - 0.5).abs())
    assert margin.min() > 1e-3  # ... and no sample sits within eps of the crossing condition's edge

    def distance(t_start, deltas, density, transmittance):
        return median_crossing(t_start, deltas, density, transmittance)[1]

    assert torch.autograd.gradcheck(distance, (t_start, deltas, density, transmittance))


def test_distortion_loss_gradcheck():
    from nerfdata.render.volume import distortion_loss

    g = torch.Generator().manual_seed(2)
    rays = torch.tensor([0, 1, 0, 2, 1, 0, 2])  # interleaved, front to back within each ray
    def uniform(*shape: int) -> torch.Tensor:
        return torch.rand(*shape, generator=g, dtype=torch.float64)

    t_start = (torch.arange(7, dtype=torch.float64) * 0.3 + uniform(7) * 0.1).requires_grad_()
    t_end = (t_start.detach() + 0.05 + uniform(7) * 0.1).requires_grad_()
    weights = uniform(7).requires_grad_()

    def loss(t_start, t_end, weights):
        return distortion_loss(rays, t_start, t_end, weights, 3)

    assert torch.autograd.gradcheck(loss, (t_start, t_end, weights))
