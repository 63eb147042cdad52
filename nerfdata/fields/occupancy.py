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
    "refine_occupancy_grid",
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


def _lattice_cell_max(
    density_fn: Callable[[Tensor], Tensor],
    aabb: Float[Tensor, "2 3"],
    resolution: int,
    cells: Tensor | None,
    chunk_size: int,
) -> Float[Tensor, "r r r"]:
    """Largest density among each cell's 8 corners and its centre, ``(R, R, R)`` indexed ``[x, y, z]``.

    Only the cells where ``cells`` (bool ``(R, R, R)``) is set are measured, and only their corners and
    centres are evaluated; the others are 0. ``None`` measures every cell.
    """
    every = torch.ones((resolution,) * 3, dtype=torch.bool) if cells is None else cells.cpu()
    # A corner is needed when any of the (up to 8) cells around it is measured.
    corners_needed = torch.nn.functional.max_pool3d(
        every[None, None].float(), kernel_size=2, stride=1, padding=1
    )[0, 0] > 0

    def evaluate(needed: Tensor, offset: float) -> Tensor:
        """Density at the lattice points ``(index + offset) / resolution`` of the unit cube where ``needed``."""
        unit = (needed.nonzero().float() + offset) / resolution
        points = aabb[0] + unit.to(aabb.device) * (aabb[1] - aabb[0])
        values = torch.cat([density_fn(chunk) for chunk in points.split(chunk_size)]) if len(points) else unit[:, 0]
        out = torch.zeros(needed.shape, dtype=values.dtype)
        out[needed] = values.cpu()
        return out

    corners = evaluate(corners_needed, 0.0)
    centres = evaluate(every, 0.5)
    cell_max = torch.nn.functional.max_pool3d(corners[None, None], kernel_size=2, stride=1)[0, 0]
    return torch.where(every, torch.maximum(cell_max, centres), torch.zeros_like(centres))


def _dilate(mask: Tensor, dilation: int) -> Tensor:
    """Grow a boolean ``(R, R, R)`` mask by ``dilation`` cells along every axis (a cube)."""
    if dilation <= 0:
        return mask
    size = 2 * dilation + 1
    return torch.nn.functional.max_pool3d(mask[None, None].float(), size, stride=1, padding=dilation)[0, 0] > 0


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
    cell_max = _lattice_cell_max(density_fn, aabb, resolution, None, chunk_size)
    cell_length = float(((aabb[1] - aabb[0]) / resolution).mean())
    mask = _dilate(cell_max * cell_length > opacity_threshold, dilation)
    return OccupancyGrid.from_mask(mask.to(aabb.device), aabb)


@torch.no_grad()
def refine_occupancy_grid(
    grid: OccupancyGrid,
    density_fn: Callable[[Tensor], Tensor],
    step: float,
    factor: int = 2,
    step_opacity: float = 1e-3,
    dilation: int = 1,
    chunk_size: int = 1 << 18,
) -> OccupancyGrid:
    """A ``factor`` times finer grid inside ``grid``'s occupied cells, by the opacity of one marching step.

    Each occupied cell is split into ``factor^3`` cells; a fine cell stays occupied when the largest
    density among its corners and centre gives one step of length ``step`` an opacity
    ``1 - exp(-sigma * step)`` above ``step_opacity`` (what a sample there could add to a ray), the set
    then grown by ``dilation`` fine cells and kept inside ``grid``. So the result only ever clears
    bits: a ray marched through it takes a subset of the samples it takes through ``grid``. Only the
    occupied cells are evaluated (their share of ``(factor R)^3`` corners and centres).

    Args:
        grid: The grid refined (a checkpoint's, or one built from density).
        density_fn: Maps world points ``(n, 3)`` to density ``(n,)`` per scene unit.
        step: The renderer's step length (scene units): ``extent / num_steps``.
        factor: Fine cells per coarse cell along each axis.
        step_opacity: Opacity of one step below which a cell is empty.
        dilation: Fine cells the occupied set grows by (thin surfaces between lattice points).
        chunk_size: Points evaluated at once.

    Example:
        >>> box = torch.tensor([[0.0] * 3, [1.0] * 3])
        >>> coarse = OccupancyGrid.from_mask(torch.ones(2, 2, 2, dtype=torch.bool), box)
        >>> ball = lambda x: 100.0 * ((x - 0.2).norm(dim=-1) < 0.1)
        >>> fine = refine_occupancy_grid(coarse, ball, step=0.01, factor=4, dilation=0)
        >>> fine.resolution, round(fine.occupied_fraction, 4)
        (8, 0.0156)
    """
    if factor < 1:
        raise ValueError(f"refinement factor must be >= 1, got {factor}")
    if not 0.0 < step_opacity < 1.0:
        raise ValueError(f"step_opacity must be in (0, 1), got {step_opacity}")
    aabb = grid.aabb.float()
    coarse = grid.to_mask().cpu()
    candidate = coarse.repeat_interleave(factor, 0).repeat_interleave(factor, 1).repeat_interleave(factor, 2)
    resolution = grid.resolution * factor
    cell_max = _lattice_cell_max(density_fn, aabb, resolution, candidate, chunk_size)
    occupied = cell_max * step > -torch.log1p(torch.tensor(-step_opacity)).item()
    mask = _dilate(occupied, dilation) & candidate
    return OccupancyGrid.from_mask(mask.to(grid.bits.device), aabb.to(grid.bits.device))


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
