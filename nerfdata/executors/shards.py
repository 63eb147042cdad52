"""Shards: a job's items (views, pairs, targets) in fixed ranges, and what running one gives back.

Shard ``k`` of a job with shard size ``s`` covers items ``[k*s, (k+1)*s)``: which shard an item is
in depends on its index alone, never on what an earlier run finished or how many workers there are,
so a rerun's shards (of the items still to do) keep their numbers.
"""

from collections.abc import Iterable
from dataclasses import dataclass
from itertools import groupby
from typing import Any

__all__ = ["Shard", "ShardFailure", "ShardResult", "describe_indices", "split_shards"]


@dataclass(frozen=True)
class Shard:
    """Items of one shard, in increasing order."""

    number: int
    indices: tuple[int, ...]


@dataclass(frozen=True)
class ShardResult:
    """A shard that ran: one item per index (a view's manifest record, a pair's, a target's)."""

    shard: Shard
    attempt: int
    """0 for the first attempt, 1 for the first re-run, ..."""
    items: list[Any]


@dataclass(frozen=True)
class ShardFailure:
    """A shard whose every attempt failed, with the last attempt's error."""

    shard: Shard
    attempts: int
    error: BaseException

    def describe(self, unit: str) -> str:
        """``shard 2 (views 8-11), attempt 3: <the error's message>``"""
        message = " ".join(str(self.error).split()) or type(self.error).__name__
        where = f"{unit} {describe_indices(self.shard.indices)}"
        return f"shard {self.shard.number} ({where}), attempt {self.attempts}: {message}"


def split_shards(indices: Iterable[int], size: int) -> list[Shard]:
    """The shards of ``indices`` (the items still to do), shard ``k`` holding those in ``[k*size, (k+1)*size)``.

    Example:
        >>> [(s.number, s.indices) for s in split_shards([0, 1, 3, 4, 5, 9], 3)]
        [(0, (0, 1)), (1, (3, 4, 5)), (3, (9,))]
    """
    if size < 1:
        raise ValueError(f"shard size must be >= 1, got {size}")
    ordered = sorted(set(indices))
    return [Shard(number, tuple(group)) for number, group in groupby(ordered, key=lambda i: i // size)]


def describe_indices(indices: tuple[int, ...]) -> str:
    """``8-11`` for a contiguous run, else the indices listed: ``3, 5``.

    Example:
        >>> describe_indices((8, 9, 10, 11)), describe_indices((3, 5)), describe_indices((7,))
        ('8-11', '3, 5', '7')
    """
    if len(indices) > 1 and indices == tuple(range(indices[0], indices[-1] + 1)):
        return f"{indices[0]}-{indices[-1]}"
    return ", ".join(str(i) for i in indices)
