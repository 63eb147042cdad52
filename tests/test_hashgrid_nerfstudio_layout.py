"""Hash grid in nerfstudio's PyTorch ``HashEncoding`` layout: the formulas by hand, and the fast paths
(PyTorch, fused C) against the reference, values and gradients. No nerfstudio here: its own module
is compared in tests/test_nerfstudio.py (the nerfstudio CI stage); Triton in tests/test_hashgrid_triton.py.
"""

import pytest
import torch

from nerfdata.encoders.fused import fused_available, fused_unavailable_reason, hash_grid_encode_fused
from nerfdata.encoders.hashgrid import (
    HASH_PRIMES,
    HashGridConfig,
    HashGridEncoder,
    hash_grid_encode,
    hash_grid_encode_reference,
)
from nerfdata.errors import ConfigError
from nerfdata.fields.ngp import NGPFieldConfig
from tests.test_hashgrid import values_and_gradients

# The shipped nerfacto mug's main grid: 8 levels from 16 to 512, 2^16 entries a level.
MUG = HashGridConfig.nerfstudio(num_levels=8, min_res=16, max_res=512, log2_hashmap_size=16)
# Scales 16 and 32 (powers of two): points k / 32 are exactly on vertices of both levels.
EXACT = HashGridConfig.nerfstudio(num_levels=2, min_res=16, max_res=32, log2_hashmap_size=10)
needs_fused = pytest.mark.skipif(
    not fused_available(), reason=f"fused kernels unavailable: {fused_unavailable_reason()}"
)
ENCODERS = [hash_grid_encode_reference, hash_grid_encode, pytest.param(hash_grid_encode_fused, marks=needs_fused)]
FAST_ENCODERS = ENCODERS[1:]


def test_layout_follows_nerfstudios_formulas():
    # growth = exp((log 512 - log 16) / 7) = 32^(1/7); scale_l = floor(16 * growth^l) in float32, whose
    # rounding makes the finest 511 (nerfstudio's HashEncoding gives the same, tests/test_nerfstudio.py).
    assert MUG.per_level_scale == pytest.approx(32 ** (1 / 7), rel=1e-12)
    assert MUG.scales == [16.0, 26.0, 43.0, 70.0, 115.0, 190.0, 312.0, 511.0]
    assert MUG.level_sizes == [2**16] * 8 and MUG.level_offsets == [level * 2**16 for level in range(8)]
    assert not any(MUG.dense_levels)  # 16^3 = 4096 would fit 2^16, but nerfstudio hashes every level
    assert MUG.position_shift == 0.0 and MUG.ceil_corners
    assert MUG.num_params == 8 * 2**16 * 2 and MUG.output_dim == 16  # hash_table (8 * 2^16, 2), flattened
    tcnn = HashGridConfig()
    assert tcnn.layout == "tcnn" and tcnn.position_shift == 0.5 and not tcnn.ceil_corners


def _hashed_entry(config: HashGridConfig, level: int, vertex: tuple[int, int, int]) -> int:
    """nerfstudio's hash_fn written out: x*1 ^ y*2654435761 ^ z*805459861, mod the table, plus the level offset."""
    hashed = (vertex[0] * HASH_PRIMES[0]) ^ (vertex[1] * HASH_PRIMES[1]) ^ (vertex[2] * HASH_PRIMES[2])
    return level * 2**config.log2_hashmap_size + hashed % 2**config.log2_hashmap_size


@pytest.mark.parametrize("encode", ENCODERS)
def test_a_point_on_a_vertex_returns_its_hashed_feature_on_every_level(encode):
    params = torch.randn(EXACT.num_params)
    vertex = (5, 11, 7)  # on level 1 (scale 32); on level 0 (scale 16) it is (2.5, 5.5, 3.5)
    x = torch.tensor([[v / 32.0 for v in vertex]])
    out = encode(x, params, EXACT)
    index = _hashed_entry(EXACT, 1, vertex)
    torch.testing.assert_close(out[0, 2:4], params[2 * index : 2 * index + 2], rtol=0, atol=1e-6)
    # Level 0: the middle of a cell, the mean of its 8 corners (no half-cell shift).
    corners = [(2 + (c & 1), 5 + (c >> 1 & 1), 3 + (c >> 2 & 1)) for c in range(8)]
    expected = torch.stack([params[2 * i : 2 * i + 2] for i in (_hashed_entry(EXACT, 0, v) for v in corners)]).mean(0)
    torch.testing.assert_close(out[0, :2], expected, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("encode", ENCODERS)
def test_the_position_gradient_across_a_grid_plane_is_zero(encode):
    """On a plane of the grid, nerfstudio's upper corner ceil(p) is the lower one: no slope across it."""
    config = HashGridConfig.nerfstudio(num_levels=1, min_res=16, max_res=16, log2_hashmap_size=10)
    params = torch.randn(config.num_params)
    x = torch.tensor([[5 / 16, 0.37, 0.61]], requires_grad=True)  # x on a plane, y and z inside cells
    encode(x, params, config).sum().backward()
    assert x.grad[0, 0] == 0.0
    assert (x.grad[0, 1:] != 0).all()


@pytest.mark.parametrize("encode", FAST_ENCODERS)
@pytest.mark.parametrize("config", [MUG, EXACT, HashGridConfig.nerfstudio(5, 16, 128, 12, features_per_level=4)])
def test_fast_paths_match_the_reference(config, encode):
    g = torch.Generator().manual_seed(0)
    x = torch.rand(3000, 3, generator=g)
    x[:300] = torch.randint(0, 33, (300, 3), generator=g) / 32.0  # vertices and planes of the grids
    x[300:400] = x[300:400] * 3.0 - 1.0  # outside the unit cube: negative cells wrap like nerfstudio's int64 hash
    params = torch.randn(config.num_params, generator=g)
    cotangent = torch.randn(len(x), config.output_dim, generator=g)
    out_ref, gp_ref, gx_ref = values_and_gradients(hash_grid_encode_reference, x, params, config, cotangent)
    out_fast, gp_fast, gx_fast = values_and_gradients(encode, x, params, config, cotangent)
    # The same float32 operations in the same order: equal up to a last-bit difference of a sum.
    torch.testing.assert_close(out_fast, out_ref, rtol=0, atol=1e-6)
    torch.testing.assert_close(gp_fast, gp_ref, rtol=1e-5, atol=1e-5)
    # Position gradients scale with the finest resolution; compare relative to their size.
    torch.testing.assert_close(gx_fast, gx_ref, rtol=1e-4, atol=1e-5 * gx_ref.abs().max().item())


def test_the_two_layouts_read_one_table_differently():
    """Same hyper-parameters, both layouts hash every level into 2^10 entries: same table size, other values."""
    nerfstudio = HashGridConfig(num_levels=2, log2_hashmap_size=10, base_resolution=16, per_level_scale=2.0,
                                layout="nerfstudio")
    tcnn = HashGridConfig(num_levels=2, log2_hashmap_size=10, base_resolution=16, per_level_scale=2.0)
    assert tcnn.num_params == nerfstudio.num_params and not any(tcnn.dense_levels)
    assert tcnn.scales == [15.0, 31.0] and nerfstudio.scales == [16.0, 32.0]
    params, x = torch.randn(tcnn.num_params), torch.rand(100, 3)
    difference = hash_grid_encode_reference(x, params, tcnn) - hash_grid_encode_reference(x, params, nerfstudio)
    assert difference.abs().mean() > 0.1


def test_layout_validation_and_the_tcnn_backend():
    values = NGPFieldConfig(aabb=((-1.0, -1.0, -1.0), (1.0, 1.0, 1.0)), hash_grid=EXACT).to_dict()
    values["hash_grid"]["layout"] = "pytorch"
    with pytest.raises(ConfigError, match="layout"):
        NGPFieldConfig.from_dict(values)
    with pytest.raises(ConfigError, match="no tiny-cuda-nn config"):
        MUG.tcnn_config()
    with pytest.raises(ConfigError, match="'tcnn' layout only"):
        HashGridEncoder(MUG, backend="tcnn")


def test_an_ngp_field_config_keeps_its_layout():
    config = NGPFieldConfig(aabb=((-1.0, -1.0, -1.0), (1.0, 1.0, 1.0)), hash_grid=EXACT)
    assert NGPFieldConfig.from_dict(config.to_dict()).hash_grid == EXACT
    # tiny-cuda-nn's layout is not written: field.json stays as before layouts existed, and loads as it.
    tcnn = NGPFieldConfig(aabb=((-1.0, -1.0, -1.0), (1.0, 1.0, 1.0)), hash_grid=HashGridConfig(num_levels=2))
    assert "layout" not in tcnn.to_dict()["hash_grid"] and config.to_dict()["hash_grid"]["layout"] == "nerfstudio"
    assert NGPFieldConfig.from_dict(tcnn.to_dict()).hash_grid.layout == "tcnn"


@needs_fused
def test_the_encoder_module_runs_the_layout_on_the_fused_kernels():
    encoder = HashGridEncoder(MUG)
    assert encoder.implementation(torch.device("cpu")) == "fused"
    with torch.no_grad():
        encoder.params.normal_()
    x = torch.rand(200, 3)
    expected = hash_grid_encode_reference(x, encoder.params.detach(), MUG)
    torch.testing.assert_close(encoder(x), expected, rtol=0, atol=1e-6)
