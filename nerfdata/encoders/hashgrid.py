"""Multiresolution hash grid (Instant-NGP), in tiny-cuda-nn's exact parameter layout or nerfstudio's.

Two parameter layouts (:attr:`HashGridConfig.layout`), five implementations that must agree on each:

* :func:`hash_grid_encode_reference`: a plain per-level PyTorch loop that follows tiny-cuda-nn's
  ``kernel_grid`` (``encodings/grid.h``) step by step. It is the specification the others are
  tested against, and it is slow.
* :func:`hash_grid_encode`: the PyTorch path, for any device: corner indices built per axis and
  combined by broadcasting, int32 hashing, and a hand-written backward (one ``index_add_`` into the
  table instead of autograd's per-corner indexing backward).
* ``"fused"`` (:mod:`nerfdata.encoders.fused`): C loops compiled on first use, the default on CPU.
* ``"triton"`` (:mod:`nerfdata.encoders.hashgrid_triton`): nerfdata's own GPU kernels, the default
  on CUDA when tiny-cuda-nn is absent.
* ``"tcnn"``: tiny-cuda-nn's own ``HashGrid`` when ``tinycudann`` imports on a CUDA device (its
  layout only).

The ``"tcnn"`` layout, as in tiny-cuda-nn: for level ``l`` the scale is
``exp2(l * log2(per_level_scale)) * base_resolution - 1`` and the resolution ``ceil(scale) + 1``
(float32 arithmetic). A point ``x`` in ``[0, 1]^3`` maps to ``p = scale * x + 0.5``; its cell is
``floor(p)`` and its trilinear weights ``p - floor(p)``. A level whose ``resolution^3`` fits in the
table is dense (index ``x + y*res + z*res^2``), otherwise hashed (``x*1 ^ y*2654435761 ^
z*805459861`` in uint32); the index is taken modulo the level's size, which is
``min(next_multiple_of_8(res^3), 2^log2_hashmap_size)`` entries. All levels live in one flat vector
``params[(level_offset + index) * F + f]``, and outputs are ordered level by level.

The ``"nerfstudio"`` layout is nerfstudio's PyTorch ``HashEncoding`` (``pytorch_fwd``; what a
nerfacto run trained without tiny-cuda-nn stores as ``hash_table``): the scale of level ``l`` is
``floor(base_resolution * per_level_scale**l)`` (float32, as nerfstudio computes it), ``p = scale *
x`` (no half-cell shift), the lower corner ``floor(p)`` and the upper ``ceil(p)`` (so on a grid plane
both corners are the same vertex and the position gradient across it is zero), every level hashed
with the same primes into ``2^log2_hashmap_size`` entries at offset ``l * 2^log2_hashmap_size``.
The flat ``params`` are nerfstudio's ``hash_table`` ``(L * 2^log2_hashmap_size, F)`` row by row, and
outputs are ordered level by level as in the other layout.
"""

import importlib.util
import math
import os
from dataclasses import dataclass
from functools import cached_property
from typing import Any, Literal

import numpy as np
import torch
from jaxtyping import Float
from torch import Tensor, nn

from nerfdata.encoders.fused import fused_available, fused_unavailable_reason, hash_grid_encode_fused
from nerfdata.errors import ConfigError

__all__ = [
    "HashGridConfig",
    "HashGridEncoder",
    "hash_grid_encode",
    "hash_grid_encode_reference",
    "hash_grid_encode_with",
    "hash_grid_implementation",
    "tcnn_available",
    "triton_available",
]

HASH_PRIMES = (1, 2654435761, 805459861)
"""tiny-cuda-nn's per-axis hash factors (1 for x keeps neighbouring cells coherent in memory)."""

Layout = Literal["tcnn", "nerfstudio"]

_UINT32 = 0xFFFFFFFF
# Corner c in 0..7 takes the upper neighbour along axis d when bit d of c is set (tiny-cuda-nn order).
_CORNER_BITS = torch.tensor([[(c >> d) & 1 for d in range(3)] for c in range(8)], dtype=torch.int64)


@dataclass(frozen=True)
class HashGridConfig:
    """Hyper-parameters of a hash grid; they fully determine its parameter layout.

    Example:
        >>> config = HashGridConfig(num_levels=4, log2_hashmap_size=12, base_resolution=8, per_level_scale=2.0)
        >>> config.resolutions, config.num_params
        ([8, 16, 32, 64], 25600)
    """

    num_levels: int = 16
    features_per_level: int = 2
    log2_hashmap_size: int = 19
    base_resolution: int = 16
    per_level_scale: float = 1.3819128799677124  # (2048 / 16) ** (1 / 15): finest level 2048
    layout: Layout = "tcnn"
    """Which parameter layout the table is in: tiny-cuda-nn's ("tcnn") or nerfstudio's PyTorch
    ``HashEncoding`` ("nerfstudio", see the module's docstring)."""

    def __post_init__(self) -> None:
        if self.layout not in ("tcnn", "nerfstudio"):
            raise ConfigError(f"hash grid layout must be 'tcnn' or 'nerfstudio', got {self.layout!r}")
        if not 1 <= self.num_levels <= 32:
            raise ConfigError(f"hash grid num_levels must be in [1, 32], got {self.num_levels}")
        if self.features_per_level not in (1, 2, 4, 8):
            raise ConfigError(f"hash grid features_per_level must be 1, 2, 4 or 8, got {self.features_per_level}")
        if not 4 <= self.log2_hashmap_size <= 30:
            raise ConfigError(f"hash grid log2_hashmap_size must be in [4, 30], got {self.log2_hashmap_size}")
        if self.base_resolution < 2:
            raise ConfigError(f"hash grid base_resolution must be >= 2, got {self.base_resolution}")
        if not (math.isfinite(self.per_level_scale) and self.per_level_scale >= 1.0):
            raise ConfigError(f"hash grid per_level_scale must be >= 1, got {self.per_level_scale}")

    @classmethod
    def from_resolutions(
        cls, base_resolution: int, max_resolution: int, num_levels: int = 16, **kwargs: Any
    ) -> "HashGridConfig":
        """Choose ``per_level_scale`` so that the finest level has about ``max_resolution`` cells."""
        scale = math.exp(math.log(max_resolution / base_resolution) / max(num_levels - 1, 1))
        return cls(num_levels=num_levels, base_resolution=base_resolution, per_level_scale=scale, **kwargs)

    @classmethod
    def nerfstudio(
        cls, num_levels: int, min_res: int, max_res: int, log2_hashmap_size: int, features_per_level: int = 2
    ) -> "HashGridConfig":
        """The layout of nerfstudio's ``HashEncoding(num_levels, min_res, max_res, ...)`` (its growth factor).

        Example:
            >>> HashGridConfig.nerfstudio(8, 16, 512, 16).scales
            [16.0, 26.0, 43.0, 70.0, 115.0, 190.0, 312.0, 511.0]
        """
        growth = float(np.exp((np.log(max_res) - np.log(min_res)) / (num_levels - 1))) if num_levels > 1 else 1.0
        return cls(
            num_levels=num_levels, features_per_level=features_per_level, log2_hashmap_size=log2_hashmap_size,
            base_resolution=min_res, per_level_scale=growth, layout="nerfstudio",
        )

    @cached_property
    def scales(self) -> list[float]:
        """Per-level ``scale``, computed in float32 exactly as tiny-cuda-nn (or nerfstudio) does."""
        if self.layout == "nerfstudio":
            # nerfstudio: torch.floor(min_res * growth_factor ** torch.arange(L)), in float32.
            levels = torch.arange(self.num_levels)
            return torch.floor(self.base_resolution * self.per_level_scale**levels).float().tolist()
        log2_scale = np.log2(np.float32(self.per_level_scale))
        levels = np.arange(self.num_levels, dtype=np.float32)
        scales = np.exp2(levels * log2_scale) * np.float32(self.base_resolution) - np.float32(1.0)
        return [float(s) for s in scales.astype(np.float32)]

    @cached_property
    def resolutions(self) -> list[int]:
        """Per-level number of grid vertices along each axis (of the unit cube)."""
        return [math.ceil(s) + 1 for s in self.scales]

    @cached_property
    def level_sizes(self) -> list[int]:
        """Per-level number of table entries (each holding ``features_per_level`` values)."""
        table = 1 << self.log2_hashmap_size
        if self.layout == "nerfstudio":
            return [table] * self.num_levels
        return [min(-(-(r**3) // 8) * 8, table) for r in self.resolutions]

    @cached_property
    def level_offsets(self) -> list[int]:
        """Per-level first entry in the flat table (entries, not values)."""
        return [int(o) for o in np.cumsum([0, *self.level_sizes[:-1]])]

    @cached_property
    def dense_levels(self) -> list[bool]:
        """Whether each level is indexed densely (``res^3 <= table size``) rather than hashed."""
        table = 1 << self.log2_hashmap_size
        return [self.layout == "tcnn" and r**3 <= table for r in self.resolutions]

    @property
    def position_shift(self) -> float:
        """Added to ``scale * x`` before the cell is taken: half a cell in tiny-cuda-nn, none in nerfstudio."""
        return 0.5 if self.layout == "tcnn" else 0.0

    @property
    def ceil_corners(self) -> bool:
        """Whether the upper corner is ``ceil(p)`` (nerfstudio) rather than ``floor(p) + 1`` (tiny-cuda-nn)."""
        return self.layout == "nerfstudio"

    @property
    def num_entries(self) -> int:
        return sum(self.level_sizes)

    @property
    def num_params(self) -> int:
        return self.num_entries * self.features_per_level

    @property
    def output_dim(self) -> int:
        return self.num_levels * self.features_per_level

    def tcnn_config(self) -> dict[str, Any]:
        """The tiny-cuda-nn encoding config with this layout (the "tcnn" layout only)."""
        if self.layout != "tcnn":
            raise ConfigError(f"a hash grid in the {self.layout!r} layout has no tiny-cuda-nn config")
        return {
            "otype": "HashGrid",
            "n_levels": self.num_levels,
            "n_features_per_level": self.features_per_level,
            "log2_hashmap_size": self.log2_hashmap_size,
            "base_resolution": self.base_resolution,
            "per_level_scale": self.per_level_scale,
            "interpolation": "Linear",
        }


def _scaled_positions(x: Tensor, scale: Tensor | float, shift: float) -> tuple[Tensor, Tensor, Tensor]:
    """``p = scale * x + shift`` as one rounding (tiny-cuda-nn uses ``fmaf``; with ``shift = 0`` it is
    nerfstudio's float32 product); returns the cell ``floor(p)``, ``ceil(p)`` and the fraction ``p - floor(p)``."""
    pos = (x.double() * scale + shift).float()
    floor = torch.floor(pos)
    return floor.long(), torch.ceil(pos).long(), pos - floor


def _level_index(corner: Tensor, resolution: int, size: int, dense: bool) -> Tensor:
    """tiny-cuda-nn's ``grid_index`` for integer corners ``(..., 3)``: dense or hashed, modulo size."""
    corner = corner & _UINT32  # negative cells wrap like tiny-cuda-nn's uint32 cast
    if dense:
        index = corner[..., 0] + corner[..., 1] * resolution + corner[..., 2] * resolution**2
    else:
        index = (corner[..., 0] * HASH_PRIMES[0]) ^ (corner[..., 1] * HASH_PRIMES[1])
        index = index ^ (corner[..., 2] * HASH_PRIMES[2])
    return (index & _UINT32) % size


def hash_grid_encode_reference(
    x: Float[Tensor, "num_points 3"], params: Float[Tensor, " num_params"], config: HashGridConfig
) -> Float[Tensor, "num_points output_dim"]:
    """Reference hash-grid encoding: a per-level loop following tiny-cuda-nn's kernel line by line
    (or, in the "nerfstudio" layout, nerfstudio's ``HashEncoding.pytorch_fwd``: its corners, weights and hash).

    Differentiable through plain autograd (w.r.t. ``params`` and ``x``). Slow: it is the
    specification the fast path and the tiny-cuda-nn backend are tested against.

    Args:
        x: Points in the unit cube ``[0, 1]^3``.
        params: The flat table, ``config.num_params`` values.
        config: The grid's layout.

    Returns:
        Features ordered level by level, ``(num_points, num_levels * features_per_level)``.
    """
    table = params.view(-1, config.features_per_level)
    outputs = []
    for level in range(config.num_levels):
        cell, ceil, frac = _scaled_positions(x, config.scales[level], config.position_shift)
        upper = ceil if config.ceil_corners else cell + 1  # nerfstudio's corner rule, or tiny-cuda-nn's
        level_table = table[config.level_offsets[level] : config.level_offsets[level] + config.level_sizes[level]]
        result = torch.zeros(x.shape[0], config.features_per_level, dtype=params.dtype, device=x.device)
        for corner_bits in _CORNER_BITS.tolist():
            weight = torch.ones_like(frac[:, 0])
            for dim, bit in enumerate(corner_bits):
                weight = weight * (frac[:, dim] if bit else 1 - frac[:, dim])
            corner = torch.where(torch.tensor(corner_bits, dtype=torch.bool, device=x.device), upper, cell)
            index = _level_index(
                corner, config.resolutions[level], config.level_sizes[level], config.dense_levels[level]
            )
            result = result + weight[:, None] * level_table[index]
        outputs.append(result)
    return torch.cat(outputs, dim=-1)


def _to_int32(value: int) -> int:
    """The int32 with the same bits as a uint32 constant (int32 products wrap like uint32 ones)."""
    return value - (1 << 32) if value >= 1 << 31 else value


def _fast_level_corners(x64: Tensor, config: HashGridConfig, level: int) -> tuple[Tensor, Tensor, Tensor]:
    """Flat table entries ``(N, 8)``, trilinear weights ``(N, 8)`` and fractions ``(N, 3)`` of one level.

    Corner ``c = 4z + 2y + x`` (bit 0 is the x axis), as in tiny-cuda-nn. The index of each corner
    is combined from per-axis terms ``(N, 3, 2)`` by broadcasting. Hashed levels work in int32,
    whose wrapping products have the same low 32 bits as tiny-cuda-nn's uint32 ones; dense levels
    (small) use int64 with tiny-cuda-nn's uint32 wrap-around, so any input gives its index.
    """
    cell, ceil, frac = _scaled_positions(x64, config.scales[level], config.position_shift)
    upper = ceil if config.ceil_corners else cell + 1
    size, resolution = config.level_sizes[level], config.resolutions[level]
    if config.dense_levels[level]:
        vertices = torch.stack([cell, upper], dim=-1) & _UINT32
        multipliers = torch.tensor([1, resolution, resolution**2], device=x64.device)
    else:
        vertices = torch.stack([cell, upper], dim=-1).int()
        multipliers = torch.tensor([_to_int32(p) for p in HASH_PRIMES], dtype=torch.int32, device=x64.device)
    terms = vertices * multipliers[None, :, None]
    tx, ty, tz = terms[:, 0, None, None, :], terms[:, 1, None, :, None], terms[:, 2, :, None, None]
    if config.dense_levels[level]:
        index = ((tx + ty + tz) & _UINT32) % size
    else:
        index = (tx ^ ty ^ tz) & (size - 1)  # hashed levels hold 2^log2_hashmap_size entries
    index = index.reshape(-1, 8).long() + config.level_offsets[level]
    # Weights multiplied in tiny-cuda-nn's order (x, then y, then z) for bit-identical rounding.
    w = torch.stack([1 - frac, frac], dim=-1)  # (N, 3, 2)
    weights = (w[:, 0, None, None, :] * w[:, 1, None, :, None]) * w[:, 2, :, None, None]
    return index, weights.reshape(-1, 8), frac


class _HashGridFunction(torch.autograd.Function):
    """Per-level forward on contiguous arrays, and a backward that scatters with ``index_add_``."""

    @staticmethod
    def forward(ctx: Any, x: Tensor, params: Tensor, config: HashGridConfig) -> Tensor:
        table = params.view(-1, config.features_per_level)
        x64 = x.double()
        keep = any(ctx.needs_input_grad[:2])  # nothing to save for inference
        outputs, indices, weights, fracs = [], [], [], []
        for level in range(config.num_levels):
            index, weight, frac = _fast_level_corners(x64, config, level)
            features = table.index_select(0, index.reshape(-1)).view(-1, 8, config.features_per_level)
            outputs.append(torch.bmm(weight[:, None, :], features)[:, 0])
            if keep:
                indices.append(index)
                weights.append(weight)
                fracs.append(frac)
        if keep:
            ctx.config = config
            ctx.save_for_backward(params, torch.stack(indices, dim=1), torch.stack(weights, dim=1))
            ctx.fracs = torch.stack(fracs, dim=1) if ctx.needs_input_grad[0] else None
        return torch.cat(outputs, dim=-1)

    @staticmethod
    def backward(ctx: Any, grad_out: Tensor) -> tuple[Tensor | None, Tensor | None, None]:
        config: HashGridConfig = ctx.config
        params, index, weights = ctx.saved_tensors  # index, weights: (N, L, 8)
        num_features = config.features_per_level
        grad_out = grad_out.reshape(grad_out.shape[0], config.num_levels, num_features)
        grad_x = grad_params = None
        if ctx.needs_input_grad[1]:
            values = (weights[..., None] * grad_out[:, :, None, :]).reshape(-1, num_features)
            grad_table = torch.zeros(
                params.shape[0] // num_features, num_features, dtype=grad_out.dtype, device=grad_out.device
            )
            grad_table.index_add_(0, index.reshape(-1), values)
            grad_params = grad_table.reshape(-1)
        if ctx.needs_input_grad[0]:
            features = params.view(-1, num_features)[index]  # (N, L, 8, F)
            scales = torch.tensor(config.scales, dtype=grad_out.dtype, device=grad_out.device)
            grad_x = _position_gradient(features, ctx.fracs, scales, grad_out)
        return grad_x, grad_params, None


def _position_gradient(features: Tensor, frac: Tensor, scales: Tensor, grad_out: Tensor) -> Tensor:
    """d(loss)/dx of trilinear interpolation: per axis, the weighted difference across the cell.

    Args:
        features: Corner features ``(N, L, 8, F)``; frac: fractions ``(N, L, 3)``; scales: ``(L,)``;
        grad_out: ``(N, L, F)``.
    """
    n, levels = features.shape[:2]
    corners = features.reshape(n, levels, 2, 2, 2, -1)  # z, y, x, F
    w = [torch.stack([1 - frac[..., d], frac[..., d]], dim=-1) for d in range(3)]  # (N, L, 2) each
    d_x = corners[:, :, :, :, 1] - corners[:, :, :, :, 0]  # (N, L, z, y, F)
    d_y = corners[:, :, :, 1] - corners[:, :, :, 0]  # (N, L, z, x, F)
    d_z = corners[:, :, 1] - corners[:, :, 0]  # (N, L, y, x, F)
    g_x = torch.einsum("nlzyf,nlz,nly->nlf", d_x, w[2], w[1])
    g_y = torch.einsum("nlzxf,nlz,nlx->nlf", d_y, w[2], w[0])
    g_z = torch.einsum("nlyxf,nly,nlx->nlf", d_z, w[1], w[0])
    per_axis = torch.stack([g_x, g_y, g_z], dim=-1) * scales[None, :, None, None]  # (N, L, F, 3)
    return (per_axis * grad_out[..., None]).sum(dim=(1, 2))


def hash_grid_encode(
    x: Float[Tensor, "num_points 3"], params: Float[Tensor, " num_params"], config: HashGridConfig
) -> Float[Tensor, "num_points output_dim"]:
    """Fast hash-grid encoding; the same result as :func:`hash_grid_encode_reference`.

    Differentiable w.r.t. ``params`` and ``x`` (first order).

    Example:
        >>> config = HashGridConfig(num_levels=2, log2_hashmap_size=10, base_resolution=4)
        >>> params = torch.zeros(config.num_params)
        >>> hash_grid_encode(torch.rand(5, 3), params, config).shape
        torch.Size([5, 4])
    """
    return _HashGridFunction.apply(x.contiguous(), params, config)


def tcnn_available() -> bool:
    """Whether tiny-cuda-nn imports and a CUDA device is present.

    ``import tinycudann`` raises ``EnvironmentError`` (not ``ImportError``) without CUDA.
    """
    if not torch.cuda.is_available():
        return False
    try:
        import tinycudann  # noqa: F401
    except (ImportError, OSError):
        return False
    return True


def triton_interpreted() -> bool:
    """Whether Triton kernels run in its interpreter (``TRITON_INTERPRET=1``: on CPU tensors, for tests)."""
    return os.environ.get("TRITON_INTERPRET", "0") == "1"


def triton_available(device: torch.device | str = "cuda") -> bool:
    """Whether the Triton kernels can run on ``device``: Triton importable, and a CUDA device (or,
    for CPU tensors, Triton's interpreter switched on)."""
    if importlib.util.find_spec("triton") is None:
        return False
    kind = torch.device(device).type
    return (kind == "cuda" and torch.cuda.is_available()) or (kind == "cpu" and triton_interpreted())


Backend = Literal["auto", "torch", "fused", "triton", "tcnn"]


def hash_grid_implementation(backend: Backend, config: HashGridConfig, device: torch.device) -> str:
    """What ``backend`` runs for inputs on ``device``: "torch", "fused", "triton" or "tcnn".

    ``"auto"``: tiny-cuda-nn on CUDA when it imports and the layout is its own, else Triton; the
    fused C kernels on the CPU when they compiled; the PyTorch path otherwise.
    """
    if backend != "auto":
        return backend
    if device.type == "cuda":
        if config.layout == "tcnn" and tcnn_available():
            return "tcnn"
        return "triton" if triton_available(device) else "torch"
    return "fused" if device.type == "cpu" and fused_available() else "torch"


def hash_grid_encode_with(
    implementation: str, x: Float[Tensor, "num_points 3"], params: Float[Tensor, " num_params"],
    config: HashGridConfig,
) -> Float[Tensor, "num_points output_dim"]:
    """Encode with nerfdata's own ``implementation`` ("torch", "fused" or "triton"); tiny-cuda-nn's
    needs its module (:class:`HashGridEncoder`)."""
    if implementation == "fused":
        return hash_grid_encode_fused(x, params, config)
    if implementation == "triton":
        from nerfdata.encoders.hashgrid_triton import hash_grid_encode_triton

        return hash_grid_encode_triton(x, params, config)
    if implementation != "torch":
        raise ValueError(f"no nerfdata hash grid implementation {implementation!r}")
    return hash_grid_encode(x, params, config)


class HashGridEncoder(nn.Module):
    """A hash grid with its table as a parameter; ``backend`` picks the implementation.

    ``"auto"`` uses tiny-cuda-nn for CUDA inputs when it is importable (and the layout is its own),
    else nerfdata's Triton kernels; the fused C kernels for CPU inputs when they compiled; the
    PyTorch path otherwise. ``"torch"``, ``"fused"``, ``"triton"`` and ``"tcnn"`` force one. All read
    the same ``params`` (in ``config.layout``), so a checkpoint loads into any of them.
    """

    def __init__(self, config: HashGridConfig, backend: Backend = "auto") -> None:
        super().__init__()
        if backend not in ("auto", "torch", "fused", "triton", "tcnn"):
            raise ConfigError(
                f"hash grid backend must be 'auto', 'torch', 'fused', 'triton' or 'tcnn', got {backend!r}"
            )
        if backend == "tcnn" and config.layout != "tcnn":
            raise ConfigError(f"hash grid backend 'tcnn' computes the 'tcnn' layout only, not {config.layout!r}")
        if backend == "tcnn" and not tcnn_available():
            raise ConfigError("hash grid backend 'tcnn' needs tiny-cuda-nn importable on a CUDA device")
        if backend == "triton" and importlib.util.find_spec("triton") is None:
            raise ConfigError(
                "hash grid backend 'triton' needs the triton package (it comes with PyTorch's CUDA builds)"
            )
        if backend == "fused" and not fused_available():
            raise ConfigError(f"hash grid backend 'fused' is unavailable: {fused_unavailable_reason()}")
        self.config = config
        self.backend = backend
        # tiny-cuda-nn initialises the table uniformly in [-1e-4, 1e-4].
        self.params = nn.Parameter(torch.empty(config.num_params).uniform_(-1e-4, 1e-4))
        self._tcnn: list[Any] = []  # kept out of the module tree so state_dict holds one table

    def implementation(self, device: torch.device) -> str:
        """The implementation used for inputs on ``device``: "torch", "fused", "triton" or "tcnn"."""
        return hash_grid_implementation(self.backend, self.config, device)

    def forward(self, x: Float[Tensor, "num_points 3"]) -> Float[Tensor, "num_points output_dim"]:
        """Encode points of the unit cube."""
        implementation = self.implementation(x.device)
        if implementation == "tcnn":
            return self._tcnn_encode(x)
        return hash_grid_encode_with(implementation, x, self.params, self.config)

    def _tcnn_encode(self, x: Tensor) -> Tensor:
        import tinycudann as tcnn

        if not self._tcnn:
            module = tcnn.Encoding(3, self.config.tcnn_config(), dtype=torch.float32).to(x.device)
            self._tcnn.append(module)
        module = self._tcnn[0]
        module.params = self.params  # share our table; the tcnn module only supplies the kernel
        return module(x).float()
