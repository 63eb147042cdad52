"""Meshes of what a field learned: density on a grid, marching cubes, clean-up, vertex colours.

The flow of :func:`extract_mesh` (:mod:`~nerfdata.labels.mesh.extract`), one module a step:

1. **Iso-level** (:mod:`~nerfdata.labels.mesh.level`): the surface is where density equals the
   threshold (density per scene unit, as the field returns it): 50 per longest box side by
   default, or measured from renders of the field (``"auto"``).
2. **Grid** (:mod:`~nerfdata.labels.mesh.grid`): density on a lattice over ``bounds``, block by
   block, skipping what the occupancy grid says is empty.
3. **Level set** and 4. **marching cubes** (:mod:`~nerfdata.labels.mesh.surface`): smoothed log
   density, its iso-surface in world coordinates with faces wound outward, optionally with each
   vertex moved onto the field's own level set.
5. **Clean-up** (:mod:`~nerfdata.labels.mesh.cleanup`): floating components, holes, decimation.
6. **Colours** (:mod:`~nerfdata.labels.mesh.colors`): the field's radiance at each vertex, seen
   from outside, stored as 8-bit RGB.

Mesh files are written by :mod:`nerfdata.writers.mesh`.
"""

from nerfdata.labels.mesh.cleanup import (
    CleanupConfig,
    MeshStats,
    clean_mesh,
    component_areas,
    decimate,
    drop_collapsed_faces,
    fill_small_holes,
    mesh_stats,
    remove_small_components,
)
from nerfdata.labels.mesh.colors import vertex_colors
from nerfdata.labels.mesh.extract import ExtractedMesh, MeshConfig, extract_mesh
from nerfdata.labels.mesh.grid import Grid, density_grid, estimate_memory, grid_spacing
from nerfdata.labels.mesh.level import (
    DEFAULT_THRESHOLD_PER_BOX,
    auto_threshold,
    crossing_densities,
    default_threshold,
    resolve_threshold,
)
from nerfdata.labels.mesh.surface import (
    LOG_CLIP,
    level_set_clip,
    log_density,
    log_density_grid,
    marching_cubes_mesh,
    refine_edge_vertices,
)

__all__ = [
    "DEFAULT_THRESHOLD_PER_BOX",
    "LOG_CLIP",
    "CleanupConfig",
    "ExtractedMesh",
    "Grid",
    "MeshConfig",
    "MeshStats",
    "auto_threshold",
    "clean_mesh",
    "component_areas",
    "crossing_densities",
    "decimate",
    "default_threshold",
    "density_grid",
    "drop_collapsed_faces",
    "estimate_memory",
    "extract_mesh",
    "fill_small_holes",
    "grid_spacing",
    "level_set_clip",
    "log_density",
    "log_density_grid",
    "marching_cubes_mesh",
    "mesh_stats",
    "refine_edge_vertices",
    "remove_small_components",
    "resolve_threshold",
    "vertex_colors",
]
