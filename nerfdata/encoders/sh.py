"""Real spherical harmonics of view directions, in tiny-cuda-nn's ``SphericalHarmonics`` order.

tiny-cuda-nn's "degree" is the number of bands: degree 4 gives 16 outputs. Its kernel takes
directions mapped to ``[0, 1]^3`` and maps them back with ``2 * d - 1``; this function takes the
unit directions themselves. Signs and constants follow its generated polynomials, so weights
trained on tiny-cuda-nn's encoding read the same features here.
"""

import torch
from jaxtyping import Float
from torch import Tensor

__all__ = ["sh_encode"]


def sh_encode(directions: Float[Tensor, "*batch 3"], degree: int = 4) -> Float[Tensor, "*batch coeffs"]:
    """Spherical-harmonics features of unit ``directions``: ``degree**2`` values (degree 1 to 4).

    Example:
        >>> sh_encode(torch.tensor([[0.0, 0.0, 1.0]])).shape
        torch.Size([1, 16])
    """
    if not 1 <= degree <= 4:
        raise ValueError(f"spherical harmonics degree must be in [1, 4], got {degree}")
    x, y, z = directions.unbind(-1)
    xy, xz, yz, x2, y2, z2 = x * y, x * z, y * z, x * x, y * y, z * z
    out = [torch.full_like(x, 0.28209479177387814)]
    if degree >= 2:
        out += [-0.48860251190291987 * y, 0.48860251190291987 * z, -0.48860251190291987 * x]
    if degree >= 3:
        out += [
            1.0925484305920792 * xy,
            -1.0925484305920792 * yz,
            0.94617469575755997 * z2 - 0.31539156525251999,
            -1.0925484305920792 * xz,
            0.54627421529603959 * x2 - 0.54627421529603959 * y2,
        ]
    if degree >= 4:
        out += [
            0.59004358992664352 * y * (-3.0 * x2 + y2),
            2.8906114426405538 * xy * z,
            0.45704579946446572 * y * (1.0 - 5.0 * z2),
            0.3731763325901154 * z * (5.0 * z2 - 3.0),
            0.45704579946446572 * x * (1.0 - 5.0 * z2),
            1.4453057213202769 * z * (x2 - y2),
            0.59004358992664352 * x * (-x2 + 3.0 * y2),
        ]
    return torch.stack(out, dim=-1)
