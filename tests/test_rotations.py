"""Rotation maths: every constructor against scipy, the geodesic angle at small and large angles, SE(3)."""

import math

import numpy as np
import torch
from scipy.spatial.transform import Rotation

from nerfdata.rotations import axis_angle_matrix, euler_xyz_matrix, rotation_angle_deg, se3_exp, slerp_matrices


def _random_rotvecs(n: int, seed: int = 0) -> torch.Tensor:
    return torch.randn(n, 3, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)


def test_axis_angle_matrix_matches_scipy():
    rotvecs = _random_rotvecs(64)
    angles = rotvecs.norm(dim=-1)
    matrices = axis_angle_matrix(rotvecs / angles[:, None], angles)
    expected = torch.from_numpy(Rotation.from_rotvec(rotvecs.numpy()).as_matrix())
    # Both are float64 evaluations of the same rotation; they differ by rounding only.
    assert torch.allclose(matrices, expected, atol=1e-13)


def test_euler_and_slerp_match_scipy():
    angles = torch.tensor([10.0, -35.0, 80.0], dtype=torch.float64)
    expected = Rotation.from_euler("xyz", angles.numpy(), degrees=True).as_matrix()
    assert np.allclose(euler_xyz_matrix(angles).numpy(), expected, atol=1e-15)
    keys = torch.stack([torch.eye(3, dtype=torch.float64), euler_xyz_matrix(angles)])
    halfway = slerp_matrices(keys, np.array([0.0, 1.0]), np.array([0.5]))[0]
    total = rotation_angle_deg(keys[0], keys[1])
    assert math.isclose(float(rotation_angle_deg(keys[0], halfway)), float(total) / 2, rel_tol=1e-9)
    assert math.isclose(float(rotation_angle_deg(halfway, keys[1])), float(total) / 2, rel_tol=1e-9)


def test_rotation_angle_is_accurate_at_every_scale():
    axis = torch.nn.functional.normalize(torch.tensor([1.0, 2.0, -0.5], dtype=torch.float64), dim=0)
    for degrees in (1e-6, 1e-3, 0.1, 5.0, 90.0, 179.0):
        rotation = axis_angle_matrix(axis, torch.tensor(math.radians(degrees), dtype=torch.float64))
        angle = float(rotation_angle_deg(torch.eye(3, dtype=torch.float64), rotation))
        # arccos of the trace would give 0 (or 1e-6-level noise) below about 1e-4 degrees.
        assert math.isclose(angle, degrees, rel_tol=1e-8), (degrees, angle)
    axes = torch.nn.functional.normalize(_random_rotvecs(8, seed=1), dim=-1)
    batch = axis_angle_matrix(axes, torch.full((8,), 0.5, dtype=torch.float64))
    assert torch.allclose(rotation_angle_deg(batch, batch), torch.zeros(8, dtype=torch.float64), atol=1e-12)


def test_se3_update_stays_rigid():
    xi = torch.randn(16, 6, generator=torch.Generator().manual_seed(0), dtype=torch.float64) * 2.0
    transforms = se3_exp(xi)
    rotations = transforms[:, :3, :3]
    eye = torch.eye(3, dtype=torch.float64).expand_as(rotations)
    assert torch.allclose(rotations.transpose(-1, -2) @ rotations, eye, atol=1e-12)
    assert torch.allclose(torch.linalg.det(rotations), torch.ones(16, dtype=torch.float64), atol=1e-12)
    assert (transforms[:, 3] == torch.tensor([0.0, 0.0, 0.0, 1.0], dtype=torch.float64)).all()
    # The rotation part is the axis-angle rotation of omega, as Rodrigues' formula says.
    expected = torch.from_numpy(Rotation.from_rotvec(xi[:, 3:].numpy()).as_matrix())
    assert torch.allclose(rotations, expected, atol=1e-10)
    # Exact and differentiable at the identity (the solver starts there).
    zero = torch.zeros(6, dtype=torch.float64, requires_grad=True)
    se3_exp(zero)[:3, 3].sum().backward()
    assert torch.allclose(zero.grad, torch.tensor([1.0, 1.0, 1.0, 0.0, 0.0, 0.0], dtype=torch.float64))


