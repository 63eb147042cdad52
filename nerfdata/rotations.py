"""Rotations and rigid motions: axis-angle, Euler angles, slerp, SE(3) exponential, geodesic angles.

The one home of rotation maths; every pose sampler, perturbation protocol, pose error and solver
uses these. Matrices rotate column vectors (``x' = R x``). Computations are float64: rotations
built in float32 drift away from orthonormal after a few products.

* :func:`axis_angle_matrix`: Rodrigues' formula, batched, differentiable;
* :func:`euler_xyz_matrix`, :func:`slerp_matrices`: scipy's ``Rotation`` (a well-kept library;
  imported when called, since ``scipy.spatial`` takes 0.4 s to import and most jobs never call them);
* :func:`rotation_angle_deg`: the geodesic angle between rotations, by ``atan2`` (``arccos`` of the
  trace loses precision at the small angles that pose errors are about);
* :func:`se3_hat`, :func:`se3_exp`: twists ``xi = (rho, omega)``, translation part first (as in
  Lynch and Park's ``[S] theta``), and their rigid transforms.
"""

import numpy as np
import torch
from jaxtyping import Float
from torch import Tensor

__all__ = [
    "axis_angle_matrix",
    "euler_xyz_matrix",
    "rotation_angle_deg",
    "se3_exp",
    "se3_hat",
    "slerp_matrices",
]


def _skew(v: Float[Tensor, "*batch 3"]) -> Float[Tensor, "*batch 3 3"]:
    """``[v]_x``, the matrix of the cross product with ``v``."""
    x, y, z = v.unbind(-1)
    zero = torch.zeros_like(x)
    return torch.stack([zero, -z, y, z, zero, -x, -y, x, zero], -1).reshape(*v.shape[:-1], 3, 3)


def axis_angle_matrix(
    axes: Float[Tensor, "*#batch 3"], angles: Float[Tensor, "*#batch"]
) -> Float[Tensor, "*batch 3 3"]:
    """Rotation matrices about unit ``axes`` by ``angles`` (radians, right-handed), Rodrigues' formula.

    ``axes`` and ``angles`` broadcast against each other (one axis for many angles, or one each).

    Example:
        >>> import math
        >>> z = torch.tensor([0.0, 0.0, 1.0], dtype=torch.float64)
        >>> R = axis_angle_matrix(z, torch.tensor(math.pi / 2, dtype=torch.float64))
        >>> [round(v, 6) + 0.0 for v in (R @ torch.tensor([1.0, 0.0, 0.0], dtype=torch.float64)).tolist()]
        [0.0, 1.0, 0.0]
    """
    skew = _skew(axes)
    s, c = torch.sin(angles)[..., None, None], torch.cos(angles)[..., None, None]
    eye = torch.eye(3, dtype=axes.dtype, device=axes.device)
    return eye + s * skew + (1 - c) * skew @ skew


def euler_xyz_matrix(angles_deg: Float[Tensor, "3"]) -> Float[Tensor, "3 3"]:
    """Rotation by extrinsic Euler angles about x, then y, then z (degrees), float64.

    Example:
        >>> round(euler_xyz_matrix(torch.tensor([0.0, 0.0, 90.0]))[1, 0].item(), 6)
        1.0
    """
    from scipy.spatial.transform import Rotation

    matrix = Rotation.from_euler("xyz", angles_deg.double().cpu().numpy(), degrees=True).as_matrix()
    return torch.from_numpy(matrix)


def slerp_matrices(
    keys: Float[Tensor, "k 3 3"], times: Float[np.ndarray, " k"], samples: Float[np.ndarray, " n"]
) -> Float[Tensor, "n 3 3"]:
    """Rotations interpolated at ``samples`` along key rotations at increasing ``times`` (spherical linear).

    Example:
        >>> keys = torch.stack([torch.eye(3, dtype=torch.float64), euler_xyz_matrix(torch.tensor([0.0, 90.0, 0.0]))])
        >>> middle = slerp_matrices(keys, np.array([0.0, 1.0]), np.array([0.5]))
        >>> round(rotation_angle_deg(middle[0], keys[0]).item(), 6)
        45.0
    """
    from scipy.spatial.transform import Rotation, Slerp

    rotations = Slerp(times, Rotation.from_matrix(keys.double().cpu().numpy()))(samples)
    return torch.from_numpy(rotations.as_matrix())


def rotation_angle_deg(
    rotation_a: Float[Tensor, "*batch 3 3"], rotation_b: Float[Tensor, "*batch 3 3"]
) -> Float[Tensor, "*batch"]:
    """Geodesic angle (degrees, in ``[0, 180]``) of the rotation taking ``rotation_a`` to ``rotation_b``.

    The angle of ``R = A^T B``: ``atan2(|axial(R - R^T)| / 2, (tr R - 1) / 2)``, accurate at small
    angles too (pose errors of a tenth of a degree are what benchmarks report).

    Example:
        >>> a = torch.eye(3, dtype=torch.float64)
        >>> y = torch.tensor([0.0, 1.0, 0.0], dtype=torch.float64)
        >>> b = axis_angle_matrix(y, torch.tensor(1e-7, dtype=torch.float64))
        >>> f"{rotation_angle_deg(a, b).item():.6e}"
        '5.729578e-06'
    """
    relative = rotation_a.transpose(-1, -2) @ rotation_b
    cosine = (relative.diagonal(dim1=-2, dim2=-1).sum(-1) - 1.0) / 2.0
    skew = relative - relative.transpose(-1, -2)
    sine = torch.stack([skew[..., 2, 1], skew[..., 0, 2], skew[..., 1, 0]], -1).norm(dim=-1) / 2.0
    return torch.rad2deg(torch.atan2(sine, cosine))


def se3_hat(xi: Float[Tensor, "*batch 6"]) -> Float[Tensor, "*batch 4 4"]:
    """The 4x4 matrix of twist ``xi = (rho, omega)``: ``[[omega^, rho], [0, 0]]``."""
    top = torch.cat([_skew(xi[..., 3:]), xi[..., :3, None]], dim=-1)
    return torch.cat([top, torch.zeros_like(top[..., :1, :])], dim=-2)


def se3_exp(xi: Float[Tensor, "*batch 6"]) -> Float[Tensor, "*batch 4 4"]:
    """Rigid transform ``exp([xi])`` (differentiable, exact at ``xi = 0``; compute in float64 to stay rigid).

    Example:
        >>> import math
        >>> T = se3_exp(torch.tensor([1.0, 2.0, 3.0, 0.0, 0.0, math.pi / 2], dtype=torch.float64))
        >>> [round(v, 6) + 0.0 for v in T[0, :2].tolist()], round(T[2, 3].item(), 6)
        ([0.0, -1.0], 3.0)
    """
    return torch.linalg.matrix_exp(se3_hat(xi))
