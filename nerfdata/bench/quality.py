"""Label quality of shipped fields against exact ground truth, on each scene's test views.

For every scene folder holding a trained field (``scenes/NAME/field.json``, found by
:mod:`nerfdata.bench.shipped`), its test cameras are rendered from the field and ray cast against
the scene's meshes, and compared:

* PSNR of the RGB image (mean over views);
* depth: mean absolute error of median z-depth (scene units, and metres for metric scenes) and mean
  relative error, on pixels that are surface in both;
* normals, for every mode of ``labels.normals`` (:mod:`nerfdata.labels.normals`) and for
  ``labels.geometry: mesh`` (ray casting the field's mesh, extracted with the defaults): the angle
  to the true world-frame normal on those pixels, as its mean, median and share under 5 degrees over
  all of them (a pixel given no normal counts as 90 degrees), and the seconds a view's normals cost
  beyond the render the other labels need (the gradient: the render with normals minus the one
  without; the mesh: casting the view's rays, its extraction timed apart);
* mask IoU of accumulation > 0.5 against the true foreground;
* the share of surface pixels whose depth confidence is under the default threshold (untrusted),
  apart for light and dark surfaces (true colour luminance above :data:`LIGHT` / below :data:`DARK`):
  a field that learned light surfaces half transparent distrusts them, so the two shares differ.
"""

import time
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np

from nerfdata.cameras import Camera
from nerfdata.fields.base import LoadedField
from nerfdata.fields.loading import load_field
from nerfdata.labels.mesh import MeshConfig, extract_mesh
from nerfdata.labels.normals import (
    FIELD_PASS_MODES,
    NORMAL_MODES,
    fit_normals,
    normals_from_points,
    render_field_normals,
)
from nerfdata.labels.view_labels import LabelsConfig, view_labels
from nerfdata.render.renderer import ImageOutputs, RenderOptions, render_image
from nerfdata.scenes.dataset import scene_cameras
from nerfdata.scenes.groundtruth import MeshRaycaster
from nerfdata.scenes.meshes import build_meshes
from nerfdata.scenes.recipe import load_recipe

__all__ = ["DARK", "LIGHT", "NORMAL_COLUMNS", "normal_errors", "scene_quality", "untrusted_by_albedo"]

LIGHT, DARK = 0.6, 0.35
"""Luminance (Rec. 709 weights of the true sRGB colour) above which a surface pixel is light, below which dark."""

NORMAL_COLUMNS: tuple[str, ...] = (*NORMAL_MODES, "mesh")
"""The normals measured: every ``labels.normals`` mode, then ``labels.geometry: mesh``."""


def untrusted_by_albedo(
    camera: Camera, image: ImageOutputs, truth_rgb: np.ndarray, pixels: np.ndarray
) -> dict[str, tuple[int, int]]:
    """(untrusted, all) counts of light and dark surface ``pixels`` ``(h, w)``: those whose ``confidence``
    layer (as ``nerfdata render`` writes it, default labels) is under ``confidence_threshold``."""
    labels = LabelsConfig()
    score = view_labels(camera, image, labels, ["confidence"])["confidence"]
    luminance = truth_rgb @ np.array([0.2126, 0.7152, 0.0722])
    untrusted = pixels & (score < labels.confidence_threshold)
    return {
        name: (int((untrusted & part).sum()), int((pixels & part).sum()))
        for name, part in (("light", luminance > LIGHT), ("dark", luminance < DARK))
    }


def normal_errors(normals: np.ndarray, truth: np.ndarray, pixels: np.ndarray) -> np.ndarray:
    """Angles in degrees ``(k,)`` between ``normals`` and ``truth`` (both ``(h, w, 3)``) at ``pixels``;
    90 where a pixel has no normal.

    Example:
        >>> truth = np.array([[[0.0, 0.0, 1.0], [0.0, 0.0, 1.0]]])
        >>> normals = np.array([[[0.0, 0.0, 1.0], [0.0, 0.0, 0.0]]])
        >>> normal_errors(normals, truth, np.ones((1, 2), bool)).round(3).tolist()
        [0.0, 90.0]
    """
    cosine = np.clip(np.sum(normals[pixels] * truth[pixels], axis=-1), -1.0, 1.0)
    return np.where(np.any(normals[pixels] != 0, axis=-1), np.degrees(np.arccos(cosine)), 90.0)


def _view_normals(
    modes: Sequence[str], loaded: LoadedField, camera: Camera, image: ImageOutputs, mask: np.ndarray,
    extra_gradient_s: float, caster: MeshRaycaster | None, options: RenderOptions, cells: float | None,
) -> dict[str, tuple[np.ndarray, float]]:
    """Per mode, the view's normals and the seconds they took beyond the render."""
    rays = camera.rays()
    h, w = mask.shape
    directions = rays.directions.numpy().reshape(h, w, 3)
    ranges = image.range_median.numpy()
    depth = np.where(mask, image.depth_median.numpy(), 0.0)
    out: dict[str, tuple[np.ndarray, float]] = {}
    for mode in modes:
        start = time.perf_counter()
        if mode == "depth-fit":
            normals = fit_normals(depth, mask, camera).normals
        elif mode == "gradient":  # the renderer's, timed as the render with normals minus the one without
            out[mode] = (np.where(mask[..., None], image.normal.numpy(), 0.0), extra_gradient_s)
            continue
        elif mode == "depth":
            points = rays.origins.numpy().reshape(h, w, 3) + directions * ranges[..., None]
            normals = normals_from_points(points, directions, mask & (ranges > 0))
        elif mode in FIELD_PASS_MODES:
            normals = render_field_normals(loaded.field, camera, mode, options, loaded.occupancy, cells).numpy()
        elif mode == "mesh" and caster is not None:
            normals = caster.cast_rays(rays).normal.reshape(h, w, 3)
        else:
            raise ValueError(f"unknown normals mode {mode!r}; one of {NORMAL_COLUMNS}")
        out[mode] = (normals, time.perf_counter() - start)
    return out


def scene_quality(
    scene: Path,
    views: int | None = None,
    normal_modes: Sequence[str] = NORMAL_COLUMNS,
    mesh_config: MeshConfig | None = None,
    cells: float | None = None,
) -> dict[str, Any]:
    """Quality figures of ``scene``'s trained field on (the first ``views`` of) its test views.

    Args:
        scene: A scene folder with a recipe and a trained field.
        views: How many test views (default: all).
        normal_modes: The normals measured (:data:`NORMAL_COLUMNS` or some of them).
        mesh_config: With ``mesh`` among them: how the field's mesh is extracted (default: as ``nerfdata mesh``).
        cells: The field-pass modes' step (default: theirs).
    """
    recipe = load_recipe(scene)
    loaded = load_field(scene)
    caster = MeshRaycaster(build_meshes(recipe))
    cameras = scene_cameras(recipe)["test"][:views]
    mesh_caster, mesh_seconds = None, None
    if "mesh" in normal_modes:
        start = time.perf_counter()
        mesh = extract_mesh(loaded.field, mesh_config or MeshConfig(), loaded.occupancy).mesh
        mesh_seconds = time.perf_counter() - start
        mesh_caster = MeshRaycaster.from_meshes([mesh], smooth_normals=True)
    options = RenderOptions()
    per_view, angles = [], {mode: [] for mode in normal_modes}
    albedo = {"light": [0, 0], "dark": [0, 0]}
    seconds: dict[str, list[float]] = {mode: [] for mode in normal_modes}
    for camera in cameras:
        start = time.perf_counter()
        render_image(loaded.field, camera, replace(options, normals=False), loaded.occupancy)
        plain = time.perf_counter() - start
        start = time.perf_counter()
        image = render_image(loaded.field, camera, options, loaded.occupancy)
        with_gradient = time.perf_counter() - start
        truth = caster.render(camera, recipe.light)
        mask = image.accumulation.numpy() > 0.5
        both = mask & truth.mask
        depth = image.depth_median.numpy()[both]
        error = np.abs(depth - truth.depth[both])
        normals = _view_normals(
            normal_modes, loaded, camera, image, mask, max(with_gradient - plain, 0.0), mesh_caster, options, cells
        )
        for name, counts in untrusted_by_albedo(camera, image, truth.rgb, both).items():
            albedo[name] = [a + b for a, b in zip(albedo[name], counts, strict=True)]
        for mode, (values, took) in normals.items():
            angles[mode].append(normal_errors(values, truth.normal, both))
            seconds[mode].append(took)
        mse = float(np.mean((image.rgb.numpy() - truth.rgb) ** 2))
        per_view.append(
            {
                "psnr": -10.0 * np.log10(max(mse, 1e-12)),
                "depth_mae": float(error.mean()),
                "depth_rel": float(np.mean(error / truth.depth[both])),
                "mask_iou": float((mask & truth.mask).sum() / max((mask | truth.mask).sum(), 1)),
            }
        )
    figures = {key: float(np.mean([v[key] for v in per_view])) for key in per_view[0]}
    metres = recipe.meters_per_unit
    normal_figures = {}
    for mode in normal_modes:
        every = np.concatenate(angles[mode])
        normal_figures[mode] = {
            "mean_deg": float(every.mean()), "median_deg": float(np.median(every)),
            "under_5_deg": float(np.mean(every < 5.0)), "seconds_per_view": float(np.median(seconds[mode])),
        }
    if mesh_seconds is not None:
        normal_figures["mesh"]["extraction_seconds"] = mesh_seconds
    return {
        "scene": recipe.name,
        "views": len(cameras),
        "meters_per_unit": metres,
        "depth_mae_m": figures["depth_mae"] * metres if metres else None,
        "field_mb": round((scene / "field.safetensors").stat().st_size / 2**20, 2),
        **figures,
        "normals": normal_figures,
        "untrusted": {name: bad / max(total, 1) for name, (bad, total) in albedo.items()},
        "resolution": f"{cameras[0].intrinsics.width}x{cameras[0].intrinsics.height}",
    }
