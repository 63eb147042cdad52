"""Quality report of the shipped fields: ``python benchmarks/quality.py [--views N] [--modes ...]`` (also part
of ``nerfdata bench``).

For each scene in scenes/ with a trained field: PSNR, depth error, mask IoU and, for every normals mode
(``labels.normals``, and ``labels.geometry: mesh``), the mean, median and share under 5 degrees of the angle
to the true normal, on the scene's test views, against exact ground truth ray cast from its meshes.
"""

import argparse

from rich.console import Console

from nerfdata.bench.quality import NORMAL_COLUMNS, scene_quality
from nerfdata.bench.runner import normals_table, quality_table
from nerfdata.bench.shipped import shipped_scenes

if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("scenes", nargs="*", help="scene names (default: every shipped scene)")
    parser.add_argument("--views", type=int, default=None, help="test views per scene (default: all)")
    parser.add_argument("--modes", nargs="+", default=list(NORMAL_COLUMNS), choices=NORMAL_COLUMNS)
    args = parser.parse_args()
    scenes = [s for s in shipped_scenes() if not args.scenes or s.name in args.scenes]
    rows = [scene_quality(scene, args.views, args.modes) for scene in scenes]
    console = Console(width=170)
    console.print(quality_table(rows))
    console.print(normals_table(rows))
