"""Correspondence quality and speed: ``python benchmarks/correspondences.py [SCENE ...] [--pairs N] [--per-pair M]``.

For each scene folder with a trained field (default: every shipped scene with one, plus the analytic
demo): renders its test views from the field, matches view pairs in each mode (distribution, median,
expected) and prints EPE, PCK@1/3/5 px, occluded-but-valid share, recall and pairs per second,
against exact ground truth ray cast from the scene's meshes. Target on tabletop: PCK@3 >= 0.95 and
occluded-but-valid < 1%.
"""

import argparse
from pathlib import Path

from rich.console import Console

from nerfdata.atomic import write_json_atomic
from nerfdata.bench.correspondences import correspondence_quality, correspondence_table
from nerfdata.bench.shipped import SCENES, shipped_scenes

if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("scenes", nargs="*", type=Path, help="scene folders (default: shipped scenes with a field)")
    parser.add_argument("--pairs", type=int, default=8)
    parser.add_argument("--per-pair", type=int, default=2048)
    parser.add_argument("--views", type=int, default=None, help="use only the first N test views")
    parser.add_argument("--json", type=Path, default=None, help="also write the rows as JSON here")
    args = parser.parse_args()
    scenes = args.scenes or [*shipped_scenes(), SCENES / "analytic_demo"]
    console = Console(width=170)
    rows = []
    for scene in scenes:
        rows += correspondence_quality(scene, pairs=args.pairs, per_pair=args.per_pair, views=args.views)
    console.print(correspondence_table(rows))
    if args.json is not None:
        write_json_atomic(args.json, rows)
