"""Matching pixels of one view to another through a radiance field (NeRF-Supervision labels).

A pixel of view A is matched to view B (:func:`match_pixels`): its ray is rendered, a depth is taken
from its termination distribution, lifted to a 3D point and projected into B.

* ``distribution`` (default, NeRF-Supervision): the depth is an inverse-CDF sample of the ray's
  normalised weights, so a ray split between two surfaces (thin or reflective parts, silhouettes)
  gives one of them, never a point between them;
* ``median`` / ``expected``: the depth where the accumulated weight crosses 0.5 / the weighted mean.

A match is ``valid`` when the point is in front of B, inside B's image, both rays are opaque enough
(accumulation >= ``min_accumulation``) and B's ray through the projection terminates at the point:
the weight of B's ray within ``depth_tolerance`` (relative to distance) of the point is at least
``min_visibility``; a point hidden behind something nearer puts that weight in front of it.
``confidence`` is the product of the two rays' weights near the point: the probability that ray A
ends where its label says, times the probability that ray B sees it.
"""

from dataclasses import dataclass, replace
from typing import Literal, get_args

import torch
from jaxtyping import Bool, Float
from torch import Tensor

from nerfdata.cameras import Camera
from nerfdata.errors import ConfigError
from nerfdata.fields.base import Field
from nerfdata.fields.occupancy import OccupancyGrid
from nerfdata.render.renderer import RayOutputs, RenderOptions, render_rays
from nerfdata.render.termination import sample_termination, weight_in_window

__all__ = ["MatchConfig", "MatchMode", "Matches", "match_pixels", "project_points"]

MatchMode = Literal["distribution", "median", "expected"]


@dataclass(frozen=True)
class MatchConfig:
    """How depths are taken and which matches count as valid."""

    mode: MatchMode = "distribution"
    """Depth per pixel of A: a sample of the termination distribution, or its median / mean."""
    depth_tolerance: float = 0.005
    """Half-width of the visibility window around the point, relative to its distance."""
    min_accumulation: float = 0.5
    """Both rays must be at least this opaque."""
    min_visibility: float = 0.5
    """Weight B's ray must put within the window around the point for it to count as seen."""

    def __post_init__(self) -> None:
        if self.mode not in get_args(MatchMode):
            raise ConfigError(f"mode must be one of {', '.join(get_args(MatchMode))}, got {self.mode!r}")
        if not 0.0 < self.depth_tolerance < 1.0:
            raise ConfigError(f"depth_tolerance must be in (0, 1), got {self.depth_tolerance}")
        for name in ("min_accumulation", "min_visibility"):
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise ConfigError(f"{name} must be in [0, 1], got {getattr(self, name)}")


@dataclass
class Matches:
    """Matches from pixels of view A to view B (see :data:`ARRAYS`)."""

    uv_a: Float[Tensor, "n 2"]
    uv_b: Float[Tensor, "n 2"]
    valid: Bool[Tensor, " n"]
    confidence: Float[Tensor, " n"]

    def cpu(self) -> "Matches":
        """The same matches on the CPU, where the writers read them (the same tensors when already there)."""
        return Matches(self.uv_a.cpu(), self.uv_b.cpu(), self.valid.cpu(), self.confidence.cpu())


def project_points(camera: Camera, points: Float[Tensor, "n 3"]) -> tuple[Float[Tensor, "n 2"], Float[Tensor, " n"]]:
    """Pixel coordinates (x right, y down, centres at +0.5) and z-depth of world points in ``camera``.

    Points behind the camera get a negative depth (their pixel coordinates are meaningless).

    Example:
        >>> from nerfdata.cameras import Intrinsics
        >>> camera = Camera(torch.eye(4), Intrinsics(10.0, 10.0, 4.0, 3.0, 8, 6))  # looks down -z
        >>> uv, z = project_points(camera, torch.tensor([[0.1, 0.2, -1.0]]))
        >>> [round(v, 4) for v in uv[0].tolist()], z.tolist()
        ([5.0, 1.0], [1.0])
    """
    w2c = camera.w2c_opencv.to(points.device, torch.float64)  # cameras live on the CPU, points on the field's device
    local = points.double() @ w2c[:3, :3].T + w2c[:3, 3]
    k = camera.intrinsics
    z = local[:, 2]
    safe = torch.where(z.abs() < 1e-12, torch.full_like(z, 1e-12), z)
    uv = torch.stack([k.fl_x * local[:, 0] / safe + k.cx, k.fl_y * local[:, 1] / safe + k.cy], dim=-1)
    return uv.to(points.dtype), z.to(points.dtype)


def _window_weight(out: RayOutputs, distance: Tensor, half_width: Tensor) -> Tensor:
    s = out.samples
    assert s is not None  # rendered with return_samples
    low, high = distance - half_width, distance + half_width
    return weight_in_window(s.ray_indices, s.t_start, s.t_end, s.weights, s.density, low, high)


@torch.no_grad()
def match_pixels(
    field_: Field,
    camera_a: Camera,
    camera_b: Camera,
    pixels_a: Float[Tensor, "n 2"],
    config: MatchConfig = MatchConfig(),
    options: RenderOptions = RenderOptions(),
    occupancy: OccupancyGrid | None = None,
    generator: torch.Generator | None = None,
) -> Matches:
    """Match pixels of view A (pixel coordinates, centres at +0.5) to view B through ``field_``.

    Renders one ray per pixel of A and one per in-view projection in B (bounded memory: chunked), on
    the field's device; the matches are there too. ``generator`` is a CPU one, whatever the device,
    so that a seed draws the same depths everywhere.

    Args:
        field_: The radiance field the views were rendered from.
        camera_a, camera_b: The two views.
        pixels_a: Pixel coordinates in A.
        config: Depth mode and validity thresholds.
        options: Ray marching (step size, near/far); normals and samples are set here.
        occupancy: The field's occupancy grid (empty-space skipping).
        generator: Random source of the depth samples (``distribution`` mode); required there.
    """
    if config.mode == "distribution" and generator is None:
        raise ConfigError("mode distribution draws depth samples: pass a seeded torch.Generator")
    options = replace(options, normals=False, return_samples=True)
    pixels_a = pixels_a.to(field_.aabb.device)
    rays_a = camera_a.rays(pixels_a)
    out_a = render_rays(field_, rays_a, options, occupancy)
    if config.mode == "distribution":
        s = out_a.samples
        assert s is not None and generator is not None
        u = torch.rand(len(rays_a), 1, generator=generator, dtype=torch.float64).to(s.t_start)
        distance_a = sample_termination(s.ray_indices, s.t_start, s.t_end, s.weights, s.density, u)[:, 0]
    else:
        distance_a = out_a.range_median if config.mode == "median" else out_a.range_expected
    # A window narrower than one render step would cut the quantised weight of a crisp surface in two.
    step = field_.extent / options.num_steps
    near_a = _window_weight(out_a, distance_a, (config.depth_tolerance * distance_a).clamp(min=step))
    points = rays_a.origins + rays_a.directions * distance_a[:, None]
    uv_b, z_b = project_points(camera_b, points)
    k = camera_b.intrinsics
    inside = (uv_b[:, 0] >= 0) & (uv_b[:, 0] < k.width) & (uv_b[:, 1] >= 0) & (uv_b[:, 1] < k.height)
    seen_a = (out_a.accumulation >= config.min_accumulation) & (distance_a > 0)
    candidate = seen_a & (z_b > 0) & inside
    valid = torch.zeros_like(candidate)
    confidence = torch.zeros_like(distance_a)
    if candidate.any():
        index = candidate.nonzero()[:, 0]
        rays_b = camera_b.rays(uv_b[index])
        out_b = render_rays(field_, rays_b, options, occupancy)
        distance_b = (points[index] - rays_b.origins).norm(dim=-1)
        near_b = _window_weight(out_b, distance_b, (config.depth_tolerance * distance_b).clamp(min=step))
        valid[index] = (out_b.accumulation >= config.min_accumulation) & (near_b >= config.min_visibility)
        confidence[index] = (near_a[index] * near_b).clamp(0.0, 1.0)
    uv_b = torch.where(torch.isfinite(uv_b) & (z_b > 0)[:, None], uv_b, torch.full_like(uv_b, -1.0))
    return Matches(pixels_a.float(), uv_b.float(), valid, confidence.float())
