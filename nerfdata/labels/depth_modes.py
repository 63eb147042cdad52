"""``depth_modes``: a compact per-pixel depth distribution, the top-K modes of ray termination.

NeRF-Supervision trains descriptors with one-to-many labels: a pixel may end on several surfaces
(thin, transparent or reflective parts, silhouettes). Storing every sample of every ray is large
(about 49 MB per view in their release); the few heaviest modes of the termination distribution
keep what matters: per pixel ``K`` pairs ``(z-depth, weight)``, heaviest first, float16, zero-padded
(weight 0 = no such mode). Weights are probabilities that the ray ends on that mode; their sum is at
most the pixel's accumulation.
"""


import torch
from jaxtyping import Float
from torch import Tensor

from nerfdata.cameras import Camera
from nerfdata.fields.base import Field
from nerfdata.fields.occupancy import OccupancyGrid
from nerfdata.render.renderer import RaySamples, RenderOptions, render_camera_samples
from nerfdata.render.termination import weight_modes

__all__ = ["DEPTH_MODES_K", "depth_modes", "render_depth_modes"]

DEPTH_MODES_K = 4
"""Modes kept per pixel by default."""


def depth_modes(
    samples: RaySamples, z_per_range: Float[Tensor, " n"], k: int = DEPTH_MODES_K
) -> Float[Tensor, "n k 2"]:
    """Top-``k`` modes of each ray's termination distribution as float16 ``(z-depth, weight)`` pairs.

    Args:
        samples: Packed samples of ``n`` rays (``render_rays`` with ``return_samples=True``).
        z_per_range: Per ray, z-depth per unit of distance along it (``Rays.z_per_range``).
        k: Modes per ray.

    Returns:
        ``(n, k, 2)`` float16: ``[..., 0]`` z-depth, ``[..., 1]`` weight, heaviest first; zeros pad.

    Example:
        >>> t0 = torch.tensor([1.0, 3.0])
        >>> weights = torch.tensor([0.25, 0.75])
        >>> samples = RaySamples(torch.zeros(2, dtype=torch.long), t0, t0 + 0.1, weights, torch.zeros(2))
        >>> depth_modes(samples, torch.ones(1), k=3)[0].tolist()
        [[3.05078125, 0.75], [1.0498046875, 0.25], [0.0, 0.0]]
    """
    distance, weight = weight_modes(
        samples.ray_indices, samples.t_start, samples.t_end, samples.weights, samples.density, len(z_per_range), k
    )
    return torch.stack([distance * z_per_range[:, None], weight], dim=-1).to(torch.float16)


@torch.no_grad()
def render_depth_modes(
    field_: Field,
    camera: Camera,
    options: RenderOptions = RenderOptions(),
    occupancy: OccupancyGrid | None = None,
    k: int = DEPTH_MODES_K,
) -> Float[Tensor, "h w k 2"]:
    """:func:`depth_modes` of every pixel of ``camera``, rendered in chunks of ``options.chunk_rays`` rays.

    Memory holds one chunk's samples at a time, whatever the image size.
    """
    parts = []
    for chunk, out in render_camera_samples(field_, camera, options, occupancy):
        assert out.samples is not None
        parts.append(depth_modes(out.samples, chunk.z_per_range, k))
    return torch.cat(parts).reshape(camera.intrinsics.height, camera.intrinsics.width, k, 2)
