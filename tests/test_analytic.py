"""AnalyticField: signed distances, density, sphere-traced ground truth, config round trip."""

import math

import pytest
import torch

from nerfdata.cameras import Camera, Intrinsics, look_at_c2w_opengl
from nerfdata.errors import ConfigError
from nerfdata.fields.analytic import AnalyticField, Box, Material, Plane, Sphere, Torus


def test_signed_distances_of_primitives():
    x = torch.tensor([[0.0, 0.0, 0.0], [2.0, 0.0, 0.0], [0.0, 3.0, 0.0]])
    torch.testing.assert_close(Sphere((0.0, 0.0, 0.0), 1.0).sdf(x), torch.tensor([-1.0, 1.0, 2.0]))
    box = Box((0.0, 0.0, 0.0), (1.0, 0.5, 0.5))
    torch.testing.assert_close(box.sdf(x), torch.tensor([-0.5, 1.0, 2.5]))
    corner = torch.tensor([[2.0, 1.5, 0.0]])
    assert box.sdf(corner).item() == pytest.approx(math.sqrt(2.0))
    torus = Torus((0.0, 0.0, 0.0), 1.0, 0.25)
    torch.testing.assert_close(torus.sdf(torch.tensor([[1.0, 0.0, 0.0], [0.0, 0.0, 0.0]])), torch.tensor([-0.25, 0.75]))
    plane = Plane((0.0, 1.0, 0.0), (0.0, 2.0, 0.0))  # normal is normalised
    torch.testing.assert_close(plane.sdf(x), torch.tensor([-1.0, -1.0, 2.0]))


def test_density_is_half_of_k_on_the_surface_and_zero_outside_the_box():
    field = AnalyticField([Sphere((0.0, 0.0, 0.0), 0.5)], aabb=[[-1, -1, -1], [1, 1, 1]], surface_width=0.01)
    sigma = field.density(torch.tensor([[0.5, 0.0, 0.0], [0.0, 0.0, 0.0], [0.9, 0.0, 0.0], [1.5, 0.0, 0.0]]))
    assert sigma[0].item() == pytest.approx(50.0)
    assert sigma[1].item() == pytest.approx(100.0)
    assert sigma[2].item() < 1e-10 and sigma[3].item() == 0.0


def test_trace_depth_of_a_plane_at_a_known_distance():
    field = AnalyticField([Plane((0.0, 0.0, 0.0))], aabb=[[-5, -1, -5], [5, 1, 5]])
    eye = torch.tensor([0.3, 2.0, -0.4])
    camera = Camera(look_at_c2w_opengl(eye, torch.tensor([0.3, 0.0, -0.4]), torch.tensor([0.0, 0.0, -1.0])),
                    Intrinsics.from_fov(9, 7, 40.0))
    rays = camera.rays()
    hits = field.trace(rays.origins, rays.directions)
    assert hits.hit.all()
    torch.testing.assert_close(hits.range * rays.z_per_range, torch.full((63,), 2.0), rtol=0, atol=1e-5)
    torch.testing.assert_close(hits.normal, torch.tensor([0.0, 1.0, 0.0]).expand(63, 3))


def test_trace_normals_of_a_sphere():
    field = AnalyticField([Sphere((0.1, -0.2, 0.3), 0.6)], aabb=[[-1, -1, -1], [1, 1, 1]])
    g = torch.Generator().manual_seed(0)
    targets = torch.tensor([0.1, -0.2, 0.3]) + 0.25 * (torch.rand(50, 3, generator=g) * 2 - 1)  # well inside
    origins = torch.tensor([0.0, 0.0, 4.0]).expand(50, 3)
    directions = torch.nn.functional.normalize(targets - origins, dim=-1)
    hits = field.trace(origins, directions)
    points = origins + hits.range[:, None] * directions
    torch.testing.assert_close((points - torch.tensor([0.1, -0.2, 0.3])).norm(dim=-1), torch.full((50,), 0.6))
    torch.testing.assert_close(hits.normal, (points - torch.tensor([0.1, -0.2, 0.3])) / 0.6, rtol=0, atol=1e-5)


def test_trace_reports_misses():
    field = AnalyticField([Sphere((0.0, 0.0, 0.0), 0.2)], aabb=[[-1, -1, -1], [1, 1, 1]])
    hits = field.trace(torch.tensor([[0.5, 0.0, 3.0]]), torch.tensor([[0.0, 0.0, -1.0]]))
    assert not hits.hit.any() and math.isinf(hits.range.item())


def test_albedo_follows_the_nearest_material():
    field = AnalyticField(
        [Sphere((-1.0, 0.0, 0.0), 0.5, Material((1.0, 0.0, 0.0), "solid")),
         Sphere((1.0, 0.0, 0.0), 0.5, Material((0.0, 0.0, 1.0), "solid"))],
        aabb=[[-2, -2, -2], [2, 2, 2]],
    )
    rgb = field.albedo(torch.tensor([[-1.4, 0.0, 0.0], [1.2, 0.0, 0.0]]))
    torch.testing.assert_close(rgb, torch.tensor([[1.0, 0.0, 0.0], [0.0, 0.0, 1.0]]))


@pytest.mark.parametrize("pattern", ["checker", "stripes", "noise"])
def test_patterns_give_texture_in_range(pattern):
    x = torch.rand(2000, 3) * 2 - 1
    rgb = Material((0.8, 0.6, 0.4), pattern, 3.0).shade(x)
    assert rgb.min() >= 0 and rgb.max() <= 0.8 + 1e-6 and rgb[:, 0].std() > 0.05


def test_config_round_trip_and_errors():
    field = AnalyticField(
        [
            Torus((0.0, 0.1, 0.0), 0.5, 0.1, Material((0.2, 0.3, 0.4), "stripes", 2.0)),
            Box((0.0, 0.0, 0.0), (0.1, 0.2, 0.3)),
        ],
        aabb=[[-1, -1, -1], [1, 1, 1]],
        surface_width=0.002,
    )
    rebuilt = AnalyticField.from_config_dict(field.config_dict())
    assert rebuilt.primitives == field.primitives and rebuilt.surface_width == 0.002
    with pytest.raises(ConfigError, match="unknown primitive type 'cone'"):
        AnalyticField.from_config_dict({"aabb": [[-1] * 3, [1] * 3], "primitives": [{"type": "cone"}]})
    with pytest.raises(ConfigError, match="at least one primitive"):
        AnalyticField([], aabb=[[-1] * 3, [1] * 3])
    with pytest.raises(ConfigError, match="max > min"):
        AnalyticField([Sphere((0.0, 0.0, 0.0), 1.0)], aabb=[[1] * 3, [-1] * 3])
