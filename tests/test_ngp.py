"""NGPField: shapes, the box, unit independence, config round trip."""

import pytest
import torch

from nerfdata.cameras import Rays
from nerfdata.encoders.hashgrid import HashGridConfig
from nerfdata.errors import ConfigError
from nerfdata.fields.ngp import NGPArchitecture, NGPField, NGPFieldConfig, trunc_exp
from nerfdata.render.renderer import RenderOptions, render_rays

GRID = HashGridConfig(num_levels=4, log2_hashmap_size=12, base_resolution=8)


def make_field(scale: float = 1.0, seed: int = 0) -> NGPField:
    torch.manual_seed(seed)
    config = NGPFieldConfig(aabb=((-scale,) * 3, (scale,) * 3), hash_grid=GRID)
    field = NGPField(config)
    with torch.no_grad():
        field.encoder.params.normal_(0.0, 1.0)  # a non-trivial field
    return field


def test_query_shapes_and_ranges():
    field = make_field()
    x = torch.rand(100, 3) * 2 - 1
    d = torch.nn.functional.normalize(torch.randn(100, 3), dim=-1)
    sigma, rgb = field.query(x, d)
    assert sigma.shape == (100,) and rgb.shape == (100, 3)
    assert (sigma >= 0).all() and (rgb >= 0).all() and (rgb <= 1).all()
    torch.testing.assert_close(field.density(x), sigma)
    assert not torch.allclose(field.radiance(x, d), field.radiance(x, -d))  # view dependent


def test_density_is_zero_outside_the_box():
    field = make_field()
    outside = torch.tensor([[1.5, 0.0, 0.0], [0.0, -1.01, 0.0]])
    assert (field.density(outside) == 0).all()


def test_renders_do_not_depend_on_the_unit_of_length():
    """The same weights in a box 10x larger, seen by a camera 10x farther: same image, 10x depth."""
    small, large = make_field(1.0), make_field(10.0)
    large.load_state_dict(small.state_dict())
    g = torch.Generator().manual_seed(0)
    jitter = 0.2 * torch.randn(64, 3, generator=g)
    directions = torch.nn.functional.normalize(torch.tensor([0.0, 0.0, -1.0]) + jitter, dim=-1)
    origins = torch.tensor([0.0, 0.0, 3.0]).expand(64, 3)
    options = RenderOptions(normals=False)
    with torch.no_grad():
        a = render_rays(small, Rays(origins, directions, torch.ones(64)), options)
        b = render_rays(large, Rays(origins * 10, directions, torch.ones(64)), options)
    torch.testing.assert_close(a.rgb, b.rgb, rtol=0, atol=1e-4)
    torch.testing.assert_close(a.range_expected * 10, b.range_expected, rtol=1e-4, atol=1e-4)


def test_config_round_trip_and_validation():
    field = make_field()
    rebuilt = NGPField.from_config_dict(field.config_dict())
    assert rebuilt.config == field.config
    with pytest.raises(ConfigError, match="aabb"):
        NGPFieldConfig(aabb=((0.0, 0.0, 0.0), (1.0, -1.0, 1.0)))
    with pytest.raises(ConfigError, match="NGP field config"):
        NGPFieldConfig.from_dict({"aabb": [[0, 0, 0], [1, 1, 1]], "hidden": 3})
    with pytest.raises(ConfigError, match="sh_degree must be 1 to 4, got 5"):
        NGPArchitecture(sh_degree=5)


def test_an_architecture_in_a_box_is_the_field_config():
    """NGPFieldConfig is an NGPArchitecture plus its box; checkpoints store the box first, as they always have."""
    architecture = NGPArchitecture(hash_grid=GRID, sh_degree=3, geo_feature_dim=7)
    config = architecture.in_box(((-1.0, -1.0, -1.0), (1.0, 1.0, 1.0)))
    assert isinstance(config, NGPArchitecture) and config.hash_grid is GRID and config.sh_degree == 3
    assert list(config.to_dict())[:2] == ["aabb", "hash_grid"]
    assert NGPFieldConfig.from_dict(config.to_dict()) == config


def test_trunc_exp_has_a_bounded_gradient():
    x = torch.tensor([0.0, 50.0], requires_grad=True)
    trunc_exp(x).sum().backward()
    assert x.grad[0].item() == pytest.approx(1.0)
    assert x.grad[1].item() == pytest.approx(torch.exp(torch.tensor(15.0)).item())
