"""Ray's overhead: ``python benchmarks/ray_overhead.py [--views N] [--workers 1 2] [--shard-size 1] [--repeats R]``.

Renders the README's demo job (configs/demo.yaml: tabletop, 24 views at 256x256, every layer) on the
local executor, then on a local Ray instance with 1 and 2 workers (every process one thread), each
cold (new workers: a process, torch, the field) and warm (the same workers again), checks that every
dataset is byte-identical to the local one, and prints seconds per job and per view with their ratio
to the local run. Needs the [distributed] extra.
"""

import argparse
from pathlib import Path

from rich.console import Console

from nerfdata.atomic import write_json_atomic
from nerfdata.bench.ray_overhead import overhead_table, ray_overhead

if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--views", type=int, default=None, help="render only N views of the demo job (default: 24)")
    parser.add_argument("--workers", nargs="+", type=int, default=[1, 2])
    parser.add_argument("--shard-size", type=int, default=1, help="views per shard (Ray: per task)")
    parser.add_argument("--repeats", type=int, default=1, help="rounds of every run; rows are medians")
    parser.add_argument("--json", type=Path, default=None, help="also write the rows as JSON here")
    args = parser.parse_args()
    rows = ray_overhead(args.views, args.workers, args.shard_size, args.repeats)
    Console(width=170).print(overhead_table(rows))
    if args.json is not None:
        write_json_atomic(args.json, rows)
