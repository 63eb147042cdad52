"""Training speed: the trainer as it is against its earlier settings, side by side on one dataset.

Each setting trains the same dataset from the same seed for the same iterations (``nerfdata train``
with ``--eval-views`` test views at the end), one after the other in this process, so both meet the
same machine. ``before`` is the trainer's behaviour before the dynamic batch and random backgrounds
(every step ``rays_per_batch`` rays, white background, no distortion loss); ``now`` is the defaults.
"""

import tempfile
from pathlib import Path
from typing import Any

from nerfdata.jobs.train import TrainJobConfig, run_train

__all__ = ["TRAINING_SETTINGS", "training_benchmark"]

TRAINING_SETTINGS: dict[str, dict[str, Any]] = {
    "before": {"samples_per_batch": 0, "background": "white", "distortion_weight": 0.0},
    "now": {},
}
"""Each setting's changes to the trainer's defaults."""


def training_benchmark(data: Path, iters: int, eval_views: int = 20, **overrides: Any) -> list[dict[str, Any]]:
    """One row per setting: seconds of the optimisation loop, seconds per step and test PSNR.

    ``overrides`` change both settings alike (e.g. the room's ``rays_per_batch=2048, num_steps=256``).
    """
    rows = []
    with tempfile.TemporaryDirectory() as scratch:
        for name, changes in TRAINING_SETTINGS.items():
            config = TrainJobConfig(
                data=data, out=Path(scratch) / name, iters=iters, eval_views=eval_views, **(overrides | changes)
            )
            result = run_train(config, show_progress=False)
            rows.append({
                "setting": name, "iters": iters, "seconds": result.seconds,
                "seconds_per_step": result.seconds / iters, "test_psnr": result.test_psnr,
            })
    base = rows[0]["seconds"]
    for row in rows:
        row["speedup"] = base / row["seconds"]
    return rows
