"""The Triton hash grid against the reference: values and gradients, on CPU through Triton's
interpreter (every CI run) and on CUDA where a GPU is present.

The interpreter is chosen when ``triton`` is imported (``TRITON_INTERPRET=1``), so the CPU checks run
in a subprocess: this test process may hold compiled kernels for a GPU at the same time.
"""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from nerfdata.encoders.hashgrid import HashGridConfig, HashGridEncoder, hash_grid_encode_reference, triton_available

pytest.importorskip("triton", reason="triton is installed with the [test] extra; without it there is no Triton backend")

ROOT = Path(__file__).resolve().parents[1]

# (levels, features, log2 table, base resolution, growth, layout): dense and hashed levels, every
# feature width, and nerfstudio's PyTorch HashEncoding layout (its growth factors from max_res).
CONFIGS = [
    (4, 2, 12, 8, 2.0, "tcnn"), (3, 1, 10, 4, 3.0, "tcnn"), (2, 4, 14, 16, 1.5, "tcnn"), (2, 8, 11, 6, 2.5, "tcnn"),
    (8, 2, 12, 16, (512 / 16) ** (1 / 7), "nerfstudio"), (5, 2, 10, 16, (128 / 16) ** (1 / 4), "nerfstudio"),
    (3, 4, 11, 4, 3.0, "nerfstudio"), (2, 1, 9, 16, 2.0, "nerfstudio"),
]


def grid_config(levels: int, features: int, log2: int, base: int, growth: float, layout: str) -> HashGridConfig:
    return HashGridConfig(num_levels=levels, features_per_level=features, log2_hashmap_size=log2,
                          base_resolution=base, per_level_scale=growth, layout=layout)

PARITY = r"""
import json, sys
import torch
from nerfdata.encoders.hashgrid import HashGridConfig, hash_grid_encode_reference
from nerfdata.encoders.hashgrid_triton import hash_grid_encode_triton

report = []
for levels, features, log2, base, growth, layout in json.loads(sys.argv[1]):
    config = HashGridConfig(num_levels=levels, features_per_level=features, log2_hashmap_size=log2,
                            base_resolution=base, per_level_scale=growth, layout=layout)
    g = torch.Generator().manual_seed(levels * 10 + features)
    params = torch.randn(config.num_params, generator=g) * 0.1
    # 257 points: not a multiple of the block; the corners of the cube; points outside [0, 1] wrap;
    # points on grid planes of every level (x = k / 64: nerfstudio's ceil corner is the floor one).
    x = torch.rand(257, 3, generator=g)
    x[:8] = torch.tensor([[(c >> d) & 1 for d in range(3)] for c in range(8)], dtype=torch.float32)
    x[8:12] = torch.tensor([[-0.3, 0.5, 1.7], [2.0, -1.0, 0.25], [0.5, 0.5, 0.5], [1e-7, 1 - 1e-7, 0.5]])
    x[12:20, 0] = torch.arange(8) / 64.0
    grad_out = torch.randn(len(x), config.output_dim, generator=g)
    rows = {}
    for name, encode in (("triton", hash_grid_encode_triton), ("reference", hash_grid_encode_reference)):
        xs, ps = x.clone().requires_grad_(True), params.clone().requires_grad_(True)
        out = encode(xs, ps, config)
        (out * grad_out).sum().backward()
        rows[name] = (out.detach(), xs.grad, ps.grad)
    (a, ax, ap), (b, bx, bp) = rows["triton"], rows["reference"]
    empty = hash_grid_encode_triton(torch.zeros(0, 3), params, config)
    report.append({
        "config": [levels, features, log2, base, growth, layout],
        "forward_equal": bool(torch.equal(a, b)),
        "forward_err": float((a - b).abs().max()),
        "params_err": float((ap - bp).abs().max()), "params_scale": float(bp.abs().max()),
        "x_err": float((ax - bx).abs().max()), "x_scale": float(bx.abs().max()),
        "empty_shape": list(empty.shape),
    })
print(json.dumps(report))
"""


def _interpreted_parity() -> list[dict]:
    env = dict(os.environ, TRITON_INTERPRET="1", PYTHONPATH=str(ROOT))
    result = subprocess.run(
        [sys.executable, "-c", PARITY, json.dumps(CONFIGS)], capture_output=True, text=True, env=env, cwd=ROOT
    )
    assert result.returncode == 0, result.stderr[-3000:]
    return json.loads(result.stdout.strip().splitlines()[-1])


@pytest.fixture(scope="module")
def parity() -> list[dict]:
    return _interpreted_parity()


def test_both_layouts_are_checked(parity):
    assert {row["config"][-1] for row in parity} == {"tcnn", "nerfstudio"}


def test_interpreted_forward_is_the_reference_bit_for_bit(parity):
    # The interpreter evaluates the kernel's float32 operations one by one in the reference's order
    # (position in float64 rounded once, weights x then y then z, corners 0..7): identical bits.
    for row in parity:
        assert row["forward_equal"], row
        assert row["empty_shape"][0] == 0


def test_interpreted_gradients_match_the_reference(parity):
    for row in parity:
        # Table gradients: each entry sums at most a few hundred float32 products, in another order
        # than autograd's index backward: rounding of a few ulp of the largest entry.
        assert row["params_err"] <= 1e-6 * max(row["params_scale"], 1.0), row
        # Position gradients: sums of (corner difference x weight x scale) over levels and features,
        # grouped differently from autograd's: relative rounding of float32, times the terms' count.
        assert row["x_err"] <= 1e-5 * max(row["x_scale"], 1.0), row


def test_auto_backend_prefers_triton_on_cuda_without_tcnn(monkeypatch):
    import nerfdata.encoders.hashgrid as hashgrid

    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(hashgrid, "tcnn_available", lambda: False)
    encoder = HashGridEncoder(HashGridConfig(num_levels=2, log2_hashmap_size=10))
    assert triton_available("cuda")
    assert encoder.implementation(torch.device("cuda")) == "triton"
    monkeypatch.setattr(hashgrid, "tcnn_available", lambda: True)
    assert encoder.implementation(torch.device("cuda")) == "tcnn"  # tiny-cuda-nn first, when it imports
    assert encoder.implementation(torch.device("cpu")) in ("fused", "torch")
    # tiny-cuda-nn cannot compute nerfstudio's layout: Triton runs it even where tiny-cuda-nn imports.
    nerfstudio = HashGridEncoder(HashGridConfig.nerfstudio(2, 16, 64, 10))
    assert nerfstudio.implementation(torch.device("cuda")) == "triton"


@pytest.mark.cuda
@pytest.mark.skipif(
    not torch.cuda.is_available(), reason="needs a CUDA device: the compiled Triton kernels run on GPUs"
)
def test_cuda_kernels_match_the_reference():
    from nerfdata.encoders.hashgrid_triton import hash_grid_encode_triton

    for row in CONFIGS:
        config = grid_config(*row)
        g = torch.Generator().manual_seed(0)
        params = torch.randn(config.num_params, generator=g) * 0.1
        x = torch.rand(4099, 3, generator=g)
        grad_out = torch.randn(len(x), config.output_dim, generator=g)
        xs, ps = x.cuda().requires_grad_(True), params.cuda().requires_grad_(True)
        out = hash_grid_encode_triton(xs, ps, config)
        (out * grad_out.cuda()).sum().backward()
        xr, pr = x.clone().requires_grad_(True), params.clone().requires_grad_(True)
        ref = hash_grid_encode_reference(xr, pr, config)
        (ref * grad_out).sum().backward()
        # On a GPU, multiply-adds may fuse (one rounding instead of two) and atomics add in any order.
        assert torch.allclose(out.cpu(), ref, atol=1e-6, rtol=1e-5)
        assert torch.allclose(ps.grad.cpu(), pr.grad, atol=1e-5, rtol=1e-4)
        assert torch.allclose(xs.grad.cpu(), xr.grad, atol=1e-3 * float(xr.grad.abs().max()), rtol=1e-4)
