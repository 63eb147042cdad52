"""A job's BOP export: the objects' models first, then each view's files, then the scene's JSON files.

Every job that writes BOP goes through :class:`BopExport` (``nerfdata inerf targets`` writes a
``test`` scene, ``nerfdata render`` with ``formats: [bop]`` a ``train_pbr``-style one)::

    OUT/models/obj_000001.ply, models_info.json        each object's model, millimetres (labels.objects)
    OUT/models_eval/...                                 the same, decimated, for BOP's error functions
    OUT/SPLIT/SCENE/rgb/, depth/, mask/, mask_visib/    per view (writers.bop.scene)
    OUT/SPLIT/SCENE/scene_camera.json, scene_gt.json, scene_gt_info.json

A job writes the views as it renders them (:meth:`BopExport.write_view` returns the files and the
view's JSON entries, which a resumable job keeps in its manifest) and the scene's JSON files once
at the end (:meth:`BopExport.write_scene`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
from jaxtyping import Float

from nerfdata.cameras import Camera, invert_rigid, opengl_to_opencv
from nerfdata.errors import ConfigError
from nerfdata.fields.base import Field, LoadedField
from nerfdata.fields.occupancy import OccupancyGrid
from nerfdata.labels.mesh import MeshConfig, extract_mesh
from nerfdata.labels.objects import (
    FieldObject,
    ObjectConfig,
    eval_models,
    field_objects,
    object_models,
    object_views,
)
from nerfdata.labels.pose_perturbation import bop_pose_errors
from nerfdata.scenes.groundtruth import MeshRaycaster
from nerfdata.writers.bop import (
    BopEstimate,
    bop_camera_entry,
    bop_depth_values,
    bop_gt_entry,
    bop_image_name,
    bop_mask_name,
    bop_model_name,
    depth_scale_for,
    gt_info_entry,
    write_bop_mask,
    write_bop_models,
    write_bop_scene_files,
)
from nerfdata.writers.images import write_png

if TYPE_CHECKING:  # imported where called: trimesh takes 0.6 s to import, which a job without meshes never pays
    import trimesh

__all__ = [
    "EVAL_FACES",
    "BopConfig",
    "BopExport",
    "ScoredEstimate",
    "bop_export_files",
    "meters_per_unit_of",
    "object_estimates",
]

EVAL_FACES = 20_000
"""Faces of a ``models_eval/`` model at most (quadric decimation; smaller models are copied)."""


@dataclass(frozen=True)
class BopConfig:
    """How a render job writes its BOP split (with ``formats: [bop]``)."""

    split: str = "train_pbr"
    """The split folder under the output (BOP: train_pbr for synthetic training images)."""
    scene_id: int = 0
    """The scene folder under the split, SPLIT/000000."""
    meters_per_unit: float | None = None
    """Metres per scene unit for the millimetres; None: the checkpoint's, else 1 (stated in the manifest)."""
    mesh: MeshConfig = field(default_factory=lambda: MeshConfig(resolution=128))
    """How the field's mesh, which the objects' models are cut from, is extracted."""
    eval_faces: int = EVAL_FACES
    """Faces of a models_eval/ model at most."""

    def __post_init__(self) -> None:
        if not self.split or any(c in self.split for c in "/\\.") or self.split != self.split.strip():
            raise ConfigError(
                f"bop.split must be a plain folder name (train_pbr, test, ...), got {self.split!r}"
            )
        if self.scene_id < 0:
            raise ConfigError(f"bop.scene_id must be >= 0, got {self.scene_id}")
        if self.meters_per_unit is not None and not (
            math.isfinite(self.meters_per_unit) and self.meters_per_unit > 0
        ):
            raise ConfigError(f"bop.meters_per_unit must be positive, got {self.meters_per_unit}")
        if self.eval_faces < 4:
            raise ConfigError(f"bop.eval_faces must be >= 4, got {self.eval_faces}")

    @property
    def scene(self) -> str:
        """The scene folder relative to the output, ``SPLIT/NNNNNN``."""
        return f"{self.split}/{self.scene_id:06d}"


_SCENE_FILES = ("scene_camera.json", "scene_gt.json", "scene_gt_info.json")


def bop_export_files(scene: str, objects: tuple[ObjectConfig, ...], field_: Field, models: bool) -> list[str]:
    """The files a BOP export writes once per job, relative to its root: the scene's JSON files and,
    with ``models``, each object's model in ``models/`` and ``models_eval/`` with their ``models_info.json``.

    Known before anything is extracted, so that a job lists them before writing them.
    """
    files = [f"{scene}/{name}" for name in _SCENE_FILES]
    if models:
        ids = [obj.obj_id for obj in field_objects(objects, field_.aabb.cpu().double().numpy())]
        for folder in ("models", "models_eval"):
            files += [f"{folder}/{bop_model_name(i)}" for i in sorted(ids)] + [f"{folder}/models_info.json"]
    return files


def meters_per_unit_of(loaded: LoadedField, given: float | None) -> tuple[float, str]:
    """Metres per scene unit for BOP's millimetres, and where it came from: given, the checkpoint's, or 1."""
    if given is not None:
        return given, "config"
    stored = loaded.metadata.get("meters_per_unit")
    if stored is not None:
        return float(stored), "checkpoint"
    return 1.0, "assumed (the checkpoint does not say; scene units taken as metres)"


class BopExport:
    """One BOP scene being written, with its objects, their models and ray casters.

    Args:
        root: The output folder (holding ``models/`` and the split).
        scene: The scene folder relative to ``root`` (``test/000001``).
        objects: The objects, in their order (each view's instances).
        models: Per object id its model (millimetres, model frame); None: no models, which only the
            whole field can do without (:func:`nerfdata.labels.objects.object_views`).
        mm_per_unit: Millimetres per scene unit.
    """

    def __init__(
        self,
        root: Path,
        scene: str,
        objects: list[FieldObject],
        models: dict[int, trimesh.Trimesh] | None,
        mm_per_unit: float,
    ) -> None:
        self.root, self.scene, self.objects, self.models, self.mm_per_unit = (
            Path(root),
            scene,
            objects,
            models,
            mm_per_unit,
        )
        self.casters = (
            None if models is None else {i: MeshRaycaster.from_meshes([m]) for i, m in models.items()}
        )

    @classmethod
    def create(
        cls,
        root: Path,
        scene: str,
        field_: Field,
        occupancy: OccupancyGrid,
        objects: tuple[ObjectConfig, ...],
        mesh: MeshConfig | None,
        meters_per_unit: float,
        eval_faces: int = EVAL_FACES,
    ) -> "BopExport":
        """Extract the field's mesh, cut each object's model from it, write ``models/`` and ``models_eval/``.

        ``mesh`` None writes no models (the whole field only: its masks are what is visible of it).

        Raises:
            ConfigError: objects named without a mesh to cut their models from.
            NerfDataError: an object's box holds no surface.
        """
        found = field_objects(objects, field_.aabb.cpu().double().numpy())
        mm_per_unit = 1000.0 * meters_per_unit
        if mesh is None:
            if objects:
                raise ConfigError(
                    "objects: each object's model is cut from the field's mesh; keep mesh: true"
                )
            return cls(root, scene, found, None, mm_per_unit)
        world = extract_mesh(field_, replace(mesh, colors=False), occupancy).mesh  # coloured once cut
        models = object_models(field_, world, found, mm_per_unit, colors=mesh.colors)
        write_bop_models(Path(root) / "models", models)
        write_bop_models(Path(root) / "models_eval", eval_models(models, eval_faces))
        return cls(root, scene, found, models, mm_per_unit)

    def write_view(
        self, im_id: int, camera: Camera, rgb: np.ndarray, depth: np.ndarray, ranges: np.ndarray
    ) -> tuple[dict[str, str], dict[str, Any]]:
        """Write one view's ``rgb/``, ``depth/``, ``mask/`` and ``mask_visib/`` files.

        Args:
            im_id: The image id.
            camera: The view.
            rgb: ``(h, w, 3)`` uint8.
            depth: ``(h, w)`` z-depth, scene units, 0: no surface.
            ranges: ``(h, w)`` the same surface's distance along each ray (where the ray terminates).

        Returns:
            The files written (name -> path relative to the output folder) and the view's JSON
            entries: ``{"camera": scene_camera entry, "gt": [scene_gt entries], "gt_info": [...]}``.
        """
        files = self.view_files(im_id)
        write_png(self.root / files["bop_rgb"], rgb)
        scale = depth_scale_for(depth, self.mm_per_unit)
        values = bop_depth_values(depth, self.mm_per_unit, scale)
        write_png(self.root / files["bop_depth"], values)
        gts, infos = [], []
        for instance, view in enumerate(
            object_views(self.objects, self.casters, self.models, camera, ranges, self.mm_per_unit)
        ):
            for folder, mask in (("mask", view.silhouette.mask), ("mask_visib", view.mask_visib)):
                write_bop_mask(self.root / files[f"bop_{folder}_{instance:06d}"], mask)
            gts.append(bop_gt_entry(view.m2c, view.obj_id))
            infos.append(gt_info_entry(view.silhouette.pixels, view.silhouette.mask, view.mask_visib, values))
        return files, {"camera": bop_camera_entry(camera, scale), "gt": gts, "gt_info": infos}

    def view_files(self, im_id: int) -> dict[str, str]:
        """The files :meth:`write_view` writes for image ``im_id`` (name -> path relative to the root), in order."""
        name = bop_image_name(im_id)
        files = {"bop_rgb": f"{self.scene}/rgb/{name}", "bop_depth": f"{self.scene}/depth/{name}"}
        for instance in range(len(self.objects)):  # every object has its masks, seen or not
            for folder in ("mask", "mask_visib"):
                files[f"bop_{folder}_{instance:06d}"] = f"{self.scene}/{folder}/{bop_mask_name(im_id, instance)}"
        return files

    def write_scene(self, entries: dict[int, dict[str, Any]]) -> None:
        """Write scene_camera.json, scene_gt.json and scene_gt_info.json from the views' entries."""
        write_bop_scene_files(
            self.root / self.scene,
            {i: e["camera"] for i, e in entries.items()},
            {i: e["gt"] for i, e in entries.items()},
            {i: e["gt_info"] for i, e in entries.items()},
        )

    def describe(self) -> dict[str, Any]:
        """What a job's manifest or targets file says about the export."""
        return {
            "scene": self.scene,
            "models": None if self.models is None else "models",
            "models_eval": None if self.models is None else "models_eval",
            "mm_per_unit": self.mm_per_unit,
            "objects": [
                {
                    "obj_id": obj.obj_id,
                    "name": obj.name,
                    "model_to_world": [[float(v) + 0.0 for v in row] for row in obj.model_to_world],
                    "box": [[float(v) + 0.0 for v in obj.low], [float(v) + 0.0 for v in obj.high]],
                }
                for obj in self.objects
            ],
        }


@dataclass(frozen=True)
class ScoredEstimate:
    """An object's pose estimate and BOP's errors of it against the scene's ground truth."""

    estimate: BopEstimate
    re_deg: float
    """BOP's rotation error, degrees."""
    te_mm: float
    """BOP's translation error (between model-to-camera translations), millimetres."""


def _opencv_mm(c2w_opengl: torch.Tensor, mm_per_unit: float) -> torch.Tensor:
    """Camera-to-world with OpenCV axes, translation in millimetres, float64."""
    c2w = opengl_to_opencv(c2w_opengl.double()).clone()
    c2w[:3, 3] *= mm_per_unit
    return c2w


def object_estimates(
    gt_instances: list[dict[str, Any]],
    gt_c2w: Float[torch.Tensor, "4 4"],
    est_c2w: Float[torch.Tensor, "4 4"],
    mm_per_unit: float,
    scene_id: int,
    im_id: int,
    score: float,
    seconds: float,
) -> list[ScoredEstimate]:
    """Each object's model-to-camera estimate implied by an estimated camera pose, with BOP's errors.

    An object's model-to-world is the ground-truth camera's camera-to-world times its ground-truth
    model-to-camera, so its estimate is ``est_w2c @ gt_c2w @ gt_m2c`` (OpenCV axes, millimetres).

    Args:
        gt_instances: The image's ``scene_gt`` instances (:func:`~nerfdata.writers.bop.read_scene_gt`).
        gt_c2w: Ground-truth camera-to-world, OpenGL axes, scene units.
        est_c2w: Estimated camera-to-world, OpenGL axes, scene units.
        mm_per_unit: Millimetres per scene unit.
        scene_id: The BOP scene id.
        im_id: The image id.
        score: Confidence of the estimate (higher is better).
        seconds: Time the estimate took.
    """
    est_w2c = invert_rigid(_opencv_mm(est_c2w, mm_per_unit)).numpy()
    gt_camera = _opencv_mm(gt_c2w, mm_per_unit).numpy()
    scored = []
    for instance in gt_instances:
        gt_m2c = instance["m2c"]
        m2c = est_w2c @ gt_camera @ gt_m2c + 0.0
        estimate = BopEstimate(scene_id, im_id, instance["obj_id"], score, m2c[:3, :3], m2c[:3, 3], seconds)
        re, te = bop_pose_errors(estimate.R, estimate.t, gt_m2c[:3, :3], gt_m2c[:3, 3])
        scored.append(ScoredEstimate(estimate, re, te))
    return scored
