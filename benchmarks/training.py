"""Training speed: ``python benchmarks/training.py DATA_DIR [--iters N] [--eval-views N] [--json PATH]``.

Trains DATA_DIR (a ``nerfdata scene`` dataset, e.g. ``nerfdata scene scenes/tabletop --out data/tabletop``)
with the trainer's earlier settings and with its defaults, one after the other in one run (see
``nerfdata.bench.training``), and prints seconds, seconds per step, test PSNR and the speed-up.
Measure on an idle machine: each run takes minutes.
"""

import argparse
from pathlib import Path

from rich.console import Console
from rich.table import Table

from nerfdata.atomic import write_json_atomic
from nerfdata.bench.training import training_benchmark

if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("data", type=Path)
    parser.add_argument("--iters", type=int, default=3000)
    parser.add_argument("--eval-views", type=int, default=20)
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args()
    rows = training_benchmark(args.data, args.iters, args.eval_views)
    table = Table(title=f"nerfdata train {args.data} --iters {args.iters}, side by side")
    for column in ("setting", "seconds", "s / step", "test PSNR", "speed-up"):
        table.add_column(column, justify="left" if column == "setting" else "right")
    for row in rows:
        psnr = "-" if row["test_psnr"] is None else f"{row['test_psnr']:.2f} dB"
        table.add_row(
            row["setting"], f"{row['seconds']:.0f}", f"{row['seconds_per_step']:.3f}", psnr, f"{row['speedup']:.2f}x"
        )
    Console().print(table)
    if args.json is not None:
        write_json_atomic(args.json, rows)
