"""The fused CPU hash-grid backend: ``hashgrid_fused.c`` loaded through :mod:`nerfdata.native`.

There is no maintained CPU hash-grid library to depend on, so nerfdata carries this small C file
(three loops, no dependencies beyond libm and OpenMP). Without a compiler :func:`fused_available`
is ``False`` and the PyTorch path is used. It is tested against
:func:`~nerfdata.encoders.hashgrid.hash_grid_encode_reference` like every backend.
"""

import ctypes
from pathlib import Path
from typing import Any

import torch
from jaxtyping import Float
from torch import Tensor

from nerfdata.native import load_library, unavailable_reason

__all__ = ["fused_available", "fused_unavailable_reason", "hash_grid_encode_fused"]

_SOURCE = Path(__file__).with_name("hashgrid_fused.c")
_LEVELS: dict[Any, ctypes.Array] = {}


class _Level(ctypes.Structure):
    _fields_ = [
        ("scale", ctypes.c_float),
        ("resolution", ctypes.c_uint32),
        ("size", ctypes.c_uint32),
        ("offset", ctypes.c_uint32),
        ("dense", ctypes.c_uint32),
        ("shift", ctypes.c_float),
        ("ceil_upper", ctypes.c_uint32),
        ("mask", ctypes.c_uint32),
    ]


def _library() -> ctypes.CDLL | None:
    lib = load_library(_SOURCE)
    if lib is not None and not hasattr(lib, "_nerfdata_typed"):
        pointer, i64, i32 = ctypes.c_void_p, ctypes.c_int64, ctypes.c_int32
        lib.hashgrid_forward.argtypes = [pointer, i64, pointer, pointer, i32, i32, pointer]
        lib.hashgrid_backward_params.argtypes = [pointer, i64, pointer, pointer, i32, i32, pointer]
        lib.hashgrid_backward_x.argtypes = [pointer, i64, pointer, pointer, pointer, i32, i32, pointer]
        lib._nerfdata_typed = True
    return lib


def fused_available() -> bool:
    """Whether the fused CPU kernels compiled and loaded on this machine."""
    return _library() is not None


def fused_unavailable_reason() -> str:
    """Why :func:`fused_available` is ``False`` (empty when it is available)."""
    return unavailable_reason(_SOURCE)


def _levels(config: Any) -> ctypes.Array:
    if config not in _LEVELS:
        _LEVELS[config] = (_Level * config.num_levels)(
            *(
                _Level(
                    scale, resolution, size, offset, int(dense), config.position_shift, int(config.ceil_corners),
                    size - 1 if size & (size - 1) == 0 else 0,
                )
                for scale, resolution, size, offset, dense in zip(
                    config.scales, config.resolutions, config.level_sizes, config.level_offsets, config.dense_levels,
                    strict=True,
                )
            )
        )
    return _LEVELS[config]


def _ptr(tensor: Tensor) -> int:
    return tensor.data_ptr()


class _FusedHashGrid(torch.autograd.Function):
    @staticmethod
    def forward(ctx: Any, x: Tensor, params: Tensor, config: Any) -> Tensor:
        lib = _library()
        levels = _levels(config)
        out = torch.empty(x.shape[0], config.output_dim, dtype=torch.float32)
        lib.hashgrid_forward(
            _ptr(x), x.shape[0], _ptr(params), levels, config.num_levels, config.features_per_level, _ptr(out)
        )
        ctx.config = config
        ctx.save_for_backward(x, params)
        return out

    @staticmethod
    def backward(ctx: Any, grad_out: Tensor) -> tuple[Tensor | None, Tensor | None, None]:
        lib = _library()
        config = ctx.config
        x, params = ctx.saved_tensors
        levels = _levels(config)
        grad_out = grad_out.contiguous().float()
        grad_x = grad_params = None
        if ctx.needs_input_grad[1]:
            grad_params = torch.empty_like(params)  # every entry written: the levels tile the table
            lib.hashgrid_backward_params(
                _ptr(x), x.shape[0], _ptr(grad_out), levels, config.num_levels, config.features_per_level,
                _ptr(grad_params),
            )
        if ctx.needs_input_grad[0]:
            grad_x = torch.empty_like(x)
            lib.hashgrid_backward_x(
                _ptr(x), x.shape[0], _ptr(params), _ptr(grad_out), levels, config.num_levels,
                config.features_per_level, _ptr(grad_x),
            )
        return grad_x, grad_params, None


def hash_grid_encode_fused(
    x: Float[Tensor, "num_points 3"], params: Float[Tensor, " num_params"], config: Any
) -> Float[Tensor, "num_points output_dim"]:
    """Fused CPU hash-grid encoding; same result as :func:`~nerfdata.encoders.hashgrid.hash_grid_encode_reference`.

    Needs CPU float32 tensors and :func:`fused_available`. Differentiable w.r.t. ``params`` and ``x``
    (first order).
    """
    if x.device.type != "cpu" or params.device.type != "cpu":
        raise ValueError("the fused hash grid runs on the CPU only")
    if not fused_available():
        raise RuntimeError(f"fused hash grid unavailable: {fused_unavailable_reason()}")
    return _FusedHashGrid.apply(x.contiguous().float(), params.contiguous().float(), config)
