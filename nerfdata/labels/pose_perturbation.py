"""Pose errors and the perturbation protocols of pose-inversion benchmarks.

Conventions: poses are camera-to-world 4x4 with OpenGL camera axes (``c2w_opengl``), float64.
The rotation maths (axis-angle, Euler angles, geodesic angles, SE(3)) is :mod:`nerfdata.rotations`.

A perturbation rotates the camera pose by a world-frame rotation about a pivot and then shifts its
centre by a world-frame translation. The pivot is the point the camera looks at (on its optical
axis, at the depth of what it sees), so the rotation orbits the camera around the scene and the
scene stays in view: this is what iNeRF's public PyTorch ports do, whose left-multiplied
rotations turn the pose about the world origin at the centre of their object-centric scenes.
The rotation error of the start pose is exactly the drawn angle; its camera-centre error is the
orbit's displacement plus the drawn translation. Without a pivot the camera turns about its own
centre and the camera-centre error is exactly the translation.

Presets (every draw seeded by a ``torch.Generator``):

* ``inerf``: rotation about a uniformly random axis by an angle uniform in ``[-40, 40]`` degrees,
  translation uniform in ``[-0.1, 0.1]`` scene units per axis (iNeRF's evaluation protocol as
  described by later work);
* ``pinerf``: Euler angles (xyz) each uniform in ``[-15, 15]`` degrees, translation uniform in
  ``[-0.25, 0.25]`` per axis (parallel-inversion work);
* ``custom``: the ``inerf`` shape with the caller's ranges.
"""

import math
from dataclasses import dataclass
from typing import Literal

import numpy as np
import torch
from jaxtyping import Float
from torch import Tensor

from nerfdata.errors import ConfigError
from nerfdata.rotations import axis_angle_matrix, euler_xyz_matrix, rotation_angle_deg

__all__ = [
    "PRESETS",
    "Perturbation",
    "PerturbationConfig",
    "apply_perturbation",
    "bop_pose_errors",
    "draw_perturbations",
    "look_at_point",
    "orbit",
    "pose_errors",
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
            axis = torch.randn(3, generator=generator, dtype=torch.float64)
            turn = orbit(axis, float(_uniform(generator, (1,), rot_range)))
            rotation, description = turn.rotation, dict(turn.description)  # its zero translation is replaced below
        else:
            euler_deg = _uniform(generator, (3,), rot_range)
            rotation = euler_xyz_matrix(euler_deg)
            description = {"euler_xyz_deg": euler_deg.tolist()}
        translation = _uniform(generator, (3,), trans_range)
        description["translation"] = translation.tolist()
        geodesic = float(rotation_angle_deg(torch.eye(3, dtype=torch.float64), rotation))
        draws.append(Perturbation(rotation, translation, geodesic, description))
    return draws


def orbit(axis: Float[Tensor, "3"], angle_deg: float) -> Perturbation:
    """A pure rotation by ``angle_deg`` about the (world-frame, nonzero) ``axis``: no translation.

    Example:
        >>> round(orbit(torch.tensor([0.0, 0.0, 2.0]), 30.0).rotation[1, 0].item(), 6)
        0.5
    """
    axis = torch.nn.functional.normalize(axis.double(), dim=0)
    rotation = axis_angle_matrix(axis, torch.tensor(math.radians(angle_deg), dtype=torch.float64))
    description = {"axis": axis.tolist(), "angle_deg": angle_deg, "translation": [0.0, 0.0, 0.0]}
    return Perturbation(rotation, torch.zeros(3, dtype=torch.float64), abs(angle_deg), description)


def apply_perturbation(
    c2w_opengl: Float[Tensor, "4 4"], perturbation: Perturbation, pivot: Float[Tensor, "3"] | None = None
) -> Float[Tensor, "4 4"]:
    """Rotate the camera pose about ``pivot`` (world frame; None: its own centre), then shift its centre.

    Example:
        >>> quarter = Perturbation(euler_xyz_matrix(torch.tensor([0.0, 90.0, 0.0])),
        ...                        torch.zeros(3, dtype=torch.float64), 90.0, {})
        >>> moved = apply_perturbation(torch.eye(4, dtype=torch.float64), quarter, pivot=torch.tensor([0.0, 0.0, -2.0]))
        >>> [round(v, 6) + 0.0 for v in moved[:3, 3].tolist()]  # orbited a quarter turn about the pivot
        [2.0, 0.0, -2.0]
    """
    c2w = c2w_opengl.double().clone()
    centre = c2w[:3, 3].clone()
    c2w[:3, :3] = perturbation.rotation @ c2w[:3, :3]
    if pivot is not None:
        pivot = pivot.double()
        centre = pivot + perturbation.rotation @ (centre - pivot)
    c2w[:3, 3] = centre + perturbation.translation
    return c2w


def look_at_point(c2w_opengl: Float[Tensor, "4 4"], depth: float) -> Float[Tensor, "3"]:
    """The world point on a camera's optical axis at z-depth ``depth`` (OpenGL: the camera looks down -z)."""
    c2w = c2w_opengl.double()
    return c2w[:3, 3] - depth * c2w[:3, 2]


def pose_errors(
    est_c2w: Float[Tensor, "*batch 4 4"], gt_c2w: Float[Tensor, "*batch 4 4"]
) -> tuple[Float[Tensor, "*batch"], Float[Tensor, "*batch"]]:
    """Rotation error (degrees, geodesic) and camera-centre distance (scene units) of estimates.

    Example:
        >>> pose_errors(torch.eye(4, dtype=torch.float64), torch.eye(4, dtype=torch.float64))[0].item()
        0.0
    """
    rotation = rotation_angle_deg(est_c2w[..., :3, :3], gt_c2w[..., :3, :3])
    return rotation, (est_c2w[..., :3, 3] - gt_c2w[..., :3, 3]).norm(dim=-1)


def bop_pose_errors(
    R_est: Float[np.ndarray, "3 3"],
    t_est: Float[np.ndarray, "3"],
    R_gt: Float[np.ndarray, "3 3"],
    t_gt: Float[np.ndarray, "3"],
) -> tuple[float, float]:
    """BOP's rotation error ``re`` (degrees) and translation error ``te`` of a model-to-camera estimate.

    As the BOP benchmark defines them (Hodan et al., "On Evaluation of 6D Object Pose Estimation"):
    ``re = arccos((tr(R_est R_gt^-1) - 1) / 2)``, the cosine clipped to [-1, 1], and
    ``te = ||t_est - t_gt||`` in the translations' unit (millimetres in BOP files). Unlike
    :func:`pose_errors`, ``te`` is between model-to-camera translations, which depends on where the
    model's origin is, not the distance between camera centres; and ``re`` keeps BOP's arccos form
    (:func:`~nerfdata.rotations.rotation_angle_deg` is the accurate one below a millidegree).

    Example:
        >>> quarter = np.array([[0.0, -1.0, 0.0], [1.0, 0.0, 0.0], [0.0, 0.0, 1.0]])
        >>> bop_pose_errors(quarter, np.array([3.0, 4.0, 0.0]), np.eye(3), np.zeros(3))
        (90.0, 5.0)
    """
    cosine = 0.5 * (float(np.trace(R_est @ np.linalg.inv(R_gt))) - 1.0)
    re = math.degrees(math.acos(min(1.0, max(-1.0, cosine))))
    return re, float(np.linalg.norm(np.asarray(t_est, dtype=np.float64) - np.asarray(t_gt, dtype=np.float64)))
