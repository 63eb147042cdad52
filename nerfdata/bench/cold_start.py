"""Cold start: seconds from launching ``nerfdata render`` to its first ray, beside ``import torch``.

Each run is a fresh interpreter (``python -m nerfdata.bench.cold_start ARGS`` runs the CLI with the
renderer's :func:`~nerfdata.render.renderer.render_rays` wrapped, before anything imports it, so
that its first call reports the wall clock and which heavy libraries were imported by then, and
exits). The floor is a fresh interpreter that only imports torch: what no lazy import can remove.
"""

import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

__all__ = ["HEAVY_MODULES", "bench_cold_start"]

HEAVY_MODULES = ("trimesh", "scipy", "open3d", "skimage", "networkx", "ray", "triton")
"""Libraries a render job needs only for meshes, BOP models, rotations or distribution."""

_REPORT = "NERFDATA_FIRST_RAY_REPORT"
_PACKAGE_ROOT = str(Path(__file__).resolve().parents[2])
"""The folder holding this ``nerfdata``: the child runs the same code as the benchmark, wherever it runs."""


def _launch_seconds(args: list[str], report: Path) -> dict[str, Any]:
    start = time.time()  # wall clock: the child reports its own, comparable across processes
    path = os.pathsep.join(p for p in (_PACKAGE_ROOT, os.environ.get("PYTHONPATH")) if p)
    env = {**os.environ, _REPORT: str(report), "PYTHONPATH": path}
    subprocess.run([sys.executable, *args], check=True, capture_output=True, env=env)
    end = time.time()
    if not report.exists():  # the floor writes nothing
        return {"seconds": end - start}
    reported = json.loads(report.read_text())
    report.unlink()
    return {"seconds": reported["time"] - start, "heavy_modules": reported["heavy_modules"]}


def bench_cold_start(field: Path, poses: Path, repeats: int = 5) -> dict[str, Any]:
    """Median seconds to the first ray of ``nerfdata render --field FIELD --poses POSES`` and of ``import torch``.

    Returns:
        ``{"import_torch_s", "first_ray_s", "ratio", "heavy_modules", "repeats"}``; ``heavy_modules``
        are those of :data:`HEAVY_MODULES` imported before the first ray.
    """
    floor, first = [], []
    heavy: list[str] = []
    with tempfile.TemporaryDirectory() as tmp:
        report = Path(tmp) / "report.json"
        for i in range(repeats):
            floor.append(_launch_seconds(["-c", "import torch"], report)["seconds"])
            args = ["-m", "nerfdata.bench.cold_start", "render", "--field", str(field), "--poses", str(poses),
                    "--out", str(Path(tmp) / f"out{i}")]
            run = _launch_seconds(args, report)
            first.append(run["seconds"])
            heavy = run["heavy_modules"]
    torch_s, first_s = statistics.median(floor), statistics.median(first)
    return {"import_torch_s": torch_s, "first_ray_s": first_s, "ratio": first_s / torch_s,
            "heavy_modules": heavy, "repeats": repeats}


def _run_until_first_ray(argv: list[str]) -> int:
    """Run the CLI on ``argv``; at the first ``render_rays`` call write the report and exit."""
    import nerfdata.render.renderer as renderer

    def first_ray(*args: Any, **kwargs: Any) -> Any:
        loaded = [name for name in HEAVY_MODULES if name in sys.modules]
        Path(os.environ[_REPORT]).write_text(json.dumps({"time": time.time(), "heavy_modules": loaded}))
        os._exit(0)  # the job's remaining work is not what is measured

    renderer.render_rays = first_ray  # before the jobs import it by name
    from nerfdata.cli import main

    return main(argv)


if __name__ == "__main__":
    sys.exit(_run_until_first_ray(sys.argv[1:]))
