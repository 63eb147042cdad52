"""Mesh files: PLY, OBJ or GLB by the output's extension, written atomically."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from nerfdata.atomic import atomic_path
from nerfdata.errors import ConfigError

if TYPE_CHECKING:  # the meshes come built; writing them needs no trimesh import here (0.6 s)
    import trimesh

__all__ = ["MESH_FORMATS", "write_mesh"]

MESH_FORMATS = {".ply": "ply", ".obj": "obj", ".glb": "glb"}
"""File extensions :func:`write_mesh` understands and the trimesh format written for each."""


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

