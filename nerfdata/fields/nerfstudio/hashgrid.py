"""nerfstudio's PyTorch hash grids evaluated by nerfdata's kernels, their tables untouched.

A nerfacto run trained without tiny-cuda-nn (on a CPU, or where it would not build) stores each
``HashEncoding`` as a ``hash_table`` in nerfstudio's own layout, which nerfstudio evaluates with
per-corner PyTorch indexing (``pytorch_fwd``). :func:`swap_hash_encodings` puts a
:class:`NerfstudioHashGrid` in place of each: the same ``hash_table`` parameter (same name, shape
and values, so the state dict is the checkpoint's), evaluated by nerfdata's fused C kernels on the
CPU and Triton on CUDA, in the ``"nerfstudio"`` layout of
:class:`~nerfdata.encoders.hashgrid.HashGridConfig`. A grid is swapped only when its layout is one
nerfdata computes (same per-level scales) and the swapped module gives nerfstudio's own outputs on
probe points; otherwise nerfstudio's module stays, and the loaded field's metadata says why.
Imports nerfstudio (the ``[nerfstudio]`` extra).
"""

import torch
from jaxtyping import Float
from torch import Tensor, nn

from nerfdata.encoders.hashgrid import HashGridConfig, hash_grid_encode_with, hash_grid_implementation
from nerfdata.errors import ConfigError
from nerfdata.fields.nerfstudio.tcnn import replace_module_everywhere

__all__ = ["NerfstudioHashGrid", "nerfstudio_layout_of", "swap_hash_encodings"]

_PROBE_POINTS = 4096
_PROBE_TOLERANCE = 1e-5
"""Largest difference from nerfstudio's output on the probes, relative to the largest output (at least 1):
the two sum the same eight float32 products in another order."""


def nerfstudio_layout_of(encoding: nn.Module) -> HashGridConfig:
    """The ``"nerfstudio"``-layout grid of nerfstudio's ``HashEncoding`` ``encoding`` (its exact growth factor).

    Raises:
        ConfigError: a hyper-parameter nerfdata's grid does not take (e.g. 3 features a level).
    """
    return HashGridConfig(
        num_levels=int(encoding.num_levels), features_per_level=int(encoding.features_per_level),
        log2_hashmap_size=int(encoding.log2_hashmap_size), base_resolution=int(encoding.min_res),
        per_level_scale=float(encoding.growth_factor), layout="nerfstudio",
    )


class NerfstudioHashGrid(nn.Module):
    """nerfstudio's ``HashEncoding`` table on nerfdata's kernels, called like that module.

    ``hash_table`` is the encoding's own parameter, ``(num_levels * 2^log2_hashmap_size, features)``.
    """

    def __init__(self, encoding: nn.Module, config: HashGridConfig) -> None:
        super().__init__()
        if tuple(encoding.hash_table.shape) != (config.num_entries, config.features_per_level):
            raise ConfigError(
                f"hash_table of shape {tuple(encoding.hash_table.shape)} is not the layout's "
                f"({config.num_entries}, {config.features_per_level})"
            )
        self.config = config
        self.hash_table = encoding.hash_table
        self.in_dim = 3
        self.num_levels = config.num_levels
        self.features_per_level = config.features_per_level

    def get_out_dim(self) -> int:
        return self.config.output_dim

    def forward(self, in_tensor: Float[Tensor, "*batch 3"]) -> Float[Tensor, "*batch output_dim"]:
        flat = in_tensor.reshape(-1, 3).float()
        implementation = hash_grid_implementation("auto", self.config, flat.device)
        out = hash_grid_encode_with(implementation, flat, self.hash_table.reshape(-1), self.config)
        return out.reshape(*in_tensor.shape[:-1], -1)


def _probe_points(generator: torch.Generator) -> Tensor:
    """Points in and around the unit cube, some on the finest grid planes (where the corner rule matters)."""
    x = torch.rand(_PROBE_POINTS, 3, generator=generator)
    x[: _PROBE_POINTS // 8] = torch.randint(0, 65, (_PROBE_POINTS // 8, 3), generator=generator) / 64.0
    x[-_PROBE_POINTS // 8 :] = x[-_PROBE_POINTS // 8 :] * 1.2 - 0.1
    return x


def _swap_refusal(encoding: nn.Module, candidate: NerfstudioHashGrid) -> str:
    """Why ``candidate`` must not replace ``encoding`` (empty when it gives nerfstudio's outputs)."""
    scalings = [float(s) for s in encoding.scalings.reshape(-1).tolist()]
    if scalings != candidate.config.scales:
        return f"per-level scales {scalings} are not nerfdata's {candidate.config.scales}"
    x = _probe_points(torch.Generator().manual_seed(0)).to(encoding.hash_table.device)
    with torch.no_grad():
        theirs, ours = encoding.pytorch_fwd(x), candidate(x)
    error = float((theirs - ours).abs().max())
    bound = _PROBE_TOLERANCE * max(float(theirs.abs().max()), 1.0)
    if not error <= bound:  # also refuses NaN
        return f"differs from nerfstudio's output by {error:.3g} on probe points (bound {bound:.3g})"
    return ""


def swap_hash_encodings(model: nn.Module) -> dict[str, str]:
    """Put :class:`NerfstudioHashGrid` in place of each PyTorch ``HashEncoding`` of ``model`` that it reproduces.

    Call it once the weights are loaded (the probes compare outputs on them). Returns, per grid
    (its first module name), ``"nerfdata"`` or ``"nerfstudio: <why not swapped>"``.
    """
    from nerfstudio.field_components.encodings import HashEncoding

    report: dict[str, str] = {}
    seen: set[int] = set()
    for name, module in list(model.named_modules()):
        if not isinstance(module, HashEncoding) or id(module) in seen or module.tcnn_encoding is not None:
            continue
        seen.add(id(module))
        try:
            candidate = NerfstudioHashGrid(module, nerfstudio_layout_of(module))
            refusal = _swap_refusal(module, candidate)
        except ConfigError as error:
            refusal = str(error)
        if refusal:
            report[name] = f"nerfstudio: {refusal}"
        else:
            replace_module_everywhere(model, module, candidate)
            report[name] = "nerfdata"
    return report
