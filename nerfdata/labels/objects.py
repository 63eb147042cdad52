"""Objects in a field: oriented boxes in the world frame, their models, and what each view sees of them.

A field is one scene; a job names the objects in it by oriented boxes (:class:`ObjectConfig`), or
takes the whole field as one object (object 1, its model frame the world frame, its box the
field's box). For each object (:class:`FieldObject`):

* its **model** is the field's marching-cubes mesh cut to the box (:func:`crop_to_box`: triangles
  are split at the box faces), in the box's frame (origin at the box centre, axes along its
  edges), scaled to millimetres (:func:`object_models`);
* its **pose** in a view is that frame's model-to-camera transform (:func:`model_to_camera`, OpenCV
  camera axes, millimetres);
* its **amodal silhouette** is its model alone ray cast from the view (:func:`silhouette`, open3d),
  over the image and the two image sizes around it that BOP counts for truncated objects;
* its **visible mask** is the pixels of that silhouette whose ray terminates inside the box
  (:func:`terminates_inside`: the view's depth label, the median of the ray-termination
  distribution by default).

Conventions: world frame and scene units of the field; ``mm_per_unit`` millimetres per scene unit
(``1000 * meters_per_unit``); pixel ``(x, y)`` covers ``[x, x+1) x [y, y+1)`` (nerfdata's +0.5
centres, :mod:`nerfdata.cameras`). The files are :mod:`nerfdata.writers.bop`'s job.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import torch
from jaxtyping import Bool, Float, Int

from nerfdata.cameras import Camera, Intrinsics, camera_rays
from nerfdata.errors import ConfigError, NerfDataError
from nerfdata.fields.base import Field
from nerfdata.labels.mesh import decimate, vertex_colors
from nerfdata.rotations import euler_xyz_matrix
from nerfdata.scenes.groundtruth import MeshRaycaster
from nerfdata.writers.images import to_uint8

if TYPE_CHECKING:  # imported where called: trimesh takes 0.6 s to import, which a job without meshes never pays
    import trimesh

__all__ = [
    "WHOLE_FIELD_ID",
    "FieldObject",
    "ObjectConfig",
    "ObjectView",
    "Silhouette",
    "check_objects",
    "crop_to_box",
    "eval_models",
    "field_objects",
    "model_to_camera",
    "object_models",
    "object_views",
    "silhouette",
    "terminates_inside",
]

Vec3 = tuple[float, float, float]

WHOLE_FIELD_ID = 1
"""The object id of the whole field, when a job names no objects."""


@dataclass(frozen=True)
class ObjectConfig:
    """An object of the field: an oriented box in the world frame (scene units).

    The box's frame is the object's model frame: origin at ``center``, axes the world axes turned by
    ``rotation_deg``; BOP expects the model's z axis to point up.
    """

    id: int
    """BOP object id (>= 1), unique in the job."""
    center: Vec3
    """Box centre, world frame."""
    size: Vec3
    """Edge lengths along the box's own x, y, z axes."""
    rotation_deg: Vec3 = (0.0, 0.0, 0.0)
    """Box axes: the world axes rotated about x, then y, then z (extrinsic), degrees, as in scene recipes."""
    name: str = ""
    """A name for people (models_info and the manifest); default obj_ID."""

    def __post_init__(self) -> None:
        where = f"objects: object {self.id}"
        if isinstance(self.id, bool) or not isinstance(self.id, int) or self.id < 1:
            raise ConfigError(f"objects: object ids must be integers >= 1, got {self.id!r}")
        values = (*self.center, *self.size, *self.rotation_deg)
        if not all(isinstance(v, (int, float)) and math.isfinite(v) for v in values):
            raise ConfigError(f"{where}: center, size and rotation_deg must be finite numbers")
        if min(self.size) <= 0:
            raise ConfigError(f"{where}: size must be positive along every axis, got {list(self.size)}")


def check_objects(objects: Sequence[ObjectConfig]) -> None:
    """Refuse a job's object list when two objects share an id.

    Raises:
        ConfigError: naming the repeated id.
    """
    ids = [obj.id for obj in objects]
    repeated = sorted({i for i in ids if ids.count(i) > 1})
    if repeated:
        raise ConfigError(f"objects: id {repeated[0]} is used by more than one object")


@dataclass(frozen=True)
class FieldObject:
    """An object as labels and writers use it: its id, its model frame and its box in that frame."""

    obj_id: int
    name: str
    model_to_world: Float[np.ndarray, "4 4"]
    """Rigid transform from the model frame (scene units, before the millimetre scaling) to the world."""
    low: Float[np.ndarray, "3"]
    """Box corner with the smallest coordinates, model frame, scene units."""
    high: Float[np.ndarray, "3"]


def field_objects(objects: Sequence[ObjectConfig], aabb: Float[np.ndarray, "2 3"]) -> list[FieldObject]:
    """The job's objects; without any, the whole field: object 1, world frame, the field's box.

    Example:
        >>> whole = field_objects([], np.array([[-1.0, -1.0, -1.0], [1.0, 2.0, 1.0]]))[0]
        >>> whole.obj_id, whole.name, whole.high.tolist()
        (1, 'field', [1.0, 2.0, 1.0])
        >>> upright = ObjectConfig(3, (0.0, 0.5, 0.0), (0.2, 0.2, 0.4), (-90.0, 0.0, 0.0))
        >>> can = field_objects([upright], np.zeros((2, 3)))[0]
        >>> [round(v, 6) + 0.0 for v in can.model_to_world[:3, 2].tolist()]  # its z axis is the world's y
        [0.0, 1.0, 0.0]
    """
    if not objects:
        box = np.asarray(aabb, dtype=np.float64)
        return [FieldObject(WHOLE_FIELD_ID, "field", np.eye(4), box[0].copy(), box[1].copy())]
    result = []
    for obj in objects:
        transform = np.eye(4)
        transform[:3, :3] = euler_xyz_matrix(torch.tensor(obj.rotation_deg, dtype=torch.float64)).numpy()
        transform[:3, 3] = obj.center
        half = np.asarray(obj.size, dtype=np.float64) / 2.0
        result.append(FieldObject(obj.id, obj.name or f"obj_{obj.id}", transform, -half, half))
    return result


def crop_to_box(mesh: trimesh.Trimesh, obj: FieldObject) -> trimesh.Trimesh:
    """The part of a world-frame mesh inside the object's box, in the model frame (scene units).

    Triangles crossing a box face are split there (trimesh's plane slicing), so the result lies in
    the box; vertex colours are not carried over (:func:`object_models` colours the cut mesh).

    Example:
        >>> import trimesh
        >>> sphere = trimesh.creation.icosphere(3)
        >>> half = FieldObject(1, "top", np.eye(4), np.array([-2.0, -2.0, 0.0]), np.array([2.0, 2.0, 2.0]))
        >>> float(crop_to_box(sphere, half).vertices[:, 2].min())
        0.0
    """
    import trimesh
    from trimesh.intersections import slice_faces_plane

    world_to_model = np.linalg.inv(obj.model_to_world)
    vertices = trimesh.transform_points(np.asarray(mesh.vertices, dtype=np.float64), world_to_model)
    faces = np.asarray(mesh.faces)
    for axis in range(3):
        for sign, bound in ((1.0, obj.low[axis]), (-1.0, obj.high[axis])):
            if len(faces) == 0:
                break
            normal = np.zeros(3)
            normal[axis] = sign  # keeps the side the normal points to
            origin = np.zeros(3)
            origin[axis] = bound
            vertices, faces = slice_faces_plane(vertices, faces, normal, origin)[:2]
    cropped = trimesh.Trimesh(vertices, faces, process=True)
    cropped.remove_unreferenced_vertices()
    return cropped


def object_models(
    field_: Field,
    mesh: trimesh.Trimesh,
    objects: Sequence[FieldObject],
    mm_per_unit: float,
    colors: bool = True,
) -> dict[int, trimesh.Trimesh]:
    """Each object's model: ``mesh`` (world frame, the field's) cut to its box, model frame, millimetres.

    With ``colors``, each vertex gets the field's radiance there, seen from outside, as 8-bit RGB.

    Raises:
        NerfDataError: an object's box holds no surface of the mesh.
    """
    import trimesh

    models = {}
    for obj in objects:
        model = crop_to_box(mesh, obj)
        if len(model.faces) == 0:
            raise NerfDataError(
                f"object {obj.obj_id} ({obj.name}): the field's mesh has no surface inside its box; "
                "check its center and size (world frame, scene units)"
            )
        if colors:
            rotation = obj.model_to_world[:3, :3]
            world = trimesh.transform_points(np.asarray(model.vertices), obj.model_to_world)
            rgb = vertex_colors(field_, world, np.asarray(model.vertex_normals) @ rotation.T)
            model.visual = trimesh.visual.ColorVisuals(model, vertex_colors=to_uint8(rgb))
        model.apply_scale(mm_per_unit)  # BOP models are in millimetres
        models[obj.obj_id] = model
    return models


def eval_models(models: dict[int, trimesh.Trimesh], max_faces: int) -> dict[int, trimesh.Trimesh]:
    """The models decimated (quadric error) to at most about ``max_faces`` faces (BOP's ``models_eval``)."""
    return {obj_id: decimate(model, max_faces) for obj_id, model in models.items()}


def model_to_camera(obj: FieldObject, camera: Camera, mm_per_unit: float) -> Float[np.ndarray, "4 4"]:
    """The object's model-to-camera transform in ``camera``: OpenCV axes, translation in millimetres.

    A model point ``p`` (millimetres) is at ``R p + t`` in the camera (millimetres, x right, y down,
    z forward).

    Example:
        >>> from nerfdata.cameras import look_at_c2w_opengl
        >>> whole = field_objects([], np.array([[-1.0] * 3, [1.0] * 3]))[0]
        >>> up = torch.tensor([0.0, 1.0, 0.0])
        >>> c2w = look_at_c2w_opengl(torch.tensor([0.0, 0.0, 2.0]), torch.zeros(3), up)
        >>> m2c = model_to_camera(whole, Camera(c2w, Intrinsics.from_fov(8, 8, 60.0)), mm_per_unit=1000.0)
        >>> m2c[:3, 3].tolist(), float(m2c[2, 2])
        ([0.0, 0.0, 2000.0], -1.0)
    """
    transform = camera.w2c_opencv.double().numpy() @ obj.model_to_world
    transform[:3, 3] *= mm_per_unit
    return transform + 0.0  # no negative zeros in the files


def terminates_inside(
    obj: FieldObject, camera: Camera, ranges: Float[np.ndarray, "h w"]
) -> Bool[np.ndarray, "h w"]:
    """Pixels whose ray terminates inside the object's box, ``ranges`` along it (0: no surface)."""
    import trimesh

    rays = camera.rays()
    h, w = ranges.shape
    points = rays.origins.double().numpy() + rays.directions.double().numpy() * ranges.reshape(-1, 1)
    local = trimesh.transform_points(points, np.linalg.inv(obj.model_to_world))
    inside = np.all((local >= obj.low) & (local <= obj.high), axis=-1) & (ranges.reshape(-1) > 0)
    return inside.reshape(h, w)


@dataclass
class Silhouette:
    """An object's amodal silhouette in a view: inside the image, and all of it around the image too."""

    mask: Bool[np.ndarray, "h w"]
    """The silhouette's pixels inside the image."""
    pixels: Int[np.ndarray, "n 2"]
    """``(x, y)`` of every silhouette pixel on the canvas of three image sizes per side centred on the
    image (BOP's count of truncated objects); may be negative or beyond the image."""


def silhouette(
    caster: MeshRaycaster, model_mm: trimesh.Trimesh, m2c: Float[np.ndarray, "4 4"], intrinsics: Intrinsics
) -> Silhouette:
    """The model alone, ray cast from the view through pixel centres (open3d).

    ``caster`` holds ``model_mm`` (model frame, millimetres); ``m2c`` is its model-to-camera
    transform (OpenCV axes, millimetres). Only the canvas pixels inside the projection of the
    model's vertices are cast (all of the canvas when the model reaches behind the camera).
    """
    w, h = intrinsics.width, intrinsics.height
    x0, x1, y0, y1 = -w, 2 * w, -h, 2 * h  # BOP renders truncated objects on a 3x canvas
    camera_points = np.asarray(model_mm.vertices) @ m2c[:3, :3].T + m2c[:3, 3]
    if len(camera_points) and (camera_points[:, 2] > 0).all():
        u = intrinsics.fl_x * camera_points[:, 0] / camera_points[:, 2] + intrinsics.cx
        v = intrinsics.fl_y * camera_points[:, 1] / camera_points[:, 2] + intrinsics.cy
        x0, x1 = max(x0, math.floor(u.min())), min(x1, math.floor(u.max()) + 1)
        y0, y1 = max(y0, math.floor(v.min())), min(y1, math.floor(v.max()) + 1)
    mask = np.zeros((h, w), dtype=bool)
    if x0 >= x1 or y0 >= y1:
        return Silhouette(mask, np.zeros((0, 2), dtype=np.int64))
    ys, xs = np.meshgrid(np.arange(y0, y1), np.arange(x0, x1), indexing="ij")
    pixels = np.stack([xs.reshape(-1), ys.reshape(-1)], axis=-1)
    camera_to_model = torch.from_numpy(np.linalg.inv(m2c))
    rays = camera_rays(camera_to_model, intrinsics, torch.from_numpy(pixels + 0.5), convention="opencv")
    hit = caster.cast_rays(rays).hit
    pixels = pixels[hit]
    inside = (pixels[:, 0] >= 0) & (pixels[:, 0] < w) & (pixels[:, 1] >= 0) & (pixels[:, 1] < h)
    mask[pixels[inside, 1], pixels[inside, 0]] = True
    return Silhouette(mask, pixels)


@dataclass
class ObjectView:
    """What one view shows of one object."""

    obj_id: int
    m2c: Float[np.ndarray, "4 4"]
    """Model-to-camera, OpenCV axes, millimetres."""
    silhouette: Silhouette
    """Amodal: the model alone ray cast (or, without a model, the visible mask)."""
    mask_visib: Bool[np.ndarray, "h w"]
    """Pixels of the silhouette whose ray terminates inside the object's box."""


def object_views(
    objects: Sequence[FieldObject],
    casters: dict[int, MeshRaycaster] | None,
    models: dict[int, trimesh.Trimesh] | None,
    camera: Camera,
    ranges: Float[np.ndarray, "h w"],
    mm_per_unit: float,
) -> list[ObjectView]:
    """Pose, amodal silhouette and visible mask of every object in one view.

    Args:
        objects: The job's objects, in their order (BOP's ground-truth index in the view).
        casters: Per object id, a ray caster holding its model; None when there are no models:
            then only the whole field can be the object, and its silhouette is what is visible of
            it (nothing else can hide it; truncation is not counted).
        models: The models the casters hold (millimetres), for the canvas to cast.
        camera: The view.
        ranges: Distance along each pixel's ray where it terminates, scene units; 0: no surface.
        mm_per_unit: Millimetres per scene unit.
    """
    views = []
    for obj in objects:
        m2c = model_to_camera(obj, camera, mm_per_unit)
        inside = terminates_inside(obj, camera, ranges)
        if casters is None or models is None:
            ys, xs = np.nonzero(inside)
            outline = Silhouette(inside, np.stack([xs, ys], axis=-1).astype(np.int64))
        else:
            outline = silhouette(casters[obj.obj_id], models[obj.obj_id], m2c, camera.intrinsics)
        views.append(ObjectView(obj.obj_id, m2c, outline, inside & outline.mask))
    return views
