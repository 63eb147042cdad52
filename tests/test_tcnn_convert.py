"""tiny-cuda-nn parameter vectors (as in tcnn-trained nerfstudio checkpoints) into nerfdata's layout.

No tiny-cuda-nn checkpoint can be made on a CPU, so the vectors here are written by hand from
tiny-cuda-nn's layout rules, independently of the code under test.
"""

from itertools import pairwise

import pytest
import torch

from nerfdata.encoders.hashgrid import HASH_PRIMES, HashGridEncoder, hash_grid_encode_reference
from nerfdata.errors import CheckpointError
from nerfdata.fields.tcnn_convert import (
    convert_tcnn_hash_grid,
    convert_tcnn_mlp,
    hash_grid_config_from_nerfstudio,
    tcnn_mlp_num_params,
)

# nerfstudio HashEncoding(num_levels=4, min_res=8, max_res=64, log2_hashmap_size=12, features_per_level=2):
# per_level_scale 2, tcnn scales 7, 15, 31, 63; levels 0-1 dense (8^3, 16^3 <= 2^12), 2-3 hashed.
NS_GRID = {"num_levels": 4, "min_res": 8, "max_res": 64, "log2_hashmap_size": 12, "features_per_level": 2}
LEVEL_SIZES = [512, 4096, 4096, 4096]  # min(next multiple of 8 of res^3, 2^12)
SCALES = [7.0, 15.0, 31.0, 63.0]


def tcnn_entry(level: int, vertex: tuple[int, int, int]) -> int:
    """Index of a grid vertex in tiny-cuda-nn's flat table, written out from its rules."""
    resolution = int(SCALES[level]) + 1
    if level < 2:
        index = vertex[0] + vertex[1] * resolution + vertex[2] * resolution**2
    else:
        index = (vertex[0] * HASH_PRIMES[0]) ^ (vertex[1] * HASH_PRIMES[1]) ^ (vertex[2] * HASH_PRIMES[2])
        index &= 0xFFFFFFFF
    return sum(LEVEL_SIZES[:level]) + index % LEVEL_SIZES[level]


def test_nerfstudio_hash_encoding_gives_the_tcnn_layout():
    config = hash_grid_config_from_nerfstudio(**NS_GRID)
    assert config.scales == SCALES
    assert config.level_sizes == LEVEL_SIZES
    assert config.dense_levels == [True, True, False, False]


@pytest.mark.parametrize(("level", "vertex"), [(0, (3, 5, 2)), (1, (14, 0, 9)), (2, (7, 9, 30)), (3, (60, 1, 33))])
def test_a_tcnn_vertex_value_comes_back_at_that_vertex(level, vertex):
    config = hash_grid_config_from_nerfstudio(**NS_GRID)
    tcnn_params = torch.zeros(2 * sum(LEVEL_SIZES))
    entry = tcnn_entry(level, vertex)
    tcnn_params[2 * entry : 2 * entry + 2] = torch.tensor([0.25, -0.5])
    x = torch.tensor([[(v - 0.5) / SCALES[level] for v in vertex]])  # scaled position lands on the vertex
    encoder = HashGridEncoder(config, backend="torch")
    with torch.no_grad():
        encoder.params.copy_(convert_tcnn_hash_grid(tcnn_params, config))
        out = encoder(x)
    torch.testing.assert_close(out[0, 2 * level : 2 * level + 2], torch.tensor([0.25, -0.5]), rtol=0, atol=1e-6)


def test_a_converted_random_grid_encodes_like_the_reference():
    config = hash_grid_config_from_nerfstudio(**NS_GRID)
    tcnn_params = torch.randn(config.num_params, dtype=torch.float64).to(torch.float16)  # tcnn may keep halves
    converted = convert_tcnn_hash_grid(tcnn_params, config)
    assert converted.dtype == torch.float32
    x = torch.rand(500, 3)
    encoder = HashGridEncoder(config)
    with torch.no_grad():
        encoder.params.copy_(converted)
        fast = encoder(x)
    torch.testing.assert_close(fast, hash_grid_encode_reference(x, tcnn_params.float(), config), rtol=1e-5, atol=1e-5)


def test_a_grid_vector_of_the_wrong_size_is_refused():
    config = hash_grid_config_from_nerfstudio(**NS_GRID)
    with pytest.raises(CheckpointError, match="hash grid has"):
        convert_tcnn_hash_grid(torch.zeros(config.num_params - 8), config)
    with pytest.raises(CheckpointError, match="not finite"):
        convert_tcnn_hash_grid(torch.full((config.num_params,), float("nan")), config)


def tcnn_mlp_forward(params: torch.Tensor, x: torch.Tensor, widths: list[int], out_dim: int) -> torch.Tensor:
    """tiny-cuda-nn's forward from its rules: inputs padded with ones, row-major matrices, ReLU."""
    h = torch.cat([x, torch.ones(x.shape[0], widths[0] - x.shape[1])], dim=1)
    offset = 0
    for i, (fan_in, fan_out) in enumerate(pairwise(widths)):
        matrix = params[offset : offset + fan_in * fan_out].reshape(fan_out, fan_in)
        offset += fan_in * fan_out
        h = h @ matrix.T
        if i < len(widths) - 2:
            h = torch.relu(h)
    return h[:, :out_dim]


@pytest.mark.parametrize(("in_dim", "hidden", "layers", "out_dim"), [(63, 64, 2, 3), (32, 64, 1, 16), (4, 16, 1, 1)])
def test_a_converted_mlp_computes_what_tcnn_computes(in_dim, hidden, layers, out_dim):
    pad = lambda n: -(-n // 16) * 16  # noqa: E731
    widths = [pad(in_dim)] + [hidden] * layers + [pad(out_dim)]
    params = torch.randn(tcnn_mlp_num_params(in_dim, hidden, layers, out_dim), dtype=torch.float64) / 4
    assert params.numel() == sum(a * b for a, b in pairwise(widths))
    converted = convert_tcnn_mlp(params, in_dim, hidden, layers, out_dim)
    x = torch.randn(20, in_dim, dtype=torch.float64)
    h = torch.nn.functional.linear(x.float(), converted.weights[0], converted.first_bias)
    for weight in converted.weights[1:]:
        h = torch.nn.functional.linear(torch.relu(h), weight)
    torch.testing.assert_close(h, tcnn_mlp_forward(params, x, widths, out_dim).float(), rtol=1e-4, atol=1e-4)


def test_an_mlp_vector_of_the_wrong_size_is_refused():
    with pytest.raises(CheckpointError, match="MLP has"):
        convert_tcnn_mlp(torch.zeros(100), 32, 64, 1, 16)
