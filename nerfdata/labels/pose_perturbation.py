"""SE(3) in exponential coordinates, pose errors, and the perturbation protocols of pose-inversion benchmarks.

Conventions: poses are camera-to-world 4x4 with OpenGL camera axes (``c2w_opengl``), float64.
A twist ``xi = (rho, omega)`` (translation part first, as in Lynch and Park's ``[S]theta``) maps to
a rigid transform by the matrix exponential of its 4x4 hat matrix. Perturbations rotate a camera
about its own centre (world-frame rotation applied to the camera's orientation) and shift its centre
by a world-frame translation, so the rotation and translation errors of the start pose are exactly
the drawn angle and shift.

Presets (every draw seeded by a ``torch.Generator``):

* ``inerf``: rotation about a uniformly random axis by an angle uniform in ``[-40, 40]`` degrees,
  translation uniform in ``[-0.1, 0.1]`` scene units per axis (iNeRF's evaluation protocol as
  described by later work);
* ``pinerf``: Euler angles (xyz) each uniform in ``[-15, 15]`` degrees, translation uniform in
  ``[-0.25, 0.25]`` per axis (parallel-inversion work);
* ``custom``: the ``inerf`` shape with the caller's ranges.
"""

from dataclasses import dataclass
from typing import Literal

import math

import torch
from jaxtyping import Float
from scipy.spatial.transform import Rotation
from torch import Tensor

from nerfdata.errors import ConfigError

__all__ = [
    "PRESETS",
    "Perturbation",
    "PerturbationConfig",
    "apply_perturbation",
    "draw_perturbations",
    "pose_errors",
    "se3_exp",
    "se3_hat",
]

PresetName = Literal["inerf", "pinerf", "custom"]


@dataclass(frozen=True)
class PerturbationConfig:
    """How start poses are drawn around a ground-truth pose."""

    preset: PresetName = "inerf"
    rot_deg: float | None = None
    """Largest rotation (axis-angle for inerf/custom, per Euler angle for pinerf); None: the preset's."""
    trans: float | None = None
    """Largest translation per axis, scene units; None: the preset's."""

    def __post_init__(self) -> None:
        if self.preset not in PRESETS:
            raise ConfigError(f"perturbation preset must be one of {sorted(PRESETS)}, got {self.preset!r}")
        if self.preset == "custom" and (self.rot_deg is None or self.trans is None):
            raise ConfigError("perturbation preset 'custom' needs both rot_deg and trans")
        for name in ("rot_deg", "trans"):
            value = getattr(self, name)
            if value is not None and not (math.isfinite(value) and value >= 0):
                raise ConfigError(f"perturbation {name} must be a finite number >= 0, got {value}")

    @property
    def ranges(self) -> tuple[str, float, float]:
        """``(rotation mode, rotation range in degrees, translation range)`` after preset defaults."""
        mode, rot, trans = PRESETS[self.preset]
        return mode, self.rot_deg if self.rot_deg is not None else rot, self.trans if self.trans is not None else trans


PRESETS: dict[str, tuple[str, float, float]] = {
    "inerf": ("axis_angle", 40.0, 0.1),
    "pinerf": ("euler", 15.0, 0.25),
    "custom": ("axis_angle", 0.0, 0.0),
}
"""Preset name -> (rotation mode, rotation range in degrees, translation range per axis)."""


@dataclass(frozen=True)
class Perturbation:
    """One drawn perturbation: world-frame rotation about the camera centre, then a centre shift."""

    rotation: Float[Tensor, "3 3"]
    translation: Float[Tensor, "3"]
    rot_deg: float
    """Geodesic angle of ``rotation`` in degrees (the start pose's rotation error)."""
    description: dict
    """What was drawn, JSON-ready (axis and angle, or Euler angles; translation)."""


def se3_hat(xi: Float[Tensor, "*batch 6"]) -> Float[Tensor, "*batch 4 4"]:
    """The 4x4 matrix of twist ``xi = (rho, omega)``: ``[[omega^, rho], [0, 0]]``."""
    rho, omega = xi[..., :3], xi[..., 3:]
    x, y, z = omega.unbind(-1)
    zero = torch.zeros_like(x)
    rows = [
        torch.stack([zero, -z, y, rho[..., 0]], -1),
        torch.stack([z, zero, -x, rho[..., 1]], -1),
        torch.stack([-y, x, zero, rho[..., 2]], -1),
        torch.stack([zero, zero, zero, zero], -1),
    ]
    return torch.stack(rows, -2)


def se3_exp(xi: Float[Tensor, "*batch 6"]) -> Float[Tensor, "*batch 4 4"]:
    """Rigid transform ``exp([xi])`` (differentiable, exact at ``xi = 0``; compute in float64 to stay rigid).

    Example:
        >>> T = se3_exp(torch.tensor([1.0, 2.0, 3.0, 0.0, 0.0, math.pi / 2], dtype=torch.float64))
        >>> [round(v, 6) + 0.0 for v in T[0, :2].tolist()], round(T[2, 3].item(), 6)
        ([0.0, -1.0], 3.0)
    """
    return torch.linalg.matrix_exp(se3_hat(xi))


def _uniform(generator: torch.Generator, shape: tuple[int, ...], bound: float) -> Tensor:
    return (torch.rand(shape, generator=generator, dtype=torch.float64) * 2.0 - 1.0) * bound


def draw_perturbations(config: PerturbationConfig, count: int, generator: torch.Generator) -> list[Perturbation]:
    """``count`` perturbations drawn by ``config``'s protocol (same generator state: same draws).

    Example:
        >>> draws = draw_perturbations(PerturbationConfig("inerf"), 3, torch.Generator().manual_seed(0))
        >>> all(d.rot_deg <= 40.0 + 1e-9 and d.translation.abs().max() <= 0.1 for d in draws)
        True
    """
    mode, rot_range, trans_range = config.ranges
    draws = []
    for _ in range(count):
        if mode == "axis_angle":
            axis = torch.nn.functional.normalize(torch.randn(3, generator=generator, dtype=torch.float64), dim=0)
            angle_deg = float(_uniform(generator, (1,), rot_range))
            rotation = torch.from_numpy(Rotation.from_rotvec((axis * math.radians(angle_deg)).numpy()).as_matrix())
            description = {"axis": axis.tolist(), "angle_deg": angle_deg}
        else:
            euler_deg = _uniform(generator, (3,), rot_range)
            rotation = torch.from_numpy(Rotation.from_euler("xyz", euler_deg.numpy(), degrees=True).as_matrix())
            description = {"euler_xyz_deg": euler_deg.tolist()}
        translation = _uniform(generator, (3,), trans_range)
        description["translation"] = translation.tolist()
        geodesic = math.degrees(float(torch.linalg.norm(torch.from_numpy(Rotation.from_matrix(rotation.numpy()).as_rotvec()))))
        draws.append(Perturbation(rotation, translation, geodesic, description))
    return draws


def apply_perturbation(c2w_opengl: Float[Tensor, "4 4"], perturbation: Perturbation) -> Float[Tensor, "4 4"]:
    """Rotate the camera about its own centre (world frame) and shift its centre."""
    c2w = c2w_opengl.double().clone()
    c2w[:3, :3] = perturbation.rotation @ c2w[:3, :3]
    c2w[:3, 3] = c2w[:3, 3] + perturbation.translation
    return c2w


def pose_errors(
    est_c2w: Float[Tensor, "*batch 4 4"], gt_c2w: Float[Tensor, "*batch 4 4"]
) -> tuple[Float[Tensor, "*batch"], Float[Tensor, "*batch"]]:
    """Rotation error (degrees, geodesic) and camera-centre distance (scene units) of estimates.

    Example:
        >>> pose_errors(torch.eye(4, dtype=torch.float64), torch.eye(4, dtype=torch.float64))[0].item()
        0.0
    """
    relative = est_c2w[..., :3, :3].transpose(-1, -2) @ gt_c2w[..., :3, :3]
    cosine = (relative.diagonal(dim1=-2, dim2=-1).sum(-1) - 1.0) / 2.0
    # atan2 of sine and cosine: arccos alone loses precision at the small angles that matter here.
    skew = relative - relative.transpose(-1, -2)
    sine = torch.stack([skew[..., 2, 1], skew[..., 0, 2], skew[..., 1, 0]], -1).norm(dim=-1) / 2.0
    return torch.rad2deg(torch.atan2(sine, cosine)), (est_c2w[..., :3, 3] - gt_c2w[..., :3, 3]).norm(dim=-1)
