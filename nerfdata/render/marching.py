"""One round of the fast marcher: each ray's next samples that lie in occupied cells.

Two implementations with one contract, compared by the tests:

* :func:`next_samples_torch`: the PyTorch twin (any device). It looks ``window`` steps ahead per
  round, so a ray crossing a long empty stretch may need several rounds to find its samples.
* :func:`next_samples_fused` (``march_fused.c``): a C loop per ray (CPU only), no look-ahead limit.

Both read a :class:`MarchState`: the rays, where they enter the box, how many steps they have in
it and where each one's march stands. A step ``s`` of a ray covers
``[t_near + s * step, t_near + (s + 1) * step]``; it is a candidate when its midpoint lies in an
occupied cell (every step is, without an occupancy grid).
"""

import ctypes
from dataclasses import dataclass, replace
from pathlib import Path

import torch
from jaxtyping import Float, Int
from torch import Tensor

from nerfdata.errors import ConfigError
from nerfdata.fields.occupancy import OccupancyGrid
from nerfdata.native import load_library, unavailable_reason

__all__ = [
    "MarchState",
    "fused_marching_available",
    "growing_round_limit",
    "next_samples",
    "next_samples_fused",
    "next_samples_torch",
    "round_limit",
    "truncate_round",
]

_SOURCE = Path(__file__).with_name("march_fused.c")


@dataclass
class MarchState:
    """Where the march of each of ``num_rays`` rays stands (world frame, distances along the unit direction).

    Example:
        >>> state = MarchState(torch.zeros(2, 3), torch.tensor([[0.0, 0.0, 1.0]] * 2), torch.zeros(2),
        ...                    torch.tensor([4, 0]), torch.zeros(2, dtype=torch.int64), step=0.25)
        >>> steps, count, cursor = next_samples_torch(state, None, k=3, window=8)
        >>> steps.tolist(), count.tolist(), cursor.tolist()
        ([[0, 1, 2], [0, 0, 0]], [3, 0], [3, 0])
    """

    origins: Float[Tensor, "num_rays 3"]
    directions: Float[Tensor, "num_rays 3"]
    """Unit ray directions."""
    t_near: Float[Tensor, " num_rays"]
    """Where each ray's first step starts (scene units)."""
    num_steps: Int[Tensor, " num_rays"]
    """Steps of each ray inside the box (int64); step ``num_steps - 1`` is its last."""
    cursor: Int[Tensor, " num_rays"]
    """The first step of each ray not yet looked at (int64)."""
    step: float
    """Length of every step (scene units)."""

    def __len__(self) -> int:
        return len(self.origins)

    def __getitem__(self, rays: Tensor) -> "MarchState":
        """The state of the rays ``rays`` (indices or a mask)."""
        tensors = (self.origins, self.directions, self.t_near, self.num_steps, self.cursor)
        return MarchState(*(tensor[rays] for tensor in tensors), self.step)

    def advanced(self, rays: Int[Tensor, " a"], cursor: Int[Tensor, " a"]) -> "MarchState":
        """The same state with the cursors of rays ``rays`` (indices) moved to ``cursor``."""
        return replace(self, cursor=self.cursor.index_copy(0, rays, cursor))


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
    state: MarchState, occupancy: OccupancyGrid | None, k: int, window: int
) -> tuple[Int[Tensor, "num_rays k"], Int[Tensor, " num_rays"], Int[Tensor, " num_rays"]]:
    """Next (up to) ``k`` candidate steps per ray within ``window`` steps of its cursor.

    Returns:
        ``steps`` ``(num_rays, k)`` int64 (0 in unused slots), ``count`` ``(num_rays,)`` and the new
        cursor ``(num_rays,)``: one past the last step taken, or ``cursor + window`` (at most
        ``num_steps``) when fewer than ``k`` were found.
    """
    origins, directions, step = state.origins, state.directions, state.step
    cursor, num_steps = state.cursor, state.num_steps
    offsets = torch.arange(window, device=origins.device)
    steps = cursor[:, None] + offsets  # (a, W)
    in_range = steps < num_steps[:, None]
    t_mid = (state.t_near[:, None] + steps * step) + 0.5 * step
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
    state: MarchState, occupancy: OccupancyGrid | None, k: int
) -> tuple[Int[Tensor, "num_rays k"], Int[Tensor, " num_rays"], Int[Tensor, " num_rays"]]:
    """The C twin of :func:`next_samples_torch` (CPU, float32), without a look-ahead limit.

    Raises:
        ConfigError: A tensor of ``state`` or ``occupancy`` is not on the CPU (C would read a device
            pointer as host memory): ``marcher: fused`` asked for with a CUDA device.
    """
    tensors = [state.origins, state.directions, state.t_near, state.num_steps, state.cursor]
    if occupancy is not None:
        tensors += [occupancy.bits, occupancy.aabb]
    if any(tensor.device.type != "cpu" for tensor in tensors):
        raise ConfigError(
            "render.marcher: the fused marcher runs on the CPU only (its PyTorch twin, marcher 'torch' or 'auto', "
            "runs on any device)"
        )
    lib = _library()
    if lib is None:
        raise RuntimeError(f"fused marcher unavailable: {unavailable_reason(_SOURCE)}")
    n = len(state)
    origins, directions = state.origins.contiguous().float(), state.directions.contiguous().float()
    t_near = state.t_near.contiguous().float()
    num_steps, cursor = state.num_steps.contiguous(), state.cursor.contiguous()
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
        n, origins.data_ptr(), directions.data_ptr(), t_near.data_ptr(), num_steps.data_ptr(),
        cursor.data_ptr(), float(state.step), None if bits is None else bits.data_ptr(),
        None if aabb is None else aabb.data_ptr(), resolution, k, steps.data_ptr(), count.data_ptr(),
        new_cursor.data_ptr(),
    )
    return steps, count.long(), new_cursor


def next_samples(
    state: MarchState, occupancy: OccupancyGrid | None, k: int, window: int, implementation: str = "auto"
) -> tuple[Int[Tensor, "num_rays k"], Int[Tensor, " num_rays"], Int[Tensor, " num_rays"]]:
    """Dispatch to the fused marcher on CPU when available (``"auto"``), or as asked."""
    use_fused = implementation == "fused" or (
        implementation == "auto" and state.origins.device.type == "cpu" and fused_marching_available()
    )
    if use_fused:
        return next_samples_fused(state, occupancy, k)
    return next_samples_torch(state, occupancy, k, window)


def round_limit(
    optical_depth: Float[Tensor, " num_rays"], rate: Float[Tensor, " num_rays"], stop_depth: float, k: int
) -> Int[Tensor, " num_rays"]:
    """How many samples each ray takes this round: ``k``, or fewer where it will stop sooner.

    A ray stops once its optical depth reaches ``stop_depth`` (early termination), which is checked
    between rounds: every sample of the round in which it gets there is evaluated, though those
    after the stop change its colour by less than the transmittance left. Where the ray gained
    optical depth ``rate`` in the last sample of its last round, about ``(stop_depth - optical_depth) / rate``
    samples remain; the round takes that many (at least 1, at most ``k``). A ray in empty space
    (rate 0) takes ``k``. Only the schedule changes: the samples taken, in order, are the same.

    Example:
        >>> round_limit(torch.tensor([0.0, 8.0, 9.0]), torch.tensor([0.0, 0.5, 2.0]), 9.2, 16).tolist()
        [16, 3, 1]
    """
    remaining = (stop_depth - optical_depth).clamp(min=0.0) / rate.clamp(min=1e-12)
    estimate = torch.ceil(remaining.clamp(max=float(k))).long().clamp(min=1)
    return torch.where(rate > 0, estimate, torch.full_like(estimate, k))


def growing_round_limit(
    taken: Int[Tensor, " num_rays"], k: int, rounds: int = 8, doublings: int = 3
) -> Int[Tensor, " num_rays"]:
    """Each ray's round size: ``k``, doubled once a ray has taken ``rounds * k`` samples, again at twice
    that, and so on, at most ``doublings`` times.

    A chunk's last rounds carry a handful of rays (marching through haze, or grazing a surface), each
    round costing the same fixed bookkeeping: longer rounds for them end the chunk sooner (measured:
    3-20% more rays/s on the shipped fields, under 0.3 more samples per hit ray). It depends
    on the ray's own samples only, so every marcher takes the same rounds.

    Example:
        >>> growing_round_limit(torch.tensor([0, 63, 64, 130, 1000]), 8).tolist()
        [8, 8, 16, 32, 64]
    """
    return k << torch.div(taken, rounds * k, rounding_mode="floor").clamp(max=doublings)


def truncate_round(
    steps: Int[Tensor, "num_rays k"], count: Int[Tensor, " num_rays"], cursor: Int[Tensor, " num_rays"],
    limit: Int[Tensor, " num_rays"],
) -> tuple[Int[Tensor, " num_rays"], Int[Tensor, " num_rays"]]:
    """A round of :func:`next_samples` cut to at most ``limit`` steps per ray: ``(count, cursor)``.

    The cursor of a cut ray moves to one past its last kept step, so the next round resumes where
    this one would have gone on: the same steps as asking for ``limit`` in the first place.

    Example:
        >>> truncate_round(torch.tensor([[3, 5, 9], [2, 0, 0]]), torch.tensor([3, 1]), torch.tensor([10, 7]),
        ...                torch.tensor([2, 2]))
        (tensor([2, 1]), tensor([6, 7]))
    """
    cut = count > limit
    kept = torch.minimum(count, limit)
    last = steps.gather(1, (kept - 1).clamp(min=0)[:, None])[:, 0]
    return kept, torch.where(cut, last + 1, cursor)
