"""Volume rendering math over blocks of samples: weights, median crossing, per-ray sums.

A block holds, for each of ``n`` rays, ``S`` samples with piecewise-constant density over intervals
``[t_start, t_start + delta]``. Blocks along one ray are processed front to back; the optical depth
accumulated before a block (``optical_depth0``) carries the transmittance across blocks. Samples
that were skipped (empty space, padding) simply have zero density.

Quadrature (the standard NeRF one): ``alpha_i = 1 - exp(-sigma_i * delta_i)``,
``T_i = exp(-sum_{j<i} sigma_j * delta_j)``, ``w_i = T_i * alpha_i``.
"""

from dataclasses import dataclass

import torch
from jaxtyping import Float
from torch import Tensor

__all__ = ["BlockWeights", "block_weights", "median_crossing"]


@dataclass
class BlockWeights:
    weights: Float[Tensor, "n s"]
    """Contribution of each sample to the ray's colour (``T_i * alpha_i``)."""
    transmittance: Float[Tensor, "n s"]
    """Transmittance at the start of each sample's interval."""
    optical_depth_end: Float[Tensor, " n"]
    """Optical depth accumulated up to the end of the block."""


def block_weights(
    density: Float[Tensor, "n s"], deltas: Float[Tensor, "n s"], optical_depth0: Float[Tensor, " n"]
) -> BlockWeights:
    """Rendering weights of a block of samples, continuing from ``optical_depth0``.

    Differentiable w.r.t. ``density`` and ``optical_depth0``.

    Example:
        >>> out = block_weights(torch.tensor([[0.0, 1e9]]), torch.ones(1, 2), torch.zeros(1))
        >>> out.weights.tolist()
        [[0.0, 1.0]]
    """
    tau = density * deltas
    cumulative = torch.cumsum(tau, dim=-1)
    before = optical_depth0[:, None] + cumulative - tau
    transmittance = torch.exp(-before)
    weights = transmittance * (1.0 - torch.exp(-tau))
    return BlockWeights(weights, transmittance, optical_depth0 + cumulative[:, -1])


def median_crossing(
    t_start: Float[Tensor, "n s"],
    deltas: Float[Tensor, "n s"],
    density: Float[Tensor, "n s"],
    transmittance: Float[Tensor, "n s"],
    level: float = 0.5,
) -> tuple[Tensor, Float[Tensor, " n"]]:
    """Where the transmittance falls to ``level`` (accumulated weight crosses ``1 - level``), if in this block.

    Exact for piecewise-constant density: inside the crossing interval ``T(s) = T_i * exp(-sigma_i s)``,
    so the crossing lies at ``s = log(T_i / level) / sigma_i``.

    Returns:
        ``found`` (bool ``(n,)``) and the crossing distance ``(n,)`` (0 where not found).
    """
    after = transmittance * torch.exp(-density * deltas)
    crossing = (transmittance > level) & (after <= level)
    offset = torch.log(transmittance.clamp(min=level) / level) / density.clamp(min=1e-30)
    t = torch.where(crossing, t_start + torch.minimum(offset, deltas), torch.zeros_like(t_start))
    return crossing.any(dim=-1), t.sum(dim=-1)
