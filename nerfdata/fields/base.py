"""The field protocol: what the renderer and every label asks of a radiance field.

A field answers ``density(x)`` (per scene unit of length) and ``radiance(x, d)`` (linear RGB in
``[0, 1]``) for world points inside its axis-aligned box ``aabb``; outside the box density is zero.
World coordinates are those of the data the field was trained on, in its units.
"""

from abc import ABC, abstractmethod
from typing import Any, ClassVar

import torch
from jaxtyping import Float
from torch import Tensor, nn

__all__ = ["Field", "aabb_to_list", "inside_aabb"]


def inside_aabb(positions: Float[Tensor, "n 3"], aabb: Float[Tensor, "2 3"]) -> Tensor:
    """Boolean mask ``(n,)`` of points inside the closed box ``aabb = [min, max]``."""
    return ((positions >= aabb[0]) & (positions <= aabb[1])).all(dim=-1)


def aabb_to_list(aabb: Float[Tensor, "2 3"]) -> list[list[float]]:
    """``[[min x, y, z], [max x, y, z]]`` as JSON-friendly floats (float32 noise rounded away)."""
    return [[round(float(v), 6) for v in corner] for corner in aabb.tolist()]


class Field(nn.Module, ABC):
    """Base class of radiance fields: density and view-dependent colour inside ``aabb``.

    Subclasses set ``field_type`` (the name stored in checkpoints), implement :meth:`query` and
    :meth:`density`, and describe themselves with :meth:`config_dict` / :meth:`from_config_dict`
    so that a checkpoint rebuilds them without pickling.
    """

    field_type: ClassVar[str]

    aabb: Tensor

    def __init__(self, aabb: Float[Tensor, "2 3"]) -> None:
        super().__init__()
        # Not persistent: the box belongs to the field's config, the single source of truth.
        self.register_buffer("aabb", torch.as_tensor(aabb, dtype=torch.float32).reshape(2, 3).clone(), persistent=False)

    @abstractmethod
    def density(self, positions: Float[Tensor, "n 3"]) -> Float[Tensor, " n"]:
        """Volume density at world points, per scene unit of length (zero outside the box)."""

    @abstractmethod
    def query(
        self, positions: Float[Tensor, "n 3"], directions: Float[Tensor, "n 3"]
    ) -> tuple[Float[Tensor, " n"], Float[Tensor, "n 3"]]:
        """Density and radiance at world points seen along unit ``directions`` (in one pass)."""

    def radiance(self, positions: Float[Tensor, "n 3"], directions: Float[Tensor, "n 3"]) -> Float[Tensor, "n 3"]:
        """Linear RGB in ``[0, 1]`` emitted at ``positions`` towards ``-directions``."""
        return self.query(positions, directions)[1]

    @abstractmethod
    def config_dict(self) -> dict[str, Any]:
        """JSON-serialisable hyper-parameters that rebuild this field (weights excluded)."""

    @classmethod
    @abstractmethod
    def from_config_dict(cls, config: dict[str, Any]) -> "Field":
        """Build an untrained field from :meth:`config_dict`'s output."""

    @property
    def extent(self) -> float:
        """Length of the box diagonal, the field's natural length scale."""
        return float((self.aabb[1] - self.aabb[0]).norm())
