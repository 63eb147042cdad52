"""The public surface: every module of the package imports, and every name in its ``__all__`` resolves."""

import importlib
import pkgutil

import pytest

import nerfdata

_UNWALKABLE: list[str] = []
"""Packages whose ``__init__`` failed to import while walking (walk_packages would skip them silently)."""
MODULES = sorted({
    "nerfdata",
    *(m.name for m in pkgutil.walk_packages(nerfdata.__path__, "nerfdata.", onerror=_UNWALKABLE.append)),
    *_UNWALKABLE,
})


def test_the_walk_reaches_every_subpackage():
    subpackages = {"bench", "encoders", "fields", "jobs", "labels", "render", "scenes", "writers"}
    assert {f"nerfdata.{name}" for name in subpackages} <= set(MODULES)
    modules = {"nerfdata.cli", "nerfdata.jobs.render", "nerfdata.writers.layers", "nerfdata.bench.shipped"}
    assert modules <= set(MODULES)


@pytest.mark.parametrize("name", MODULES)
def test_all_names_resolve(name):
    module = importlib.import_module(name)  # modules needing an optional extra import it lazily
    for exported in getattr(module, "__all__", ()):
        assert hasattr(module, exported), f"{name}.__all__ lists {exported!r}, which it does not define"


def test_core_import_pulls_no_optional_heavyweights():
    import subprocess
    import sys

    code = "import sys, nerfdata; print(sorted({'open3d', 'nerfstudio', 'torchvision', 'ray'} & set(sys.modules)))"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "[]"
