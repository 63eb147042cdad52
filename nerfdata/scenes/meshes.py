"""Meshes of a scene recipe, built with trimesh, coloured per vertex by their material's pattern.

Each object is tessellated finely enough that its pattern shows (edges shorter than a fifth of a
pattern cell), coloured in its own local frame (so patterns move with the object), then placed in
the world. Colours are interpolated across faces with barycentric weights when rendered.
"""

import math
from dataclasses import dataclass

import numpy as np
import torch
import trimesh

from nerfdata.fields.analytic import Material
from nerfdata.scenes.recipe import ObjectConfig, SceneRecipe

__all__ = ["SceneMeshes", "build_meshes", "object_mesh"]


@dataclass
class SceneMeshes:
    """The world-frame meshes of a scene with per-vertex colours, and the scene's box."""

    recipe: SceneRecipe
    meshes: list[trimesh.Trimesh]
    colors: list[np.ndarray]
    """Per mesh, ``(num_vertices, 3)`` float32 sRGB in [0, 1]."""
    aabb: np.ndarray
    """``(2, 3)``: the meshes' bounds grown by ``recipe.aabb_margin`` of their diagonal."""

    def combined(self) -> trimesh.Trimesh:
        """All objects in one mesh, with 8-bit vertex colours (for export)."""
        parts = []
        for mesh, colors in zip(self.meshes, self.colors, strict=True):
            part = mesh.copy()
            part.visual = trimesh.visual.ColorVisuals(part, vertex_colors=np.round(colors * 255).astype(np.uint8))
            parts.append(part)
        return trimesh.util.concatenate(parts)


def _cup(radius: float, height: float, wall: float) -> trimesh.Trimesh:
    """An open-topped vessel: the profile goes up the outside, over the rim, down the inside."""
    r_in, floor = radius - wall, wall
    profile = [
        [0.0, 0.0], [radius, 0.0], [radius, height], [r_in, height], [r_in, floor], [0.0, floor],
    ]
    mesh = trimesh.creation.revolve(profile, sections=96)
    mesh.apply_transform(trimesh.transformations.rotation_matrix(-math.pi / 2, [1, 0, 0]))  # profile y -> world y
    mesh.apply_translation([0.0, -height / 2, 0.0])  # centred like the other shapes
    return mesh


def _shape(config: ObjectConfig) -> trimesh.Trimesh:
    """The object's mesh in its local frame (y up, centred at the origin)."""
    y_up = trimesh.transformations.rotation_matrix(-math.pi / 2, [1, 0, 0])  # trimesh's z axis -> y
    if config.shape == "box":
        return trimesh.creation.box(extents=config.extents)
    if config.shape == "sphere":
        return trimesh.creation.icosphere(subdivisions=5, radius=config.radius)
    if config.shape == "cylinder":
        return trimesh.creation.cylinder(radius=config.radius, height=config.height, sections=96, transform=y_up)
    if config.shape == "capsule":
        mesh = trimesh.creation.capsule(radius=config.radius, height=config.height, count=[64, 32])
        mesh.apply_translation([0.0, 0.0, -config.height / 2])
        return mesh.apply_transform(y_up)
    if config.shape == "cone":
        mesh = trimesh.creation.cone(radius=config.radius, height=config.height, sections=96)
        mesh.apply_translation([0.0, 0.0, -config.height / 2])
        return mesh.apply_transform(y_up)
    if config.shape == "torus":
        return trimesh.creation.torus(
            config.radius, config.thickness, major_sections=96, minor_sections=32, transform=y_up
        )
    return _cup(config.radius, config.height, config.thickness)


def _pose(config: ObjectConfig) -> np.ndarray:
    rx, ry, rz = (math.radians(a) for a in config.rotation_deg)
    rotation = trimesh.transformations.euler_matrix(rx, ry, rz, axes="sxyz")
    rotation[:3, 3] = config.position
    return rotation


def object_mesh(config: ObjectConfig) -> tuple[trimesh.Trimesh, np.ndarray]:
    """World-frame mesh of one object and its per-vertex colours."""
    mesh = _shape(config)
    material = Material(config.material.color, config.material.pattern, config.material.frequency)
    if material.pattern != "solid":
        cell = 1.0 / max(material.frequency, 1e-6)
        vertices, faces = trimesh.remesh.subdivide_to_size(mesh.vertices, mesh.faces, max_edge=cell / 5, max_iter=12)
        mesh = trimesh.Trimesh(vertices, faces, process=True)
    colors = material.shade(torch.as_tensor(np.asarray(mesh.vertices), dtype=torch.float64)).numpy()
    mesh.apply_transform(_pose(config))
    if mesh.is_watertight and mesh.volume < 0:
        mesh.invert()  # outward normals
    return mesh, np.clip(colors, 0.0, 1.0).astype(np.float32)


def build_meshes(recipe: SceneRecipe) -> SceneMeshes:
    """Build every object of ``recipe`` and the scene box around them."""
    meshes, colors = zip(*(object_mesh(obj) for obj in recipe.objects), strict=True)
    bounds = np.array([np.min([m.bounds[0] for m in meshes], axis=0), np.max([m.bounds[1] for m in meshes], axis=0)])
    margin = recipe.aabb_margin * float(np.linalg.norm(bounds[1] - bounds[0]))
    aabb = np.array([bounds[0] - margin, bounds[1] + margin])
    return SceneMeshes(recipe, list(meshes), list(colors), aabb)
