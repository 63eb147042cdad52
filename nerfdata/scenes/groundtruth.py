"""Exact ground truth by ray casting meshes (open3d ``RaycastingScene``).

For every pixel-centre ray: the first hit's distance (range) and z-depth, the hit triangle's normal
(world frame, outward), the object id (1-based; 0 = background), a mask, and the colour: vertex
colours interpolated with the hit's barycentric coordinates, shaded with a Lambert term.

The same caster serves any triangle meshes (:meth:`MeshRaycaster.from_meshes`), e.g. a mesh
extracted from a field for mesh-based render labels; there, normals can be interpolated from the
vertex normals, since a marching-cubes mesh approximates a smooth surface with small flat facets.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from nerfdata.cameras import Camera, Rays
from nerfdata.scenes.recipe import LightConfig

if TYPE_CHECKING:  # the ray caster reads meshes; building them (trimesh, 0.6 s to import) is another job's
    import trimesh

    from nerfdata.scenes.meshes import SceneMeshes

__all__ = ["GroundTruthImage", "MeshHits", "MeshRaycaster"]


@dataclass
class MeshHits:
    """First hits of a batch of rays; arrays of length ``n`` (misses: ``range = inf``, id 0)."""

    range: np.ndarray
    object_id: np.ndarray
    normal: np.ndarray
    albedo: np.ndarray

    @property
    def hit(self) -> np.ndarray:
        return self.object_id > 0


@dataclass
class GroundTruthImage:
    """Exact per-pixel labels of one camera, ``(H, W, ...)`` NumPy arrays."""

    rgb: np.ndarray
    """float32 sRGB in [0, 1], Lambert-shaded; ``background`` where nothing is hit."""
    depth: np.ndarray
    """float32 z-depth along the optical axis; 0 = no surface."""
    range: np.ndarray
    """float32 distance along the ray; 0 = no surface."""
    normal: np.ndarray
    """float32 world-frame unit normals; 0 = no surface."""
    object_id: np.ndarray
    """uint16 object index + 1; 0 = background."""

    @property
    def mask(self) -> np.ndarray:
        return self.object_id > 0


class MeshRaycaster:
    """Casts rays against a scene's meshes. Holds the open3d acceleration structure."""

    def __init__(self, scene: SceneMeshes) -> None:
        self._build(scene.meshes, scene.colors, smooth_normals=False)

    @classmethod
    def from_meshes(
        cls, meshes: Sequence[trimesh.Trimesh], colors: Sequence[np.ndarray] | None = None, smooth_normals: bool = False
    ) -> "MeshRaycaster":
        """A caster over any world-frame meshes.

        Args:
            meshes: Triangle meshes, faces wound outward; object ids follow their order.
            colors: Per mesh, ``(num_vertices, 3)`` float colours in [0, 1]; default: the meshes'
                own vertex colours, or mid grey.
            smooth_normals: Hit normals interpolated from vertex normals (barycentric) instead of
                the hit triangle's normal.
        """
        if colors is None:
            colors = [_vertex_colors(mesh) for mesh in meshes]
        caster = cls.__new__(cls)
        caster._build(meshes, colors, smooth_normals)
        return caster

    def _build(self, meshes: Sequence[trimesh.Trimesh], colors: Sequence[np.ndarray], smooth_normals: bool) -> None:
        import open3d as o3d  # heavy; imported only where ray casting is needed

        self._source = (list(meshes), list(colors), smooth_normals)
        self._scene = o3d.t.geometry.RaycastingScene()
        self._faces: list[np.ndarray] = []
        self._colors: list[np.ndarray] = []
        self._vertex_normals: list[np.ndarray] | None = [] if smooth_normals else None
        for mesh, mesh_colors in zip(meshes, colors, strict=True):
            geometry_id = self._scene.add_triangles(
                o3d.core.Tensor(np.asarray(mesh.vertices, dtype=np.float32)),
                o3d.core.Tensor(np.asarray(mesh.faces, dtype=np.uint32)),
            )
            assert geometry_id == len(self._faces)  # ids are assigned in order
            self._faces.append(np.asarray(mesh.faces))
            self._colors.append(mesh_colors)
            if self._vertex_normals is not None:
                self._vertex_normals.append(np.asarray(mesh.vertex_normals, dtype=np.float32))
        self._o3d = o3d

    def __reduce__(self) -> tuple[Any, tuple[Any, ...]]:
        """Pickled as its meshes (open3d's structure is not picklable): rebuilt where it is unpickled."""
        return _raycaster, self._source

    def cast(self, origins: np.ndarray, directions: np.ndarray) -> MeshHits:
        """First hits of rays ``(n, 3)`` with unit ``directions``."""
        rays = np.concatenate([origins, directions], axis=1).astype(np.float32)
        result = self._scene.cast_rays(self._o3d.core.Tensor(rays))
        t_hit = result["t_hit"].numpy().astype(np.float64)
        geometry = result["geometry_ids"].numpy().astype(np.int64)
        hit = np.isfinite(t_hit) & (geometry != self._scene.INVALID_ID)
        normals = result["primitive_normals"].numpy().astype(np.float32)
        primitive = result["primitive_ids"].numpy().astype(np.int64)
        uv = result["primitive_uvs"].numpy().astype(np.float32)
        albedo = np.zeros((len(rays), 3), dtype=np.float32)
        object_id = np.zeros(len(rays), dtype=np.int64)
        for index in np.unique(geometry[hit]):
            rows = hit & (geometry == index)
            corners = self._faces[index][primitive[rows]]  # (m, 3) vertex indices
            weights = np.stack([1.0 - uv[rows, 0] - uv[rows, 1], uv[rows, 0], uv[rows, 1]], axis=-1)
            albedo[rows] = np.einsum("mk,mkc->mc", weights, self._colors[index][corners])
            object_id[rows] = index + 1
            if self._vertex_normals is not None:
                smooth = np.einsum("mk,mkc->mc", weights, self._vertex_normals[index][corners])
                normals[rows] = smooth / np.maximum(np.linalg.norm(smooth, axis=-1, keepdims=True), 1e-12)
        normals[~hit] = 0.0
        return MeshHits(range=np.where(hit, t_hit, np.inf), object_id=object_id, normal=normals, albedo=albedo)

    def cast_rays(self, rays: Rays) -> MeshHits:
        """First hits of :class:`~nerfdata.cameras.Rays` (see :meth:`cast`)."""
        return self.cast(rays.origins.numpy(), rays.directions.numpy())

    def render(self, camera: Camera, light: LightConfig, background: float = 1.0) -> GroundTruthImage:
        """Every layer of ``camera``'s image, exactly."""
        rays = camera.rays()
        hits = self.cast_rays(rays)
        h, w = camera.intrinsics.height, camera.intrinsics.width
        to_light = np.asarray(light.direction, dtype=np.float32)
        to_light = to_light / np.linalg.norm(to_light)
        shade = light.ambient + (1.0 - light.ambient) * np.clip(hits.normal @ to_light, 0.0, None)
        rgb = np.where(hits.hit[:, None], hits.albedo * shade[:, None], background)
        ranges = np.where(hits.hit, hits.range, 0.0)
        depth = rays.depth_z(ranges)
        return GroundTruthImage(
            rgb=rgb.reshape(h, w, 3).astype(np.float32),
            depth=depth.reshape(h, w).astype(np.float32),
            range=ranges.reshape(h, w).astype(np.float32),
            normal=hits.normal.reshape(h, w, 3),
            object_id=hits.object_id.reshape(h, w).astype(np.uint16),
        )



def _vertex_colors(mesh: trimesh.Trimesh) -> np.ndarray:
    """A mesh's vertex colours as float ``(n, 3)`` in [0, 1]; mid grey when it has none."""
    visual = mesh.visual
    if getattr(visual, "kind", None) == "vertex":
        return np.asarray(visual.vertex_colors[:, :3], dtype=np.float32) / 255.0
    return np.full((len(mesh.vertices), 3), 0.5, dtype=np.float32)


def _raycaster(meshes: list[trimesh.Trimesh], colors: list[np.ndarray], smooth_normals: bool) -> MeshRaycaster:
    """A pickled :class:`MeshRaycaster`, rebuilt (a module function: pickled by name)."""
    return MeshRaycaster.from_meshes(meshes, colors, smooth_normals)
