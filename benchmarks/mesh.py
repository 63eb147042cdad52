"""Mesh quality of the shipped fields: ``python benchmarks/mesh.py [--resolution R]`` (also in ``nerfdata bench``).

For each scene in scenes/ with a recipe and a trained field: a mesh is extracted with the default
settings of ``nerfdata mesh`` and compared with the scene's ground-truth meshes: Chamfer distance
(mean of both directions, 100k points sampled on each; scene units and % of the bounding-box
diagonal), normal consistency, vertex and face counts, watertightness, and the extraction's wall
time. The analytic demo field is compared with its exact surface instead (mean ``|sdf|``).
"""

import argparse
from pathlib import Path

from rich.console import Console

from nerfdata.bench.mesh import analytic_mesh_quality, mesh_quality
from nerfdata.bench.runner import mesh_table
from nerfdata.bench.shipped import SCENES, shipped_scenes

if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--resolution", type=int, default=256, help="grid cells along the longest side of each box")
    parser.add_argument("--scenes", type=Path, nargs="*", help="scene folders (default: every shipped scene)")
    args = parser.parse_args()
    rows = [mesh_quality(scene, args.resolution) for scene in (args.scenes or shipped_scenes())]
    if not args.scenes and (SCENES / "analytic_demo" / "field.json").exists():
        rows.append(analytic_mesh_quality(SCENES / "analytic_demo", args.resolution))
    console = Console(width=130)
    console.print(mesh_table(rows))
    for row in rows:
        if "stage_seconds" in row:
            stages = ", ".join(f"{stage} {seconds:.1f} s" for stage, seconds in row["stage_seconds"].items())
            console.print(f"{row['scene']}: threshold {row['threshold']:.4g} ({row['threshold_source']}); "
                          f"Chamfer sampling floor {row['chamfer_floor']:.5f}; {stages}")
