"""Where rays terminate: the distribution of termination distance over a ray's packed samples.

The renderer returns the samples of a batch of rays packed (:class:`~nerfdata.render.renderer.RaySamples`):
sample ``m`` of ray ``ray_indices[m]`` covers ``[t_start[m], t_end[m]]`` with constant density
``density[m]`` and rendering weight ``weights[m]`` (the probability that the ray terminates inside
that interval). Rays may be interleaved; within one ray samples run front to back.

Inside one interval the density is constant, so the termination distance ``s`` past ``t_start`` is
exponentially distributed, truncated to the interval: its CDF is
``F(s) = (1 - exp(-sigma s)) / (1 - exp(-sigma delta))`` (uniform when ``sigma delta -> 0``), the
same model :func:`~nerfdata.render.volume.median_crossing` uses. Everything here is exact for that
piecewise-constant model:

* :func:`sample_termination`: inverse-CDF samples of each ray's normalised termination distribution
  (NeRF-Supervision's depth samples);
* :func:`weight_in_window`: the probability that a ray terminates inside a window of distances
  (is a point visible from this ray?);
* :func:`weight_modes`: the top-K modes of each ray's termination distribution as (distance, weight)
  pairs: a compact stand-in for all the samples.
"""

import torch
from jaxtyping import Float, Int
from torch import Tensor

__all__ = ["sample_termination", "weight_in_window", "weight_modes"]

_LINEAR_BELOW = 1e-6
"""Optical thickness ``sigma * delta`` below which an interval's weight is treated as uniform."""


def _interval_cdf(density: Tensor, delta: Tensor, s: Tensor) -> Tensor:
    """Share of an interval's weight within ``s`` of its start (``0 <= s <= delta``)."""
    tau = density * delta
    thin = tau < _LINEAR_BELOW
    exact = torch.expm1(-density * s) / torch.expm1(-tau).clamp(max=-1e-30)
    return torch.where(thin, s / delta.clamp(min=1e-30), exact).clamp(0.0, 1.0)


def _interval_inverse_cdf(density: Tensor, delta: Tensor, fraction: Tensor) -> Tensor:
    """Distance past an interval's start below which ``fraction`` of its weight lies."""
    tau = density * delta
    thin = tau < _LINEAR_BELOW
    exact = -torch.log1p(fraction * torch.expm1(-tau)) / density.clamp(min=1e-30)
    return torch.where(thin, fraction * delta, exact).clamp(min=torch.zeros_like(delta), max=delta)


def _interval_mean(density: Tensor, delta: Tensor) -> Tensor:
    """Mean termination distance past an interval's start, given the ray ends inside it."""
    tau = density * delta
    # 1/sigma - delta / (exp(tau) - 1) cancels badly for small tau; its series there is delta (1/2 - tau/12).
    exact = 1.0 / density.clamp(min=1e-30) - delta / torch.expm1(tau).clamp(min=1e-30)
    return torch.where(tau < 1e-3, delta * (0.5 - tau / 12.0), exact)


def _ray_starts(sorted_rays: Tensor, num_rays: int) -> tuple[Tensor, Tensor]:
    """Per ray: index of its first sample in ray-sorted order, and its number of samples."""
    counts = torch.bincount(sorted_rays, minlength=num_rays)
    return torch.cumsum(counts, 0) - counts, counts


def sample_termination(
    ray_indices: Int[Tensor, " m"],
    t_start: Float[Tensor, " m"],
    t_end: Float[Tensor, " m"],
    weights: Float[Tensor, " m"],
    density: Float[Tensor, " m"],
    u: Float[Tensor, "n k"],
) -> Float[Tensor, "n k"]:
    """Inverse-CDF samples of where each ray terminates, from its normalised weights.

    Sample ``j`` of ray ``i`` is the distance at which the ray's accumulated weight, divided by its
    total weight, reaches ``u[i, j]``; with ``u`` uniform in ``[0, 1)`` the samples follow the
    ray's termination distribution. Not differentiable (labels, not training).

    Args:
        ray_indices, t_start, t_end, weights, density: Packed samples of ``n = u.shape[0]`` rays.
        u: Quantiles in ``[0, 1]``, ``(n, k)``: ``k`` samples per ray.

    Returns:
        Distances along the rays ``(n, k)``; 0 for a ray with no weight.

    Example:
        >>> # one ray, two intervals holding weight 0.2 and 0.6 (uniform inside: density 0)
        >>> t = sample_termination(torch.zeros(2, dtype=torch.long), torch.tensor([1.0, 2.0]),
        ...                        torch.tensor([2.0, 3.0]), torch.tensor([0.2, 0.6]), torch.zeros(2),
        ...                        torch.tensor([[0.125, 0.625]]))
        >>> [round(v, 4) for v in t[0].tolist()]
        [1.5, 2.5]
    """
    num_rays = u.shape[0]
    if len(weights) == 0:
        return torch.zeros_like(u)
    order = torch.argsort(ray_indices, stable=True)
    rays, w = ray_indices[order], weights[order].double()
    t0, delta, sigma = t_start[order].double(), (t_end - t_start)[order].double(), density[order].double()
    cumulative = torch.cumsum(w, 0)
    total = torch.zeros(num_rays, dtype=torch.float64, device=w.device).index_add(0, rays, w)
    before = torch.cumsum(total, 0) - total  # weight of all rays sorted before each ray
    target = before[:, None] + u.double().clamp(0.0, 1.0) * total[:, None]
    starts, counts = _ray_starts(rays, num_rays)
    # The first sample whose cumulative weight exceeds the target (zero-weight samples are skipped).
    index = torch.searchsorted(cumulative, target, right=True)
    last = (starts + counts - 1).clamp(min=0)[:, None]
    index = torch.minimum(torch.maximum(index, starts[:, None]), last)
    w_at = w[index]
    fraction = ((target - (cumulative[index] - w_at)) / w_at.clamp(min=1e-300)).clamp(0.0, 1.0)
    t = t0[index] + _interval_inverse_cdf(sigma[index], delta[index], fraction)
    return torch.where((total > 0)[:, None], t, torch.zeros_like(t)).to(u.dtype)


def weight_in_window(
    ray_indices: Int[Tensor, " m"],
    t_start: Float[Tensor, " m"],
    t_end: Float[Tensor, " m"],
    weights: Float[Tensor, " m"],
    density: Float[Tensor, " m"],
    low: Float[Tensor, " n"],
    high: Float[Tensor, " n"],
) -> Float[Tensor, " n"]:
    """Probability that each ray terminates between ``low[i]`` and ``high[i]`` (not normalised).

    A point at distance ``r`` along a ray is seen by it when most of the ray's weight lies near ``r``:
    ``weight_in_window(..., r - tol, r + tol)`` is close to 1 for a visible surface point and close to
    0 for a point hidden behind something nearer (or floating in empty space).

    Example:
        >>> # one ray: half its weight uniformly in [1, 2], the other half in [2, 3]
        >>> t0 = torch.tensor([1.0, 2.0])
        >>> weight_in_window(torch.zeros(2, dtype=torch.long), t0, t0 + 1.0, torch.tensor([0.5, 0.5]), torch.zeros(2),
        ...                  torch.tensor([1.5]), torch.tensor([2.0])).item()
        0.25
    """
    rays = ray_indices
    delta = (t_end - t_start).double()
    a = torch.maximum(t_start.double(), low.double()[rays]) - t_start.double()
    b = torch.minimum(t_end.double(), high.double()[rays]) - t_start.double()
    sigma = density.double()
    inside = _interval_cdf(sigma, delta, b.clamp(min=0.0)) - _interval_cdf(sigma, delta, a.clamp(min=0.0))
    mass = torch.where(b > a, weights.double() * inside, torch.zeros_like(inside))
    return torch.zeros(len(low), dtype=torch.float64, device=low.device).index_add(0, rays, mass).to(low.dtype)


def weight_modes(
    ray_indices: Int[Tensor, " m"],
    t_start: Float[Tensor, " m"],
    t_end: Float[Tensor, " m"],
    weights: Float[Tensor, " m"],
    density: Float[Tensor, " m"],
    num_rays: int,
    k: int = 4,
    min_weight: float = 1e-3,
    valley_ratio: float = 0.5,
) -> tuple[Float[Tensor, "n k"], Float[Tensor, "n k"]]:
    """The ``k`` heaviest modes of each ray's termination distribution, as (distance, weight).

    A mode is a stretch of consecutive samples carrying weight: samples are split where the ray skips
    empty space or a sample's weight is below ``min_weight`` times the ray's total, and at a valley
    between two peaks when the valley's weight is below ``valley_ratio`` times the smaller peak (so
    small wiggles of a trained field do not split one surface in two). A mode's weight is the sum of
    its samples' weights (the probability that the ray ends on it); its distance is its mean
    termination distance. Modes come heaviest first; missing ones are ``(0, 0)``.

    Returns:
        ``(distance, weight)``, each ``(num_rays, k)``.

    Example:
        >>> # a ray with two surfaces: weight 0.3 around t = 1, then 0.6 around t = 3 (empty space between)
        >>> t0 = torch.tensor([0.9, 1.0, 2.9, 3.0])
        >>> distance, weight = weight_modes(torch.zeros(4, dtype=torch.long), t0, t0 + 0.1,
        ...                                 torch.tensor([0.1, 0.2, 0.4, 0.2]), torch.zeros(4), 1, k=3)
        >>> [round(v, 4) for v in distance[0].tolist()], [round(v, 4) for v in weight[0].tolist()]
        ([2.9833, 1.0167, 0.0], [0.6, 0.3, 0.0])
    """
    order = torch.argsort(ray_indices, stable=True)
    rays, w = ray_indices[order], weights[order].double()
    t0, t1, sigma = t_start[order].double(), t_end[order].double(), density[order].double()
    total = torch.zeros(num_rays, dtype=torch.float64, device=w.device).index_add(0, rays, w)
    keep = w > min_weight * total[rays]
    rays, w, t0, t1, sigma = rays[keep], w[keep], t0[keep], t1[keep], sigma[keep]
    distance = torch.zeros(num_rays, k, dtype=t_start.dtype, device=t_start.device)
    weight = torch.zeros(num_rays, k, dtype=weights.dtype, device=weights.device)
    if len(w) == 0:
        return distance, weight
    # Runs of contiguous weighted samples of one ray.
    new_run = torch.ones_like(keep[: len(w)])
    new_run[1:] = (rays[1:] != rays[:-1]) | (t0[1:] > t1[:-1] + 1e-4 * (t1[1:] - t0[1:]))
    # Candidate splits after each valley inside a run (the valley sample stays with the peak before it).
    inner = torch.zeros_like(new_run)
    if len(w) > 2:
        inner[1:-1] = ~new_run[1:-1] & ~new_run[2:] & (w[1:-1] < w[:-2]) & (w[1:-1] <= w[2:])
    candidate = torch.zeros_like(new_run)
    candidate[1:] = inner[:-1]
    segment = torch.cumsum(new_run | candidate, 0) - 1
    peak = torch.zeros(int(segment[-1]) + 1, dtype=w.dtype, device=w.device).scatter_reduce(0, segment, w, "amax")
    split = torch.zeros_like(new_run)
    valley = candidate.nonzero()[:, 0] - 1
    split[valley + 1] = w[valley] < valley_ratio * torch.minimum(peak[segment[valley]], peak[segment[valley + 1]])
    segment = torch.cumsum(new_run | split, 0) - 1
    count = int(segment[-1]) + 1
    mass = torch.zeros(count, dtype=w.dtype, device=w.device).index_add(0, segment, w)
    moment = torch.zeros_like(mass).index_add(0, segment, w * (t0 + _interval_mean(sigma, t1 - t0)))
    segment_ray = torch.zeros(count, dtype=rays.dtype, device=rays.device).index_copy(0, segment, rays)
    # Heaviest first within each ray: sort by weight, then (stably) by ray.
    by_mass = torch.argsort(-mass, stable=True)
    ranked = by_mass[torch.argsort(segment_ray[by_mass], stable=True)]
    starts, _ = _ray_starts(segment_ray, num_rays)
    rank = torch.arange(count, device=rays.device) - starts[segment_ray[ranked]]
    top = rank < k
    chosen, slot = ranked[top], rank[top]
    distance[segment_ray[chosen], slot] = (moment[chosen] / mass[chosen]).to(distance.dtype)
    weight[segment_ray[chosen], slot] = mass[chosen].to(weight.dtype)
    return distance, weight
