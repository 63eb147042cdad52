"""Rays -> samples -> weights -> per-ray outputs: the ray marcher and volume rendering."""

from nerfdata.render.renderer import (
    ImageOutputs,
    RayOutputs,
    RaySamples,
    RenderOptions,
    render_image,
    render_rays,
    render_rays_reference,
)
from nerfdata.render.volume import BlockWeights, block_weights, median_crossing

__all__ = [
    "BlockWeights",
    "ImageOutputs",
    "RayOutputs",
    "RaySamples",
    "RenderOptions",
    "block_weights",
    "median_crossing",
    "render_image",
    "render_rays",
    "render_rays_reference",
]
