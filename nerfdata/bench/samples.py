"""Samples per ray: what each marching setting spends on a shipped field, and what it changes.

Each scene's test views are rendered with every setting side by side in one run (RGB, accumulation,
median z-depth and the field evaluations of every ray, counted by the renderer:
:attr:`~nerfdata.render.renderer.RayOutputs.num_samples`). The first setting is the baseline
("today"); every other one is compared with it and with the scene's exact ground truth:

* samples per ray, and per hit ray: rays whose accumulation exceeds 0.5 in the baseline (the
  mask's definition), the rays that reach a surface;
* rays/s of the render (median of ``repeats``; the occupancy grid's build is timed apart);
* PSNR against the baseline's render and against the ground truth (mean over views);
* the largest change of an 8-bit pixel, and the relative change of median depth on pixels hit in
  both (median and 99th percentile), and the pixels whose mask flipped.
"""

import math
import statistics
import time
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch
from jaxtyping import Float
from torch import Tensor

from nerfdata.cameras import Camera
from nerfdata.fields.base import LoadedField
from nerfdata.fields.loading import load_field
from nerfdata.fields.occupancy import OccupancyGrid, occupancy_grid_from_density
from nerfdata.render.renderer import RenderOptions, render_rays
from nerfdata.scenes.dataset import scene_cameras
from nerfdata.scenes.groundtruth import MeshRaycaster
from nerfdata.scenes.meshes import build_meshes
from nerfdata.scenes.recipe import load_recipe

__all__ = [
    "SampleSetting",
    "ViewRenders",
    "compare_renders",
    "default_settings",
    "render_views",
    "samples_benchmark",
]

HIT_ACCUMULATION = 0.5
"""A ray hits a surface when its accumulation exceeds this (the mask's default threshold)."""


@dataclass(frozen=True)
class SampleSetting:
    """One way of marching: render options and the occupancy grid they march through."""

    name: str
    options: RenderOptions
    grid: Literal["stored", "density"] = "stored"
    """The checkpoint's grid, or one built from the field's density at 128^3 (what a field without one gets)."""


@dataclass
class ViewRenders:
    """The test views of a scene rendered with one setting, ``(v, h, w, ...)``."""

    rgb: Float[Tensor, "v h w 3"]
    accumulation: Float[Tensor, "v h w"]
    depth: Float[Tensor, "v h w"]
    """Median z-depth (0: no surface)."""
    num_samples: Tensor
    """Field evaluations per ray ``(v, h, w)`` (int)."""
    seconds: float
    """Median wall-clock seconds of the render of every view (the grid's build excluded)."""
    grid_seconds: float
    occupied_fraction: float


def _grid(loaded: LoadedField, setting: SampleSetting) -> tuple[OccupancyGrid, float]:
    """The grid ``setting`` marches through and the seconds its build took."""
    start = time.perf_counter()
    if setting.grid == "stored":
        grid = loaded.occupancy_grid()
    else:
        grid = occupancy_grid_from_density(loaded.field.density, loaded.field.aabb)
    return grid, time.perf_counter() - start


@torch.no_grad()
def render_views(
    loaded: LoadedField, cameras: Sequence[Camera], setting: SampleSetting, repeats: int = 1
) -> ViewRenders:
    """Render every pixel of ``cameras`` with ``setting`` (no normals: they cost time, not samples)."""
    grid, grid_seconds = _grid(loaded, setting)
    options = replace(setting.options, normals=False, return_samples=False)
    times, parts = [], []
    for _ in range(repeats):
        start = time.perf_counter()
        parts = []
        for camera in cameras:
            rays = camera.rays()
            out = render_rays(loaded.field, rays, options, grid)
            parts.append((out.rgb, out.accumulation, rays.depth_z(out.range_median), out.num_samples))
        times.append(time.perf_counter() - start)
    h, w = cameras[0].intrinsics.height, cameras[0].intrinsics.width
    rgb, accumulation, depth, samples = (torch.stack([p[i] for p in parts]) for i in range(4))
    return ViewRenders(
        rgb.reshape(-1, h, w, 3), accumulation.reshape(-1, h, w), depth.reshape(-1, h, w),
        samples.reshape(-1, h, w), statistics.median(times), grid_seconds, grid.occupied_fraction,
    )


def _psnr(a: np.ndarray, b: np.ndarray) -> float:
    """Mean over views of the PSNR between images ``(v, h, w, 3)`` in ``[0, 1]`` (capped at 100 dB)."""
    mse = np.mean((a - b) ** 2, axis=(1, 2, 3))
    return float(np.mean(-10.0 * np.log10(np.maximum(mse, 1e-10))))


def _to_8bit(rgb: np.ndarray) -> np.ndarray:
    """As the PNG writer stores it (``nerfdata.writers.images.to_uint8``), as int."""
    return (np.clip(rgb, 0.0, 1.0) * 255.0 + 0.5).astype(np.int64)


def compare_renders(before: ViewRenders, after: ViewRenders, truth_rgb: np.ndarray | None) -> dict[str, Any]:
    """Figures of ``after`` against ``before`` (the baseline) and the ground truth ``(v, h, w, 3)``, if any.

    Example:
        >>> z = torch.zeros(1, 2, 2)
        >>> a = ViewRenders(torch.ones(1, 2, 2, 3), z + 1, z + 2, (z + 4).long(), 1.0, 0.0, 0.5)
        >>> b = replace(a, depth=z + 2.002, num_samples=(z + 3).long())
        >>> f = compare_renders(a, b, None)
        >>> f["samples_per_hit_ray"], round(f["depth_change_median"], 6), f["max_8bit_change"]
        (3.0, 0.001, 0)
    """
    hit = before.accumulation.numpy() > HIT_ACCUMULATION
    hit_after = after.accumulation.numpy() > HIT_ACCUMULATION
    both = hit & hit_after
    depth_before, depth_after = before.depth.numpy()[both], after.depth.numpy()[both]
    relative = np.abs(depth_after - depth_before) / np.maximum(depth_before, 1e-12)
    samples = after.num_samples.numpy().astype(np.float64)
    rgb = after.rgb.numpy()
    num_rays = samples.size
    return {
        "samples_per_ray": float(samples.mean()),
        "samples_per_hit_ray": float(samples[hit].mean()) if hit.any() else 0.0,
        "hit_share": float(hit.mean()),
        "rays_per_s": num_rays / max(after.seconds, 1e-9),
        "grid_seconds": after.grid_seconds,
        "occupied_fraction": after.occupied_fraction,
        "psnr_vs_baseline": _psnr(rgb, before.rgb.numpy()),
        "psnr_vs_truth": _psnr(rgb, truth_rgb) if truth_rgb is not None else None,
        "max_8bit_change": int(np.abs(_to_8bit(rgb) - _to_8bit(before.rgb.numpy())).max()),
        "depth_change_median": float(np.median(relative)) if relative.size else 0.0,
        "depth_change_p99": float(np.quantile(relative, 0.99)) if relative.size else 0.0,
        "mask_flips": int((hit != hit_after).sum()),
    }


def samples_benchmark(
    scene: Path, settings: Sequence[SampleSetting], views: int | None = None, repeats: int = 1
) -> list[dict[str, Any]]:
    """One row per setting on ``scene``'s (first ``views``) test views; ``settings[0]`` is the baseline.

    The ground truth is ray cast from the scene's meshes (:class:`~nerfdata.scenes.groundtruth.MeshRaycaster`).
    """
    if not settings:
        raise ValueError("no settings to measure")
    recipe = load_recipe(scene)
    loaded = load_field(scene)
    cameras = scene_cameras(recipe)["test"][:views]
    caster = MeshRaycaster(build_meshes(recipe))
    truth = np.stack([caster.render(camera, recipe.light).rgb for camera in cameras])
    renders = [render_views(loaded, cameras, setting, repeats) for setting in settings]
    rows = []
    for setting, render in zip(settings, renders, strict=True):
        figures = compare_renders(renders[0], render, truth)
        rows.append(
            {
                "scene": recipe.name,
                "setting": setting.name,
                "num_steps": setting.options.num_steps,
                "min_transmittance": setting.options.min_transmittance,
                "samples_per_round": setting.options.samples_per_round,
                "grid": setting.grid,
                "views": len(cameras),
                **figures,
                "psnr_vs_baseline": figures["psnr_vs_baseline"] if render is not renders[0] else math.inf,
            }
        )
    return rows


def default_settings(num_steps: Sequence[int] = (1024, 512)) -> list[SampleSetting]:
    """The baseline (the library's defaults before samples were cut: 1024 steps, termination at
    ``1e-4``, fixed rounds of 16, a grid built from density), then per step count: the old settings, the
    8-bit termination with adaptive rounds of 16 through the checkpoint's grid (which ``nerfdata train``
    stores refined), and the defaults now: the same in rounds of 8 (the round in which a ray reaches a
    surface is evaluated whole, so shorter rounds spend less past the stop)."""
    old = RenderOptions(num_steps=1024, min_transmittance=1e-4, adaptive_rounds=False, samples_per_round=16)
    settings = [SampleSetting("before (1024)", old, grid="density")]
    for steps in num_steps:
        new = RenderOptions(num_steps=steps)
        if steps != old.num_steps:
            settings.append(SampleSetting(f"before ({steps})", replace(old, num_steps=steps), grid="density"))
        settings += [
            SampleSetting(f"T < 0.5/255, adaptive rounds of 16, stored grid ({steps})",
                          replace(new, samples_per_round=16)),
            SampleSetting(f"defaults: the same in rounds of {new.samples_per_round} ({steps})", new),
        ]
    return settings
