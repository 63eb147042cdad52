"""Meshes of what a field learned: density on a grid, marching cubes, vertex colours, export.

The flow of :func:`extract_mesh`:

1. **Iso-level.** The surface is where density equals the threshold (density per scene unit, as
   the field returns it). The default, :data:`DEFAULT_THRESHOLD_PER_BOX` divided by the box's
   longest side, does not depend on the scene's units. ``"auto"`` measures the level from the
   field itself (:func:`auto_threshold`): it renders a few views around the box and takes the
   median, over rays that become opaque, of the density of the sample at which the ray's
   accumulated opacity crosses 0.5 (where the median depth label lies).
2. **Grid.** Density is evaluated on a lattice over ``bounds`` (the field's box by default) with
   ``resolution`` cells along its longest side and cells of (nearly) the same size along the
   others. The lattice is evaluated block by block; a block in which the occupancy grid has no
   occupied cell is skipped, and inside other blocks only points in occupied cells are evaluated
   (the renderer skips the same points, so the mesh agrees with the renders). Memory is the float32
   grid (513^3 points: 0.5 GB) plus one block, then about 1 KB per face for the mesh: the mug
   scene at 512^3 peaks at 3.9 GB. A job whose estimate (:func:`estimate_memory`) exceeds
   ``max_memory_gb`` is refused before the grid is evaluated, and again once marching cubes has
   counted the faces, before the steps whose memory grows with them.
3. **Level set.** The grid becomes ``log(density / threshold)``, clipped symmetrically, and is
   low-passed with a Gaussian of ``smoothing`` cells (:func:`log_density_grid`). A hash-grid field's
   density is noisy at the scale of its finest level; the raw iso-surface of a trained field is
   rough (on the mug scene its area is 2.6 times the true one and normal consistency 0.61), the
   smoothed one is not (area within 20%, normal consistency 0.84), at the same Chamfer distance.
4. **Marching cubes** (scikit-image, Lewiner's topologically consistent variant). Vertices are in
   world coordinates and units; faces wind counter-clockwise seen from outside, so normals point
   from high to low density (outward). For crisp fields (analytic, SDF-like) ``smoothing=0,
   refine_steps=8`` instead moves each vertex onto the field's own level set
   (:func:`refine_edge_vertices`).
5. **Clean-up** (:mod:`nerfdata.labels.mesh_cleanup`): floating components, holes, decimation.
6. **Colours.** Each vertex's colour is the field's radiance there, seen from outside along the
   vertex's negative normal, stored as 8-bit RGB exactly as rendered images store it.
"""

import math
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Literal

import numpy as np
import torch
import trimesh
from jaxtyping import Float
from torch import Tensor

from nerfdata.atomic import atomic_path
from nerfdata.cameras import Camera, Intrinsics, Rays
from nerfdata.errors import ConfigError, NerfDataError
from nerfdata.fields.base import Field
from nerfdata.fields.occupancy import OccupancyGrid
from nerfdata.labels.mesh_cleanup import CleanupConfig, clean_mesh, drop_collapsed_faces
from nerfdata.poses import OrbitConfig, orbit_poses
from nerfdata.render.renderer import RaySamples, RenderOptions, render_rays
from nerfdata.writers.images import to_uint8

__all__ = [
    "DEFAULT_THRESHOLD_PER_BOX",
    "LOG_CLIP",
    "MESH_FORMATS",
    "Grid",
    "ExtractedMesh",
    "MeshConfig",
    "auto_threshold",
    "crossing_densities",
    "default_threshold",
    "density_grid",
    "estimate_memory",
    "extract_mesh",
    "grid_spacing",
    "log_density",
    "log_density_grid",
    "level_set_clip",
    "marching_cubes_mesh",
    "refine_edge_vertices",
    "resolve_threshold",
    "vertex_colors",
    "write_mesh",
]

Vec3 = tuple[float, float, float]

DEFAULT_THRESHOLD_PER_BOX = 50.0
"""Default iso-level in density per box length: ``threshold = 50 / longest box side``.

A layer one hundredth of the box thick at this density is 40% opaque (``1 - exp(-0.5)``), so the
level sits inside the rise of density at a surface, above the haze of a trained field and well
below the density of its solid interior. On the mug scene, levels from 0.4 to 3 times this give
Chamfer distances within 10% of each other; the auto level (8 times this) gives thinner walls."""

MESH_FORMATS = {".ply": "ply", ".obj": "obj", ".glb": "glb"}
"""File extensions :func:`write_mesh` understands and the trimesh format written for each."""

# Bytes per lattice point: the float32 grid. The mesh is budgeted separately (see estimate_memory).
_GRID_BYTES_PER_POINT = 4
# Peak memory per face of marching cubes, clean-up (face adjacency), vertex normals and export:
# measured 650-950 bytes (peak RSS) on the mug scene at 384^3 and 512^3.
_MESH_BYTES_PER_FACE = 960


@dataclass(frozen=True)
class MeshConfig:
    """How a mesh is extracted: density grid, iso-level, marching cubes, vertex colours."""

    resolution: int = 256
    """Grid cells along the longest side of ``bounds``; the other sides get cells of the same size."""
    threshold: float | Literal["auto"] | None = None
    """Iso-level, density per scene unit; 'auto': where rendered rays become half opaque; None: 50 / longest box side."""
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
        if self.bounds is not None and not all(hi > lo for lo, hi in zip(*self.bounds)):
            raise ConfigError(f"mesh bounds must be [[min x, y, z], [max x, y, z]] with max > min, got {self.bounds}")
        if self.refine_steps < 0:
            raise ConfigError(f"mesh refine_steps must be >= 0, got {self.refine_steps}")
        if not self.smoothing >= 0:
            raise ConfigError(f"mesh smoothing must be >= 0 (grid cells), got {self.smoothing}")
        if self.refine_steps > 0 and self.smoothing > 0:
            raise ConfigError(
                "mesh refine_steps needs smoothing = 0: refinement places vertices on the raw field, undoing the smoothing"
            )
        if self.block_size < 2:
            raise ConfigError(f"mesh block_size must be >= 2, got {self.block_size}")
        if not self.max_memory_gb > 0:
            raise ConfigError(f"mesh max_memory_gb must be positive, got {self.max_memory_gb}")


# ------------------------------------------------------------------------------------- the grid


def grid_spacing(bounds: Float[np.ndarray, "2 3"], resolution: int) -> tuple[tuple[int, int, int], Float[np.ndarray, "3"]]:
    """Lattice points per axis and the spacing between them for ``resolution`` cells on the longest side.

    Shorter sides get ``round(side / cell)`` cells (at least one), stretched to end exactly on
    ``bounds``, so cells are cubes up to that rounding.

    Example:
        >>> shape, spacing = grid_spacing(np.array([[0.0, 0.0, 0.0], [2.0, 1.0, 0.5]]), 4)
        >>> shape, spacing.tolist()
        ((5, 3, 2), [0.5, 0.5, 0.5])
    """
    sides = bounds[1] - bounds[0]
    cell = float(sides.max()) / resolution
    cells = np.maximum(np.round(sides / cell), 1).astype(int)
    shape = tuple(int(c) + 1 for c in cells)
    return (shape[0], shape[1], shape[2]), sides / cells


def estimate_memory(shape: tuple[int, int, int], faces: int | None = None) -> int:
    """Bytes needed to extract a mesh of ``faces`` faces from a lattice of ``shape`` points.

    Before marching cubes the face count is unknown; it is taken as that of a surface crossing
    the three mid-planes' worth of cells (2 triangles per cell), typical of an object or a room
    (a rough trained surface can have a few times more, checked again once the mesh exists).

    Example:
        >>> round(estimate_memory((513, 513, 513)) / 2**30, 2)
        1.91
    """
    nx, ny, nz = shape
    faces = 2 * (nx * ny + ny * nz + nx * nz) if faces is None else faces
    return _GRID_BYTES_PER_POINT * nx * ny * nz + _MESH_BYTES_PER_FACE * faces


@dataclass
class Grid:
    """Values sampled on a lattice: ``values[i, j, k]`` is at ``origin + (i, j, k) * spacing``."""

    values: Float[np.ndarray, "nx ny nz"]
    origin: Float[np.ndarray, "3"]
    spacing: Float[np.ndarray, "3"]
    evaluated_fraction: float = 1.0
    """Fraction of lattice points at which the field was evaluated (the rest lie in empty cells)."""


def _blocks(shape: tuple[int, int, int], size: int) -> Iterator[tuple[slice, slice, slice]]:
    for i in range(0, shape[0], size):
        for j in range(0, shape[1], size):
            for k in range(0, shape[2], size):
                yield slice(i, min(i + size, shape[0])), slice(j, min(j + size, shape[1])), slice(k, min(k + size, shape[2]))


def _block_may_be_occupied(mask: Tensor, occupancy: OccupancyGrid, lo: Tensor, hi: Tensor) -> bool:
    """Whether any occupancy cell overlapping the world box ``[lo, hi]`` is occupied."""
    aabb = occupancy.aabb.to(lo)
    cells = (aabb[1] - aabb[0]) / occupancy.resolution
    first = torch.floor((lo - aabb[0]) / cells).long().clamp(0, occupancy.resolution - 1)
    last = torch.floor((hi - aabb[0]) / cells).long().clamp(0, occupancy.resolution - 1)
    if ((hi < aabb[0]) | (lo > aabb[1])).any():
        return False
    return bool(mask[first[0] : last[0] + 1, first[1] : last[1] + 1, first[2] : last[2] + 1].any())


@torch.no_grad()
def density_grid(
    field_: Field,
    bounds: Float[np.ndarray, "2 3"],
    resolution: int,
    occupancy: OccupancyGrid | None = None,
    block_size: int = 64,
    chunk_points: int = 1 << 18,
) -> Grid:
    """Density of ``field_`` on the lattice of :func:`grid_spacing`, block by block.

    Points in cells the occupancy grid marks empty are not evaluated and hold 0 (the renderer skips
    them too). Only the float32 grid and one block of points are held at once.

    Example:
        >>> from nerfdata.fields.analytic import AnalyticField, Sphere
        >>> field = AnalyticField([Sphere((0.0, 0.0, 0.0), 0.5)], aabb=[[-1, -1, -1], [1, 1, 1]])
        >>> grid = density_grid(field, np.array([[-1.0, -1.0, -1.0], [1.0, 1.0, 1.0]]), 4)
        >>> grid.values.shape, bool(grid.values[2, 2, 2] > 1000), float(grid.values[0, 0, 0])
        ((5, 5, 5), True, 0.0)
    """
    shape, spacing = grid_spacing(bounds, resolution)
    values = np.zeros(shape, dtype=np.float32)
    device = field_.aabb.device
    origin = torch.as_tensor(bounds[0], dtype=torch.float64)
    step = torch.as_tensor(spacing, dtype=torch.float64)
    mask = occupancy.to_mask().to(device) if occupancy is not None else None
    evaluated = 0
    for block in _blocks(shape, block_size):
        axes = [torch.arange(s.start, s.stop, dtype=torch.float64) * step[d] + origin[d] for d, s in enumerate(block)]
        lo, hi = torch.stack([a[0] for a in axes]).to(device), torch.stack([a[-1] for a in axes]).to(device)
        if occupancy is not None and not _block_may_be_occupied(mask, occupancy, lo, hi):
            continue
        points = torch.stack(torch.meshgrid(*axes, indexing="ij"), dim=-1).reshape(-1, 3).to(device, torch.float32)
        density = torch.zeros(len(points), dtype=torch.float32, device=device)
        index = occupancy.occupied(points).nonzero()[:, 0] if occupancy is not None else torch.arange(len(points), device=device)
        for chunk in index.split(chunk_points):
            density[chunk] = field_.density(points[chunk]).float()
        evaluated += len(index)
        values[block] = density.reshape(*(s.stop - s.start for s in block)).cpu().numpy()
    return Grid(values, bounds[0].astype(np.float64), spacing, evaluated / values.size)


# ------------------------------------------------------------------------------------- the level


def default_threshold(field_: Field) -> float:
    """:data:`DEFAULT_THRESHOLD_PER_BOX` per longest side of the field's box (density per scene unit).

    Example:
        >>> from nerfdata.fields.analytic import AnalyticField, Sphere
        >>> default_threshold(AnalyticField([Sphere((0.0, 0.0, 0.0), 0.5)], aabb=[[-1, -1, -1], [1, 1, 1]]))
        25.0
    """
    return DEFAULT_THRESHOLD_PER_BOX / float((field_.aabb[1] - field_.aabb[0]).max())


def crossing_densities(samples: RaySamples, level: float = 0.5) -> Float[Tensor, " k"]:
    """Per ray that gets there, the density of the sample at which accumulated opacity crosses ``level``.

    ``samples`` are packed (any ray order; front to back within each ray, as the renderer returns
    them). Rays whose total opacity stays below ``level`` contribute nothing.

    Example:
        >>> samples = RaySamples(torch.tensor([0, 0, 0, 1]), torch.zeros(4), torch.ones(4),
        ...                      torch.tensor([0.1, 0.5, 0.3, 0.2]), torch.tensor([1.0, 7.0, 9.0, 2.0]))
        >>> crossing_densities(samples).tolist()
        [7.0]
    """
    order = torch.sort(samples.ray_indices, stable=True).indices
    rays, weights, density = samples.ray_indices[order], samples.weights[order].double(), samples.density[order]
    total = torch.cumsum(weights, dim=0)
    first = torch.ones_like(rays, dtype=torch.bool)
    first[1:] = rays[1:] != rays[:-1]
    start = torch.cumsum(first.long(), dim=0) - 1  # segment index of each sample
    before_segment = (total - weights)[first][start]  # cumulative weight before each ray's first sample
    accumulated = total - before_segment
    crossing = (accumulated >= level) & (accumulated - weights < level)
    return density[crossing]


def _views_around(field_: Field, count: int, size: int, fov_deg: float = 40.0) -> list[Camera]:
    """Cameras on two orbits (above and below) around the box centre, each seeing the whole box."""
    centre = tuple(float(v) for v in (field_.aabb[0] + field_.aabb[1]) / 2)
    radius = 0.5 * field_.extent / math.sin(math.radians(fov_deg) / 2)
    intrinsics = Intrinsics.from_fov(size, size, fov_deg)
    poses = [
        orbit_poses(OrbitConfig(count=max(count // 2, 1), radius=radius, elevation_deg=elevation, target=centre,
                                start_azimuth_deg=offset))
        for elevation, offset in ((30.0, 0.0), (-30.0, 180.0 / max(count // 2, 1)))
    ]
    return [Camera(c2w, intrinsics) for c2w in torch.cat(poses)]


@torch.no_grad()
def auto_threshold(
    field_: Field,
    occupancy: OccupancyGrid | None = None,
    views: int = 12,
    size: int = 48,
    options: RenderOptions = RenderOptions(),
) -> float:
    """The density at which rendered rays become half opaque: the median of :func:`crossing_densities`.

    Renders ``views`` low-resolution views from two orbits around the box. Marching cubes at this
    level puts the surface where the median depth label lies.

    Raises:
        NerfDataError: fewer than 32 rays become half opaque (the field is empty where it is seen).
    """
    options = replace(options, normals=False, return_samples=True, background="none")
    found = []
    for camera in _views_around(field_, views, size):
        rays = camera.rays()
        rays = Rays(rays.origins.to(field_.aabb.device), rays.directions.to(field_.aabb.device), rays.z_per_range)
        samples = render_rays(field_, rays, options, occupancy).samples
        assert samples is not None
        found.append(crossing_densities(samples).cpu())
    densities = torch.cat(found)
    if len(densities) < 32:
        raise NerfDataError(
            f"threshold auto: only {len(densities)} rendered rays became half opaque; the field looks empty "
            "(pass --threshold with a density)"
        )
    return float(densities.double().median())


def resolve_threshold(field_: Field, threshold: float | Literal["auto"] | None, occupancy: OccupancyGrid | None) -> float:
    """The iso-level a :class:`MeshConfig` ``threshold`` stands for (density per scene unit)."""
    if threshold is None:
        return default_threshold(field_)
    if threshold == "auto":
        return auto_threshold(field_, occupancy)
    return float(threshold)


# ------------------------------------------------------------------------------------- the mesh


LOG_CLIP = 3.0
"""The level set is ``log(density / threshold)`` clipped to ``[-3, 3]`` (density within a factor 20 of the level)."""


def level_set_clip(max_density: float, level: float) -> float:
    """The symmetric clip of the level set: :data:`LOG_CLIP`, or less where the field is never that dense.

    Example:
        >>> level_set_clip(1e6, 10.0), round(level_set_clip(20.0, 10.0), 3)
        (3.0, 0.693)
    """
    return min(LOG_CLIP, math.log(max(max_density, level) / level))


def log_density(density: Tensor, level: float, clip: float = LOG_CLIP, inplace: bool = False) -> Tensor:
    """``clamp(log(density / level), -clip, clip)``: positive inside, 0 on the surface.

    ``inplace`` overwrites ``density`` (no temporary the size of the input).

    Example:
        >>> log_density(torch.tensor([0.0, 1.0, 2.0, 1e9]), 2.0).tolist()
        [-3.0, -0.6931471824645996, 0.0, 3.0]
    """
    values = density if inplace else density.clone()
    return values.clamp_(min=1e-30).div_(level).log_().clamp_(-clip, clip)


def log_density_grid(grid: Grid, level: float, smoothing: float = 0.0) -> Grid:
    """The level set of ``grid``'s density at ``level``: :func:`log_density`, then a Gaussian low-pass.

    Works in place on ``grid.values`` (the grid is the largest allocation) and returns ``grid``.
    In the log domain the surface is where the values cross 0, and clipping symmetrically (at
    :func:`level_set_clip`) makes the profile across a surface antisymmetric once both sides
    saturate, so smoothing (standard deviation ``smoothing`` in grid cells) removes a trained field's
    noise without moving flat surfaces, whatever the threshold. Interpolating log density is also
    closer to linear than density itself, whose rise at a surface is exponential.

    Example:
        >>> grid = Grid(np.array([[[0.5, 2.0, 8.0]]], dtype=np.float32), np.zeros(3), np.ones(3))
        >>> [round(float(v), 3) for v in log_density_grid(grid, 2.0).values.ravel()]
        [-1.386, 0.0, 1.386]
    """
    from scipy import ndimage  # only needed when meshing

    clip = level_set_clip(float(grid.values.max()), level)
    log_density(torch.from_numpy(grid.values), level, clip, inplace=True)
    if smoothing > 0:
        ndimage.gaussian_filter(grid.values, smoothing, output=grid.values, mode="nearest")
    return grid


def marching_cubes_mesh(
    grid: Grid,
    level: float,
    value_fn: Callable[[Tensor], Tensor] | None = None,
    refine_steps: int = 0,
) -> trimesh.Trimesh:
    """The iso-surface ``values = level`` of ``grid`` (values higher inside) in world coordinates, faces wound outward.

    Outward means towards lower values: a face's normal (right-hand rule) points out of the solid.
    With ``value_fn`` (the grid's quantity at any point) and ``refine_steps > 0``, each vertex is
    moved to where ``value_fn`` crosses ``level`` on its grid edge (:func:`refine_edge_vertices`)
    instead of where the linear interpolation of the two grid values does.

    Raises:
        NerfDataError: the values never cross ``level`` inside the grid.

    Example:
        >>> from nerfdata.fields.analytic import AnalyticField, Sphere
        >>> field = AnalyticField([Sphere((0.0, 0.0, 0.0), 0.5)], aabb=[[-1, -1, -1], [1, 1, 1]])
        >>> grid = density_grid(field, np.array([[-1.0] * 3, [1.0] * 3]), 32)
        >>> mesh = marching_cubes_mesh(grid, 25.0, field.density, refine_steps=8)
        >>> bool(mesh.is_watertight), bool(mesh.volume > 0), round(float(mesh.bounds[1, 0]), 3)
        (True, True, 0.502)
    """
    from skimage.measure import marching_cubes  # scikit-image is only needed here

    low, high = float(grid.values.min()), float(grid.values.max())
    if not low < level < high:
        raise NerfDataError(
            f"no surface: values on the grid range over [{low:.4g}, {high:.4g}] and never cross the level {level:.4g}"
        )
    # skimage orders vertex coordinates for (z, y, x) volumes; ours is (x, y, z), which mirrors the
    # winding, so "ascent" (not skimage's "descent" for a dense object) winds faces outward.
    vertices, faces, _, _ = marching_cubes(grid.values, level, gradient_direction="ascent")
    if value_fn is not None and refine_steps > 0:
        vertices = refine_edge_vertices(grid, vertices, level, value_fn, refine_steps)
    world = vertices.astype(np.float64) * grid.spacing + grid.origin
    mesh = trimesh.Trimesh(world, faces, process=True)  # merges duplicate vertices
    return drop_collapsed_faces(mesh)


@torch.no_grad()
def refine_edge_vertices(
    grid: Grid,
    vertices: Float[np.ndarray, "n 3"],
    level: float,
    value_fn: Callable[[Tensor], Tensor],
    steps: int,
    chunk_points: int = 1 << 18,
) -> Float[np.ndarray, "n 3"]:
    """Move marching-cubes vertices to where ``value_fn`` crosses ``level`` on their grid edges.

    ``vertices`` are in grid index coordinates: each lies on the lattice edge between two grid
    points whose values straddle ``level`` (integer in two coordinates). The crossing is bracketed
    by ``steps`` bisections of the edge, then placed by linear interpolation inside the last bracket.
    On a field whose density rises within a fraction of a cell (a crisp surface) linear
    interpolation of the grid alone can be off by most of a cell; this is exact to ``2^-steps``.

    Example:
        >>> values = np.zeros((2, 1, 1), dtype=np.float32); values[0] = 10.0
        >>> grid = Grid(values, np.zeros(3), np.ones(3), 1.0)
        >>> step_down = lambda x: torch.where(x[:, 0] < 0.3, 10.0, 0.0)  # crisp surface at x = 0.3
        >>> refine_edge_vertices(grid, np.array([[0.5, 0.0, 0.0]]), 5.0, step_down, 10).round(3).tolist()
        [[0.3, 0.0, 0.0]]
    """
    fraction = np.abs(vertices - np.round(vertices))
    axis = fraction.argmax(axis=1)
    start = np.round(vertices).astype(np.int64)
    rows = np.arange(len(vertices))
    start[rows, axis] = np.floor(vertices[rows, axis]).astype(np.int64)
    end = start.copy()
    end[rows, axis] += 1
    shape = np.array(grid.values.shape)
    valid = (end[rows, axis] < shape[axis]) & (fraction[rows, axis] > 0)
    refined = vertices.astype(np.float64).copy()
    for chunk in np.array_split(rows[valid], max(1, -(-int(valid.sum()) // chunk_points))):
        if len(chunk) == 0:
            continue
        a, b = start[chunk], end[chunk]
        f_lo = torch.as_tensor(grid.values[a[:, 0], a[:, 1], a[:, 2]], dtype=torch.float64)
        f_hi = torch.as_tensor(grid.values[b[:, 0], b[:, 1], b[:, 2]], dtype=torch.float64)
        dense_at_lo = f_lo > level
        lo, hi = torch.zeros(len(chunk), dtype=torch.float64), torch.ones(len(chunk), dtype=torch.float64)
        origin = torch.as_tensor(a * grid.spacing + grid.origin)
        direction = torch.as_tensor((b - a) * grid.spacing)
        for _ in range(steps):
            middle = 0.5 * (lo + hi)
            points = (origin + middle[:, None] * direction).float()
            value = value_fn(points).double().cpu()
            same = (value > level) == dense_at_lo  # the crossing lies beyond the middle
            lo, f_lo = torch.where(same, middle, lo), torch.where(same, value, f_lo)
            hi, f_hi = torch.where(same, hi, middle), torch.where(same, f_hi, value)
        t = lo + (hi - lo) * ((level - f_lo) / (f_hi - f_lo)).nan_to_num(0.5).clamp(0.0, 1.0)
        refined[chunk, axis[chunk]] = a[np.arange(len(chunk)), axis[chunk]] + t.numpy()
    return refined


@torch.no_grad()
def vertex_colors(
    field_: Field, vertices: Float[np.ndarray, "n 3"], normals: Float[np.ndarray, "n 3"], chunk_points: int = 1 << 18
) -> Float[np.ndarray, "n 3"]:
    """The field's radiance at ``vertices`` seen from outside, looking along ``-normals`` (outward unit normals).

    Example:
        >>> from nerfdata.fields.analytic import AnalyticField, Material, Sphere
        >>> field = AnalyticField([Sphere((0.0, 0.0, 0.0), 0.5, Material((0.2, 0.4, 0.6), "solid"))], [[-1] * 3, [1] * 3])
        >>> vertex_colors(field, np.array([[0.5, 0.0, 0.0]]), np.array([[1.0, 0.0, 0.0]])).round(2).tolist()
        [[0.2, 0.4, 0.6]]
    """
    device = field_.aabb.device
    positions = torch.tensor(np.asarray(vertices), dtype=torch.float32, device=device)
    directions = -torch.nn.functional.normalize(torch.tensor(np.asarray(normals), dtype=torch.float32, device=device), dim=-1)
    parts = [field_.query(p, d)[1] for p, d in zip(positions.split(chunk_points), directions.split(chunk_points))]
    rgb = torch.cat(parts) if parts else torch.zeros(0, 3, device=device)
    return rgb.clamp(0.0, 1.0).double().cpu().numpy()


def write_mesh(mesh: trimesh.Trimesh, path: str | Path) -> Path:
    """Write ``mesh`` atomically in the format its extension names (:data:`MESH_FORMATS`).

    Raises:
        ConfigError: the extension is not one of ``.ply``, ``.obj``, ``.glb``.
    """
    path = Path(path)
    file_type = MESH_FORMATS.get(path.suffix.lower())
    if file_type is None:
        raise ConfigError(f"mesh output {path}: unknown format {path.suffix!r}; use one of {', '.join(MESH_FORMATS)}")
    with atomic_path(path) as tmp:
        # The temporary name ends in .tmp, so the format is named explicitly.
        mesh.export(tmp, file_type=file_type)
    return path


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


def _level_set_fn(field_: Field, occupancy: OccupancyGrid | None, level: float, clip: float) -> Callable[[Tensor], Tensor]:
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
    needed = estimate_memory(shape, faces)
    if needed > config.max_memory_gb * 2**30:
        made = f", and marching cubes made {faces:,} faces" if faces is not None else ""
        raise ConfigError(
            f"mesh resolution {config.resolution} needs a {shape[0]}x{shape[1]}x{shape[2]} density grid{made}: about "
            f"{needed / 2**30:.1f} GB, more than max_memory_gb = {config.max_memory_gb:g}; lower the resolution, "
            "mesh a smaller region with bounds, raise smoothing, or raise max_memory_gb"
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
        rgb = vertex_colors(field_, np.asarray(mesh.vertices), np.asarray(mesh.vertex_normals))
        mesh.visual = trimesh.visual.ColorVisuals(mesh, vertex_colors=to_uint8(rgb))
    lap("colors")
    source: Literal["default", "auto", "given"] = (
        "default" if config.threshold is None else "auto" if config.threshold == "auto" else "given"
    )
    return ExtractedMesh(mesh, level, source, bounds, shape, evaluated, seconds)
