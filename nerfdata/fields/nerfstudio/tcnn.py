"""tiny-cuda-nn weights of a nerfstudio checkpoint, placed into the model built on the CPU.

nerfstudio builds its modules with tiny-cuda-nn on a GPU and with PyTorch elsewhere, and the two
store different tensors (``...tcnn_encoding.params`` / ``...model.params`` flat vectors against
``hash_table`` and ``layers.N.weight``). nerfstudio's PyTorch hash grid is not tiny-cuda-nn's
(see :mod:`nerfdata.fields.tcnn_convert`), so a tiny-cuda-nn grid cannot be copied into it:
:func:`convert_tcnn_modules` swaps each such grid for nerfdata's hash grid (tiny-cuda-nn's exact
layout), copies MLP vectors into the PyTorch MLPs (bias from tiny-cuda-nn's padded inputs, zero
elsewhere), and swaps the spherical-harmonics encodings for tiny-cuda-nn's (nerfstudio's
PyTorch one is evaluated on ``(d + 1) / 2``, tiny-cuda-nn's maps that back to ``d``).

Every tiny-cuda-nn vector must convert; anything unexpected is a :class:`CheckpointError`.
:func:`convert_tcnn_modules` imports nerfstudio (the ``[nerfstudio]`` extra).
"""

from pathlib import Path

import torch
from torch import Tensor, nn

from nerfdata.encoders.hashgrid import HashGridConfig, HashGridEncoder
from nerfdata.encoders.sh import sh_encode
from nerfdata.errors import CheckpointError
from nerfdata.fields.tcnn_convert import (
    convert_tcnn_hash_grid,
    convert_tcnn_mlp,
    tcnn_mlp_num_params,
)

__all__ = [
    "TcnnHashGrid",
    "TcnnSphericalHarmonics",
    "convert_tcnn_modules",
    "hash_grid_config_of",
    "replace_module_everywhere",
]

_FULLY_FUSED_WIDTHS = (16, 32, 64, 128)


class TcnnHashGrid(nn.Module):
    """A tiny-cuda-nn hash grid on nerfdata's backends, called like nerfstudio's ``HashEncoding``."""

    def __init__(self, encoder: HashGridEncoder) -> None:
        super().__init__()
        self.encoder = encoder

    def forward(self, in_tensor: Tensor) -> Tensor:
        flat = in_tensor.reshape(-1, 3).float()
        return self.encoder(flat).reshape(*in_tensor.shape[:-1], -1)


class TcnnSphericalHarmonics(nn.Module):
    """tiny-cuda-nn's ``SphericalHarmonics`` encoding of inputs in ``[0, 1]^3`` (directions ``(d + 1) / 2``)."""

    def __init__(self, degree: int) -> None:
        super().__init__()
        self.degree = degree

    def forward(self, in_tensor: Tensor) -> Tensor:
        return sh_encode(in_tensor * 2 - 1, self.degree)


def hash_grid_config_of(encoding: nn.Module) -> HashGridConfig:
    """The tiny-cuda-nn grid nerfstudio's ``HashEncoding`` ``encoding`` asks for (its exact per-level scale)."""
    return HashGridConfig(
        num_levels=encoding.num_levels, features_per_level=encoding.features_per_level,
        log2_hashmap_size=encoding.log2_hashmap_size, base_resolution=encoding.min_res,
        per_level_scale=float(encoding.growth_factor),
    )


def _grid(path: Path, name: str, encoding: nn.Module, params: Tensor) -> TcnnHashGrid:
    """nerfdata's hash grid holding the tiny-cuda-nn table of nerfstudio's ``HashEncoding`` ``encoding``."""
    config = hash_grid_config_of(encoding)
    encoder = HashGridEncoder(config)
    with torch.no_grad():
        encoder.params.copy_(convert_tcnn_hash_grid(params, config, f"{path}: {name}"))
    return TcnnHashGrid(encoder)


def _mlp_tensors(path: Path, name: str, mlp: nn.Module, params: Tensor) -> dict[str, Tensor]:
    """State-dict entries of nerfstudio's PyTorch ``MLP`` ``mlp`` (prefix ``name``) from a tcnn vector."""
    if mlp.skip_connections or mlp.layer_width not in _FULLY_FUSED_WIDTHS:
        raise CheckpointError(
            f"{path}: {name}: only tiny-cuda-nn FullyFusedMLPs without skip connections convert "
            f"(width {mlp.layer_width}, skips {mlp.skip_connections})"
        )
    converted = convert_tcnn_mlp(
        params, mlp.in_dim, mlp.layer_width, mlp.num_layers - 1, mlp.out_dim, f"{path}: {name}"
    )
    tensors: dict[str, Tensor] = {}
    for i, weight in enumerate(converted.weights):
        tensors[f"{name}.layers.{i}.weight"] = weight
        tensors[f"{name}.layers.{i}.bias"] = converted.first_bias if i == 0 else weight.new_zeros(weight.shape[0])
    return tensors


def replace_module_everywhere(model: nn.Module, old: nn.Module, new: nn.Module) -> None:
    """Put ``new`` wherever ``old`` is registered (nerfstudio registers some encodings twice)."""
    for parent in model.modules():
        for child_name, child in list(parent.named_children()):
            if child is old:
                if isinstance(parent, nn.Sequential):
                    parent[int(child_name)] = new
                else:
                    setattr(parent, child_name, new)


def convert_tcnn_modules(path: Path, model: nn.Module, tensors: dict[str, Tensor]) -> dict[str, Tensor]:
    """The model's state dict from a checkpoint that may hold tiny-cuda-nn vectors.

    Modules of ``model`` (built with PyTorch modules) whose weights come as tiny-cuda-nn vectors
    are converted in place (grids swapped for :class:`TcnnHashGrid`); the returned tensors then
    match ``model.state_dict()``. A checkpoint without tiny-cuda-nn vectors is returned unchanged.
    """
    from nerfstudio.field_components.encodings import HashEncoding, SHEncoding
    from nerfstudio.field_components.mlp import MLP, MLPWithHashEncoding

    expected = set(model.state_dict())
    vectors = {key: value for key, value in tensors.items() if key.endswith(".params") and key not in expected}
    if not vectors:
        return tensors
    out = {key: value for key, value in tensors.items() if key not in vectors}
    grids: dict[int, tuple[nn.Module, TcnnHashGrid]] = {}
    for key, params in vectors.items():
        name = key.removesuffix(".params").removesuffix(".tcnn_encoding")
        try:
            module = model.get_submodule(name)
        except AttributeError:
            raise CheckpointError(f"{path}: tiny-cuda-nn tensor {key!r} belongs to no module of the model") from None
        parent = model.get_submodule(name.rpartition(".")[0]) if "." in name else model
        params = params.reshape(-1)
        if isinstance(module, HashEncoding):
            if id(module) not in grids:
                grids[id(module)] = (module, _grid(path, name, module, params))
        elif isinstance(module, MLP):
            out.update(_mlp_tensors(path, name, module, params))
        elif name.endswith(".model") and isinstance(parent, MLPWithHashEncoding):
            encoding, mlp = module[0], module[1]
            n_mlp = tcnn_mlp_num_params(mlp.in_dim, mlp.layer_width, mlp.num_layers - 1, mlp.out_dim)
            out.update(_mlp_tensors(path, f"{name}.1", mlp, params[:n_mlp]))
            grids[id(encoding)] = (encoding, _grid(path, f"{name}.0", encoding, params[n_mlp:]))
        else:
            raise CheckpointError(
                f"{path}: tiny-cuda-nn tensor {key!r} is for a {type(module).__name__}, which does not convert"
            )
    for old, new in grids.values():
        replace_module_everywhere(model, old, new)
    for module in list(model.modules()):
        if isinstance(module, SHEncoding):
            replace_module_everywhere(model, module, TcnnSphericalHarmonics(module.levels))
    # The swapped grids hold their converted tables; take the model's own names for them.
    state = model.state_dict()
    out.update({key: value for key, value in state.items() if ".encoder.params" in key})
    return out
