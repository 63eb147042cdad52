"""``nerfdata mesh``: extract a coloured, cleaned mesh from a trained field and write it.

The flow: load the field (and its occupancy grid) -> extract (:func:`nerfdata.labels.mesh.extract_mesh`:
threshold, density grid, marching cubes, clean-up, vertex colours) -> write PLY, OBJ or GLB (by the
output's extension) atomically -> a summary of what was made, for the CLI to print.
"""

from dataclasses import dataclass, field
from pathlib import Path

from nerfdata.errors import ConfigError
from nerfdata.fields.loading import load_field
from nerfdata.labels.mesh import CleanupConfig, ExtractedMesh, MeshConfig, MeshStats, extract_mesh, mesh_stats
from nerfdata.writers.mesh import MESH_FORMATS, write_mesh

__all__ = ["MeshJobConfig", "MeshJobResult", "describe", "run_mesh"]


@dataclass(frozen=True)
class MeshJobConfig:
    """A mesh job: which field, how to extract and clean, where to write."""

    field: Path
    """Checkpoint folder (field.json + field.safetensors), or its .safetensors / .json file."""
    out: Path = Path("mesh.ply")
    """Output mesh; the extension picks the format: .ply (binary, vertex colours), .obj or .glb."""
    extraction: MeshConfig = field(default_factory=MeshConfig)
    cleanup: CleanupConfig = field(default_factory=CleanupConfig)

    def __post_init__(self) -> None:
        # Checked here so that a typo fails at once, not after minutes of extraction.
        suffix = Path(self.out).suffix
        if suffix.lower() not in MESH_FORMATS:
            raise ConfigError(f"out: {self.out} has unknown mesh format {suffix!r}; use one of {', '.join(MESH_FORMATS)}")


@dataclass
class MeshJobResult:
    """What :func:`run_mesh` wrote."""

    path: Path
    extracted: ExtractedMesh
    stats: MeshStats


def run_mesh(config: MeshJobConfig) -> MeshJobResult:
    """Extract the mesh of ``config.field`` and write it to ``config.out``.

    Raises:
        NerfDataError: a bad checkpoint, a grid too large for ``max_memory_gb``, or no surface at the threshold.
    """
    loaded = load_field(config.field)
    extracted = extract_mesh(loaded.field, config.extraction, loaded.occupancy, config.cleanup)
    path = write_mesh(extracted.mesh, config.out)
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
        f"written to {result.path}",
    ]
