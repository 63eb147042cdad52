"""nerfdata rays rendered by a nerfstudio model's own sampler and renderer (nerfacto: its proposals)."""

from dataclasses import dataclass

import torch
from jaxtyping import Float
from torch import Tensor

from nerfdata.cameras import Rays
from nerfdata.fields.nerfstudio.field import NerfstudioField

__all__ = ["NerfstudioRayOutputs", "render_rays_nerfstudio"]


@dataclass
class NerfstudioRayOutputs:
    """The model's own render of rays, in the data's frame and units (``range``: along the unit ray)."""

    rgb: Float[Tensor, "n 3"]
    accumulation: Float[Tensor, " n"]
    range_median: Float[Tensor, " n"]
    range_expected: Float[Tensor, " n"]
    depth_median: Float[Tensor, " n"]
    """z-depth along the camera's optical axis (``range * z_per_range``)."""
    depth_expected: Float[Tensor, " n"]


@torch.no_grad()
def render_rays_nerfstudio(field_: NerfstudioField, rays: Rays) -> NerfstudioRayOutputs:
    """Render nerfdata rays (world frame) with the model's own sampler and renderer (nerfacto: proposals).

    The rays are mapped into nerfstudio's frame and rendered by the model exactly as
    ``model.get_outputs_for_camera`` renders a camera's rays; ranges come back in world units.
    """
    from nerfstudio.cameras.rays import RayBundle

    n = len(rays)
    bundle = RayBundle(
        origins=field_.frame.to_nerfstudio(rays.origins).reshape(n, 1, 3),
        directions=field_.frame.directions_to_nerfstudio(rays.directions).reshape(n, 1, 3),
        pixel_area=torch.ones(n, 1, 1, device=rays.origins.device),
        camera_indices=torch.zeros(n, 1, 1, dtype=torch.long, device=rays.origins.device),
    )
    outputs = field_.model.get_outputs_for_camera_ray_bundle(bundle)
    range_median = outputs["depth"].reshape(n) / field_.frame.scale
    range_expected = outputs["expected_depth"].reshape(n) / field_.frame.scale
    return NerfstudioRayOutputs(
        rgb=outputs["rgb"].reshape(n, 3),
        accumulation=outputs["accumulation"].reshape(n),
        range_median=range_median,
        range_expected=range_expected,
        depth_median=rays.depth_z(range_median),
        depth_expected=rays.depth_z(range_expected),
    )
