"""A nerfstudio checkpoint through nerfdata: speed beside nerfstudio's renderer, agreement, mesh quality.

For a nerfstudio run trained on a built-in scene (default: ``scenes/mug/nerfacto``, nerfacto on the
mug scene), on the scene's test cameras:

* **speed**: the same views rendered by nerfstudio as ``ns-render`` does (``model.get_outputs_for_camera``,
  its proposal sampler, its own PyTorch modules), by that renderer with the model's hash grids on
  nerfdata's kernels (:mod:`nerfdata.fields.nerfstudio.hashgrid`), and by nerfdata's renderer on the
  :class:`~nerfdata.fields.nerfstudio.field.NerfstudioField` as nerfdata loads it (hash grids on
  nerfdata's kernels; occupancy grid built once from the field's density, timed separately): rays
  per second each and their ratios to nerfstudio's;
* **agreement**: nerfdata's RGB and z-depth against nerfstudio's (converted to the data's frame and
  units; PSNR between the two renders), the swapped renderer's against nerfstudio's, and both
  against the exact ground truth (PSNR, median-depth error on pixels both see);
* **mesh**: nerfdata's marching-cubes mesh of the field (inside the dataset's ``aabb``) against
  the scene's ground-truth mesh: Chamfer distance in the scene's units.

Needs the ``[nerfstudio]`` extra; :func:`nerfstudio_available` says whether it is installed.
"""

import importlib.util
import json
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import torch
from rich.table import Table

from nerfdata.bench.mesh import mesh_distances
from nerfdata.bench.shipped import SCENES
from nerfdata.cameras import Camera
from nerfdata.fields.loading import load_field
from nerfdata.fields.nerfstudio.field import load_nerfstudio_field
from nerfdata.fields.occupancy import occupancy_grid_from_density
from nerfdata.labels.mesh import MeshConfig, extract_mesh
from nerfdata.render.renderer import RenderOptions, render_image
from nerfdata.scenes.dataset import scene_cameras
from nerfdata.scenes.groundtruth import MeshRaycaster
from nerfdata.scenes.meshes import build_meshes
from nerfdata.scenes.recipe import load_recipe

__all__ = ["nerfstudio_available", "nerfstudio_benchmark", "nerfstudio_table"]

DEFAULT_RUN = SCENES / "mug" / "nerfacto" / "config.yml"
"""The shipped nerfstudio run (nerfacto on the mug), in the checkout."""


def nerfstudio_available(config: Path = DEFAULT_RUN) -> bool:
    """Whether the ``[nerfstudio]`` extra is installed and the run ``config`` exists."""
    return importlib.util.find_spec("nerfstudio") is not None and config.exists()


def _psnr(rgb: np.ndarray, truth: np.ndarray) -> float:
    return float(-10.0 * np.log10(max(float(np.mean((rgb - truth) ** 2)), 1e-12)))


def _render_row(
    field: Any, baseline: Any, occupancy: Any, camera: Camera, truth: Any, options: RenderOptions
) -> dict[str, float]:
    from nerfstudio.cameras.cameras import Cameras

    k = camera.intrinsics
    ns_camera = Cameras(
        camera_to_worlds=field.frame.c2w_to_nerfstudio(camera.c2w_opengl)[None],
        fx=k.fl_x, fy=k.fl_y, cx=k.cx, cy=k.cy, width=k.width, height=k.height,
    )
    start = time.perf_counter()
    theirs = baseline.model.get_outputs_for_camera(ns_camera)
    ns_seconds = time.perf_counter() - start
    start = time.perf_counter()
    swapped = field.model.get_outputs_for_camera(ns_camera)
    swapped_seconds = time.perf_counter() - start
    start = time.perf_counter()
    ours = render_image(field, camera, options, occupancy)
    nd_seconds = time.perf_counter() - start
    their_rgb = theirs["rgb"].numpy()
    their_depth = camera.rays().depth_z(theirs["depth"][..., 0].numpy() / field.frame.scale)
    our_rgb, our_depth = ours.rgb.numpy(), ours.depth_median.numpy()
    seen = (ours.accumulation.numpy() > 0.5) & (theirs["accumulation"][..., 0].numpy() > 0.5)
    hit = seen & truth.mask
    return {
        "rays": k.width * k.height,
        "nerfstudio_seconds": ns_seconds,
        "swapped_seconds": swapped_seconds,
        "nerfdata_seconds": nd_seconds,
        "rgb_abs_diff": float(np.abs(our_rgb - their_rgb).mean()),
        "psnr_between": _psnr(our_rgb, their_rgb),
        "swapped_rgb_max_diff": float(np.abs(swapped["rgb"].numpy() - their_rgb).max()),
        "depth_abs_diff": float(np.median(np.abs(our_depth - their_depth)[seen])) if seen.any() else float("nan"),
        "nerfstudio_psnr": _psnr(their_rgb, truth.rgb),
        "nerfdata_psnr": _psnr(our_rgb, truth.rgb),
        "nerfstudio_depth_mae": float(np.abs(their_depth - truth.depth)[hit].mean()) if hit.any() else float("nan"),
        "nerfdata_depth_mae": float(np.abs(our_depth - truth.depth)[hit].mean()) if hit.any() else float("nan"),
    }


def nerfstudio_benchmark(
    config: Path = DEFAULT_RUN, scene: Path | None = None, views: int = 3, scale: float = 1.0,
    mesh_resolution: int = 128, num_steps: int = RenderOptions().num_steps, occupancy_resolution: int = 128,
) -> dict[str, Any]:
    """Figures of the nerfstudio run ``config`` trained on ``scene`` (default: the run folder's parent).

    Args:
        views: Test cameras rendered (each by both renderers).
        scale: Intrinsics scale of those cameras (1: the dataset's resolution).
        mesh_resolution: Marching-cubes cells along the longest side of the dataset's ``aabb``
            (0: no mesh).
        num_steps: nerfdata's marching steps along the field's box diagonal (default: the renderer's;
            nerfacto's surfaces are thin: 512 steps give 38.5 dB between the two renders of the first
            test view, 1024 give 46.9 dB).
    """
    config = Path(config)
    scene = Path(scene) if scene is not None else config.parent.parent
    recipe = load_recipe(scene)
    loaded = load_field(config)
    field = loaded.field
    baseline = load_nerfstudio_field(config, nerfdata_kernels=False).field  # nerfstudio's own modules
    start = time.perf_counter()
    occupancy = occupancy_grid_from_density(field.density, field.aabb, occupancy_resolution)
    occupancy_seconds = time.perf_counter() - start
    caster = MeshRaycaster(build_meshes(recipe))
    options = RenderOptions(num_steps=num_steps, normals=False)
    rows = []
    for camera in scene_cameras(recipe)["test"][:views]:
        camera = replace(camera, intrinsics=camera.intrinsics.scaled(scale)) if scale != 1.0 else camera
        rows.append(_render_row(field, baseline, occupancy, camera, caster.render(camera, recipe.light), options))
    rays = sum(row["rays"] for row in rows)
    ns_rate = rays / sum(row["nerfstudio_seconds"] for row in rows)
    swapped_rate = rays / sum(row["swapped_seconds"] for row in rows)
    nd_rate = rays / sum(row["nerfdata_seconds"] for row in rows)
    result: dict[str, Any] = {
        "run": str(config),
        "method": loaded.metadata["method"],
        "step": loaded.metadata["step"],
        "views": len(rows),
        "resolution": [camera.intrinsics.width, camera.intrinsics.height],
        "threads": torch.get_num_threads(),
        "occupancy_seconds": occupancy_seconds,
        "occupied_fraction": occupancy.occupied_fraction,
        "hash_grids": loaded.metadata["hash_grids"],
        "nerfstudio_rays_per_s": ns_rate,
        "swapped_rays_per_s": swapped_rate,
        "nerfdata_rays_per_s": nd_rate,
        "swapped_speed_ratio": swapped_rate / ns_rate,
        "speed_ratio": nd_rate / ns_rate,
        **{
            key: float(np.mean([row[key] for row in rows]))
            for key in rows[0] if key.endswith(("diff", "psnr", "mae", "between"))
        },
    }
    if mesh_resolution > 0:
        result.update(_mesh_figures(field, occupancy, scene, recipe, mesh_resolution))
    return result


def _mesh_figures(field: Any, occupancy: Any, scene: Path, recipe: Any, resolution: int) -> dict[str, Any]:
    """Chamfer of the field's mesh (inside the dataset's aabb, 5% margin) against the true mesh, scene units."""
    box = np.array(json.loads((scene / "cameras.json").read_text())["aabb"], dtype=np.float64)
    margin = 0.05 * (box[1] - box[0])
    bounds = (tuple(box[0] - margin), tuple(box[1] + margin))
    start = time.perf_counter()
    extracted = extract_mesh(field, MeshConfig(resolution=resolution, bounds=bounds), occupancy)
    seconds = time.perf_counter() - start
    truth = build_meshes(recipe).combined()
    figures = mesh_distances(extracted.mesh, truth, 100_000)
    diagonal = float(np.linalg.norm(truth.bounds[1] - truth.bounds[0]))
    return {
        "mesh_resolution": resolution,
        "mesh_threshold": extracted.threshold,
        "mesh_seconds": seconds,
        "chamfer": figures["chamfer"],
        "chamfer_percent": 100.0 * figures["chamfer"] / diagonal,
        "mesh_accuracy": figures["accuracy"],
        "mesh_completeness": figures["completeness"],
        "normal_consistency": figures["normal_consistency"],
    }


def nerfstudio_table(result: dict[str, Any]) -> Table:
    """One table: speed side by side, agreement, quality against ground truth, mesh."""
    table = Table(title=f"nerfstudio {result['method']} ({result['run']}, step {result['step']}): "
                        f"{result['views']} test views, {result['threads']} threads")
    table.add_column("figure")
    table.add_column("nerfstudio", justify="right")
    table.add_column("nerfdata", justify="right")
    table.add_column("ratio / difference", justify="right")
    table.add_row(
        "rays/s", f"{result['nerfstudio_rays_per_s'] / 1e3:.2f} k", f"{result['nerfdata_rays_per_s'] / 1e3:.2f} k",
        f"{result['speed_ratio']:.2f}x (+{result['occupancy_seconds']:.0f} s occupancy grid, once)",
    )
    table.add_row(
        "rays/s, nerfstudio's renderer on nerfdata's hash grids", "-", f"{result['swapped_rays_per_s'] / 1e3:.2f} k",
        f"{result['swapped_speed_ratio']:.2f}x, max |rgb diff| {result['swapped_rgb_max_diff']:.1e}",
    )
    table.add_row("PSNR vs truth", f"{result['nerfstudio_psnr']:.2f} dB", f"{result['nerfdata_psnr']:.2f} dB",
                  f"between: {result['psnr_between']:.2f} dB, mean |rgb diff| {result['rgb_abs_diff']:.4f}")
    table.add_row("depth MAE vs truth", f"{result['nerfstudio_depth_mae']:.4f}", f"{result['nerfdata_depth_mae']:.4f}",
                  f"median |depth diff| {result['depth_abs_diff']:.4f}")
    if "chamfer" in result:
        table.add_row(
            f"mesh {result['mesh_resolution']}^3 Chamfer", "-", f"{result['chamfer']:.4f}",
            f"{result['chamfer_percent']:.2f}% of diag., normals {result['normal_consistency']:.3f}",
        )
    return table
