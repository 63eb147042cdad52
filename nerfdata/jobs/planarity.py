"""A planarity prior for training: surfaces that are flat where the photometric loss leaves them free.

A photometric loss alone learns bumps and steps where the albedo changes (the tabletop's checker
squares came out up to 0.015 units apart in depth), which normals from the depth show as noise. Under
perspective a plane's inverse depth is linear in pixel coordinates, so along three adjacent pixels of a
training image its second difference is zero: :func:`planarity_loss` penalises that second difference
of the rendered (expected) depth, relative to the depth, with a robust penalty that saturates (Geman and
McClure), so that a true depth edge costs a bounded amount and is kept. :func:`pixel_triplets` draws the
triplets among a batch's rays.
"""

import torch
from jaxtyping import Float, Int
from torch import Tensor

__all__ = ["PLANARITY_SCALE", "pixel_triplets", "planarity_loss"]

PLANARITY_SCALE = 0.01
"""Relative second difference of inverse depth at which the penalty reaches half its ceiling: the tabletop's
checker steps (0.6% of the depth) are pulled flat, object edges (5% and more) are past the saturation."""


def pixel_triplets(
    widths: Int[Tensor, " f"], heights: Int[Tensor, " f"], count: int, generator: torch.Generator
) -> Int[Tensor, "3 count"]:
    """``count`` triplets of adjacent pixels (a row's or a column's three, drawn alike), as indices of rays
    concatenated image after image, each image row-major.

    Example:
        >>> triplets = pixel_triplets(torch.tensor([4, 6]), torch.tensor([3, 5]), 2, torch.Generator().manual_seed(0))
        >>> triplets.shape, bool(((triplets[2] - triplets[1]) == (triplets[1] - triplets[0])).all())
        (torch.Size([3, 2]), True)
    """
    sizes = widths * heights
    starts = torch.cumsum(sizes, 0) - sizes
    centre = torch.randint(int(sizes.sum()), (count,), generator=generator)
    image = torch.searchsorted(starts, centre, right=True) - 1
    width, height = widths[image], heights[image]
    local = centre - starts[image]
    # Borders move one pixel in: every triplet lies inside its image.
    x = torch.minimum(torch.clamp(local % width, min=1), width - 2)
    y = torch.minimum(torch.clamp(local // width, min=1), height - 2)
    centre = starts[image] + y * width + x
    step = torch.where(torch.rand(count, generator=generator) < 0.5, 1, width)
    return torch.stack([centre - step, centre, centre + step])


def planarity_loss(
    depths: Float[Tensor, "3 m"], accumulation: Float[Tensor, "3 m"], scale: float = PLANARITY_SCALE
) -> Float[Tensor, ""]:
    """Mean robust penalty on the second difference of inverse z-depth over triplets of adjacent pixels.

    ``x = (1/z_a - 2/z_b + 1/z_c) z_b``, zero on any plane (its inverse z-depth is linear across the
    image), penalised by ``x^2 / (x^2 + scale^2)`` on triplets whose three rays are mostly opaque
    (accumulation over 1/2: the others have no surface to flatten). 0 when no triplet has one.

    Example:
        >>> plane = 1.0 / torch.tensor([[0.50], [0.51], [0.52]])  # inverse depth linear: a plane
        >>> step = torch.tensor([[2.0], [2.0], [2.03]])
        >>> opaque = torch.ones(3, 1)
        >>> round(planarity_loss(plane, opaque).item(), 6), round(planarity_loss(step, opaque).item(), 2)
        (0.0, 0.69)
    """
    inverse = 1.0 / depths.clamp_min(1e-6)
    second = (inverse[0] - 2.0 * inverse[1] + inverse[2]) * depths[1]
    penalty = second**2 / (second**2 + scale**2)
    opaque = (accumulation > 0.5).all(dim=0)
    return (penalty * opaque).sum() / opaque.sum().clamp_min(1)
