"""Which views a render job rejects: those that see too little of the scene, or start inside geometry.

A view is judged on a lattice of its own pixels, one every ``width // probe_size`` columns and rows
(:func:`probe_pixels`). The lattice's rays are rays of the full view, so the decision reads the same
from a render of the lattice alone or from the full render (to float rounding): a job that may
reject many views (``min_fraction > 0``) renders the lattice first and the full view only if it is
kept; one that only checks for a camera inside geometry, which few views are, reads the lattice from
the full render and spends nothing on a probe.
"""

from dataclasses import dataclass, replace

import torch
from jaxtyping import Float
from torch import Tensor

from nerfdata.cameras import Camera, Intrinsics
from nerfdata.errors import ConfigError
from nerfdata.fields.base import Field
from nerfdata.fields.occupancy import OccupancyGrid
from nerfdata.render.renderer import ImageOutputs, RenderOptions, render_rays

__all__ = ["CoverageConfig", "coverage_problem", "image_coverage_problem", "probe_coverage_problem", "probe_pixels"]

_INSIDE = "camera inside geometry"


@dataclass(frozen=True)
class CoverageConfig:
    """Reject views that see too little of the scene, or whose camera sits inside geometry."""

    min_fraction: float = 0.0
    """Smallest fraction of foreground pixels a view must have (0 keeps every view)."""
    reject_inside: bool = True
    """Reject views whose camera is inside geometry (most of the image is at the camera itself)."""
    probe_size: int = 32
    """Columns of the pixel lattice a view is judged on (every ``width // probe_size``-th pixel, across and down)."""

    def __post_init__(self) -> None:
        if self.probe_size < 1:
            raise ConfigError(f"coverage: probe_size must be >= 1 pixel, got {self.probe_size}")
        if not 0.0 <= self.min_fraction <= 1.0:
            raise ConfigError(f"coverage: min_fraction must be in [0, 1], got {self.min_fraction}")


def _stride(width: int, probe_size: int) -> int:
    return max(1, width // probe_size)


def probe_pixels(intrinsics: Intrinsics, probe_size: int) -> Float[Tensor, "m 2"]:
    """Pixel centres ``(x, y)`` of the lattice a view is judged on, row-major: the middle pixel of each
    ``s x s`` block, ``s = width // probe_size`` (at least 1).

    Example:
        >>> probe_pixels(Intrinsics.from_fov(8, 4, 60.0), 4).tolist()
        [[1.5, 1.5], [3.5, 1.5], [5.5, 1.5], [7.5, 1.5], [1.5, 3.5], [3.5, 3.5], [5.5, 3.5], [7.5, 3.5]]
    """
    s = _stride(intrinsics.width, probe_size)
    xs = torch.arange(s // 2, intrinsics.width, s, dtype=torch.float32) + 0.5
    ys = torch.arange(s // 2, intrinsics.height, s, dtype=torch.float32) + 0.5
    return torch.stack(torch.meshgrid(ys, xs, indexing="ij")[::-1], dim=-1).reshape(-1, 2)


def coverage_problem(
    accumulation: Float[Tensor, " m"],
    range_median: Float[Tensor, " m"],
    extent: float,
    coverage: CoverageConfig,
    mask_threshold: float,
) -> str | None:
    """Why a view whose lattice rays have these outputs is rejected, or None.

    Inside geometry: over half the lattice is foreground and over half of that lies within 2% of
    the field's box diagonal (``extent``) of the camera.
    """
    foreground = accumulation > mask_threshold
    share = float(foreground.float().mean())
    if coverage.reject_inside and share > 0.5:
        near = float((range_median[foreground] < 0.02 * extent).float().mean())
        if near > 0.5:
            return _INSIDE
    if share < coverage.min_fraction:
        return f"covers {100 * share:.1f}% < {100 * coverage.min_fraction:.1f}%"
    return None


@torch.no_grad()
def probe_coverage_problem(
    field_: Field,
    camera: Camera,
    options: RenderOptions,
    occupancy: OccupancyGrid,
    coverage: CoverageConfig,
    mask_threshold: float,
) -> str | None:
    """:func:`coverage_problem` of a view, from a render of its lattice rays alone."""
    pixels = probe_pixels(camera.intrinsics, coverage.probe_size).to(field_.aabb.device)
    out = render_rays(field_, camera.rays(pixels), replace(options, normals=False, return_samples=False), occupancy)
    return coverage_problem(out.accumulation, out.range_median, field_.extent, coverage, mask_threshold)


def image_coverage_problem(
    image: ImageOutputs, extent: float, coverage: CoverageConfig, mask_threshold: float
) -> str | None:
    """:func:`coverage_problem` of a view, read from its full render (the lattice's pixels of it)."""
    s = _stride(image.accumulation.shape[1], coverage.probe_size)
    lattice = (slice(s // 2, None, s), slice(s // 2, None, s))
    accumulation, range_median = image.accumulation[lattice].reshape(-1), image.range_median[lattice].reshape(-1)
    return coverage_problem(accumulation, range_median, extent, coverage, mask_threshold)
