"""Radiance fields: the protocol, nerfdata's own fields, occupancy grids, checkpoints and loading.

nerfstudio runs load through :func:`load_field` too; their package, :mod:`nerfdata.fields.nerfstudio`,
is imported only then.
"""

from nerfdata.fields.analytic import AnalyticField, Box, Material, Plane, Sphere, SurfaceHits, Torus
from nerfdata.fields.base import Field, LoadedField, inside_aabb
from nerfdata.fields.checkpoint import save_field
from nerfdata.fields.loading import load_field
from nerfdata.fields.ngp import NGPField, NGPFieldConfig
from nerfdata.fields.occupancy import OccupancyGrid, occupancy_grid_from_density

__all__ = [
    "AnalyticField",
    "Box",
    "Field",
    "LoadedField",
    "Material",
    "NGPField",
    "NGPFieldConfig",
    "OccupancyGrid",
    "Plane",
    "Sphere",
    "SurfaceHits",
    "Torus",
    "inside_aabb",
    "load_field",
    "occupancy_grid_from_density",
    "save_field",
]
