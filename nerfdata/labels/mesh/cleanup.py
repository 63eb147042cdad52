"""Clean-up of extracted meshes: floating components, small holes, decimation, and a summary.

Marching cubes on a trained field leaves small floating blobs (haze the field never cleared)
and, where the surface was seen poorly, small holes. :func:`clean_mesh` drops connected components
whose area is below a fraction of the largest one (trimesh's face adjacency), optionally fills holes
up to a radius (open3d's ``fill_holes``) and optionally decimates to a face count (open3d's quadric
decimation, Garland and Heckbert). :func:`mesh_stats` is what the CLI reports.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
from jaxtyping import Float, Int

from nerfdata.errors import ConfigError

if TYPE_CHECKING:  # imported where called: trimesh takes 0.6 s to import, which a job without meshes never pays
    import trimesh

__all__ = [
    "CleanupConfig",
    "MeshStats",
    "clean_mesh",
    "component_areas",
    "decimate",
    "drop_collapsed_faces",
    "fill_small_holes",
    "mesh_stats",
    "remove_small_components",
]


@dataclass(frozen=True)
class CleanupConfig:
    """Clean-up of an extracted mesh: floating components, holes, decimation."""

    min_component_fraction: float = 0.01
    """Drop connected components whose area is below this fraction of the largest one's (0 keeps all)."""
    fill_holes: float = 0.0
    """Fill holes whose radius is at most this (scene units); 0 leaves holes open."""
    target_faces: int = 0
    """Decimate to about this many faces (quadric error); 0 keeps every face."""

    def __post_init__(self) -> None:
        if not 0.0 <= self.min_component_fraction <= 1.0:
            raise ConfigError(f"min_component_fraction must be in [0, 1], got {self.min_component_fraction}")
        if not self.fill_holes >= 0.0:
            raise ConfigError(f"fill_holes (largest hole radius) must be >= 0, got {self.fill_holes}")
        if self.target_faces < 0:
            raise ConfigError(f"target_faces must be >= 0 (0: no decimation), got {self.target_faces}")


@dataclass(frozen=True)
class MeshStats:
    """Summary of a mesh, as reported to the user."""

    vertices: int
    faces: int
    components: int
    watertight: bool
    area: float
    """Surface area, scene units squared."""
    volume: float | None
    """Enclosed volume (scene units cubed) when watertight, else None."""


def component_areas(mesh: trimesh.Trimesh) -> tuple[Int[np.ndarray, " f"], Float[np.ndarray, " c"]]:
    """Connected-component label of every face (faces sharing an edge are connected), and each component's area.

    Example:
        >>> import trimesh
        >>> shifted = trimesh.creation.box().apply_translation([3, 0, 0])
        >>> two = trimesh.util.concatenate([trimesh.creation.box(), shifted])
        >>> labels, areas = component_areas(two)
        >>> len(areas), areas.round(3).tolist()
        (2, [6.0, 6.0])
    """
    import trimesh

    labels = trimesh.graph.connected_component_labels(mesh.face_adjacency, node_count=len(mesh.faces))
    areas = np.bincount(labels, weights=mesh.area_faces, minlength=int(labels.max(initial=-1)) + 1)
    return labels.astype(np.int64), areas.astype(np.float64)


def remove_small_components(mesh: trimesh.Trimesh, fraction: float) -> trimesh.Trimesh:
    """A copy of ``mesh`` without components whose area is below ``fraction`` of the largest one's.

    Example:
        >>> import trimesh
        >>> big = trimesh.creation.box()
        >>> small = trimesh.creation.box(extents=(0.1, 0.1, 0.1)).apply_translation([3, 0, 0])
        >>> len(remove_small_components(trimesh.util.concatenate([big, small]), 0.01).faces)
        12
    """
    if fraction <= 0 or len(mesh.faces) == 0:
        return mesh.copy()
    labels, areas = component_areas(mesh)
    keep = areas >= fraction * areas.max()
    cleaned = mesh.copy()
    cleaned.update_faces(keep[labels])
    cleaned.remove_unreferenced_vertices()
    return cleaned


def fill_small_holes(mesh: trimesh.Trimesh, max_radius: float) -> trimesh.Trimesh:
    """``mesh`` with holes of radius up to ``max_radius`` (scene units) triangulated (open3d), outward again."""
    import open3d as o3d  # heavy; only imported when asked to fill holes
    import trimesh

    source = o3d.t.geometry.TriangleMesh(
        o3d.core.Tensor(np.asarray(mesh.vertices, dtype=np.float64)),
        o3d.core.Tensor(np.asarray(mesh.faces, dtype=np.int64)),
    )
    filled = source.fill_holes(hole_size=float(max_radius))
    result = trimesh.Trimesh(filled.vertex.positions.numpy(), filled.triangle.indices.numpy(), process=True)
    # The new triangles' winding is not guaranteed to agree with their neighbours'.
    trimesh.repair.fix_normals(result, multibody=True)
    return result


def decimate(mesh: trimesh.Trimesh, target_faces: int) -> trimesh.Trimesh:
    """``mesh`` simplified to about ``target_faces`` faces by quadric error decimation (open3d)."""
    if target_faces <= 0 or target_faces >= len(mesh.faces):
        return mesh.copy()
    import open3d as o3d  # heavy; only imported when asked to decimate
    import trimesh

    source = o3d.geometry.TriangleMesh(
        o3d.utility.Vector3dVector(np.asarray(mesh.vertices, dtype=np.float64)),
        o3d.utility.Vector3iVector(np.asarray(mesh.faces, dtype=np.int32)),
    )
    simplified = source.simplify_quadric_decimation(int(target_faces))
    result = trimesh.Trimesh(np.asarray(simplified.vertices), np.asarray(simplified.triangles), process=True)
    return drop_collapsed_faces(result)


def drop_collapsed_faces(mesh: trimesh.Trimesh) -> trimesh.Trimesh:
    """``mesh`` without faces that use a vertex twice (and without unreferenced vertices), in place.

    Only collapsed faces go: removing a thin but proper triangle (zero area, three distinct
    vertices) would open a hole, while a collapsed one borders nothing.

    Example:
        >>> import trimesh
        >>> mesh = trimesh.Trimesh([[0, 0, 0], [1, 0, 0], [0, 1, 0]], [[0, 1, 2], [0, 1, 1]], process=False)
        >>> len(drop_collapsed_faces(mesh).faces)
        1
    """
    faces = np.asarray(mesh.faces)
    distinct = (faces[:, 0] != faces[:, 1]) & (faces[:, 1] != faces[:, 2]) & (faces[:, 0] != faces[:, 2])
    mesh.update_faces(distinct)
    mesh.remove_unreferenced_vertices()
    return mesh


def clean_mesh(mesh: trimesh.Trimesh, config: CleanupConfig) -> trimesh.Trimesh:
    """Drop small components, then fill holes and decimate as ``config`` asks (in that order)."""
    cleaned = remove_small_components(mesh, config.min_component_fraction)
    if config.fill_holes > 0:
        cleaned = fill_small_holes(cleaned, config.fill_holes)
    return decimate(cleaned, config.target_faces)


def mesh_stats(mesh: trimesh.Trimesh) -> MeshStats:
    """Counts, watertightness, area and (when closed) volume of ``mesh``.

    Example:
        >>> import trimesh
        >>> mesh_stats(trimesh.creation.box())
        MeshStats(vertices=8, faces=12, components=1, watertight=True, area=6.0, volume=1.0)
    """
    watertight = bool(mesh.is_watertight)
    components = len(component_areas(mesh)[1]) if len(mesh.faces) else 0
    return MeshStats(
        vertices=len(mesh.vertices),
        faces=len(mesh.faces),
        components=components,
        watertight=watertight,
        area=round(float(mesh.area), 9),
        volume=round(float(mesh.volume), 9) if watertight else None,
    )
