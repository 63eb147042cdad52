"""Cold start: a job imports only what it needs before its first ray (trimesh, scipy, open3d ... lazily)."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

from nerfdata.bench.cold_start import HEAVY_MODULES, bench_cold_start

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.parametrize("job", ["render", "correspond", "inerf", "train"])
def test_a_job_module_imports_no_heavy_library(job):
    code = (
        f"import sys, json; import nerfdata.cli, nerfdata.jobs.{job}; "
        f"print(json.dumps([m for m in {list(HEAVY_MODULES)!r} if m in sys.modules]))"
    )
    result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True)
    assert json.loads(result.stdout) == []


def test_the_first_ray_of_a_render_comes_before_any_heavy_import():
    scene = ROOT / "scenes" / "tabletop"
    figures = bench_cold_start(scene, scene / "cameras.json", repeats=1)
    assert figures["heavy_modules"] == []
    # The wrapped renderer was reached (a job that failed earlier would leave no report, and raise).
    assert 0 < figures["import_torch_s"] and 0 < figures["first_ray_s"]
