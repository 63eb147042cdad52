"""The field protocol: what the renderer and every label asks of a radiance field.

A field answers ``density(x)`` (per scene unit of length) and ``radiance(x, d)`` (linear RGB in
``[0, 1]``) for world points inside its axis-aligned box ``aabb``; outside the box density is zero.
World coordinates are those of the data the field was trained on, in its units.

Every loader (nerfdata's checkpoints, nerfstudio runs) returns a :class:`LoadedField` and checks
the tensors it read with :func:`check_state_dict`.
"""

from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

import torch
from jaxtyping import Float
from torch import Tensor, nn

from nerfdata.errors import CheckpointError
from nerfdata.fields.occupancy import OccupancyGrid, occupancy_grid_from_density

__all__ = [
    "Field",
    "LoadedField",
    "aabb_to_list",
    "check_finite",
    "check_state_dict",
    "inside_aabb",
    "non_finite",
]

_LISTED = 8
"""Tensor names listed in a mismatch message (a nerfstudio model has hundreds)."""


def inside_aabb(positions: Float[Tensor, "n 3"], aabb: Float[Tensor, "2 3"]) -> Tensor:
    """Boolean mask ``(n,)`` of points inside the closed box ``aabb = [min, max]``."""
    return ((positions >= aabb[0]) & (positions <= aabb[1])).all(dim=-1)


def aabb_to_list(aabb: Float[Tensor, "2 3"]) -> list[list[float]]:
    """``[[min x, y, z], [max x, y, z]]`` as JSON-friendly floats (float32 noise rounded away)."""
    return [[round(float(v), 6) for v in corner] for corner in aabb.tolist()]


def non_finite(tensors: dict[str, Tensor], infinite_ok: tuple[str, ...] = ()) -> str | None:
    """What is not finite in ``tensors`` (the first bad tensor and its count of bad values), or None.

    Floating-point tensors only; those named in ``infinite_ok`` may hold +-inf (never NaN).

    Example:
        >>> non_finite({"w": torch.tensor([1.0, float("nan")]), "i": torch.tensor([1])})
        "tensor 'w' holds 1 NaN or infinite values of 2"
    """
    for name, value in tensors.items():
        if not value.is_floating_point():
            continue
        bad = value.isnan() if name in infinite_ok else ~value.isfinite()
        count = int(bad.sum())
        if count:
            return f"tensor {name!r} holds {count} NaN or infinite values of {value.numel()}"
    return None


def check_finite(path: Path, tensors: dict[str, Tensor], infinite_ok: tuple[str, ...] = ()) -> None:
    """Refuse ``tensors`` read from ``path`` that hold NaN or infinity (:func:`non_finite`).

    A checksum proves that a file is the one that was saved, not that what was saved makes sense:
    a field trained into NaN renders empty images without any other sign.

    Raises:
        CheckpointError: one line naming ``path``, the first bad tensor and how many values are bad.
    """
    problem = non_finite(tensors, infinite_ok)
    if problem is not None:
        raise CheckpointError(f"{path}: {problem}")


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

    def geometry(self, positions: Float[Tensor, "n 3"]) -> tuple[Float[Tensor, " n"], Float[Tensor, "n f"]]:
        """Density at world points, and the features :meth:`shade` colours them from.

        :meth:`query` in two halves, so that the renderer colours only the samples that weigh in a
        pixel. Here the features are the positions themselves (``shade`` then queries again); fields
        whose colour reuses their geometry's work return that instead.
        """
        return self.density(positions), positions

    def shade(self, features: Float[Tensor, "n f"], directions: Float[Tensor, "n 3"]) -> Float[Tensor, "n 3"]:
        """Radiance from :meth:`geometry`'s features of points seen along unit ``directions``."""
        return self.radiance(features, directions)

    @abstractmethod
    def config_dict(self) -> dict[str, Any]:
        """JSON-serialisable hyper-parameters that rebuild this field (weights excluded)."""

    @classmethod
    @abstractmethod
    def from_config_dict(cls, config: dict[str, Any]) -> "Field":
        """Build an untrained field from :meth:`config_dict`'s output."""

    @classmethod
    def state_shapes(cls, config: dict[str, Any]) -> dict[str, Tensor]:
        """The state dict a field of ``config`` has, as meta tensors: its names and shapes, allocating nothing.

        What a checkpoint's tensors are checked against before the field is built for real (a
        description may ask for gigabytes). Built on the meta device; a field whose constructor
        reads its own tensors overrides this.
        """
        with torch.device("meta"):
            return cls.from_config_dict(config).state_dict()

    @property
    def extent(self) -> float:
        """Length of the box diagonal, the field's natural length scale."""
        return float((self.aabb[1] - self.aabb[0]).norm())


@dataclass
class LoadedField:
    """A field loaded from a checkpoint, frozen (eval mode, no gradients), with what came with it."""

    field: Field
    occupancy: OccupancyGrid | None
    json_path: Path
    """The file that describes the field: nerfdata's ``.json``, or a nerfstudio run's ``config.yml``."""
    sha256: str
    """Checksum of the field: identifies it in dataset manifests (and decides whether a job resumes).

    For a nerfdata checkpoint it covers ``field.json``'s canonical content, which holds the tensors
    file's own sha256, so it changes with the weights, the box, the hyper-parameters or the
    metadata (:func:`nerfdata.fields.checkpoint.field_checksum`); for a nerfstudio run it is the
    weights file's sha256."""
    metadata: dict[str, Any] = field(default_factory=dict)

    def occupancy_grid(self, resolution: int = 128) -> OccupancyGrid:
        """The checkpoint's occupancy grid, or one built from the field's density when it carries none."""
        return self.occupancy or occupancy_grid_from_density(self.field.density, self.field.aabb, resolution)


def _names(names: list[str]) -> str:
    more = f" (+{len(names) - _LISTED} more)" if len(names) > _LISTED else ""
    return f"{names[:_LISTED]}{more}"


def check_state_dict(
    path: Path, expected: dict[str, Tensor], tensors: dict[str, Tensor], described_by: str
) -> None:
    """Refuse ``tensors`` read from ``path`` unless they have exactly the names and shapes of ``expected``.

    ``expected`` is the state dict of the module built from the checkpoint's description,
    ``described_by`` names that description in the message (``"the field described in its .json"``).
    Nothing is ever left at its random initialisation, so a missing tensor is as wrong as a
    misshapen one.

    Raises:
        CheckpointError: one line naming ``path``, the missing and unexpected tensors (first 8 of
            each), or the first tensor whose shape differs.

    Example:
        >>> expected = {"w": torch.zeros(2, 3)}
        >>> check_state_dict(Path("x.safetensors"), expected, {"w": torch.ones(2, 3)}, "the model")
        >>> check_state_dict(Path("x.safetensors"), expected, {"w": torch.ones(3, 2)}, "the model")
        Traceback (most recent call last):
        ...
        nerfdata.errors.CheckpointError: x.safetensors: tensor 'w' has shape (3, 2), the model expects (2, 3)
    """
    missing = sorted(set(expected) - set(tensors))
    unexpected = sorted(set(tensors) - set(expected))
    if missing or unexpected:
        parts = ([f"missing tensors {_names(missing)}"] if missing else []) + (
            [f"unexpected tensors {_names(unexpected)}"] if unexpected else []
        )
        raise CheckpointError(f"{path}: does not match {described_by}: {'; '.join(parts)}")
    for name, value in expected.items():
        shape, wanted = tuple(tensors[name].shape), tuple(value.shape)
        if shape != wanted:
            message = f"tensor {name!r} has shape {shape}, {described_by} expects {wanted}"
            raise CheckpointError(f"{path}: {message}")
