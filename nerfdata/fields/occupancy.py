"""Occupancy grid: one bit per cell of a field's box, set where the field may hold density.

It describes where a field has density, so it lives with the fields: checkpoints store it, the
trainer updates it, the renderer skips samples in cells whose bit is clear. The grid is a packed bitfield (``R^3 / 8``
bytes: 256 KiB at ``R = 128``), not a float copy of the density. Cells are indexed x-major:
``flat = (i * R + j) * R + k`` for cell ``(i, j, k)`` along ``(x, y, z)``; bit ``flat % 8`` of byte
``flat // 8``.

Building it from a field is conservative: a cell is occupied when the largest density among its 8
corners and its centre, times the cell size, exceeds ``opacity_threshold``; the mask is then
dilated by ``dilation`` cells so that thin surfaces between lattice points are kept.
"""

from collections.abc import Callable
from dataclasses import dataclass

import torch
from jaxtyping import Float
from torch import Tensor

__all__ = [
    "OccupancyGrid",
    "occupancy_from_ema",
    "occupancy_grid_from_density",
    "pack_bits",
    "unpack_bits",
    "update_density_ema",
]

_BIT_VALUES = torch.tensor([1, 2, 4, 8, 16, 32, 64, 128], dtype=torch.uint8)


def pack_bits(mask: Tensor) -> Tensor:
    """Pack a flat boolean mask into uint8 bytes, least significant bit first."""
    padded = torch.zeros(-(-mask.numel() // 8) * 8, dtype=torch.uint8, device=mask.device)
    padded[: mask.numel()] = mask.reshape(-1).to(torch.uint8)
    return (padded.view(-1, 8) * _BIT_VALUES.to(mask.device)).sum(dim=-1, dtype=torch.uint8)


def unpack_bits(bits: Tensor, count: int) -> Tensor:
    """Inverse of :func:`pack_bits`: the first ``count`` booleans."""
    return ((bits[:, None] & _BIT_VALUES.to(bits.device)) != 0).reshape(-1)[:count]


@dataclass
class OccupancyGrid:
    """A packed occupancy bitfield over ``aabb`` with ``resolution`` cells per axis."""

    aabb: Float[Tensor, "2 3"]
    resolution: int
    bits: Tensor

    @classmethod
    def from_mask(cls, mask: Tensor, aabb: Float[Tensor, "2 3"]) -> "OccupancyGrid":
        """From a boolean ``(R, R, R)`` mask indexed ``[x, y, z]``."""
        return cls(aabb=aabb.float(), resolution=mask.shape[0], bits=pack_bits(mask))

    def to(self, device: torch.device | str) -> "OccupancyGrid":
        """The grid on ``device`` (itself when already there): it lives where the rays it skips are marched."""
        return OccupancyGrid(self.aabb.to(device), self.resolution, self.bits.to(device))

    @property
    def cell_size(self) -> Float[Tensor, "3"]:
        return (self.aabb[1] - self.aabb[0]) / self.resolution

    def to_mask(self) -> Tensor:
        """The boolean ``(R, R, R)`` mask, indexed ``[x, y, z]``."""
        return unpack_bits(self.bits, self.resolution**3).reshape((self.resolution,) * 3)

    @property
    def occupied_fraction(self) -> float:
        return float(self.to_mask().float().mean())

    def occupied(self, positions: Float[Tensor, "*batch 3"]) -> Tensor:
        """Whether each point lies in an occupied cell (``False`` outside the box)."""
        aabb = self.aabb.to(positions.device)
        cells = torch.floor((positions - aabb[0]) / (aabb[1] - aabb[0]) * self.resolution).long()
        inside = ((cells >= 0) & (cells < self.resolution)).all(dim=-1)
        cells = cells.clamp(0, self.resolution - 1)
        flat = (cells[..., 0] * self.resolution + cells[..., 1]) * self.resolution + cells[..., 2]
        byte = self.bits.to(positions.device)[flat >> 3]
        return inside & (((byte >> (flat & 7).to(torch.uint8)) & 1) == 1)


@torch.no_grad()
def occupancy_grid_from_density(
    density_fn: Callable[[Tensor], Tensor],
    aabb: Float[Tensor, "2 3"],
    resolution: int = 128,
    opacity_threshold: float = 1e-3,
    dilation: int = 1,
    chunk_size: int = 1 << 18,
) -> OccupancyGrid:
    """Build an occupancy grid by evaluating ``density_fn`` on cell corners and centres.

    Args:
        density_fn: Maps world points ``(n, 3)`` to density ``(n,)`` per scene unit.
        aabb: The box ``[min, max]``.
        resolution: Cells per axis.
        opacity_threshold: A cell is occupied when ``max density * mean cell size`` exceeds it
            (the opacity a ray would gain crossing the cell, to first order).
        dilation: Grow the occupied set by this many cells.
        chunk_size: Points evaluated at once.
    """
    aabb = aabb.float()

    def evaluate(axis: Tensor) -> Tensor:
        """Density on the lattice ``axis x axis x axis`` of unit-cube coordinates."""
        grid = torch.stack(torch.meshgrid(axis, axis, axis, indexing="ij"), dim=-1).reshape(-1, 3)
        points = aabb[0] + grid.to(aabb.device) * (aabb[1] - aabb[0])
        values = torch.cat([density_fn(chunk) for chunk in points.split(chunk_size)])
        return values.reshape((axis.numel(),) * 3)

    corners = evaluate(torch.arange(resolution + 1) / resolution)
    centres = evaluate((torch.arange(resolution) + 0.5) / resolution)
    cell_max = torch.nn.functional.max_pool3d(corners[None, None], kernel_size=2, stride=1)[0, 0]
    cell_max = torch.maximum(cell_max, centres)
    cell_length = float(((aabb[1] - aabb[0]) / resolution).mean())
    mask = cell_max * cell_length > opacity_threshold
    if dilation > 0:
        size = 2 * dilation + 1
        mask = torch.nn.functional.max_pool3d(mask[None, None].float(), size, stride=1, padding=dilation)[0, 0] > 0
    return OccupancyGrid.from_mask(mask, aabb)


@torch.no_grad()
def update_density_ema(
    ema: Tensor,
    density_fn: Callable[[Tensor], Tensor],
    aabb: Float[Tensor, "2 3"],
    cells: Tensor,
    generator: torch.Generator,
    decay: float = 0.95,
) -> Tensor:
    """Training-time occupancy: refresh the decaying maximum of density in some cells.

    For each flat cell index in ``cells``, the density at a random point inside the cell updates
    ``ema[cell] = max(ema[cell] * decay, density)`` (Instant-NGP's rule). ``ema`` is a flat float
    tensor of ``R^3`` values, x-major like the bitfield; the updated copy is returned.
    """
    resolution = round(ema.numel() ** (1.0 / 3.0))
    i = cells // (resolution * resolution)
    j = (cells // resolution) % resolution
    k = cells % resolution
    jitter = torch.rand(len(cells), 3, generator=generator, device=generator.device).to(ema.device)
    unit = (torch.stack([i, j, k], dim=-1).float() + jitter) / resolution
    points = aabb[0] + unit * (aabb[1] - aabb[0])
    density = density_fn(points).to(ema.dtype)
    updated = ema.clone()
    updated[cells] = torch.maximum(ema[cells] * decay, density)
    return updated


def occupancy_from_ema(ema: Tensor, aabb: Float[Tensor, "2 3"], opacity_threshold: float = 1e-2) -> OccupancyGrid:
    """The bitfield of cells whose density estimate is above the training threshold.

    A cell is occupied when its density times the cell size exceeds
    ``min(opacity_threshold, mean over measured cells)``: Instant-NGP's rule. Capping by the mean
    culls the uniform haze an untrained field starts with (which a white background cannot
    penalise), and the cells it culls are then skipped, so the field learns without them.
    Unmeasured cells (``inf``) stay occupied.
    """
    resolution = round(ema.numel() ** (1.0 / 3.0))
    cell_length = float(((aabb[1] - aabb[0]) / resolution).mean())
    opacity = ema.float() * cell_length
    measured = opacity[torch.isfinite(opacity)]
    threshold = min(opacity_threshold, float(measured.mean())) if measured.numel() else opacity_threshold
    mask = (opacity > threshold).reshape((resolution,) * 3)
    return OccupancyGrid.from_mask(mask, aabb)
