"""Mesh quality of shipped fields: extracted meshes against the scenes' ground-truth meshes.

For every scene folder holding a recipe and a trained field, a mesh is extracted
(:func:`nerfdata.labels.mesh.extract_mesh`, default settings unless told) and compared with the
recipe's meshes (all objects in one mesh):

* Chamfer distance: the mean over 100k points sampled uniformly on each mesh of the distance to
  the nearest sampled point of the other, averaged over both directions (scene units, and as a
  percentage of the ground truth's bounding-box diagonal);
* normal consistency: the mean ``|cos|`` between the normals at those nearest-point pairs, both
  directions averaged (1 = identical orientation everywhere; Occupancy Networks' definition);
* vertex and face counts, watertightness, and the extraction's wall time.

Analytic fields have an exact surface instead: their row reports the mean and largest distance of
points sampled on the extracted mesh to the true surface (``|sdf|``).
"""

import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
import trimesh
from jaxtyping import Float
from scipy.spatial import cKDTree

from nerfdata.fields.analytic import AnalyticField
from nerfdata.fields.loading import load_field
from nerfdata.labels.mesh import MeshConfig, extract_mesh, mesh_stats
from nerfdata.scenes.meshes import build_meshes
from nerfdata.scenes.recipe import load_recipe

__all__ = ["analytic_mesh_quality", "mesh_distances", "mesh_quality", "sample_surface"]


def sample_surface(
    mesh: trimesh.Trimesh, count: int, seed: int = 0
) -> tuple[Float[np.ndarray, "count 3"], Float[np.ndarray, "count 3"]]:
    """``count`` points uniform over ``mesh``'s area (seeded) and the normals of their faces.

    Example:
        >>> points, normals = sample_surface(trimesh.creation.box(), 4)
        >>> points.shape, bool(np.allclose(np.abs(points).max(axis=1), 0.5))
        ((4, 3), True)
    """
    points, faces = trimesh.sample.sample_surface(mesh, count, seed=seed)
    return np.asarray(points, dtype=np.float64), np.asarray(mesh.face_normals[faces], dtype=np.float64)


def mesh_distances(
    mesh: trimesh.Trimesh, reference: trimesh.Trimesh, count: int = 100_000, seed: int = 0
) -> dict[str, float]:
    """Chamfer distance and normal consistency between two meshes, from ``count`` samples on each.

    Returns ``accuracy`` (mean distance from ``mesh`` to ``reference``), ``completeness`` (the other
    direction), ``chamfer`` (their mean) and ``normal_consistency``.

    Sampling alone gives a floor: two samplings of one surface are about half a sample spacing
    (``0.5 * sqrt(area / count)``) apart, which :func:`mesh_quality` reports as ``chamfer_floor``.

    Example:
        >>> inner, outer = trimesh.creation.icosphere(4, 1.0), trimesh.creation.icosphere(4, 1.1)
        >>> figures = mesh_distances(inner, outer, count=20000)
        >>> round(figures["chamfer"], 1), round(figures["normal_consistency"], 1)
        (0.1, 1.0)
    """
    points_a, normals_a = sample_surface(mesh, count, seed)
    points_b, normals_b = sample_surface(reference, count, seed + 1)
    distance_ab, nearest_ab = cKDTree(points_b).query(points_a, workers=-1)
    distance_ba, nearest_ba = cKDTree(points_a).query(points_b, workers=-1)
    cosine_ab = np.abs(np.sum(normals_a * normals_b[nearest_ab], axis=-1))
    cosine_ba = np.abs(np.sum(normals_b * normals_a[nearest_ba], axis=-1))
    accuracy, completeness = float(distance_ab.mean()), float(distance_ba.mean())
    return {
        "accuracy": accuracy,
        "completeness": completeness,
        "chamfer": 0.5 * (accuracy + completeness),
        "normal_consistency": float(0.5 * (cosine_ab.mean() + cosine_ba.mean())),
    }


def _extract(field_path: Path, config: MeshConfig) -> tuple[Any, Any, float]:
    loaded = load_field(field_path)
    start = time.perf_counter()
    result = extract_mesh(loaded.field, config, loaded.occupancy)
    return loaded, result, time.perf_counter() - start


def mesh_quality(
    scene: Path, resolution: int = 256, samples: int = 100_000, config: MeshConfig | None = None
) -> dict[str, Any]:
    """Quality figures of the mesh extracted from ``scene``'s trained field at ``resolution``."""
    config = config or MeshConfig(resolution=resolution)
    recipe = load_recipe(scene)
    _, result, seconds = _extract(scene, config)
    truth = build_meshes(recipe).combined()
    diagonal = float(np.linalg.norm(truth.bounds[1] - truth.bounds[0]))
    figures = mesh_distances(result.mesh, truth, samples)
    floor = mesh_distances(truth, truth, samples, seed=2)["chamfer"]
    stats = mesh_stats(result.mesh)
    return {
        "scene": recipe.name,
        "resolution": config.resolution,
        "grid": list(result.grid_shape),
        "threshold": result.threshold,
        "threshold_source": result.threshold_source,
        "seconds": seconds,
        "stage_seconds": result.seconds,
        "evaluated_fraction": result.evaluated_fraction,
        "vertices": stats.vertices,
        "faces": stats.faces,
        "components": stats.components,
        "watertight": stats.watertight,
        "area": stats.area,
        "diagonal": diagonal,
        "chamfer_percent": 100.0 * figures["chamfer"] / diagonal,
        "chamfer_floor": floor,
        **figures,
    }


def analytic_mesh_quality(field_path: Path, resolution: int = 256, samples: int = 100_000) -> dict[str, Any]:
    """Distance of the mesh extracted from an analytic field to its exact surface (``|sdf|`` at samples)."""
    config = MeshConfig(resolution=resolution)
    loaded, result, seconds = _extract(field_path, config)
    field_ = loaded.field
    assert isinstance(field_, AnalyticField)
    points, _ = sample_surface(result.mesh, samples)
    distance = field_.sdf(torch.as_tensor(points, dtype=torch.float64)).abs().numpy()
    stats = mesh_stats(result.mesh)
    cell = float((field_.aabb[1] - field_.aabb[0]).max()) / resolution
    return {
        "scene": field_path.name,
        "resolution": resolution,
        "threshold": result.threshold,
        "seconds": seconds,
        "vertices": stats.vertices,
        "faces": stats.faces,
        "watertight": stats.watertight,
        "diagonal": field_.extent,
        "sdf_mean": float(distance.mean()),
        "sdf_max": float(distance.max()),
        "cell": cell,
    }
