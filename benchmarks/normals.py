"""Normals candidates side by side: ``python benchmarks/normals.py [SCENE ...] [--views 5]``.

The choices behind ``labels.normals`` (see nerfdata/labels/normals.py), on the first ``--views`` test
views of each shipped scene against exact ground truth (surface pixels; a pixel with no normal counts
as 90 degrees): the steps of the field-pass modes, in cells of the finest hash-grid level, and ray
casting the field's mesh as extracted by default (256^3), Taubin-smoothed (trimesh, 10 and 50
iterations) and at 384^3. ``benchmarks/quality.py`` measures every selectable mode at its default.
"""

import argparse
import time
from dataclasses import replace

import numpy as np
import trimesh
from rich.console import Console
from rich.table import Table

from nerfdata.bench.quality import normal_errors, scene_quality
from nerfdata.bench.shipped import shipped_scenes
from nerfdata.fields.loading import load_field
from nerfdata.labels.mesh import MeshConfig, extract_mesh
from nerfdata.scenes.dataset import scene_cameras
from nerfdata.scenes.groundtruth import MeshRaycaster
from nerfdata.scenes.meshes import build_meshes
from nerfdata.scenes.recipe import load_recipe


def _mesh_rows(scene, views: int) -> list[dict]:
    recipe, loaded = load_recipe(scene), load_field(scene)
    truth_caster = MeshRaycaster(build_meshes(recipe))
    cameras = scene_cameras(recipe)["test"][:views]
    rows = []
    for resolution, iterations in ((256, 0), (256, 10), (256, 50), (384, 0)):
        start = time.perf_counter()
        mesh = extract_mesh(loaded.field, replace(MeshConfig(), resolution=resolution), loaded.occupancy).mesh
        if iterations:
            mesh = trimesh.smoothing.filter_taubin(mesh.copy(), iterations=iterations)
        seconds = time.perf_counter() - start
        caster = MeshRaycaster.from_meshes([mesh], smooth_normals=True)
        angles = []
        for camera in cameras:
            truth = truth_caster.render(camera, recipe.light)
            hits = caster.cast_rays(camera.rays())
            h, w = truth.mask.shape
            both = truth.mask & hits.hit.reshape(h, w)
            angles.append(normal_errors(hits.normal.reshape(h, w, 3), truth.normal, both))
        every = np.concatenate(angles)
        label = f"mesh {resolution}^3" + (f", Taubin x{iterations}" if iterations else "")
        rows.append({"scene": scene.name, "candidate": label, "mean": every.mean(), "median": np.median(every),
                     "under5": np.mean(every < 5.0), "seconds": seconds, "unit": "s to make"})
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("scenes", nargs="*", default=["tabletop", "mug"])
    parser.add_argument("--views", type=int, default=5)
    args = parser.parse_args()
    rows = []
    for scene in (s for s in shipped_scenes() if s.name in args.scenes):
        sweep = [("smooth-gradient", c) for c in (1.0, 2.0, 4.0, 8.0)] + [("transmittance", c) for c in (1.0, 2.0, 4.0)]
        for mode, cells in sweep:
            figures = scene_quality(scene, args.views, (mode,), cells=cells)["normals"][mode]
            rows.append({"scene": scene.name, "candidate": f"{mode}, {cells:g} cells", "mean": figures["mean_deg"],
                         "median": figures["median_deg"], "under5": figures["under_5_deg"],
                         "seconds": figures["seconds_per_view"], "unit": "s / view"})
        rows += _mesh_rows(scene, args.views)
    table = Table(title=f"normals candidates against exact ground truth (first {args.views} test views)")
    for column in ("scene", "candidate", "mean", "median", "under 5 deg", "time"):
        table.add_column(column, justify="left" if column in ("scene", "candidate") else "right")
    for row in rows:
        table.add_row(row["scene"], row["candidate"], f"{row['mean']:.1f} deg", f"{row['median']:.1f} deg",
                      f"{100 * row['under5']:.0f}%", f"{row['seconds']:.2f} {row['unit']}")
    Console(width=170).print(table)


if __name__ == "__main__":
    main()
