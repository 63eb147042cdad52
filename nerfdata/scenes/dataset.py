"""Write a scene's ground-truth dataset: train/test views with every exact label, and the mesh.

``nerfdata scene scenes/NAME --out DATA_DIR`` writes, in nerfstudio's format::

    DATA_DIR/transforms.json  cameras (OpenGL camera-to-world, fl_x fl_y cx cy w h per frame),
                              train_filenames / test_filenames, aabb, meters_per_unit
    DATA_DIR/images/NNNNN.png         RGBA: Lambert-shaded vertex colours, white where nothing is hit,
                                      alpha 255 on surfaces (what ``nerfdata train`` composites onto random colours)
    DATA_DIR/depth/NNNNN.png|.npy     z-depth: uint16 x1000 (depth_unit_scale_factor 0.001) and float32
    DATA_DIR/normals/NNNNN.npy|.png   world-frame normals and a camera-frame preview
    DATA_DIR/masks/NNNNN.png, ids/NNNNN.png   foreground and object ids (1-based, 0 = background)
    DATA_DIR/mesh.ply                 the ground-truth mesh with vertex colours, scene units
    DATA_DIR/manifest.json
"""

from pathlib import Path

import numpy as np
import torch
from rich.progress import Progress

from nerfdata.atomic import atomic_path
from nerfdata.cameras import Camera, Intrinsics, look_at_c2w_opengl
from nerfdata.config import to_dict
from nerfdata.scenes.groundtruth import MeshRaycaster
from nerfdata.scenes.recipe import RigConfig, SceneRecipe
from nerfdata.writers.layers import VIEW_ARRAYS, layer_specs, write_view_layers
from nerfdata.writers.manifest import CONVENTIONS, config_hash, write_manifest
from nerfdata.writers.output_folder import claim_output_folder
from nerfdata.writers.transforms import FrameRecord, write_transforms

__all__ = ["rig_cameras", "scene_cameras", "write_scene_dataset"]

_SCENE_LAYERS = layer_specs(
    VIEW_ARRAYS, notes={"rgb": {"encoding": "PNG RGBA; alpha 255 where a surface is hit, 0 (colour white) elsewhere"}}
)
"""The layers a scene dataset's manifest lists: its images carry the coverage as alpha."""


def rig_cameras(rig: RigConfig, count: int, generator: torch.Generator) -> list[Camera]:
    """``count`` cameras drawn uniformly over the rig's spherical patch, each looking at its target."""
    azimuth = torch.deg2rad(torch.tensor(rig.azimuth_deg, dtype=torch.float64))
    sin_elevation = torch.sin(torch.deg2rad(torch.tensor(rig.elevation_deg, dtype=torch.float64)))
    u = torch.rand(count, 2, generator=generator, dtype=torch.float64)
    az = azimuth[0] + u[:, 0] * (azimuth[1] - azimuth[0])
    el = torch.asin(sin_elevation[0] + u[:, 1] * (sin_elevation[1] - sin_elevation[0]))
    target = torch.tensor(rig.target, dtype=torch.float64)
    direction = torch.stack([torch.sin(az) * torch.cos(el), torch.sin(el), torch.cos(az) * torch.cos(el)], -1)
    eye = target + rig.radius * direction
    up = torch.tensor([0.0, 1.0, 0.0], dtype=torch.float64).expand_as(eye)
    intrinsics = Intrinsics.from_fov(rig.width, rig.height, rig.fov_deg)
    return [Camera(c2w.float(), intrinsics) for c2w in look_at_c2w_opengl(eye, target.expand_as(eye), up)]


def scene_cameras(recipe: SceneRecipe) -> dict[str, list[Camera]]:
    """The scene's train and test cameras (test views are drawn after, and apart from, the training ones)."""
    generator = torch.Generator().manual_seed(recipe.seed)
    train = rig_cameras(recipe.rig, recipe.rig.train_views, generator)
    return {"train": train, "test": rig_cameras(recipe.rig, recipe.rig.test_views, generator)}


def write_scene_dataset(
    recipe: SceneRecipe, out: str | Path, overwrite: bool = False, show_progress: bool = False
) -> Path:
    """Render every train and test view of ``recipe`` exactly and write the dataset to ``out``."""
    out = Path(out)
    resolved = to_dict(recipe)
    job_hash = config_hash({"scene": resolved})
    with claim_output_folder(out, job_hash, overwrite):
        _write_scene(recipe, out, resolved, job_hash, show_progress)
    return out


def _write_scene(recipe: SceneRecipe, out: Path, resolved: dict, job_hash: str, show_progress: bool) -> None:
    # Imported here: the package is imported by every job (recipes, cameras); meshes (trimesh, 0.6 s)
    # are built only when a scene is written.
    from nerfdata.scenes.meshes import build_meshes

    meshes = build_meshes(recipe)
    caster = MeshRaycaster(meshes)
    splits = scene_cameras(recipe)
    manifest = {
        "kind": "scene",
        "complete": False,
        "config": resolved,
        "config_hash": job_hash,
        "conventions": CONVENTIONS,
        "layers": _SCENE_LAYERS,
        "views": [],
        "files": ["mesh.ply", "transforms.json"],
    }
    write_manifest(out, manifest)
    frames: list[FrameRecord] = []
    names: dict[str, list[str]] = {"train": [], "test": []}
    cameras = [(split, camera) for split, group in splits.items() for camera in group]
    with Progress(disable=not show_progress) as progress:
        task = progress.add_task(f"scene {recipe.name}", total=len(cameras))
        for index, (split, camera) in enumerate(cameras):
            truth = caster.render(camera, recipe.light)
            rgba = np.concatenate([truth.rgb, truth.mask[..., None]], axis=-1)
            files = write_view_layers(
                out, index, camera.w2c_opencv[:3, :3].numpy(),
                rgb=rgba, depth=truth.depth, normals=truth.normal, mask=truth.mask, object_id=truth.object_id,
            )
            frames.append(FrameRecord(camera, files["rgb"], files["depth_png"], files["mask"]))
            names[split].append(files["rgb"])
            manifest["views"].append({"index": index, "split": split, "status": "complete", "files": files})
            progress.advance(task)
    with atomic_path(out / "mesh.ply") as tmp:
        meshes.combined().export(tmp, file_type="ply")
    extra = {
        "train_filenames": names["train"],
        "test_filenames": names["test"],
        "aabb": [[round(float(v), 6) for v in corner] for corner in meshes.aabb],
        "meters_per_unit": recipe.meters_per_unit,
        "scene": recipe.name,
    }
    write_transforms(out / "transforms.json", frames, extra)
    manifest["complete"] = True
    manifest["mesh"] = {"file": "mesh.ply", "vertices": int(sum(len(m.vertices) for m in meshes.meshes))}
    write_manifest(out, manifest)

