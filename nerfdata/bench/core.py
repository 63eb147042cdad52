"""Core speed: hash-grid throughput per backend, and render rays/s with and without occupancy."""

from collections.abc import Callable
from dataclasses import replace
from functools import partial
from typing import Any

import torch
from torch import Tensor

from nerfdata.bench.timing import median_seconds
from nerfdata.cameras import Camera, Intrinsics, look_at_c2w_opengl
from nerfdata.encoders.fused import fused_available, hash_grid_encode_fused
from nerfdata.encoders.hashgrid import (
    HashGridConfig,
    HashGridEncoder,
    hash_grid_encode,
    hash_grid_encode_reference,
    tcnn_available,
    triton_available,
)
from nerfdata.fields.analytic import AnalyticField, Box, Material, Sphere, Torus
from nerfdata.fields.ngp import NGPField, NGPFieldConfig
from nerfdata.fields.occupancy import occupancy_grid_from_density
from nerfdata.render.renderer import RenderOptions, render_image

__all__ = ["bench_hash_grid", "bench_render", "benchmark_scene", "distill_ngp"]


def _encoders_on(device: str) -> list[tuple[str, Callable[..., Tensor]]]:
    """The hash-grid implementations that run on ``device``, fastest first (the reference last on CPU)."""
    if device == "cuda":
        encoders: list[tuple[str, Callable[..., Tensor]]] = []
        if triton_available("cuda"):
            from nerfdata.encoders.hashgrid_triton import hash_grid_encode_triton

            encoders.append(("triton (CUDA)", hash_grid_encode_triton))
        if tcnn_available():
            # tiny-cuda-nn's module holds its own table (of the same layout and size).
            tcnn = HashGridEncoder(HashGridConfig(), backend="tcnn").to("cuda")
            encoders.append(("tcnn (CUDA)", lambda x, params, config: tcnn(x)))
        return [*encoders, ("torch (CUDA)", hash_grid_encode)]
    encoders = [("fused (C, CPU)", hash_grid_encode_fused)] if fused_available() else []
    return [*encoders, ("torch", hash_grid_encode), ("reference loop", hash_grid_encode_reference)]


def bench_hash_grid(num_points: int, repeats: int, device: str = "cpu") -> list[dict[str, Any]]:
    """Samples/s of each hash-grid implementation on ``device``, forward and forward+backward.

    On the CPU the last row is the reference: a per-level loop with plain autograd indexing, the
    way PyTorch fallbacks such as nerfstudio's are written; it is the baseline of the ratios. On
    CUDA the rows are Triton, tiny-cuda-nn (when it imports) and the PyTorch path, timed with the
    device synchronised. The Triton interpreter (CPU) is a test harness and is not timed.
    """
    config = HashGridConfig()  # Instant-NGP defaults: 16 levels, 2^19 entries, resolutions 16..2048
    g = torch.Generator().manual_seed(0)
    x = torch.rand(num_points, 3, generator=g).to(device)
    params = (torch.randn(config.num_params, generator=g) * 1e-2).to(device).requires_grad_(True)
    synchronize = torch.cuda.synchronize if device == "cuda" else (lambda: None)
    rows = []
    for name, encode in _encoders_on(device):
        def forward(encode: Callable[..., Tensor] = encode) -> None:
            with torch.no_grad():
                encode(x, params, config)
            synchronize()

        def forward_backward(encode: Callable[..., Tensor] = encode) -> None:
            encode(x, params, config).sum().backward()
            params.grad = None
            synchronize()

        rows.append(
            {
                "backend": name,
                "device": device,
                "forward_samples_per_s": num_points / median_seconds(forward, repeats),
                "train_samples_per_s": num_points / median_seconds(forward_backward, repeats),
            }
        )
    return rows


def benchmark_scene() -> AnalyticField:
    """An analytic scene like the demo: ground slab, sphere, box, torus."""
    return AnalyticField(
        [
            Box((0.0, -0.55, 0.0), (1.2, 0.05, 1.2), Material((0.75, 0.75, 0.72), "checker", 2.5)),
            Sphere((-0.35, -0.15, 0.1), 0.35, Material((0.85, 0.3, 0.25), "noise", 1.5)),
            Box((0.45, -0.2, -0.3), (0.2, 0.3, 0.2), Material((0.25, 0.4, 0.85), "stripes", 3.0)),
            Torus((0.35, -0.42, 0.45), 0.25, 0.08, Material((0.9, 0.8, 0.2), "checker", 8.0)),
        ],
        aabb=[[-1.3, -0.65, -1.3], [1.3, 0.8, 1.3]],
    )


def distill_ngp(source: AnalyticField, steps: int, batch: int = 1 << 15, seed: int = 0) -> NGPField:
    """An NGPField regressed onto ``source``'s density and colour: realistic empty space and surfaces.

    Not a photometric training run (that is ``nerfdata train``): a quick way to get an NGP field
    whose occupancy resembles a trained one, for speed measurements.
    """
    torch.manual_seed(seed)
    aabb = tuple(tuple(float(v) for v in corner) for corner in source.aabb.tolist())
    grid = HashGridConfig(num_levels=12, log2_hashmap_size=17, base_resolution=16, per_level_scale=1.35)
    field = NGPField(NGPFieldConfig(aabb=aabb, hash_grid=grid))  # type: ignore[arg-type]
    optimizer = torch.optim.Adam(field.parameters(), lr=1e-2, eps=1e-15)
    g = torch.Generator().manual_seed(seed)
    lower, size = source.aabb[0], source.aabb[1] - source.aabb[0]
    for _ in range(steps):
        x = lower + torch.rand(batch, 3, generator=g) * size
        d = torch.nn.functional.normalize(torch.randn(batch, 3, generator=g), dim=-1)
        with torch.no_grad():
            target_density = source.density(x) * field.box_length  # compare in per-box units
            target_rgb = source.albedo(x)
        sigma, rgb = field.query(x, d)
        loss = (torch.log1p(sigma * field.box_length) - torch.log1p(target_density)).abs().mean()
        loss = loss + ((rgb - target_rgb) ** 2).mean()
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    return field.eval().requires_grad_(False)


def bench_render(resolution: int, repeats: int, distill_steps: int) -> list[dict[str, Any]]:
    """Rays/s of a ``resolution^2`` render of an analytic and an NGP field, with and without occupancy.

    Rows: with the occupancy grid, without it (every step evaluated), and with it plus normals.
    """
    analytic = benchmark_scene()
    camera = Camera(
        look_at_c2w_opengl(
            torch.tensor([2.2, 1.4, 2.2]), torch.tensor([0.0, -0.3, 0.0]), torch.tensor([0.0, 1.0, 0.0])
        ),
        Intrinsics.from_fov(resolution, resolution, 45.0),
    )
    rows = []
    for name, field_ in [("AnalyticField", analytic), ("NGPField", distill_ngp(analytic, distill_steps))]:
        occupancy = occupancy_grid_from_density(field_.density, field_.aabb, resolution=128)
        for grid, normals in [(occupancy, False), (None, False), (occupancy, True)]:
            options = replace(RenderOptions(), normals=normals)
            seconds = median_seconds(partial(render_image, field_, camera, options, grid), repeats, warmup=0)
            rows.append(
                {
                    "field": name,
                    "occupancy": grid is not None,
                    "normals": normals,
                    "rays_per_s": camera.intrinsics.num_pixels / seconds,
                    "occupied_fraction": occupancy.occupied_fraction,
                }
            )
    return rows
