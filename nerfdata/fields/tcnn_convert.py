"""Parameters of tiny-cuda-nn modules, converted for nerfdata's PyTorch backends.

A field trained with tiny-cuda-nn (nerfstudio's default on a GPU) stores each fused module as one
flat vector (``....tcnn_encoding.params``). This module turns those vectors into tensors that
run without tiny-cuda-nn, on a CPU:

* :func:`hash_grid_config_from_nerfstudio` + :func:`convert_tcnn_hash_grid`: nerfstudio's
  ``HashEncoding`` hyper-parameters give the exact :class:`~nerfdata.encoders.hashgrid.HashGridConfig`
  of the tiny-cuda-nn grid, whose flat table nerfdata's hash grid reads as is (nerfdata follows
  tiny-cuda-nn's layout; nerfstudio's own PyTorch fallback does not: no dense levels, another
  resolution formula, no half-cell offset, so its weights are not interchangeable with these).
* :func:`convert_tcnn_mlp`: a ``FullyFusedMLP`` vector (widths 16 to 128) into ``nn.Linear`` weights
  and the first layer's bias. tiny-cuda-nn stores each layer's ``(out, in)`` matrix row-major, one
  after the other, with the input width padded to a multiple of 16 (tiny-cuda-nn fills the padded
  inputs with ones, so their columns act as a bias) and the output padded to a multiple of 16.

Nothing is ever guessed: a vector whose length does not match the layout is a
:class:`~nerfdata.errors.CheckpointError`.
"""

import itertools
import math
from dataclasses import dataclass

import torch
from jaxtyping import Float
from torch import Tensor

from nerfdata.encoders.hashgrid import HashGridConfig
from nerfdata.errors import CheckpointError

__all__ = [
    "TcnnMLPWeights",
    "convert_tcnn_hash_grid",
    "convert_tcnn_mlp",
    "hash_grid_config_from_nerfstudio",
    "tcnn_mlp_num_params",
]

_PAD = 16
"""tiny-cuda-nn pads network input and output widths to multiples of 16."""


def _pad(width: int) -> int:
    return -(-width // _PAD) * _PAD


def hash_grid_config_from_nerfstudio(
    num_levels: int, min_res: int, max_res: int, log2_hashmap_size: int, features_per_level: int
) -> HashGridConfig:
    """The tiny-cuda-nn grid that nerfstudio's ``HashEncoding(implementation="tcnn")`` builds.

    nerfstudio passes ``per_level_scale = exp((ln max_res - ln min_res) / (num_levels - 1))``
    (1 for a single level) and ``base_resolution = min_res``.

    Example:
        >>> config = hash_grid_config_from_nerfstudio(16, 16, 2048, 19, 2)
        >>> config.resolutions[0], config.resolutions[-1]
        (16, 2048)
    """
    growth = math.exp((math.log(max_res) - math.log(min_res)) / (num_levels - 1)) if num_levels > 1 else 1.0
    return HashGridConfig(
        num_levels=num_levels,
        features_per_level=features_per_level,
        log2_hashmap_size=log2_hashmap_size,
        base_resolution=min_res,
        per_level_scale=growth,
    )


def convert_tcnn_hash_grid(params: Tensor, config: HashGridConfig, name: str = "hash grid") -> Float[Tensor, " n"]:
    """A tiny-cuda-nn ``HashGrid`` parameter vector as nerfdata's hash-grid table (float32).

    The layouts are the same (level by level, entry by entry, features innermost), so the values
    are kept; what is checked is that the vector is exactly the grid ``config`` describes.

    Raises:
        CheckpointError: ``params`` is not a finite vector of ``config.num_params`` values.
    """
    if params.dim() != 1 or params.numel() != config.num_params:
        raise CheckpointError(
            f"{name}: tiny-cuda-nn hash grid has {tuple(params.shape)} parameters, the grid in the config "
            f"({config.num_levels} levels, 2^{config.log2_hashmap_size} entries, {config.features_per_level} features) "
            f"has {config.num_params}"
        )
    if not params.is_floating_point() or not torch.isfinite(params).all():
        raise CheckpointError(f"{name}: tiny-cuda-nn hash grid parameters are not finite floats")
    return params.detach().float().contiguous()


def tcnn_mlp_num_params(in_dim: int, hidden_dim: int, num_hidden_layers: int, out_dim: int) -> int:
    """Length of a tiny-cuda-nn MLP's parameter vector (``num_hidden_layers`` hidden layers)."""
    if num_hidden_layers < 1:
        return _pad(out_dim) * _pad(in_dim)
    return hidden_dim * _pad(in_dim) + hidden_dim * hidden_dim * (num_hidden_layers - 1) + _pad(out_dim) * hidden_dim


@dataclass
class TcnnMLPWeights:
    """``nn.Linear`` weights ``(out, in)`` per layer, and the first layer's bias from padded inputs."""

    weights: list[Tensor]
    first_bias: Tensor


def convert_tcnn_mlp(
    params: Tensor, in_dim: int, hidden_dim: int, num_hidden_layers: int, out_dim: int, name: str = "MLP"
) -> TcnnMLPWeights:
    """A tiny-cuda-nn MLP parameter vector as per-layer ``(out, in)`` matrices.

    The padded input columns of the first matrix (inputs tiny-cuda-nn sets to one) become the
    first layer's bias; padded output rows of the last matrix are dropped. Later layers have no bias.

    Raises:
        CheckpointError: the vector's length is not that of the described network.

    Example:
        >>> n = tcnn_mlp_num_params(3, 16, 1, 1)
        >>> converted = convert_tcnn_mlp(torch.zeros(n), 3, 16, 1, 1)
        >>> [tuple(w.shape) for w in converted.weights], tuple(converted.first_bias.shape)
        ([(16, 3), (1, 16)], (16,))
    """
    expected = tcnn_mlp_num_params(in_dim, hidden_dim, num_hidden_layers, out_dim)
    if params.dim() != 1 or params.numel() != expected:
        raise CheckpointError(
            f"{name}: tiny-cuda-nn MLP has {tuple(params.shape)} parameters, a network {in_dim} -> "
            f"{num_hidden_layers} x {hidden_dim} -> {out_dim} has {expected}"
        )
    if not params.is_floating_point() or not torch.isfinite(params).all():
        raise CheckpointError(f"{name}: tiny-cuda-nn MLP parameters are not finite floats")
    params = params.detach().float()
    widths = [_pad(in_dim)] + [hidden_dim] * num_hidden_layers + [_pad(out_dim)]
    matrices, offset = [], 0
    for fan_in, fan_out in itertools.pairwise(widths):
        matrices.append(params[offset : offset + fan_out * fan_in].view(fan_out, fan_in))
        offset += fan_out * fan_in
    first = matrices[0]
    first_bias = first[:, in_dim:].sum(dim=1)
    matrices[0] = first[:, :in_dim]
    matrices[-1] = matrices[-1][:out_dim]
    if len(matrices) == 1:  # no hidden layer: the bias belongs to the output rows kept
        first_bias = first_bias[:out_dim]
    return TcnnMLPWeights([m.contiguous() for m in matrices], first_bias.contiguous())
