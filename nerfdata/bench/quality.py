"""Label quality of shipped fields against exact ground truth, on each scene's test views.

For every scene folder holding a trained field (``scenes/NAME/field.json``, found by
:mod:`nerfdata.bench.shipped`), its test cameras are rendered from the field and ray cast against
the scene's meshes, and compared:

* PSNR of the RGB image (mean over views);
* depth: mean absolute error of median z-depth (scene units, and metres for metric scenes) and mean
  relative error, on pixels that are surface in both;
* normals: mean angle between rendered and true world-frame normals on those pixels, for both
  label sources (density gradient, and the depth map's back-projected neighbours);
* mask IoU of accumulation > 0.5 against the true foreground.
"""

from pathlib import Path
from typing import Any

import numpy as np

from nerfdata.fields.loading import load_field
from nerfdata.labels.pixel_labels import normals_from_points
from nerfdata.render.renderer import RenderOptions, render_image
from nerfdata.scenes.dataset import scene_cameras
from nerfdata.scenes.groundtruth import MeshRaycaster
from nerfdata.scenes.meshes import build_meshes
from nerfdata.scenes.recipe import load_recipe

__all__ = ["scene_quality"]


def scene_quality(scene: Path, views: int | None = None) -> dict[str, Any]:
    """Quality figures of ``scene``'s trained field on (the first ``views`` of) its test views."""
    recipe = load_recipe(scene)
    loaded = load_field(scene)
    caster = MeshRaycaster(build_meshes(recipe))
    cameras = scene_cameras(recipe)["test"][:views]
    per_view = []
    for camera in cameras:
        image = render_image(loaded.field, camera, RenderOptions(), loaded.occupancy)
        truth = caster.render(camera, recipe.light)
        mask = image.accumulation.numpy() > 0.5
        both = mask & truth.mask
        depth = image.depth_median.numpy()[both]
        error = np.abs(depth - truth.depth[both])
        cosine = np.clip(np.sum(image.normal.numpy()[both] * truth.normal[both], axis=-1), -1.0, 1.0)
        rays = camera.rays()
        directions = rays.directions.numpy().reshape(*mask.shape, 3)
        points = rays.origins.numpy().reshape(*mask.shape, 3) + directions * image.range_median.numpy()[..., None]
        from_depth = normals_from_points(points, directions, mask)
        usable = both & (np.linalg.norm(from_depth, axis=-1) > 0)
        cosine_depth = np.clip(np.sum(from_depth[usable] * truth.normal[usable], axis=-1), -1.0, 1.0)
        mse = float(np.mean((image.rgb.numpy() - truth.rgb) ** 2))
        per_view.append(
            {
                "psnr": -10.0 * np.log10(max(mse, 1e-12)),
                "depth_mae": float(error.mean()),
                "depth_rel": float(np.mean(error / truth.depth[both])),
                "normal_deg": float(np.degrees(np.arccos(cosine)).mean()),
                "normal_depth_deg": float(np.degrees(np.arccos(cosine_depth)).mean()),
                "mask_iou": float((mask & truth.mask).sum() / max((mask | truth.mask).sum(), 1)),
            }
        )
    figures = {key: float(np.mean([v[key] for v in per_view])) for key in per_view[0]}
    metres = recipe.meters_per_unit
    return {
        "scene": recipe.name,
        "views": len(cameras),
        "meters_per_unit": metres,
        "depth_mae_m": figures["depth_mae"] * metres if metres else None,
        "field_mb": round((scene / "field.safetensors").stat().st_size / 2**20, 2),
        **figures,
    }
