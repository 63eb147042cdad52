"""Ray's overhead: the demo job on the local executor and on Ray with 1 and 2 workers, side by side.

The README's demo job (``configs/demo.yaml``, its views optionally cut to ``views``) is rendered
into fresh folders: once locally, then on Ray for each number of workers, twice: "cold" (a new pool
of workers: each starts a Python process, imports torch and loads the field) and "warm" (the pool of
the previous job, as in a many-field job or a second job of the same driver). Every process computes
with one thread (the local run too), so Ray with 1 worker against local is Ray's overhead alone, and
2 workers against 1 is how it scales (on a machine with 2 free cores). Every dataset is checked to
be byte-identical to the local one (manifest aside: it names the executor). Reported: seconds per
job and per view, and their ratio to the local run (medians over ``repeats`` rounds of every run, in
turn, so that a busy machine slows each alike); Ray's own start is timed apart.
"""

import os
import statistics
import tempfile
import time
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

import torch
from rich.table import Table

from nerfdata.bench.shipped import CONFIGS, SCENES
from nerfdata.executors import ExecutorConfig
from nerfdata.jobs.render import RenderJobConfig, run_render
from nerfdata.writers.manifest import read_manifest

__all__ = ["demo_job", "overhead_table", "ray_overhead"]


def demo_job(out: Path, views: int | None = None) -> RenderJobConfig:
    """The README's demo job (tabletop, 24 views at 256x256, every layer) into ``out``."""
    from nerfdata.cli import command
    from nerfdata.flags import parse_command

    argv = ["--config", str(CONFIGS / "demo.yaml"), "--field", str(SCENES / "tabletop"), "--out", str(out)]
    if views is not None:
        argv += ["--num-views", str(views)]
    return parse_command(command("render"), argv).config


def _files(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*"))
            if p.is_file() and p.name != "manifest.json"}


def ray_overhead(
    views: int | None = None,
    workers: Sequence[int] = (1, 2),
    shard_size: int = ExecutorConfig.shard_size,
    repeats: int = 1,
) -> list[dict[str, Any]]:
    """Rows ``{executor, workers, start, seconds, per_view, ratio, identical}``: the local run, Ray's
    start (``start: "ray.init"``), then per number of workers its cold and warm jobs. With
    ``repeats``, the runs go round that many times in the same order and each row is the median.

    Raises:
        NerfDataError: Ray is not installed (the ``[distributed]`` extra).
    """
    from nerfdata.executors.ray import release_workers, require_ray

    ray = require_ray()
    times: dict[tuple[str, int, str], list[float]] = {}
    identical: dict[tuple[str, int, str], bool] = {}
    started = not ray.is_initialized()
    with tempfile.TemporaryDirectory(prefix="nerfdata-ray-bench-") as tmp:
        local_job = demo_job(Path(tmp) / "local", views)
        try:
            for repeat in range(repeats):
                out = Path(tmp) / f"local{repeat}"
                threads = torch.get_num_threads()
                torch.set_num_threads(1)
                try:
                    times.setdefault(("local", 1, "-"), []).append(_seconds(replace(local_job, out=out)))
                finally:
                    torch.set_num_threads(threads)
                expected = _files(out)
                if repeat == 0:
                    count = len((read_manifest(out) or {})["views"])
                    begin = time.perf_counter()
                    if started:
                        ray.init(num_cpus=os.cpu_count(), include_dashboard=False, logging_level="WARNING")
                    times[("ray", 0, "ray.init")] = [time.perf_counter() - begin]
                for n in workers:
                    executor = ExecutorConfig(kind="ray", num_workers=n, shard_size=shard_size)
                    for start in ("cold", "warm"):
                        job = replace(local_job, out=Path(tmp) / f"ray{n}-{start}-{repeat}", executor=executor)
                        times.setdefault(("ray", n, start), []).append(_seconds(job))
                        identical[("ray", n, start)] = identical.get(("ray", n, start), True) and (
                            _files(job.out) == expected
                        )
                    release_workers()  # the next row starts its own
        finally:
            if started:
                ray.shutdown()
    local = statistics.median(times[("local", 1, "-")])
    return [
        _row(*key, statistics.median(seconds), None if key[2] == "ray.init" else count, local, identical.get(key))
        for key, seconds in times.items()
    ]


def _seconds(job: RenderJobConfig) -> float:
    begin = time.perf_counter()
    run_render(job, show_progress=False)
    return time.perf_counter() - begin


def _row(executor: str, workers: int, start: str, seconds: float, views: int | None, local: float,
         identical: bool | None = None) -> dict[str, Any]:
    return {
        "executor": executor, "workers": workers, "start": start, "seconds": seconds,
        "per_view": None if views is None else seconds / views,
        "ratio": None if views is None else seconds / local,
        "identical": identical,
    }


def overhead_table(rows: list[dict[str, Any]]) -> Table:
    """The rows as a table: seconds per job and per view, ratio to local (per job = per view)."""
    table = Table(title="Ray overhead on the demo job (ratio to the local executor; < 1: faster)")
    for column in ("executor", "workers", "start", "job s", "s/view", "ratio", "identical"):
        table.add_column(column)
    for row in rows:
        table.add_row(
            row["executor"], str(row["workers"] or "-"), row["start"], f"{row['seconds']:.2f}",
            "-" if row["per_view"] is None else f"{row['per_view']:.3f}",
            "-" if row["ratio"] is None else f"{row['ratio']:.2f}",
            "-" if row["identical"] is None else ("yes" if row["identical"] else "NO"),
        )
    return table
