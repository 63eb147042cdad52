"""BOP object models: ``models/obj_000001.ply`` (millimetres, model frame) and ``models_info.json``.

``models_info.json`` holds per object id its diameter (the largest distance between two vertices)
and its box (``min_x, min_y, min_z, size_x, size_y, size_z``), millimetres. PLY files are binary
little-endian with vertex normals and, when the mesh has them, 8-bit vertex colours (the BOP
toolkit's ``inout.load_ply`` reads them).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
from jaxtyping import Float

from nerfdata.atomic import atomic_path, write_json_atomic

if TYPE_CHECKING:  # the meshes come built; writing them needs no trimesh import here (0.6 s)
    import trimesh

__all__ = ["bop_model_name", "models_info", "write_bop_models"]


def bop_model_name(obj_id: int) -> str:
    """The PLY file name of an object's model."""
    return f"obj_{obj_id:06d}.ply"


def models_info(vertices_mm: Float[np.ndarray, "n 3"]) -> dict[str, float]:
    """BOP ``models_info.json`` entry of a model: diameter and box, millimetres.

    Example:
        >>> models_info(np.array([[0.0, 0.0, 0.0], [3.0, 4.0, 0.0], [1.0, 1.0, 1.0]]))["diameter"]
        5.0
    """
    from scipy.spatial import ConvexHull
    from scipy.spatial.distance import pdist

    points = np.asarray(vertices_mm, dtype=np.float64)
    try:  # the diameter's endpoints lie on the convex hull: far fewer pairs to compare
        points_for_diameter = points[ConvexHull(points).vertices]
    except Exception:
        points_for_diameter = points
    low, high = points.min(axis=0), points.max(axis=0)
    return {
        "diameter": float(pdist(points_for_diameter).max()) if len(points) > 1 else 0.0,
        "min_x": float(low[0]),
        "min_y": float(low[1]),
        "min_z": float(low[2]),
        "size_x": float(high[0] - low[0]),
        "size_y": float(high[1] - low[1]),
        "size_z": float(high[2] - low[2]),
    }


def write_bop_models(folder: Path, models: dict[int, trimesh.Trimesh]) -> list[Path]:
    """Write each model (millimetres) as ``folder/obj_ID.ply``, and ``folder/models_info.json``.

    Returns:
        The PLY paths.
    """
    paths = []
    for obj_id, model in sorted(models.items()):
        path = folder / bop_model_name(obj_id)
        with atomic_path(path) as tmp:
            model.export(tmp, file_type="ply", vertex_normal=True)
        paths.append(path)
    info = {str(obj_id): models_info(np.asarray(model.vertices)) for obj_id, model in sorted(models.items())}
    write_json_atomic(folder / "models_info.json", info)
    return paths
