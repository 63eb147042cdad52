"""Spherical harmonics: tiny-cuda-nn's constants and order, checked by orthonormality and by hand."""

import math

import pytest
import torch

from nerfdata.encoders.sh import sh_encode


def test_orthonormal_over_the_sphere():
    g = torch.Generator().manual_seed(0)
    d = torch.nn.functional.normalize(torch.randn(400_000, 3, generator=g, dtype=torch.float64), dim=-1)
    y = sh_encode(d, degree=4)
    gram = (y.T @ y) * (4 * math.pi / len(d))  # Monte Carlo estimate of the integral of Y_i Y_j
    torch.testing.assert_close(gram, torch.eye(16, dtype=torch.float64), rtol=0, atol=0.02)


def test_values_by_hand():
    y = sh_encode(torch.tensor([[0.0, 0.0, 1.0]]))[0]
    assert y[0].item() == pytest.approx(0.5 / math.sqrt(math.pi))
    assert y[2].item() == pytest.approx(math.sqrt(3) / (2 * math.sqrt(math.pi)))  # sqrt(3) z / (2 sqrt(pi))
    assert y[6].item() == pytest.approx(math.sqrt(5) * 2 / (4 * math.sqrt(math.pi)))  # sqrt(5)(3z^2-1)/(4 sqrt(pi))
    x_axis = sh_encode(torch.tensor([[1.0, 0.0, 0.0]]))[0]
    assert x_axis[3].item() == pytest.approx(-math.sqrt(3) / (2 * math.sqrt(math.pi)))  # tiny-cuda-nn's sign


@pytest.mark.parametrize("degree, size", [(1, 1), (2, 4), (3, 9), (4, 16)])
def test_degree_is_number_of_bands(degree, size):
    assert sh_encode(torch.randn(7, 3), degree).shape == (7, size)
