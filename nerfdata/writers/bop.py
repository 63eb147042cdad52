"""BOP layout (Hodan et al., the BOP benchmark): one scene of views of one object, the field's world.

The whole field is object 1, with its model frame the field's world frame scaled to millimetres, so
a camera's model-to-camera transform is its world-to-camera transform with OpenCV axes
(x right, y down, z forward) and the translation in millimetres::

    OUT/models/obj_000001.ply            the field's mesh, millimetres
    OUT/models/models_info.json          {"1": {"diameter", "min_x", ..., "size_z"}} in millimetres
    OUT/test/000001/rgb/000000.png
    OUT/test/000001/depth/000000.png     uint16, depth_mm = value * depth_scale
    OUT/test/000001/scene_camera.json    {"0": {"cam_K": [9], "depth_scale": s}}
    OUT/test/000001/scene_gt.json        {"0": [{"cam_R_m2c": [9], "cam_t_m2c": [3], "obj_id": 1}]}

``meters_per_unit`` converts the field's scene units to metres (1 for metric fields).
"""

from pathlib import Path
from typing import Any

import numpy as np
import torch  # noqa: F401  (the doctests use it)
from jaxtyping import Float

from nerfdata.atomic import write_json_atomic
from nerfdata.cameras import Camera
from nerfdata.writers.images import write_depth_png, write_png

__all__ = [
    "BOP_OBJ_ID",
    "BOP_SCENE",
    "bop_camera_entry",
    "bop_gt_entry",
    "depth_scale_for",
    "models_info",
    "write_bop_depth",
    "write_bop_scene",
]

BOP_OBJ_ID = 1
BOP_SCENE = "test/000001"
_UINT16_MAX = 65535


def _mm(meters_per_unit: float) -> float:
    """Millimetres per scene unit."""
    return 1000.0 * meters_per_unit


def bop_gt_entry(camera: Camera, meters_per_unit: float) -> dict[str, Any]:
    """``scene_gt.json`` entry of one view: model(=world, mm)-to-camera, OpenCV axes.

    Example:
        >>> from nerfdata.cameras import Intrinsics, look_at_c2w_opengl
        >>> c2w = look_at_c2w_opengl(torch.tensor([0.0, 0.0, 2.0]), torch.zeros(3), torch.tensor([0.0, 1.0, 0.0]))
        >>> entry = bop_gt_entry(Camera(c2w, Intrinsics.from_fov(8, 8, 60.0)), meters_per_unit=1.0)
        >>> entry["cam_t_m2c"], entry["cam_R_m2c"][8]
        ([0.0, 0.0, 2000.0], -1.0)
    """
    w2c = camera.w2c_opencv.double()
    return {
        "cam_R_m2c": [float(v) for v in w2c[:3, :3].reshape(-1)],
        "cam_t_m2c": [float(v) * _mm(meters_per_unit) + 0.0 for v in w2c[:3, 3]],
        "obj_id": BOP_OBJ_ID,
    }


def depth_scale_for(depth: Float[np.ndarray, "h w"], meters_per_unit: float) -> float:
    """The finest of 0.1, 1 and 10 mm per depth PNG step that fits the view's deepest pixel in uint16."""
    deepest_mm = float(np.max(depth, initial=0.0)) * _mm(meters_per_unit)
    return next((s for s in (0.1, 1.0) if deepest_mm / s <= _UINT16_MAX), 10.0)


def bop_camera_entry(camera: Camera, depth_scale: float) -> dict[str, Any]:
    """``scene_camera.json`` entry: ``cam_K`` row-major (pixels, centres at +0.5) and ``depth_scale``."""
    return {"cam_K": [float(v) for v in camera.intrinsics.K.double().reshape(-1)], "depth_scale": depth_scale}


def write_bop_depth(path: Path, depth: Float[np.ndarray, "h w"], meters_per_unit: float, depth_scale: float) -> None:
    """uint16 PNG with ``depth_mm = value * depth_scale`` (0: no surface)."""
    write_depth_png(path, depth, values_per_unit=_mm(meters_per_unit) / depth_scale)


def write_bop_scene(
    root: Path,
    cameras: list[Camera],
    rgbs: list[np.ndarray],
    depths: list[np.ndarray],
    meters_per_unit: float,
) -> list[str]:
    """Write rgb/, depth/, scene_camera.json and scene_gt.json of one BOP scene; return the rgb paths (relative to ``root``)."""
    scene = root / BOP_SCENE
    scene_camera, scene_gt, images = {}, {}, []
    for index, (camera, rgb, depth) in enumerate(zip(cameras, rgbs, depths)):
        name = f"{index:06d}.png"
        write_png(scene / "rgb" / name, rgb)
        scale = depth_scale_for(depth, meters_per_unit)
        write_bop_depth(scene / "depth" / name, depth, meters_per_unit, scale)
        scene_camera[str(index)] = bop_camera_entry(camera, scale)
        scene_gt[str(index)] = [bop_gt_entry(camera, meters_per_unit)]
        images.append(f"{BOP_SCENE}/rgb/{name}")
    write_json_atomic(scene / "scene_camera.json", scene_camera)
    write_json_atomic(scene / "scene_gt.json", scene_gt)
    return images


def models_info(vertices_mm: Float[np.ndarray, "n 3"]) -> dict[str, float]:
    """BOP ``models_info.json`` entry of a model: diameter and box, millimetres.

    Example:
        >>> models_info(np.array([[0.0, 0.0, 0.0], [3.0, 4.0, 0.0], [1.0, 1.0, 1.0]]))["diameter"]
        5.0
    """
    from scipy.spatial import ConvexHull
    from scipy.spatial.distance import pdist

    points = np.asarray(vertices_mm, dtype=np.float64)
    try:  # the diameter's endpoints lie on the convex hull: far fewer pairs to compare
        points_for_diameter = points[ConvexHull(points).vertices]
    except Exception:  # noqa: BLE001  flat or tiny point sets: compare them all
        points_for_diameter = points
    low, high = points.min(axis=0), points.max(axis=0)
    return {
        "diameter": float(pdist(points_for_diameter).max()) if len(points) > 1 else 0.0,
        "min_x": float(low[0]), "min_y": float(low[1]), "min_z": float(low[2]),
        "size_x": float(high[0] - low[0]), "size_y": float(high[1] - low[1]), "size_z": float(high[2] - low[2]),
    }
