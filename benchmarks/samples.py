"""Samples per ray on the shipped fields: ``python benchmarks/samples.py [scenes] [--views N] [--repeats R]``.

Renders each scene's test views with the old marching settings and the candidates side by side in
one run (see ``nerfdata.bench.samples``) and prints samples per ray and per hit ray (accumulation > 0.5
in the baseline), rays/s, PSNR against the baseline and against exact ground truth, the largest 8-bit
pixel change and the relative change of median depth. ``--json PATH`` also writes the rows.
"""

import argparse
from pathlib import Path

from rich.console import Console

from nerfdata.atomic import write_json_atomic
from nerfdata.bench.runner import samples_table
from nerfdata.bench.samples import default_settings, samples_benchmark
from nerfdata.bench.shipped import shipped_scenes

if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("scenes", nargs="*", help="scene names (default: every shipped scene)")
    parser.add_argument("--views", type=int, default=None, help="test views per scene (default: all)")
    parser.add_argument("--repeats", type=int, default=1, help="timed renders per setting (median)")
    parser.add_argument("--steps", type=int, nargs="+", default=[1024, 512], help="step counts of the candidates")
    parser.add_argument("--json", type=Path, default=None, help="also write the rows here")
    args = parser.parse_args()
    scenes = [s for s in shipped_scenes() if not args.scenes or s.name in args.scenes]
    console = Console(width=200)
    rows = []
    for scene in scenes:
        scene_rows = samples_benchmark(scene, default_settings(args.steps), args.views, args.repeats)
        console.print(samples_table(scene_rows))
        rows += scene_rows
    if args.json is not None:
        write_json_atomic(args.json, rows)
