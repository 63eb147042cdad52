"""``nerfdata mesh``: extract a coloured, cleaned mesh from a trained field and write it.

The flow: load the field (and its occupancy grid) -> extract (:func:`nerfdata.labels.mesh.extract_mesh`:
threshold, density grid, marching cubes, clean-up, vertex colours) -> write PLY, OBJ or GLB (by the
output's extension) atomically, then its record ``FILE.json`` beside it -> a summary of what was made,
for the CLI to print.

The record (``mesh.ply.json`` for ``mesh.ply``: format, field, threshold, the mesh's sha256) is how
nerfdata knows a mesh file is its own: an existing ``--out`` is replaced only with ``overwrite`` and
only when its record's checksum matches the file (a mesh edited since, or any other file, is the
user's and is refused). A record works for every format (PLY, OBJ, GLB) and proves the file is
unchanged, where a comment in a PLY header would survive a tool that edits the mesh and keeps the header.
"""

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from nerfdata.atomic import sha256_file, write_json_atomic
from nerfdata.config import to_dict
from nerfdata.device import DeviceName, resolve_device
from nerfdata.errors import ConfigError, NerfDataError
from nerfdata.fields.loading import load_field
from nerfdata.labels.mesh import CleanupConfig, ExtractedMesh, MeshConfig, MeshStats, extract_mesh, mesh_stats
from nerfdata.version import __version__
from nerfdata.writers.mesh import MESH_FORMATS, write_mesh
from nerfdata.writers.output_folder import check_output_file

__all__ = [
    "MESH_RECORD_KIND",
    "MeshJobConfig",
    "MeshJobResult",
    "check_mesh_out",
    "describe",
    "mesh_record_path",
    "run_mesh",
]

MESH_RECORD_KIND = "mesh"
"""The ``kind`` of a mesh's record file."""


@dataclass(frozen=True)
class MeshJobConfig:
    """A mesh job: which field, how to extract and clean, where to write."""

    field: Path
    """Checkpoint folder (field.json + field.safetensors), or its .safetensors / .json file."""
    out: Path = Path("mesh.ply")
    """Output mesh; the extension picks the format: .ply (binary, vertex colours), .obj or .glb."""
    extraction: MeshConfig = field(default_factory=MeshConfig)
    cleanup: CleanupConfig = field(default_factory=CleanupConfig)
    overwrite: bool = False
    """Replace an existing --out, if nerfdata wrote it (its FILE.json record matches it); never another file."""
    device: DeviceName = "auto"
    """Where the field and its density grid are evaluated: auto (CUDA when present), cpu or cuda."""

    def __post_init__(self) -> None:
        # Checked here so that a typo fails at once, not after minutes of extraction.
        suffix = Path(self.out).suffix
        if suffix.lower() not in MESH_FORMATS:
            raise ConfigError(
                f"out: {self.out} has unknown mesh format {suffix!r}; use one of {', '.join(MESH_FORMATS)}"
            )


@dataclass
class MeshJobResult:
    """What :func:`run_mesh` wrote."""

    path: Path
    extracted: ExtractedMesh
    stats: MeshStats


def mesh_record_path(path: str | Path) -> Path:
    """The record beside a mesh file: ``mesh.ply`` -> ``mesh.ply.json``."""
    path = Path(path)
    return path.with_name(path.name + ".json")


def _read_record(path: Path) -> dict[str, Any] | None:
    """A mesh record nerfdata wrote at ``path``, or None (no file there, or not one of ours)."""
    try:
        record = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, ValueError):
        return None
    ours = isinstance(record, dict) and record.get("kind") == MESH_RECORD_KIND and "nerfdata_version" in record
    return record if ours else None


def check_mesh_out(out: Path, overwrite: bool) -> None:
    """Refuse, before any extraction, an output that cannot be written or is not ours to replace.

    Raises:
        NerfDataError: ``out`` is a folder, under a file or in a place that cannot be written; it exists
            and ``overwrite`` is not given, or it is not the mesh its record describes; its record's
            path holds a file that is not a nerfdata mesh record.
    """
    check_output_file(out)
    record_path = mesh_record_path(out)
    record = _read_record(record_path)
    if record_path.exists() and record is None:
        raise NerfDataError(f"--out: {record_path} (where the mesh's record goes) is not a nerfdata mesh record; "
                            "choose another --out")
    if not out.exists():
        return
    if not overwrite:
        raise NerfDataError(f"--out: {out} exists; choose another --out, or pass --overwrite to replace a mesh "
                            "nerfdata wrote")
    ours = record is not None and record.get("file") == out.name and record.get("sha256") == sha256_file(out)
    if not ours:
        raise NerfDataError(f"--out: {out} was not written by nerfdata, or was changed since (its record "
                            f"{record_path.name} does not match it); nerfdata never replaces it: choose another --out")


def run_mesh(config: MeshJobConfig) -> MeshJobResult:
    """Extract the mesh of ``config.field`` and write it to ``config.out``, with its record beside it.

    Raises:
        NerfDataError: a bad checkpoint, an output that cannot be written or is not ours to replace,
            a grid too large for ``max_memory_gb``, or no surface at the threshold.
    """
    out = Path(config.out)
    device = resolve_device(config.device)
    check_mesh_out(out, config.overwrite)
    loaded = load_field(config.field, device)
    extracted = extract_mesh(loaded.field, config.extraction, loaded.occupancy, config.cleanup)
    path = write_mesh(extracted.mesh, out)
    write_json_atomic(mesh_record_path(path), {
        "nerfdata_version": __version__,
        "kind": MESH_RECORD_KIND,
        "file": path.name,
        "sha256": sha256_file(path),
        "field": {"path": str(loaded.json_path), "sha256": loaded.sha256, "type": loaded.field.field_type},
        "threshold": extracted.threshold,
        "device": str(device),  # where it was computed; not part of its config (like the executor of a render)
        "config": {k: v for k, v in to_dict(config).items() if k not in ("field", "out", "overwrite", "device")},
    })
    return MeshJobResult(path, extracted, mesh_stats(extracted.mesh))


def describe(result: MeshJobResult) -> list[str]:
    """The lines the CLI prints: threshold used, grid, mesh summary, timings."""
    extracted, stats = result.extracted, result.stats
    how = {
        "default": "default: 50 per longest box side",
        "auto": "auto: median density where rendered rays become half opaque",
        "given": "given",
    }[extracted.threshold_source]
    nx, ny, nz = extracted.grid_shape
    closed = "watertight" if stats.watertight else "not watertight"
    volume = f", volume {stats.volume:.6g}" if stats.volume is not None else ""
    times = ", ".join(f"{stage.replace('_', ' ')} {seconds:.1f} s" for stage, seconds in extracted.seconds.items())
    return [
        f"threshold: density {extracted.threshold:.6g} per scene unit ({how})",
        f"grid: {nx}x{ny}x{nz} points, field evaluated at {100 * extracted.evaluated_fraction:.0f}% "
        "(the rest is empty space)",
        f"mesh: {stats.vertices:,} vertices, {stats.faces:,} faces, {stats.components} component"
        f"{'s' if stats.components != 1 else ''}, {closed}, area {stats.area:.6g}{volume} (scene units)",
        f"time: {times}",
        f"written to {result.path} (its record: {mesh_record_path(result.path).name})",
    ]
