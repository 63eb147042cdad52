"""Hash grid: tiny-cuda-nn's layout by hand, the fast path against the reference, gradients, tcnn parity."""

import pytest
import torch

from nerfdata.encoders.fused import fused_available, fused_unavailable_reason, hash_grid_encode_fused
from nerfdata.encoders.hashgrid import (
    HASH_PRIMES,
    HashGridConfig,
    HashGridEncoder,
    hash_grid_encode,
    hash_grid_encode_reference,
    tcnn_available,
)
from nerfdata.errors import ConfigError

# Two dense levels (res 8, 16) and two hashed ones (res 32, 64) with a 2^12-entry table.
SMALL = HashGridConfig(num_levels=4, features_per_level=2, log2_hashmap_size=12, base_resolution=8, per_level_scale=2.0)
needs_fused = pytest.mark.skipif(
    not fused_available(), reason=f"fused kernels unavailable: {fused_unavailable_reason()}"
)
ENCODERS = [hash_grid_encode_reference, hash_grid_encode, pytest.param(hash_grid_encode_fused, marks=needs_fused)]
FAST_ENCODERS = ENCODERS[1:]


def test_layout_matches_tiny_cuda_nn_formulas():
    # scale_l = 2^l * 8 - 1 -> 7, 15, 31, 63; resolution = ceil(scale) + 1.
    assert SMALL.scales == [7.0, 15.0, 31.0, 63.0]
    assert SMALL.resolutions == [8, 16, 32, 64]
    assert SMALL.dense_levels == [True, True, False, False]  # 16^3 = 4096 fits 2^12 exactly
    # Level sizes: min(next_multiple_of_8(res^3), 2^12): 512, 4096 (16^3 fits exactly), 4096, 4096.
    assert SMALL.level_sizes == [512, 4096, 4096, 4096]
    assert SMALL.level_offsets == [0, 512, 4608, 8704]
    assert SMALL.num_params == 12800 * 2 and SMALL.output_dim == 8


def test_dense_when_the_level_fits_the_table():
    # 16^3 == 4096 == table size: tiny-cuda-nn indexes this level densely (stride <= hashmap_size).
    config = HashGridConfig(num_levels=2, log2_hashmap_size=12, base_resolution=16, per_level_scale=1.0)
    assert config.resolutions == [16, 16] and config.dense_levels == [True, True]


def test_default_layout_of_nerfstudio_style_grid():
    config = HashGridConfig()  # 16 levels, 2^19, base 16, finest 2048
    assert config.resolutions[0] == 16 and config.resolutions[-1] == 2048
    assert sum(config.dense_levels) == 5  # 16, 23, 31, 43, 59 fit 2^19 densely; 81^3 does not
    assert config.num_params == 2 * sum(config.level_sizes)


def vertex_point(level_scale: float, vertex: tuple[int, int, int]) -> torch.Tensor:
    """The point x whose scaled position scale * x + 0.5 is exactly the integer ``vertex``."""
    return torch.tensor([[(v - 0.5) / level_scale for v in vertex]], dtype=torch.float32)


@pytest.mark.parametrize("encode", ENCODERS)
def test_a_point_on_a_dense_vertex_returns_that_vertex_feature(encode):
    params = torch.randn(SMALL.num_params)
    vertex = (3, 5, 2)  # level 0: resolution 8, dense index x + y*8 + z*64
    x = vertex_point(SMALL.scales[0], vertex)
    index = 3 + 5 * 8 + 2 * 64
    out = encode(x, params, SMALL)
    torch.testing.assert_close(out[0, :2], params[2 * index : 2 * index + 2], rtol=0, atol=1e-6)


@pytest.mark.parametrize("encode", ENCODERS)
def test_a_point_on_a_hashed_vertex_uses_the_tcnn_hash(encode):
    params = torch.randn(SMALL.num_params)
    level, vertex = 3, (37, 11, 50)  # resolution 64, hashed into 4096 entries
    x = vertex_point(SMALL.scales[level], vertex)
    hashed = (vertex[0] * HASH_PRIMES[0]) ^ (vertex[1] * HASH_PRIMES[1]) ^ (vertex[2] * HASH_PRIMES[2])
    index = SMALL.level_offsets[level] + (hashed % 2**32) % 4096
    assert hashed % 2**32 != hashed  # the uint32 wrap-around matters for this coordinate
    out = encode(x, params, SMALL)
    torch.testing.assert_close(out[0, 6:8], params[2 * index : 2 * index + 2], rtol=0, atol=1e-6)


def test_known_hash_value():
    # x*1 ^ y*2654435761 ^ z*805459861 in uint32 arithmetic, written out by hand for (1, 2, 3).
    expected = (1 ^ ((2 * 2654435761) & 0xFFFFFFFF) ^ ((3 * 805459861) & 0xFFFFFFFF)) & 0xFFFFFFFF
    assert expected == 1 ^ 1013904226 ^ 2416379583
    config = HashGridConfig(num_levels=1, log2_hashmap_size=16, base_resolution=64, per_level_scale=1.0)
    params = torch.arange(config.num_params, dtype=torch.float32)
    out = hash_grid_encode(vertex_point(config.scales[0], (1, 2, 3)), params, config)
    assert out[0, 0].item() == 2 * (expected % 2**16)


@pytest.mark.parametrize("encode", ENCODERS)
def test_trilinear_interpolation_midway(encode):
    # Halfway between two vertices along x on the dense level: the mean of their features.
    params = torch.randn(SMALL.num_params)
    scale = SMALL.scales[0]
    x = torch.tensor([[(3.0 - 0.5 + 0.5) / scale, (5 - 0.5) / scale, (2 - 0.5) / scale]])
    a, b = 3 + 5 * 8 + 2 * 64, 4 + 5 * 8 + 2 * 64
    expected = 0.5 * (params[2 * a : 2 * a + 2] + params[2 * b : 2 * b + 2])
    torch.testing.assert_close(encode(x, params, SMALL)[0, :2], expected, rtol=1e-5, atol=1e-5)


def values_and_gradients(encode, x, params, config, cotangent):
    """``encode``'s output and the gradients of ``(output * cotangent).sum()`` for params and positions."""
    xi, pi = x.clone().requires_grad_(True), params.clone().requires_grad_(True)
    out = encode(xi, pi, config)
    (out * cotangent).sum().backward()
    return out, pi.grad, xi.grad


@pytest.mark.parametrize("encode", FAST_ENCODERS)
@pytest.mark.parametrize("config", [SMALL, HashGridConfig(num_levels=8, log2_hashmap_size=14, base_resolution=4)])
def test_fast_paths_match_reference(config, encode):
    g = torch.Generator().manual_seed(0)
    x = torch.rand(3000, 3, generator=g)
    params = torch.randn(config.num_params, generator=g)
    cotangent = torch.randn(3000, config.output_dim, generator=g)
    out_ref, gp_ref, gx_ref = values_and_gradients(hash_grid_encode_reference, x, params, config, cotangent)
    out_fast, gp_fast, gx_fast = values_and_gradients(encode, x, params, config, cotangent)
    torch.testing.assert_close(out_fast, out_ref, rtol=0, atol=1e-6)
    torch.testing.assert_close(gp_fast, gp_ref, rtol=1e-5, atol=1e-5)
    # Position gradients scale with the finest resolution; compare relative to their size.
    torch.testing.assert_close(gx_fast, gx_ref, rtol=1e-4, atol=1e-4 * gx_ref.abs().max().item())


def test_gradient_flows_to_exactly_the_touched_entries():
    params = torch.zeros(SMALL.num_params, requires_grad=True)
    x = torch.tensor([[0.31, 0.62, 0.27]])
    out = hash_grid_encode(x, params, SMALL)
    out[:, 0].sum().backward()  # feature 0 of level 0 only
    grad = params.grad.view(-1, 2)
    touched = grad[:, 0].nonzero()[:, 0]
    assert len(touched) == 8 and (touched < SMALL.level_sizes[0]).all()
    assert grad[:, 1].abs().sum() == 0
    assert grad[:, 0].sum().item() == pytest.approx(1.0)  # trilinear weights sum to one


@pytest.mark.parametrize("encode", FAST_ENCODERS)
def test_out_of_range_inputs_wrap_like_uint32(encode):
    config = HashGridConfig(num_levels=3, log2_hashmap_size=10, base_resolution=4, per_level_scale=3.0)
    g = torch.Generator().manual_seed(1)
    x = torch.rand(500, 3, generator=g) * 3.0 - 1.0  # in [-1, 2]: negative cells wrap around
    params = torch.randn(config.num_params, generator=g)
    expected = hash_grid_encode_reference(x, params, config)
    torch.testing.assert_close(encode(x, params, config), expected, rtol=0, atol=1e-6)


def test_config_validation():
    with pytest.raises(ConfigError, match="features_per_level"):
        HashGridConfig(features_per_level=3)
    with pytest.raises(ConfigError, match="per_level_scale"):
        HashGridConfig(per_level_scale=0.5)
    assert HashGridConfig.from_resolutions(16, 1024, num_levels=7).resolutions[-1] == 1024


def test_encoder_module_holds_one_table():
    encoder = HashGridEncoder(SMALL, backend="torch")
    assert list(encoder.state_dict()) == ["params"]
    assert encoder.params.abs().max() <= 1e-4  # tiny-cuda-nn's initialisation range
    assert encoder(torch.rand(5, 3)).shape == (5, 8)


@needs_fused
def test_auto_backend_uses_the_fused_kernels_on_cpu():
    encoder = HashGridEncoder(SMALL)
    assert encoder.implementation(torch.device("cpu")) == "fused"
    x = torch.rand(100, 3)
    expected = hash_grid_encode_reference(x, encoder.params.detach(), SMALL)
    torch.testing.assert_close(encoder(x), expected, rtol=0, atol=1e-6)


@pytest.mark.skipif(tcnn_available(), reason="checks the error raised when tiny-cuda-nn is absent")
def test_tcnn_backend_refused_without_tiny_cuda_nn():
    with pytest.raises(ConfigError, match="tiny-cuda-nn"):
        HashGridEncoder(SMALL, backend="tcnn")


@pytest.mark.tcnn
@pytest.mark.skipif(not tcnn_available(), reason="tiny-cuda-nn is not importable on a CUDA device here")
def test_tcnn_backend_matches_reference_on_the_same_parameters():
    config = HashGridConfig(num_levels=16, log2_hashmap_size=19, base_resolution=16)
    encoder = HashGridEncoder(config, backend="tcnn").cuda()
    with torch.no_grad():
        encoder.params.normal_()
    x = torch.rand(20000, 3, device="cuda")
    ours = hash_grid_encode_reference(x.cpu(), encoder.params.detach().cpu(), config)
    theirs = encoder(x).cpu()
    # tiny-cuda-nn evaluates exp2f with fast math; a few ulps of scale move positions by ~1e-6.
    torch.testing.assert_close(theirs, ours, rtol=1e-5, atol=1e-5)
