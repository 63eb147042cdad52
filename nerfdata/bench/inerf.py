"""iNeRF pose inversion: success rate and time per target, per sampling strategy and hypothesis count.

For a scene with a trained field, ``nerfdata inerf targets`` draws targets with a perturbation
preset (default ``inerf``: random axis, +-40 degrees, +-0.1 scene units per axis), then
``nerfdata inerf solve`` runs on them once per (sampling strategy, number of hypotheses). Success:
rotation error < 5 degrees and camera-centre error < 0.05 scene units. Published figures for
reference (LLFF scenes, their own protocols): iNeRF after 300 steps about 35%, Loc-NeRF 70-75%.
"""

import dataclasses
import tempfile
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
from rich.table import Table

from nerfdata.bench.shipped import CHECKOUT, CONFIGS
from nerfdata.config import from_dict, load_yaml
from nerfdata.jobs.inerf import InerfSolveConfig, InerfTargetsConfig, run_inerf_solve, run_inerf_targets
from nerfdata.labels.inerf import SamplingStrategy, SolverConfig
from nerfdata.labels.pose_perturbation import PresetName

__all__ = ["PUBLISHED", "bench_targets_config", "inerf_benchmark", "inerf_table"]

TARGET_CONFIGS = CONFIGS / "inerf"
"""Per-scene target recipes (``NAME.yaml``) the benchmark uses when they exist."""

PUBLISHED = {"iNeRF (LLFF, 300 steps)": 0.35, "Loc-NeRF (LLFF)": 0.725}
"""Published success rates (rotation < 5 degrees, translation < 0.05 units), for reference only."""


def bench_targets_config(
    scene: Path, out: Path, num: int, seed: int, preset: PresetName
) -> InerfTargetsConfig:
    """The benchmark's targets of a scene, without a mesh.

    From ``configs/inerf/NAME.yaml`` when the scene has one (the room: views near its own cameras,
    inside it), else from the default hemisphere shell around the field's box. The recipe's paths
    are relative to the checkout (configs run from its root), so they are taken from there.
    """
    overrides = dict(field=scene, out=out, num=num, seed=seed, preset=preset, mesh=False, overwrite=False)
    recipe = TARGET_CONFIGS / f"{scene.name}.yaml"
    if recipe.is_file():
        config = from_dict(InerfTargetsConfig, load_yaml(recipe), str(recipe))
        return replace(config, views=_rebased(config.views, CHECKOUT), **overrides)
    return InerfTargetsConfig(**overrides)


def _rebased(value: Any, root: Path) -> Any:
    """``value`` (a config, tuple or path) with every relative path taken from ``root``."""
    if isinstance(value, Path):
        return root / value
    if isinstance(value, tuple):
        return tuple(_rebased(item, root) for item in value)
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        rebased = {f.name: _rebased(getattr(value, f.name), root) for f in dataclasses.fields(value)}
        return replace(value, **rebased)
    return value


def inerf_benchmark(
    scene: Path,
    num: int = 50,
    preset: PresetName = "inerf",
    samplings: Sequence[SamplingStrategy] = ("random", "interest-points", "interest-regions"),
    hypotheses: Sequence[int] = (1, 9),
    iters: int = 300,
    rays: int = 2048,
    num_steps: int = SolverConfig.num_steps,
    seed: int = 0,
    show_progress: bool = False,
) -> list[dict[str, Any]]:
    """One row per (sampling, hypotheses): success rate, median errors and seconds per target.

    Targets: :func:`bench_targets_config`.
    """
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        targets = Path(tmp) / "targets"
        run_inerf_targets(bench_targets_config(scene, targets, num, seed, preset), show_progress)
        for sampling in samplings:
            for count in hypotheses:
                solver = SolverConfig(iters=iters, rays=rays, sampling=sampling, num_steps=num_steps)
                config = InerfSolveConfig(
                    field=scene, targets=targets, out=Path(tmp) / f"results_{sampling}_{count}.json", solver=solver,
                    hypotheses=count,
                )
                results = run_inerf_solve(config, show_progress)
                records = results["targets"]
                rows.append({
                    "scene": scene.name, "preset": preset, "targets": len(records), "sampling": sampling,
                    "hypotheses": count, "iters": iters, "rays": rays, "success_rate": results["success_rate"],
                    "median_rot_err_deg": float(np.median([r["rot_err_deg"] for r in records])),
                    "median_trans_err": float(np.median([r["trans_err"] for r in records])),
                    "median_seconds": results["median_seconds"],
                    "median_steps": float(np.median([r["iters"] for r in records])),
                })
    return rows


def inerf_table(rows: list[dict[str, Any]]) -> Table:
    """Rows side by side, with the published figures as the last rows."""
    table = Table(title="iNeRF pose inversion (success: rot < 5 deg and trans < 0.05 units)")
    columns = ("scene", "preset", "targets", "sampling", "hyp.", "success", "med. rot err", "med. trans err")
    for name in (*columns, "med. steps", "med. s/target"):
        table.add_column(name)
    for r in rows:
        table.add_row(
            r["scene"], r["preset"], str(r["targets"]), r["sampling"], str(r["hypotheses"]), f"{r['success_rate']:.0%}",
            f"{r['median_rot_err_deg']:.2f}", f"{r['median_trans_err']:.3f}", f"{r['median_steps']:.0f}",
            f"{r['median_seconds']:.1f}",
        )
    for name, rate in PUBLISHED.items():
        table.add_row(name, "-", "-", "-", "-", f"{rate:.0%}", "-", "-", "-", "-")
    return table
