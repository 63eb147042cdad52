"""nerfstudio's dataparser frame: ``x_ns = scale * (R x + t)`` from the data's frame to the one it trains in.

nerfstudio's dataparser centres, orients and scales the training cameras; it writes the map to
``dataparser_transforms.json`` beside the run's ``config.yml`` (``transform`` = ``[R | t]``,
``scale``). A :class:`~nerfdata.fields.nerfstudio.field.NerfstudioField` maps world points into
that frame before querying the model, so that every export comes out in the data's own frame and
units.
"""

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from jaxtyping import Float
from torch import Tensor

from nerfdata import strict_json
from nerfdata.errors import CheckpointError

__all__ = ["DataparserTransform"]


@dataclass(frozen=True)
class DataparserTransform:
    """nerfstudio's dataparser map from the data's frame to its own: ``x_ns = scale * (R x + t)``.

    Example:
        >>> frame = DataparserTransform(torch.eye(3), torch.tensor([0.0, 0.0, 1.0]), 0.5)
        >>> frame.to_nerfstudio(torch.tensor([[1.0, 0.0, 0.0]])).tolist()
        [[0.5, 0.0, 0.5]]
        >>> frame.from_nerfstudio(frame.to_nerfstudio(torch.tensor([[1.0, 2.0, 3.0]]))).tolist()
        [[1.0, 2.0, 3.0]]
    """

    rotation: Float[Tensor, "3 3"]
    translation: Float[Tensor, "3"]
    scale: float

    @classmethod
    def from_json(cls, path: Path) -> "DataparserTransform":
        """Read ``dataparser_transforms.json``; the transform must be a rotation and a translation."""
        try:
            values = strict_json.loads(path.read_text(), path, CheckpointError, "dataparser transform")
            matrix = torch.tensor(values["transform"], dtype=torch.float64)
            scale = float(values["scale"])
        except FileNotFoundError:
            raise CheckpointError(
                f"{path}: not found; nerfstudio writes it beside config.yml, and without it exports cannot be "
                "mapped back to the data's frame"
            ) from None
        except (OSError, ValueError, KeyError, TypeError) as error:
            raise CheckpointError(f"{path}: unreadable dataparser transform ({error})") from None
        if matrix.shape != (3, 4) or not torch.isfinite(matrix).all() or not (math.isfinite(scale) and scale > 0):
            raise CheckpointError(f"{path}: 'transform' must be a finite 3x4 matrix and 'scale' a positive number")
        rotation = matrix[:, :3]
        orthonormal = torch.allclose(rotation @ rotation.T, torch.eye(3, dtype=torch.float64), atol=1e-4)
        if not orthonormal or torch.det(rotation) < 0:
            raise CheckpointError(f"{path}: 'transform' is not a rotation and a translation")
        return cls(rotation.float(), matrix[:, 3].float(), scale)

    def to_nerfstudio(self, points: Float[Tensor, "n 3"]) -> Float[Tensor, "n 3"]:
        return self.scale * (points @ self.rotation.T.to(points) + self.translation.to(points))

    def from_nerfstudio(self, points: Float[Tensor, "n 3"]) -> Float[Tensor, "n 3"]:
        return (points / self.scale - self.translation.to(points)) @ self.rotation.to(points)

    def directions_to_nerfstudio(self, directions: Float[Tensor, "n 3"]) -> Float[Tensor, "n 3"]:
        return directions @ self.rotation.T.to(directions)

    def c2w_to_nerfstudio(self, c2w: Float[Tensor, "*batch 4 4"]) -> Float[Tensor, "*batch 3 4"]:
        """A camera-to-world pose (OpenGL axes, as nerfstudio's) in nerfstudio's frame, ``3 x 4``."""
        rotation = self.rotation.to(c2w) @ c2w[..., :3, :3]
        centre = self.to_nerfstudio(c2w[..., :3, 3].reshape(-1, 3)).reshape(*c2w.shape[:-2], 3)
        return torch.cat([rotation, centre[..., None]], dim=-1)

    def to_dict(self) -> dict[str, Any]:
        matrix = torch.cat([self.rotation, self.translation[:, None]], dim=1)
        return {"transform": matrix.tolist(), "scale": self.scale}
