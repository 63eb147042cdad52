"""Pinhole cameras: intrinsics, camera-to-world poses, axis conventions and ray generation.

Conventions (see DESIGN.md):

* ``c2w_opengl``: camera-to-world 4x4, OpenGL/nerfstudio camera axes (x right, y up, the camera looks
  down -z). This is the pose nerfdata stores and passes around.
* ``c2w_opencv``: the same pose with OpenCV camera axes (x right, y down, z forward); BOP files use
  its inverse, ``w2c_opencv``.
* Pixel ``(u, v)`` of an image covers ``[u, u+1) x [v, v+1)``; its centre is at ``(u+0.5, v+0.5)``.
  ``cx, cy`` are in the same pixel coordinates (``cx = width / 2`` for a centred principal point).
* Ray directions are unit vectors; ``z_per_range`` converts a distance along the ray (``range``)
  into z-depth along the optical axis: ``depth_z = range * z_per_range``.
"""

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal, TypeVar

import numpy as np
import torch
from jaxtyping import Float
from torch import Tensor

from nerfdata.errors import ConfigError, PoseError

__all__ = [
    "Camera",
    "Intrinsics",
    "Rays",
    "camera_rays",
    "check_aabb",
    "invert_rigid",
    "look_at_c2w_opengl",
    "opencv_to_opengl",
    "opengl_to_opencv",
    "pixel_centers",
    "ray_aabb_intersect",
    "validate_c2w",
]

ROTATION_TOLERANCE = 1e-4
"""Largest entry of ``R^T R - I`` accepted for a rotation (and of the last row's deviation)."""

RangeT = TypeVar("RangeT", Tensor, np.ndarray)

# Flipping the camera's y and z axes turns OpenGL camera axes into OpenCV ones and back.
_FLIP_YZ = torch.diag(torch.tensor([1.0, -1.0, -1.0, 1.0], dtype=torch.float64))


@dataclass(frozen=True)
class Intrinsics:
    """Pinhole intrinsics in pixels, pixel centres at +0.5.

    Example:
        >>> Intrinsics(fl_x=100.0, fl_y=100.0, cx=64.0, cy=48.0, width=128, height=96).K.shape
        torch.Size([3, 3])
    """

    fl_x: float
    fl_y: float
    cx: float
    cy: float
    width: int
    height: int

    def __post_init__(self) -> None:
        for name in ("width", "height"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
                raise PoseError(f"image {name} must be a positive integer, got {value!r}")
        for name in ("fl_x", "fl_y", "cx", "cy"):
            value = getattr(self, name)
            if not isinstance(value, (int, float)) or not math.isfinite(value):
                raise PoseError(f"intrinsics {name} must be a finite number, got {value!r}")
        if self.fl_x <= 0 or self.fl_y <= 0:
            raise PoseError(f"focal lengths must be positive, got fl_x={self.fl_x}, fl_y={self.fl_y}")

    @classmethod
    def from_fov(cls, width: int, height: int, fov_x_deg: float) -> "Intrinsics":
        """Square pixels, centred principal point, horizontal field of view in degrees."""
        if not 0.0 < fov_x_deg < 180.0:
            raise PoseError(f"horizontal field of view must be in (0, 180) degrees, got {fov_x_deg}")
        focal = 0.5 * width / math.tan(math.radians(fov_x_deg) / 2.0)
        return cls(focal, focal, width / 2.0, height / 2.0, width, height)

    @property
    def K(self) -> Float[Tensor, "3 3"]:
        """The 3x3 calibration matrix (OpenCV layout)."""
        return torch.tensor(
            [[self.fl_x, 0.0, self.cx], [0.0, self.fl_y, self.cy], [0.0, 0.0, 1.0]], dtype=torch.float32
        )

    @property
    def num_pixels(self) -> int:
        return self.width * self.height

    def scaled(self, factor: float) -> "Intrinsics":
        """The same camera at ``factor`` times the resolution (e.g. 0.5 for half size)."""
        width, height = round(self.width * factor), round(self.height * factor)
        sx, sy = width / self.width, height / self.height
        return Intrinsics(self.fl_x * sx, self.fl_y * sy, self.cx * sx, self.cy * sy, width, height)


def validate_c2w(c2w: Tensor, name: str = "pose") -> Float[Tensor, "*batch 4 4"]:
    """Check that ``c2w`` is a rigid transform and return it as float32 ``(*batch, 4, 4)``.

    Accepts ``(*batch, 3, 4)`` or ``(*batch, 4, 4)``. Rejects non-finite entries, a last row other
    than ``[0, 0, 0, 1]``, a rotation block that is not orthonormal (beyond ``ROTATION_TOLERANCE``)
    and reflections (determinant -1), naming ``name`` in the error.

    Raises:
        PoseError: with a message naming the pose and what is wrong with it.
    """
    c2w = torch.as_tensor(c2w, dtype=torch.float64)
    if c2w.ndim < 2 or c2w.shape[-1] != 4 or c2w.shape[-2] not in (3, 4):
        raise PoseError(f"{name}: expected a 3x4 or 4x4 matrix, got shape {tuple(c2w.shape)}")
    if not torch.isfinite(c2w).all():
        raise PoseError(f"{name}: contains NaN or infinite values")
    if c2w.shape[-2] == 3:
        bottom = torch.tensor([0.0, 0.0, 0.0, 1.0], dtype=torch.float64).expand(*c2w.shape[:-2], 1, 4)
        c2w = torch.cat([c2w, bottom], dim=-2)
    bottom_error = (c2w[..., 3, :] - torch.tensor([0.0, 0.0, 0.0, 1.0], dtype=torch.float64)).abs().max()
    if bottom_error > ROTATION_TOLERANCE:
        raise PoseError(f"{name}: last row must be [0, 0, 0, 1], got {c2w[..., 3, :].tolist()}")
    rotation = c2w[..., :3, :3]
    gram = rotation.transpose(-1, -2) @ rotation
    orthonormal_error = (gram - torch.eye(3, dtype=torch.float64)).abs().max().item()
    if orthonormal_error > ROTATION_TOLERANCE:
        raise PoseError(
            f"{name}: rotation is not orthonormal (max |R^T R - I| = {orthonormal_error:.2e} > "
            f"{ROTATION_TOLERANCE:g}); poses must be rigid (no scale or shear)"
        )
    if (torch.linalg.det(rotation) < 0).any():
        raise PoseError(f"{name}: rotation has determinant -1 (a reflection, not a rotation)")
    return c2w.to(torch.float32)


def opengl_to_opencv(c2w_opengl: Float[Tensor, "*batch 4 4"]) -> Float[Tensor, "*batch 4 4"]:
    """Camera-to-world with OpenGL camera axes -> the same pose with OpenCV camera axes.

    Example:
        >>> c2w = torch.eye(4)
        >>> opengl_to_opencv(c2w)[:3, :3].diag().tolist()
        [1.0, -1.0, -1.0]
    """
    return c2w_opengl @ _FLIP_YZ.to(c2w_opengl)


def opencv_to_opengl(c2w_opencv: Float[Tensor, "*batch 4 4"]) -> Float[Tensor, "*batch 4 4"]:
    """Camera-to-world with OpenCV camera axes -> the same pose with OpenGL camera axes."""
    return c2w_opencv @ _FLIP_YZ.to(c2w_opencv)


def invert_rigid(transform: Float[Tensor, "*batch 4 4"]) -> Float[Tensor, "*batch 4 4"]:
    """Exact inverse of a rigid transform (``c2w -> w2c`` and back), without a general inverse."""
    rotation_t = transform[..., :3, :3].transpose(-1, -2)
    inverse = torch.zeros_like(transform)
    inverse[..., :3, :3] = rotation_t
    inverse[..., :3, 3] = -(rotation_t @ transform[..., :3, 3:4])[..., 0]
    inverse[..., 3, 3] = 1.0
    return inverse


def look_at_c2w_opengl(
    eye: Float[Tensor, "*batch 3"],
    target: Float[Tensor, "*batch 3"],
    up: Float[Tensor, "*batch 3"],
) -> Float[Tensor, "*batch 4 4"]:
    """Camera-to-world (OpenGL axes) of a camera at ``eye`` looking at ``target``, ``up`` roughly up.

    Example:
        >>> c2w = look_at_c2w_opengl(torch.tensor([0.0, 0.0, 3.0]), torch.zeros(3), torch.tensor([0.0, 1.0, 0.0]))
        >>> torch.allclose(c2w, torch.tensor([[1.0, 0, 0, 0], [0, 1, 0, 0], [0, 0, 1, 3], [0, 0, 0, 1]]))
        True
    """
    eye, target, up = torch.broadcast_tensors(eye, target, up)
    backward = torch.nn.functional.normalize(eye - target, dim=-1)  # camera +z points away from target
    right = torch.nn.functional.normalize(torch.linalg.cross(up, backward, dim=-1), dim=-1)
    true_up = torch.linalg.cross(backward, right, dim=-1)
    c2w = torch.zeros(*eye.shape[:-1], 4, 4, dtype=eye.dtype)
    c2w[..., :3, 0], c2w[..., :3, 1], c2w[..., :3, 2], c2w[..., :3, 3] = right, true_up, backward, eye
    c2w[..., 3, 3] = 1.0
    return c2w


@dataclass
class Rays:
    """A flat batch of rays.

    ``directions`` are unit vectors in the world frame; ``z_per_range`` is the cosine between the ray
    and its camera's optical axis, so that ``depth_z = range * z_per_range``.
    """

    origins: Float[Tensor, "num_rays 3"]
    directions: Float[Tensor, "num_rays 3"]
    z_per_range: Float[Tensor, " num_rays"]

    def __len__(self) -> int:
        return self.origins.shape[0]

    def __getitem__(self, index: slice | Tensor) -> "Rays":
        return Rays(self.origins[index], self.directions[index], self.z_per_range[index])

    @classmethod
    def cat(cls, parts: Sequence["Rays"]) -> "Rays":
        """The rays of ``parts`` one after the other.

        Example:
            >>> K = Intrinsics(fl_x=2.0, fl_y=2.0, cx=1.0, cy=1.0, width=2, height=2)
            >>> len(Rays.cat([camera_rays(torch.eye(4), K), camera_rays(torch.eye(4), K)]))
            8
        """
        return cls(
            torch.cat([r.origins for r in parts]),
            torch.cat([r.directions for r in parts]),
            torch.cat([r.z_per_range for r in parts]),
        )

    def depth_z(self, ranges: RangeT) -> RangeT:
        """z-depth along the optical axis of distances ``ranges`` along each ray (``range * z_per_range``).

        ``ranges`` is a tensor or a NumPy array holding one value per ray, in any shape (an image's
        ``(H, W)``); the result has its shape and type.

        Example:
            >>> K = Intrinsics(fl_x=1.0, fl_y=1.0, cx=1.0, cy=0.5, width=2, height=1)
            >>> [round(v, 4) for v in camera_rays(torch.eye(4), K).depth_z(torch.ones(1, 2)).flatten().tolist()]
            [0.8944, 0.8944]
        """
        if isinstance(ranges, np.ndarray):
            return ranges * self.z_per_range.cpu().numpy().reshape(ranges.shape)
        return ranges * self.z_per_range.reshape(ranges.shape)


def pixel_centers(intrinsics: Intrinsics, device: torch.device | str | None = None) -> Float[Tensor, "height width 2"]:
    """Pixel-centre coordinates ``(x + 0.5, y + 0.5)`` of every pixel, x right, y down, on ``device`` (default: CPU)."""
    ys, xs = torch.meshgrid(
        torch.arange(intrinsics.height, dtype=torch.float64, device=device) + 0.5,
        torch.arange(intrinsics.width, dtype=torch.float64, device=device) + 0.5,
        indexing="ij",
    )
    return torch.stack([xs, ys], dim=-1).to(torch.float32)


def camera_rays(
    c2w: Float[Tensor, "4 4"],
    intrinsics: Intrinsics,
    pixels_xy: Float[Tensor, "num_rays 2"] | None = None,
    convention: Literal["opengl", "opencv"] = "opengl",
    device: torch.device | str | None = None,
) -> Rays:
    """World-frame rays through pixel coordinates (default: every pixel centre, row-major).

    Args:
        c2w: Camera-to-world, with camera axes given by ``convention``.
        intrinsics: Pinhole intrinsics.
        pixels_xy: Image-plane points in pixels, x right, y down (pixel centres are at +0.5).
            Defaults to all pixel centres in row-major order (``height * width`` rays).
        convention: Camera axes of ``c2w``: ``"opengl"`` (looks down -z, y up) or ``"opencv"``.
        device: Where the rays are made (the renderer's device); default: that of ``pixels_xy``,
            else the CPU. The pose may lie anywhere (cameras stay on the CPU).

    Returns:
        Rays with unit directions; ``z_per_range`` converts range to z-depth.

    Example:
        >>> K = Intrinsics(fl_x=2.0, fl_y=2.0, cx=1.0, cy=1.0, width=2, height=2)
        >>> rays = camera_rays(torch.eye(4), K)
        >>> len(rays), rays.directions[0, 2].item() < 0
        (4, True)
    """
    if pixels_xy is None:
        pixels_xy = pixel_centers(intrinsics, device).reshape(-1, 2)
    pixels = pixels_xy.to(device or pixels_xy.device, torch.float64)
    # Directions in OpenCV camera axes (z forward, y down), z component 1.
    x = (pixels[:, 0] - intrinsics.cx) / intrinsics.fl_x
    y = (pixels[:, 1] - intrinsics.cy) / intrinsics.fl_y
    dirs_opencv = torch.stack([x, y, torch.ones_like(x)], dim=-1)
    c2w = c2w.to(pixels.device, torch.float64)
    c2w_opencv = opengl_to_opencv(c2w) if convention == "opengl" else c2w
    norms = dirs_opencv.norm(dim=-1)
    directions = (dirs_opencv @ c2w_opencv[:3, :3].T) / norms[:, None]
    origins = c2w_opencv[:3, 3].expand_as(directions)
    return Rays(
        origins=origins.to(torch.float32).contiguous(),
        directions=directions.to(torch.float32),
        z_per_range=(1.0 / norms).to(torch.float32),
    )


def check_aabb(aabb: Any, name: str = "aabb") -> tuple[tuple[float, float, float], tuple[float, float, float]]:
    """``aabb`` as ``((min x, y, z), (max x, y, z))`` floats, refused unless finite with max > min on every axis.

    Raises:
        ConfigError: naming ``name`` and the value.

    Example:
        >>> check_aabb([[-1, -1, -1], [1, 1, 2]])
        ((-1.0, -1.0, -1.0), (1.0, 1.0, 2.0))
        >>> check_aabb([[0, 0, 0], [1, 1, float("inf")]], "box")  # doctest: +ELLIPSIS
        Traceback (most recent call last):
        ...
        nerfdata.errors.ConfigError: box must be [[min x, y, z], [max x, y, z]], finite, with max > min, got ...
    """

    def number(value: Any) -> bool:
        return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)

    corners = list(aabb) if isinstance(aabb, (list, tuple)) else []
    if not (
        len(corners) == 2
        and all(isinstance(c, (list, tuple)) and len(c) == 3 and all(number(v) for v in c) for c in corners)
        and all(high > low for low, high in zip(*corners, strict=True))
    ):
        raise ConfigError(f"{name} must be [[min x, y, z], [max x, y, z]], finite, with max > min, got {aabb}")
    lower, upper = (tuple(float(v) for v in corner) for corner in corners)
    return lower, upper  # type: ignore[return-value]


def ray_aabb_intersect(
    origins: Float[Tensor, "n 3"], directions: Float[Tensor, "n 3"], aabb: Float[Tensor, "2 3"]
) -> tuple[Float[Tensor, " n"], Float[Tensor, " n"]]:
    """Entry and exit distances of rays through a box (slab method); ``t_near >= 0``.

    A ray that misses the box (or leaves it behind the origin) gets ``t_near >= t_far``.

    Example:
        >>> box = torch.tensor([[-1.0, -1.0, -1.0], [1.0, 1.0, 1.0]])
        >>> t_near, t_far = ray_aabb_intersect(torch.tensor([[0.0, 0.0, 3.0]]), torch.tensor([[0.0, 0.0, -1.0]]), box)
        >>> t_near.item(), t_far.item()
        (2.0, 4.0)
    """
    safe = torch.where(directions.abs() < 1e-12, torch.full_like(directions, 1e-12), directions)
    t0 = (aabb[0] - origins) / safe
    t1 = (aabb[1] - origins) / safe
    t_near = torch.minimum(t0, t1).max(dim=-1).values.clamp(min=0.0)
    t_far = torch.maximum(t0, t1).min(dim=-1).values
    return t_near, t_far


@dataclass(frozen=True)
class Camera:
    """A validated pinhole camera: pose (``c2w_opengl``) and intrinsics."""

    c2w_opengl: Float[Tensor, "4 4"]
    intrinsics: Intrinsics

    def __post_init__(self) -> None:
        object.__setattr__(self, "c2w_opengl", validate_c2w(self.c2w_opengl, "camera pose"))

    @property
    def c2w_opencv(self) -> Float[Tensor, "4 4"]:
        return opengl_to_opencv(self.c2w_opengl)

    @property
    def w2c_opencv(self) -> Float[Tensor, "4 4"]:
        return invert_rigid(self.c2w_opencv)

    @property
    def forward(self) -> Float[Tensor, "3"]:
        """Unit optical axis (the direction the camera looks) in the world frame."""
        return -self.c2w_opengl[:3, 2]

    def rays(
        self, pixels_xy: Float[Tensor, "num_rays 2"] | None = None, device: torch.device | str | None = None
    ) -> Rays:
        """Rays through ``pixels_xy`` (default: every pixel centre, row-major), on ``device`` (default:
        that of ``pixels_xy``, else the CPU)."""
        return camera_rays(self.c2w_opengl, self.intrinsics, pixels_xy, device=device)
