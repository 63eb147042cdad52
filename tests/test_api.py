"""The public surface: every name listed in an ``__all__`` resolves."""

import importlib

import pytest

MODULES = [
    "nerfdata", "nerfdata.cameras", "nerfdata.config", "nerfdata.errors", "nerfdata.atomic", "nerfdata.poses",
    "nerfdata.encoders", "nerfdata.encoders.hashgrid", "nerfdata.encoders.sh", "nerfdata.fields",
    "nerfdata.fields.analytic", "nerfdata.fields.base", "nerfdata.fields.checkpoint", "nerfdata.fields.ngp",
    "nerfdata.fields.occupancy", "nerfdata.render", "nerfdata.render.renderer", "nerfdata.render.volume",
    "nerfdata.writers.images", "nerfdata.writers.manifest", "nerfdata.writers.transforms", "nerfdata.jobs.render",
    "nerfdata.cli", "nerfdata.native", "nerfdata.render.marching", "nerfdata.encoders.fused", "nerfdata.jobs.train",
    "nerfdata.scenes", "nerfdata.scenes.recipe", "nerfdata.scenes.meshes", "nerfdata.scenes.groundtruth",
    "nerfdata.scenes.dataset", "nerfdata.bench", "nerfdata.bench.quality", "nerfdata.bench.core", "nerfdata.labels.pixel_labels", "nerfdata.writers.preview",
    "nerfdata.render.termination", "nerfdata.labels.matching", "nerfdata.labels.correspondences",
    "nerfdata.labels.pair_selection", "nerfdata.labels.depth_modes", "nerfdata.jobs.correspond",
    "nerfdata.bench.correspondences",
    "nerfdata.labels.mesh", "nerfdata.labels.mesh.cleanup", "nerfdata.labels.mesh.colors",
    "nerfdata.labels.mesh.extract", "nerfdata.labels.mesh.grid", "nerfdata.labels.mesh.level",
    "nerfdata.labels.mesh.surface", "nerfdata.writers.mesh",
    "nerfdata.jobs.mesh", "nerfdata.bench.mesh",
]


@pytest.mark.parametrize("name", MODULES)
def test_all_names_resolve(name):
    module = importlib.import_module(name)
    for exported in module.__all__:
        assert hasattr(module, exported), f"{name}.__all__ lists {exported!r}, which it does not define"


def test_core_import_pulls_no_optional_heavyweights():
    import subprocess
    import sys

    code = "import sys, nerfdata; print(sorted({'open3d', 'nerfstudio', 'torchvision', 'ray'} & set(sys.modules)))"
    assert subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip() == "[]"
