"""Instant-NGP field: hash grid -> density MLP; SH view encoding + geometry features -> colour MLP.

Positions are normalised to the unit cube of the field's box before encoding. The density MLP
predicts density per *box length* (the longest side of the box), converted to per scene unit on
output, so training behaves the same whether the scene is measured in metres or millimetres. The
MLPs have no biases, as in tiny-cuda-nn's fully fused networks.
"""

import itertools
import math
from dataclasses import asdict, dataclass, field, fields
from typing import Any

import numpy as np
import torch
from jaxtyping import Float
from torch import Tensor, nn

from nerfdata.cameras import check_aabb
from nerfdata.config import from_dict
from nerfdata.encoders.hashgrid import Backend, HashGridConfig, HashGridEncoder
from nerfdata.encoders.sh import sh_encode
from nerfdata.errors import ConfigError
from nerfdata.fields.base import Field, inside_aabb

__all__ = ["NGPArchitecture", "NGPField", "NGPFieldConfig", "trunc_exp"]


class _TruncExp(torch.autograd.Function):
    """``exp`` whose gradient is computed from a clamped input, so large logits cannot blow up."""

    @staticmethod
    def forward(ctx: Any, x: Tensor) -> Tensor:
        ctx.save_for_backward(x)
        return torch.exp(x)

    @staticmethod
    def backward(ctx: Any, grad: Tensor) -> Tensor:
        (x,) = ctx.saved_tensors
        return grad * torch.exp(x.clamp(-15.0, 15.0))


def trunc_exp(x: Tensor) -> Tensor:
    """``exp(x)`` with the gradient of ``exp(clamp(x, -15, 15))`` (Instant-NGP's density activation)."""
    return _TruncExp.apply(x)


@dataclass(frozen=True)
class NGPArchitecture:
    """Hyper-parameters of an :class:`NGPField` but its box: what a training run chooses before the data."""

    hash_grid: HashGridConfig = field(default_factory=HashGridConfig)
    density_hidden_dim: int = 64
    geo_feature_dim: int = 15
    """Geometry features passed from the density MLP to the colour MLP."""
    color_hidden_dim: int = 64
    color_hidden_layers: int = 2
    sh_degree: int = 4
    """Spherical-harmonics degree of the view-direction encoding, 1 to 4 (its square: the number of values)."""
    density_bias: float = -1.0
    """Added to the density logit before ``exp`` so that an untrained field starts nearly empty."""

    def __post_init__(self) -> None:
        for name in ("density_hidden_dim", "geo_feature_dim", "color_hidden_dim", "color_hidden_layers"):
            if getattr(self, name) < 1:
                raise ConfigError(f"NGP field {name} must be >= 1, got {getattr(self, name)}")
        if not 1 <= self.sh_degree <= 4:
            raise ConfigError(f"NGP field sh_degree must be 1 to 4, got {self.sh_degree}")
        if not math.isfinite(self.density_bias):
            raise ConfigError(f"NGP field density_bias must be a finite number, got {self.density_bias}")

    def in_box(self, aabb: tuple[tuple[float, float, float], tuple[float, float, float]]) -> "NGPFieldConfig":
        """This architecture in the box ``aabb = ((min x, y, z), (max x, y, z))``.

        Example:
            >>> NGPArchitecture(sh_degree=2).in_box(((-1.0, -1.0, -1.0), (1.0, 1.0, 1.0))).sh_degree
            2
        """
        return NGPFieldConfig(aabb=aabb, **{f.name: getattr(self, f.name) for f in fields(NGPArchitecture)})


@dataclass(frozen=True)
class NGPFieldConfig(NGPArchitecture):
    """Hyper-parameters of an :class:`NGPField` (everything but the weights): an architecture in a box."""

    aabb: tuple[tuple[float, float, float], tuple[float, float, float]] = field(kw_only=True)

    def __post_init__(self) -> None:
        check_aabb(self.aabb, "NGP field aabb")
        super().__post_init__()

    def to_dict(self) -> dict[str, Any]:
        values = asdict(self)
        if values["hash_grid"]["layout"] == "tcnn":
            # tiny-cuda-nn's layout, the only one before layouts existed: field.json stays as it was written.
            del values["hash_grid"]["layout"]
        return {"aabb": values.pop("aabb"), **values}  # the box first, as checkpoints have always stored it

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> "NGPFieldConfig":
        """The config :meth:`to_dict` wrote, every key and value type checked (a checkpoint's ``field.json``).

        Raises:
            ConfigError: naming the key, e.g. ``NGP field config.hash_grid.num_levels: expected an integer``.
        """
        return from_dict(cls, values, "NGP field config")


def _mlp(in_dim: int, hidden_dim: int, hidden_layers: int, out_dim: int) -> nn.Sequential:
    layers: list[nn.Module] = []
    dims = [in_dim] + [hidden_dim] * hidden_layers
    for a, b in itertools.pairwise(dims):
        layers += [nn.Linear(a, b, bias=False), nn.ReLU()]
    layers.append(nn.Linear(dims[-1], out_dim, bias=False))
    return nn.Sequential(*layers)


class NGPField(Field):
    """Instant-NGP radiance field inside an axis-aligned box.

    Example:
        >>> config = NGPFieldConfig(aabb=((-1.0, -1.0, -1.0), (1.0, 1.0, 1.0)),
        ...                         hash_grid=HashGridConfig(num_levels=4, log2_hashmap_size=12))
        >>> field = NGPField(config)
        >>> sigma, rgb = field.query(torch.zeros(2, 3), torch.tensor([[0.0, 0.0, 1.0]] * 2))
        >>> sigma.shape, rgb.shape
        (torch.Size([2]), torch.Size([2, 3]))
    """

    field_type = "ngp"

    def __init__(self, config: NGPFieldConfig, backend: Backend = "auto") -> None:
        super().__init__(torch.tensor(config.aabb, dtype=torch.float32))
        self.config = config
        self.encoder = HashGridEncoder(config.hash_grid, backend=backend)
        self.density_mlp = _mlp(config.hash_grid.output_dim, config.density_hidden_dim, 1, 1 + config.geo_feature_dim)
        self.color_mlp = _mlp(
            config.sh_degree**2 + config.geo_feature_dim, config.color_hidden_dim, config.color_hidden_layers, 3
        )
        # From the config in float32, as the box tensor holds it: the field builds on the meta device too.
        self.box_length = float((np.float32(config.aabb[1]) - np.float32(config.aabb[0])).max())

    def geometry(self, positions: Float[Tensor, "n 3"]) -> tuple[Float[Tensor, " n"], Float[Tensor, "n f"]]:
        """Density per scene unit at world ``positions``, and the density MLP's geometry features."""
        inside = inside_aabb(positions, self.aabb)
        unit = ((positions - self.aabb[0]) / (self.aabb[1] - self.aabb[0])).clamp(0.0, 1.0)
        hidden = self.density_mlp(self.encoder(unit))
        sigma = trunc_exp(hidden[:, 0] + self.config.density_bias) / self.box_length
        return sigma * inside, hidden[:, 1:]

    def shade(self, features: Float[Tensor, "n f"], directions: Float[Tensor, "n 3"]) -> Float[Tensor, "n 3"]:
        encoded = torch.cat([sh_encode(directions, self.config.sh_degree), features], dim=-1)
        return torch.sigmoid(self.color_mlp(encoded))

    def density(self, positions: Float[Tensor, "n 3"]) -> Float[Tensor, " n"]:
        return self.geometry(positions)[0]

    def query(
        self, positions: Float[Tensor, "n 3"], directions: Float[Tensor, "n 3"]
    ) -> tuple[Float[Tensor, " n"], Float[Tensor, "n 3"]]:
        sigma, features = self.geometry(positions)
        return sigma, self.shade(features, directions)

    def config_dict(self) -> dict[str, Any]:
        return self.config.to_dict()

    @classmethod
    def from_config_dict(cls, config: dict[str, Any]) -> "NGPField":
        return cls(NGPFieldConfig.from_dict(config))
