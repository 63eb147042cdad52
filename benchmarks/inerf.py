"""iNeRF pose inversion: ``python benchmarks/inerf.py [SCENE ...] [--num N] [--hypotheses 1 9] [--sampling ...]``.

For each scene folder with a trained field (default: every shipped scene with one): draws targets
with the ``inerf`` preset, solves them per sampling strategy and number of hypotheses, and prints
the success rate (rotation < 5 degrees and camera centre < 0.05 scene units) and the median seconds
per target beside published figures (LLFF: iNeRF about 35%, Loc-NeRF 70-75%). Target with the
``inerf`` preset: at least 80% with several hypotheses, under 30 s median per target on this CPU.
"""

import argparse
from pathlib import Path

from rich.console import Console

from nerfdata.atomic import write_json_atomic
from nerfdata.bench.inerf import inerf_benchmark, inerf_table
from nerfdata.bench.shipped import shipped_scenes
from nerfdata.labels.inerf import SolverConfig

if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("scenes", nargs="*", type=Path, help="scene folders (default: shipped scenes with a field)")
    parser.add_argument("--num", type=int, default=50)
    parser.add_argument("--preset", default="inerf", choices=["inerf", "pinerf"])
    parser.add_argument("--sampling", nargs="+", default=["random", "interest-points", "interest-regions"])
    parser.add_argument("--hypotheses", nargs="+", type=int, default=[1, 9])
    parser.add_argument("--iters", type=int, default=300)
    parser.add_argument("--rays", type=int, default=2048)
    parser.add_argument("--num-steps", type=int, default=SolverConfig.num_steps)
    parser.add_argument("--json", type=Path, default=None, help="also write the rows as JSON here")
    args = parser.parse_args()
    rows = []
    for scene in args.scenes or shipped_scenes():
        rows += inerf_benchmark(
            scene, num=args.num, preset=args.preset, samplings=args.sampling, hypotheses=args.hypotheses,
            iters=args.iters, rays=args.rays, num_steps=args.num_steps,
        )
    Console(width=170).print(inerf_table(rows))
    if args.json is not None:
        write_json_atomic(args.json, rows)
