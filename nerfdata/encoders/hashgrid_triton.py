"""The Triton hash-grid backend: nerfdata's own GPU kernels, in tiny-cuda-nn's exact layout or nerfstudio's.

Users often cannot build tiny-cuda-nn; Triton comes with PyTorch's CUDA builds, so these kernels
give every CUDA machine a fused hash grid. They follow :func:`~nerfdata.encoders.hashgrid.hash_grid_encode_reference`
(and tiny-cuda-nn's ``kernel_grid``) step for step: ``p = scale * x + 0.5`` rounded once (computed in
float64, as the reference does), ``cell = floor(p)``, trilinear weights multiplied x, then y, then z,
``index = dense ? x + y*res + z*res^2 : x ^ y*2654435761 ^ z*805459861`` in uint32, modulo the level's
size, corners accumulated in tiny-cuda-nn's order (bit ``d`` of corner ``c`` is the upper neighbour
along axis ``d``). nerfstudio's layout differs per level only (see
:mod:`nerfdata.encoders.hashgrid`): no half-cell shift, the upper corner ``ceil(p)``, no dense levels;
the kernels read those from per-level tables like the scale, size and offset.

Three kernels, one program per block of points and level:

* ``_forward``: features ``(N, L * F)``;
* ``_backward_params``: the table's gradient, scattered with atomic adds (as tiny-cuda-nn does; on a
  GPU their order, hence the last bits of the sum, varies between runs);
* ``_backward_x``: the positions' gradient, each point's levels summed in one program (no atomics).

Off a GPU the kernels run in Triton's interpreter (``TRITON_INTERPRET=1`` before ``triton`` is
imported), on CPU tensors: that is how CI compares them with the reference. This module imports
``triton``; :mod:`nerfdata.encoders.hashgrid` imports it only when the backend is used.
"""

from typing import Any

import torch
import triton
import triton.language as tl
from jaxtyping import Float
from torch import Tensor

__all__ = ["hash_grid_encode_triton"]

_BLOCK = 128
"""Points per program: enough to keep a GPU's memory system busy, small for the interpreter."""


@triton.jit
def _corner(
    cx, cy, cz, ux, uy, uz, wx0, wx1, wy0, wy1, wz0, wz1, res, size, offset, dense, c: tl.constexpr
):
    """Flat table entry and trilinear weight of corner ``c`` (bit 0: x, bit 1: y, bit 2: z).

    ``c*``: the lower vertices, ``u*``: the upper ones (``c + 1``, or ``ceil(p)`` in nerfstudio's layout).
    """
    if c & 1:
        px = ux
        w = wx1
    else:
        px = cx
        w = wx0
    if c & 2:
        py = uy
        w = w * wy1
    else:
        py = cy
        w = w * wy0
    if c & 4:
        pz = uz
        w = w * wz1
    else:
        pz = cz
        w = w * wz0
    dense_index = px + py * res + pz * res * res
    hashed_index = (px * 1) ^ (py * 2654435761) ^ (pz * 805459861)
    index = tl.where(dense, dense_index, hashed_index) % size
    return offset + index.to(tl.int64), w


@triton.jit
def _cell(x_ptr, rows, mask, scale, shift, ceil_upper, axis: tl.constexpr):
    """Cell (uint32, wrapping like tiny-cuda-nn's cast), upper vertex and upper weight of one axis:
    ``p = scale * x + shift``; the upper vertex is ``cell + 1``, or ``ceil(p)`` when ``ceil_upper``."""
    x = tl.load(x_ptr + rows * 3 + axis, mask=mask, other=0.0)
    p = (x.to(tl.float64) * scale.to(tl.float64) + shift.to(tl.float64)).to(tl.float32)
    floor = tl.floor(p)
    frac = p - floor
    cell = floor.to(tl.int32).to(tl.uint32)
    step = tl.where(ceil_upper & (frac == 0.0), 0, 1).to(tl.uint32)
    return cell, cell + step, frac


@triton.jit
def _cells(x_ptr, rows, mask, scale, shift, ceil_upper):
    """Lower and upper vertices and lower/upper trilinear weights of a block of points on one level."""
    cx, ux, wx1 = _cell(x_ptr, rows, mask, scale, shift, ceil_upper, 0)
    cy, uy, wy1 = _cell(x_ptr, rows, mask, scale, shift, ceil_upper, 1)
    cz, uz, wz1 = _cell(x_ptr, rows, mask, scale, shift, ceil_upper, 2)
    return cx, cy, cz, ux, uy, uz, 1.0 - wx1, wx1, 1.0 - wy1, wy1, 1.0 - wz1, wz1


@triton.jit
def _level(scales_ptr, res_ptr, sizes_ptr, offsets_ptr, dense_ptr, shifts_ptr, ceil_ptr, level):
    scale = tl.load(scales_ptr + level)
    res = tl.load(res_ptr + level).to(tl.uint32)
    size = tl.load(sizes_ptr + level).to(tl.uint32)
    offset = tl.load(offsets_ptr + level)
    dense = tl.load(dense_ptr + level) != 0
    shift = tl.load(shifts_ptr + level)
    ceil_upper = tl.load(ceil_ptr + level) != 0
    return scale, res, size, offset, dense, shift, ceil_upper


@triton.jit
def _forward(
    x_ptr, table_ptr, scales_ptr, res_ptr, sizes_ptr, offsets_ptr, dense_ptr, shifts_ptr, ceil_ptr, out_ptr, n,
    L: tl.constexpr, F: tl.constexpr, BLOCK: tl.constexpr,
):
    level = tl.program_id(1)
    rows = tl.program_id(0).to(tl.int64) * BLOCK + tl.arange(0, BLOCK)
    mask = rows < n
    features = tl.arange(0, F)
    scale, res, size, offset, dense, shift, ceil_upper = _level(
        scales_ptr, res_ptr, sizes_ptr, offsets_ptr, dense_ptr, shifts_ptr, ceil_ptr, level
    )
    cx, cy, cz, ux, uy, uz, wx0, wx1, wy0, wy1, wz0, wz1 = _cells(x_ptr, rows, mask, scale, shift, ceil_upper)
    acc = tl.zeros((BLOCK, F), dtype=tl.float32)
    for c in tl.static_range(8):
        entry, w = _corner(cx, cy, cz, ux, uy, uz, wx0, wx1, wy0, wy1, wz0, wz1, res, size, offset, dense, c)
        values = tl.load(table_ptr + entry[:, None] * F + features[None, :], mask=mask[:, None], other=0.0)
        acc += w[:, None] * values
    tl.store(out_ptr + rows[:, None] * (L * F) + level * F + features[None, :], acc, mask=mask[:, None])


@triton.jit
def _backward_params(
    x_ptr, grad_out_ptr, scales_ptr, res_ptr, sizes_ptr, offsets_ptr, dense_ptr, shifts_ptr, ceil_ptr,
    grad_table_ptr, n,
    L: tl.constexpr, F: tl.constexpr, BLOCK: tl.constexpr,
):
    level = tl.program_id(1)
    rows = tl.program_id(0).to(tl.int64) * BLOCK + tl.arange(0, BLOCK)
    mask = rows < n
    features = tl.arange(0, F)
    scale, res, size, offset, dense, shift, ceil_upper = _level(
        scales_ptr, res_ptr, sizes_ptr, offsets_ptr, dense_ptr, shifts_ptr, ceil_ptr, level
    )
    cx, cy, cz, ux, uy, uz, wx0, wx1, wy0, wy1, wz0, wz1 = _cells(x_ptr, rows, mask, scale, shift, ceil_upper)
    grad = tl.load(
        grad_out_ptr + rows[:, None] * (L * F) + level * F + features[None, :], mask=mask[:, None], other=0.0
    )
    for c in tl.static_range(8):
        entry, w = _corner(cx, cy, cz, ux, uy, uz, wx0, wx1, wy0, wy1, wz0, wz1, res, size, offset, dense, c)
        tl.atomic_add(grad_table_ptr + entry[:, None] * F + features[None, :], w[:, None] * grad, mask=mask[:, None])


@triton.jit
def _backward_x(
    x_ptr, table_ptr, grad_out_ptr, scales_ptr, res_ptr, sizes_ptr, offsets_ptr, dense_ptr, shifts_ptr, ceil_ptr,
    grad_x_ptr, n,
    L: tl.constexpr, F: tl.constexpr, BLOCK: tl.constexpr,
):
    rows = tl.program_id(0).to(tl.int64) * BLOCK + tl.arange(0, BLOCK)
    mask = rows < n
    features = tl.arange(0, F)
    gx = tl.zeros((BLOCK,), dtype=tl.float32)
    gy = tl.zeros((BLOCK,), dtype=tl.float32)
    gz = tl.zeros((BLOCK,), dtype=tl.float32)
    for level in range(L):
        scale, res, size, offset, dense, shift, ceil_upper = _level(
            scales_ptr, res_ptr, sizes_ptr, offsets_ptr, dense_ptr, shifts_ptr, ceil_ptr, level
        )
        cx, cy, cz, ux, uy, uz, wx0, wx1, wy0, wy1, wz0, wz1 = _cells(x_ptr, rows, mask, scale, shift, ceil_upper)
        grad = tl.load(
            grad_out_ptr + rows[:, None] * (L * F) + level * F + features[None, :], mask=mask[:, None], other=0.0
        )
        # d(features)/d(p_axis) of trilinear interpolation: the corners' values, signed by the side of
        # the cell they lie on along that axis, weighted by the other two axes' weights.
        dx = tl.zeros((BLOCK,), dtype=tl.float32)
        dy = tl.zeros((BLOCK,), dtype=tl.float32)
        dz = tl.zeros((BLOCK,), dtype=tl.float32)
        for c in tl.static_range(8):
            entry, _w = _corner(cx, cy, cz, ux, uy, uz, wx0, wx1, wy0, wy1, wz0, wz1, res, size, offset, dense, c)
            values = tl.load(table_ptr + entry[:, None] * F + features[None, :], mask=mask[:, None], other=0.0)
            dot = tl.sum(values * grad, axis=1)
            wy_c = wy1 if c & 2 else wy0
            wz_c = wz1 if c & 4 else wz0
            wx_c = wx1 if c & 1 else wx0
            dx += (1.0 if c & 1 else -1.0) * (wy_c * wz_c) * dot
            dy += (1.0 if c & 2 else -1.0) * (wx_c * wz_c) * dot
            dz += (1.0 if c & 4 else -1.0) * (wx_c * wy_c) * dot
        gx += dx * scale
        gy += dy * scale
        gz += dz * scale
    tl.store(grad_x_ptr + rows * 3 + 0, gx, mask=mask)
    tl.store(grad_x_ptr + rows * 3 + 1, gy, mask=mask)
    tl.store(grad_x_ptr + rows * 3 + 2, gz, mask=mask)


_LEVEL_TABLES: dict[tuple[Any, torch.device], tuple[Tensor, ...]] = {}


def _level_tables(config: Any, device: torch.device) -> tuple[Tensor, ...]:
    """Per-level scale, resolution, size, offset, dense flag, shift and corner rule on ``device`` (cached)."""
    key = (config, device)
    if key not in _LEVEL_TABLES:
        _LEVEL_TABLES[key] = (
            torch.tensor(config.scales, dtype=torch.float32, device=device),
            torch.tensor(config.resolutions, dtype=torch.int64, device=device),
            torch.tensor(config.level_sizes, dtype=torch.int64, device=device),
            torch.tensor(config.level_offsets, dtype=torch.int64, device=device),
            torch.tensor(config.dense_levels, dtype=torch.int32, device=device),
            torch.full((config.num_levels,), config.position_shift, dtype=torch.float32, device=device),
            torch.full((config.num_levels,), int(config.ceil_corners), dtype=torch.int32, device=device),
        )
    return _LEVEL_TABLES[key]


def _blocks(n: int) -> int:
    return triton.cdiv(max(n, 1), _BLOCK)


class _TritonHashGrid(torch.autograd.Function):
    @staticmethod
    def forward(ctx: Any, x: Tensor, params: Tensor, config: Any) -> Tensor:
        levels, features = config.num_levels, config.features_per_level
        tables = _level_tables(config, x.device)
        out = torch.empty(x.shape[0], levels * features, dtype=torch.float32, device=x.device)
        if x.shape[0]:
            _forward[(_blocks(x.shape[0]), levels)](
                x, params, *tables, out, x.shape[0], L=levels, F=features, BLOCK=_BLOCK
            )
        ctx.config = config
        ctx.save_for_backward(x, params)
        return out

    @staticmethod
    def backward(ctx: Any, grad_out: Tensor) -> tuple[Tensor | None, Tensor | None, None]:
        config = ctx.config
        x, params = ctx.saved_tensors
        levels, features = config.num_levels, config.features_per_level
        tables = _level_tables(config, x.device)
        grad_out = grad_out.contiguous().float()
        grad_x = grad_params = None
        n = x.shape[0]
        if ctx.needs_input_grad[1]:
            grad_params = torch.zeros_like(params)
            if n:
                _backward_params[(_blocks(n), levels)](
                    x, grad_out, *tables, grad_params, n, L=levels, F=features, BLOCK=_BLOCK
                )
        if ctx.needs_input_grad[0]:
            grad_x = torch.zeros_like(x)
            if n:
                _backward_x[(_blocks(n),)](
                    x, params, grad_out, *tables, grad_x, n, L=levels, F=features, BLOCK=_BLOCK
                )
        return grad_x, grad_params, None


def hash_grid_encode_triton(
    x: Float[Tensor, "num_points 3"], params: Float[Tensor, " num_params"], config: Any
) -> Float[Tensor, "num_points output_dim"]:
    """Triton hash-grid encoding; same result as :func:`~nerfdata.encoders.hashgrid.hash_grid_encode_reference`.

    Needs float32 tensors on a CUDA device (or CPU tensors under ``TRITON_INTERPRET=1``).
    Differentiable w.r.t. ``params`` and ``x`` (first order).

    Example (on a GPU)::

        config = HashGridConfig(num_levels=16, log2_hashmap_size=19)
        params = torch.randn(config.num_params, device="cuda") * 1e-2
        features = hash_grid_encode_triton(torch.rand(1 << 20, 3, device="cuda"), params, config)  # (2^20, 32)
    """
    if x.device != params.device:
        raise ValueError(f"points on {x.device} and parameters on {params.device}: put them on one device")
    return _TritonHashGrid.apply(x.contiguous().float(), params.contiguous().float(), config)
