"""Coverage decisions: the pixel lattice a view is judged on reads the same from a probe render and from
the full render, so a job may decide either way."""

from pathlib import Path

import pytest
import torch

from nerfdata.cameras import Intrinsics
from nerfdata.fields.loading import load_field
from nerfdata.jobs.coverage import (
    CoverageConfig,
    coverage_problem,
    image_coverage_problem,
    probe_coverage_problem,
    probe_pixels,
)
from nerfdata.render.renderer import RenderOptions, render_image, render_rays
from tests.conftest import look_at

FIELD = Path("scenes/analytic_demo")
OPTIONS = RenderOptions(num_steps=512)


@pytest.mark.parametrize("width, height, probe_size", [(40, 32, 8), (41, 30, 8), (16, 12, 32), (128, 96, 32)])
def test_the_lattice_is_pixels_of_the_view(width, height, probe_size):
    pixels = probe_pixels(Intrinsics.from_fov(width, height, 50.0), probe_size)
    stride = max(1, width // probe_size)
    columns = -(-(width - stride // 2) // stride)
    rows = -(-(height - stride // 2) // stride)
    assert pixels.shape == (rows * columns, 2)
    assert ((pixels - 0.5) % 1 == 0).all()  # pixel centres
    assert pixels[:, 0].max() < width and pixels[:, 1].max() < height
    assert torch.equal(torch.unique(torch.diff(torch.unique(pixels[:, 0]))), torch.tensor([float(stride)]))


@pytest.mark.parametrize(
    "eye, target, expected",
    [
        ((0.0, 0.3, 3.0), (0.0, 0.3, 6.0), "covers 0.0%"),  # looks out of the scene
        ((-0.35, -0.15, 0.1), (1.0, -0.15, 0.1), "camera inside geometry"),  # the sphere's centre
        ((0.0, 1.5, 3.0), (0.0, -0.2, 0.0), None),
        ((1.2, 0.4, 1.6), (0.0, 0.0, 0.0), None),
    ],
)
def test_probe_and_full_render_decide_alike(eye, target, expected):
    loaded = load_field(FIELD)
    field, occupancy = loaded.field, loaded.occupancy_grid()
    camera = look_at(eye, target, size=48)
    coverage = CoverageConfig(min_fraction=0.05, probe_size=12)
    image = render_image(field, camera, OPTIONS, occupancy)
    from_probe = probe_coverage_problem(field, camera, OPTIONS, occupancy, coverage, 0.5)
    from_image = image_coverage_problem(image, field.extent, coverage, 0.5)
    assert from_probe == from_image
    assert (from_probe is None) if expected is None else (expected in from_probe)
    # Ray for ray, the lattice of the full render is the probe render.
    lattice = render_rays(field, camera.rays(probe_pixels(camera.intrinsics, 12)), OPTIONS, occupancy)
    torch.testing.assert_close(image.accumulation[2::4, 2::4].reshape(-1), lattice.accumulation, rtol=0, atol=1e-6)
    torch.testing.assert_close(image.range_median[2::4, 2::4].reshape(-1), lattice.range_median, rtol=0, atol=1e-5)


def test_the_rules():
    coverage = CoverageConfig(min_fraction=0.3)
    near, far = torch.full((10,), 0.01), torch.full((10,), 2.0)
    seen = torch.tensor([1.0] * 8 + [0.0] * 2)
    assert coverage_problem(seen, near, 1.0, coverage, 0.5) == "camera inside geometry"
    assert coverage_problem(seen, far, 1.0, coverage, 0.5) is None
    assert coverage_problem(seen, near, 1.0, CoverageConfig(reject_inside=False), 0.5) is None
    little = torch.tensor([1.0] * 2 + [0.0] * 8)
    assert coverage_problem(little, near, 1.0, coverage, 0.5) == "covers 20.0% < 30.0%"
