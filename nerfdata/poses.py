"""Camera pose samplers. Every sampler is a pure function of its config (and seed).

Poses are camera-to-world 4x4 matrices with OpenGL camera axes (``c2w_opengl``), looking at a
target; "up" is the world +y axis unless a sampler says otherwise.
"""

import math
from dataclasses import dataclass

import torch
from jaxtyping import Float
from torch import Tensor

from nerfdata.cameras import look_at_c2w_opengl
from nerfdata.errors import ConfigError

__all__ = ["OrbitConfig", "orbit_poses"]


@dataclass(frozen=True)
class OrbitConfig:
    """Views on a horizontal circle around ``target``, evenly spaced in azimuth."""

    count: int = 24
    """Number of views."""
    radius: float = 3.0
    """Distance from the target (scene units)."""
    elevation_deg: float = 25.0
    """Angle above the horizontal plane through the target."""
    target: tuple[float, float, float] = (0.0, 0.0, 0.0)
    start_azimuth_deg: float = 0.0

    def __post_init__(self) -> None:
        if self.count < 1:
            raise ConfigError(f"orbit count must be >= 1, got {self.count}")
        if not self.radius > 0:
            raise ConfigError(f"orbit radius must be positive, got {self.radius}")
        if not -90.0 < self.elevation_deg < 90.0:
            raise ConfigError(f"orbit elevation_deg must be in (-90, 90), got {self.elevation_deg}")


def orbit_poses(config: OrbitConfig) -> Float[Tensor, "count 4 4"]:
    """Camera-to-world (OpenGL axes) poses on an orbit, each looking at the target.

    Example:
        >>> orbit_poses(OrbitConfig(count=4, radius=2.0, elevation_deg=0.0))[0, :3, 3].tolist()
        [0.0, 0.0, 2.0]
    """
    azimuth = torch.deg2rad(
        torch.tensor(config.start_azimuth_deg, dtype=torch.float64)
        + torch.arange(config.count, dtype=torch.float64) * (360.0 / config.count)
    )
    elevation = math.radians(config.elevation_deg)
    target = torch.tensor(config.target, dtype=torch.float64)
    offsets = torch.stack(
        [
            torch.sin(azimuth) * math.cos(elevation),
            torch.full_like(azimuth, math.sin(elevation)),
            torch.cos(azimuth) * math.cos(elevation),
        ],
        dim=-1,
    )
    eye = target + config.radius * offsets
    up = torch.tensor([0.0, 1.0, 0.0], dtype=torch.float64).expand_as(eye)
    return look_at_c2w_opengl(eye, target.expand_as(eye), up).float()
