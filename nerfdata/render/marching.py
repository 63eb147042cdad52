"""One round of the fast marcher: each ray's next samples that lie in occupied cells.

Two implementations with one contract, compared by the tests:

* :func:`next_samples_torch`: the PyTorch twin (any device). It looks ``window`` steps ahead per
  round, so a ray crossing a long empty stretch may need several rounds to find its samples.
* :func:`next_samples_fused` (``march_fused.c``): a C loop per ray (CPU), no look-ahead limit.

A step ``s`` of a ray covers ``[t_near + s * step, t_near + (s + 1) * step]``; it is a candidate
when its midpoint lies in an occupied cell (every step is, without an occupancy grid).
"""

import ctypes
from pathlib import Path

import torch
from torch import Tensor

from nerfdata.fields.occupancy import OccupancyGrid
from nerfdata.native import load_library, unavailable_reason

__all__ = ["fused_marching_available", "next_samples", "next_samples_fused", "next_samples_torch"]

_SOURCE = Path(__file__).with_name("march_fused.c")


def _library() -> ctypes.CDLL | None:
    lib = load_library(_SOURCE)
    if lib is not None and not hasattr(lib, "_nerfdata_typed"):
        p, i64, i32 = ctypes.c_void_p, ctypes.c_int64, ctypes.c_int32
        lib.march_next.argtypes = [i64, p, p, p, p, p, ctypes.c_float, p, p, i32, i32, p, p, p]
        lib._nerfdata_typed = True
    return lib


def fused_marching_available() -> bool:
    """Whether the C marcher compiled and loaded on this machine."""
    return _library() is not None


def next_samples_torch(
    origins: Tensor,
    directions: Tensor,
    t_near: Tensor,
    num_steps: Tensor,
    cursor: Tensor,
    step: float,
    occupancy: OccupancyGrid | None,
    k: int,
    window: int,
) -> tuple[Tensor, Tensor, Tensor]:
    """Next (up to) ``k`` candidate steps per ray within ``window`` steps of ``cursor``.

    Args:
        origins, directions: ``(a, 3)`` rays; t_near: ``(a,)``; num_steps, cursor: ``(a,)`` int64.

    Returns:
        ``steps`` ``(a, k)`` int64 (0 in unused slots), ``count`` ``(a,)`` and the new cursor ``(a,)``:
        one past the last step taken, or ``cursor + window`` when fewer than ``k`` were found.
    """
    offsets = torch.arange(window, device=origins.device)
    steps = cursor[:, None] + offsets  # (a, W)
    in_range = steps < num_steps[:, None]
    t_mid = (t_near[:, None] + steps * step) + 0.5 * step
    candidate = in_range
    if occupancy is not None:
        candidate = candidate & occupancy.occupied(origins[:, None] + directions[:, None] * t_mid[..., None])
    rank = torch.cumsum(candidate, dim=1)
    taken = candidate & (rank <= k)
    # Slot j of a ray holds its j-th taken step; untaken entries go to a dropped extra slot.
    slot = torch.where(taken, rank - 1, torch.full_like(rank, k))
    chosen = torch.zeros(len(steps), k + 1, dtype=torch.int64, device=origins.device)
    chosen = chosen.scatter(1, slot, torch.where(taken, steps, torch.zeros_like(steps)))[:, :k]
    count = taken.sum(dim=1)
    full = count == k
    last = chosen.gather(1, (count - 1).clamp(min=0)[:, None])[:, 0]
    new_cursor = torch.where(full, last + 1, torch.minimum(cursor + window, num_steps.clamp(min=cursor)))
    return chosen, count, new_cursor


def next_samples_fused(
    origins: Tensor,
    directions: Tensor,
    t_near: Tensor,
    num_steps: Tensor,
    cursor: Tensor,
    step: float,
    occupancy: OccupancyGrid | None,
    k: int,
) -> tuple[Tensor, Tensor, Tensor]:
    """The C twin of :func:`next_samples_torch` (CPU, float32), without a look-ahead limit."""
    lib = _library()
    if lib is None:
        raise RuntimeError(f"fused marcher unavailable: {unavailable_reason(_SOURCE)}")
    n = len(origins)
    origins, directions = origins.contiguous().float(), directions.contiguous().float()
    t_near, num_steps, cursor = t_near.contiguous().float(), num_steps.contiguous(), cursor.contiguous()
    steps = torch.empty(n, k, dtype=torch.int64)
    count = torch.empty(n, dtype=torch.int32)
    new_cursor = torch.empty(n, dtype=torch.int64)
    bits = aabb = None
    resolution = 0
    if occupancy is not None:
        bits = occupancy.bits.contiguous()
        aabb = occupancy.aabb.float().reshape(-1).contiguous()
        resolution = occupancy.resolution
    lib.march_next(
        n, origins.data_ptr(), directions.data_ptr(), t_near.data_ptr(), num_steps.data_ptr(), cursor.data_ptr(),
        float(step), None if bits is None else bits.data_ptr(), None if aabb is None else aabb.data_ptr(),
        resolution, k, steps.data_ptr(), count.data_ptr(), new_cursor.data_ptr(),
    )
    return steps, count.long(), new_cursor


def next_samples(
    origins: Tensor,
    directions: Tensor,
    t_near: Tensor,
    num_steps: Tensor,
    cursor: Tensor,
    step: float,
    occupancy: OccupancyGrid | None,
    k: int,
    window: int,
    implementation: str = "auto",
) -> tuple[Tensor, Tensor, Tensor]:
    """Dispatch to the fused marcher on CPU when available (``"auto"``), or as asked."""
    use_fused = implementation == "fused" or (
        implementation == "auto" and origins.device.type == "cpu" and fused_marching_available()
    )
    if use_fused:
        return next_samples_fused(origins, directions, t_near, num_steps, cursor, step, occupancy, k)
    return next_samples_torch(origins, directions, t_near, num_steps, cursor, step, occupancy, k, window)
