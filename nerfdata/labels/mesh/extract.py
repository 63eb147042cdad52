"""The extraction flow: iso-level, density grid, level set, marching cubes, clean-up, colours.

The steps are described in :mod:`nerfdata.labels.mesh`. A job whose memory estimate
(:func:`~nerfdata.labels.mesh.grid.estimate_memory`) exceeds ``max_memory_gb`` is refused before
the grid is evaluated, and again once marching cubes has counted the faces, before the steps whose
memory grows with them.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

import numpy as np
import torch
from jaxtyping import Float
from torch import Tensor

from nerfdata.errors import ConfigError, NerfDataError
from nerfdata.fields.base import Field
from nerfdata.fields.occupancy import OccupancyGrid
from nerfdata.labels.mesh.cleanup import CleanupConfig, clean_mesh
from nerfdata.labels.mesh.colors import vertex_colors
from nerfdata.labels.mesh.grid import density_grid, estimate_memory, grid_spacing
from nerfdata.labels.mesh.level import resolve_threshold
from nerfdata.labels.mesh.surface import (
    level_set_clip,
    log_density,
    log_density_grid,
    marching_cubes_mesh,
)
from nerfdata.memory import check_memory
from nerfdata.writers.images import to_uint8

if TYPE_CHECKING:  # imported where called: trimesh takes 0.6 s to import, which a job without meshes never pays
    import trimesh

__all__ = ["ExtractedMesh", "MeshConfig", "extract_mesh"]

Vec3 = tuple[float, float, float]


@dataclass(frozen=True)
class MeshConfig:
    """How a mesh is extracted: density grid, iso-level, marching cubes, vertex colours."""

    resolution: int = 256
    """Grid cells along the longest side of ``bounds``; the other sides get cells of the same size."""
    threshold: float | Literal["auto"] | None = None
    """Iso-level, density per scene unit; 'auto': where rendered rays become half opaque; None: 50 / longest
    box side."""
    bounds: tuple[Vec3, Vec3] | None = None
    """World-frame ``[min xyz, max xyz]`` to mesh; None: the field's box."""
    smoothing: float = 1.0
    """Gaussian low-pass of the level set (log density), standard deviation in grid cells; 0: none."""
    refine_steps: int = 0
    """With smoothing 0: bisections placing each vertex where the field itself crosses the level (0: off)."""
    colors: bool = True
    """Colour vertices with the field's radiance."""
    block_size: int = 64
    """Lattice points per side of a block evaluated at once (bounds the working memory)."""
    max_memory_gb: float = 8.0
    """Refuse grids whose estimated memory (density grid + mesh) exceeds this."""

    def __post_init__(self) -> None:
        if isinstance(self.resolution, bool) or not isinstance(self.resolution, int) or self.resolution < 2:
            raise ConfigError(f"mesh resolution must be an integer >= 2, got {self.resolution!r}")
        if isinstance(self.threshold, str) and self.threshold != "auto":
            raise ConfigError(f"mesh threshold must be a number, 'auto' or None, got {self.threshold!r}")
        if isinstance(self.threshold, (int, float)) and not (math.isfinite(self.threshold) and self.threshold > 0):
            raise ConfigError(f"mesh threshold must be a positive density, got {self.threshold}")
        if self.bounds is not None and not all(hi > lo for lo, hi in zip(*self.bounds, strict=True)):
            raise ConfigError(f"mesh bounds must be [[min x, y, z], [max x, y, z]] with max > min, got {self.bounds}")
        if self.refine_steps < 0:
            raise ConfigError(f"mesh refine_steps must be >= 0, got {self.refine_steps}")
        if not self.smoothing >= 0:
            raise ConfigError(f"mesh smoothing must be >= 0 (grid cells), got {self.smoothing}")
        if self.refine_steps > 0 and self.smoothing > 0:
            raise ConfigError(
                "mesh refine_steps needs smoothing = 0: refinement places vertices on the raw field, "
                "undoing the smoothing"
            )
        if self.block_size < 2:
            raise ConfigError(f"mesh block_size must be >= 2, got {self.block_size}")
        if not self.max_memory_gb > 0:
            raise ConfigError(f"mesh max_memory_gb must be positive, got {self.max_memory_gb}")


@dataclass
class ExtractedMesh:
    """A mesh extracted from a field, with how it was made."""

    mesh: trimesh.Trimesh
    """World-frame mesh, faces wound outward; 8-bit vertex colours when asked for."""
    threshold: float
    """The iso-level used, density per scene unit."""
    threshold_source: Literal["default", "auto", "given"]
    bounds: Float[np.ndarray, "2 3"]
    grid_shape: tuple[int, int, int]
    """Lattice points per axis."""
    evaluated_fraction: float
    """Fraction of lattice points at which the field was evaluated (the others lie in empty cells)."""
    seconds: dict[str, float]
    """Wall time of each stage: threshold, grid, marching_cubes, cleanup, colors."""


def _level_set_fn(
    field_: Field, occupancy: OccupancyGrid | None, level: float, clip: float
) -> Callable[[Tensor], Tensor]:
    """The unsmoothed level set at CPU points, as the grid holds it (zero density in empty cells)."""
    device = field_.aabb.device

    def level_set(points: Tensor) -> Tensor:
        points = points.to(device)
        values = field_.density(points)
        if occupancy is not None:
            values = torch.where(occupancy.occupied(points), values, torch.zeros_like(values))
        return log_density(values, level, clip).cpu()

    return level_set


def _check_memory(shape: tuple[int, int, int], config: MeshConfig, faces: int | None = None) -> None:
    made = f", and marching cubes made {faces:,} faces" if faces is not None else ""
    check_memory(
        estimate_memory(shape, faces), config.max_memory_gb,
        f"mesh resolution {config.resolution} needs a {shape[0]}x{shape[1]}x{shape[2]} density grid{made}",
        "lower the resolution, mesh a smaller region with bounds, raise smoothing, or raise max_memory_gb",
    )


def extract_mesh(
    field_: Field,
    config: MeshConfig = MeshConfig(),
    occupancy: OccupancyGrid | None = None,
    cleanup: CleanupConfig = CleanupConfig(),
) -> ExtractedMesh:
    """Extract, clean and colour the surface of ``field_`` (see the module docstring).

    Raises:
        ConfigError: the grid would need more memory than ``config.max_memory_gb``.
        NerfDataError: there is no surface at the threshold inside the bounds.

    Example:
        >>> from nerfdata.fields.analytic import AnalyticField, Sphere
        >>> field = AnalyticField([Sphere((0.0, 0.0, 0.0), 0.5)], aabb=[[-1, -1, -1], [1, 1, 1]])
        >>> result = extract_mesh(field, MeshConfig(resolution=24))
        >>> result.threshold, result.grid_shape, bool(result.mesh.is_watertight)
        (25.0, (25, 25, 25), True)
    """
    import time

    box = config.bounds if config.bounds is not None else field_.aabb.cpu().double().numpy()
    bounds = np.asarray(box, dtype=np.float64)
    shape, _ = grid_spacing(bounds, config.resolution)
    _check_memory(shape, config)
    seconds: dict[str, float] = {}
    clock = time.perf_counter()

    def lap(stage: str) -> None:
        nonlocal clock
        now = time.perf_counter()
        seconds[stage] = now - clock
        clock = now

    level = resolve_threshold(field_, config.threshold, occupancy)
    lap("threshold")
    grid = density_grid(field_, bounds, config.resolution, occupancy, config.block_size)
    lap("grid")
    low, high = float(grid.values.min()), float(grid.values.max())
    if not low < level < high:
        raise NerfDataError(
            f"no surface: density inside the bounds ranges over [{low:.4g}, {high:.4g}] and never crosses the "
            f"threshold {level:.4g}; choose a threshold inside that range (or --threshold auto)"
        )
    evaluated = grid.evaluated_fraction
    grid = log_density_grid(grid, level, config.smoothing)
    refine = None
    if config.refine_steps > 0:
        refine = _level_set_fn(field_, occupancy, level, level_set_clip(high, level))
    mesh = marching_cubes_mesh(grid, 0.0, refine, config.refine_steps)
    del grid  # the largest allocation; the rest works on the mesh only
    _check_memory(shape, config, len(mesh.faces))  # before the steps whose memory grows with the faces
    lap("marching_cubes")
    mesh = clean_mesh(mesh, cleanup)
    lap("cleanup")
    if config.colors and len(mesh.vertices):
        import trimesh

        rgb = vertex_colors(field_, np.asarray(mesh.vertices), np.asarray(mesh.vertex_normals))
        mesh.visual = trimesh.visual.ColorVisuals(mesh, vertex_colors=to_uint8(rgb))
    lap("colors")
    source: Literal["default", "auto", "given"] = (
        "default" if config.threshold is None else "auto" if config.threshold == "auto" else "given"
    )
    return ExtractedMesh(mesh, level, source, bounds, shape, evaluated, seconds)
