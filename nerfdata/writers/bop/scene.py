"""The files of one BOP scene (Hodan et al., the BOP benchmark; docs/bop_datasets_format.md of bop_toolkit)::

    SPLIT/SCENE/rgb/000000.png                8-bit RGB
    SPLIT/SCENE/depth/000000.png              uint16, depth_mm = value * depth_scale (0: no surface)
    SPLIT/SCENE/mask/000000_000001.png        instance 1 of image 0: its amodal silhouette, 0/255 uint8
    SPLIT/SCENE/mask_visib/000000_000001.png  the visible part of it
    SPLIT/SCENE/scene_camera.json             {"0": {"cam_K": [9], "depth_scale": s}}
    SPLIT/SCENE/scene_gt.json                 {"0": [{"cam_R_m2c": [9], "cam_t_m2c": [3], "obj_id": 1}, ...]}
    SPLIT/SCENE/scene_gt_info.json            {"0": [{"bbox_obj", "bbox_visib", "px_count_all",
                                                      "px_count_valid", "px_count_visib",
                                                      "visib_fract"}, ...]}

Conventions, BOP's: ``cam_K`` has integer pixel centres (pixel ``(u, v)`` is centred at ``(u, v)``,
as in OpenCV and the BOP toolkit's ``project_pts``), so its principal point is nerfdata's minus half
a pixel (:func:`bop_cam_K`); poses are model-to-camera, OpenCV axes (x right, y down, z forward),
translations in millimetres. An instance is an object's index in its image's ``scene_gt`` list.
Which objects and what each view shows of them is :mod:`nerfdata.labels.objects`.
"""

from pathlib import Path
from typing import Any

import numpy as np
import torch  # noqa: F401  (the doctests use it)
from jaxtyping import Bool, Float, Int, UInt16

from nerfdata.atomic import write_json_atomic
from nerfdata.cameras import Camera, Intrinsics
from nerfdata.errors import NerfDataError
from nerfdata.strict_json import read_json
from nerfdata.writers.images import depth_png_values, write_png

__all__ = [
    "bop_cam_K",
    "bop_camera_entry",
    "bop_depth_values",
    "bop_gt_entry",
    "bop_image_name",
    "bop_mask_name",
    "depth_scale_for",
    "gt_info_entry",
    "read_scene_gt",
    "write_bop_mask",
    "write_bop_scene_files",
]

_UINT16_MAX = 65535


def bop_cam_K(intrinsics: Intrinsics) -> list[float]:
    """``cam_K`` row-major, BOP's integer pixel centres: ``cx - 0.5``, ``cy - 0.5`` of nerfdata's.

    Example:
        >>> bop_cam_K(Intrinsics(fl_x=100.0, fl_y=100.0, cx=32.0, cy=24.0, width=64, height=48))
        [100.0, 0.0, 31.5, 0.0, 100.0, 23.5, 0.0, 0.0, 1.0]
    """
    i = intrinsics
    return [i.fl_x, 0.0, i.cx - 0.5, 0.0, i.fl_y, i.cy - 0.5, 0.0, 0.0, 1.0]


def bop_camera_entry(camera: Camera, depth_scale: float) -> dict[str, Any]:
    """``scene_camera.json`` entry of a view: ``cam_K`` (:func:`bop_cam_K`) and ``depth_scale``."""
    return {"cam_K": [float(v) for v in bop_cam_K(camera.intrinsics)], "depth_scale": depth_scale}


def bop_gt_entry(m2c: Float[np.ndarray, "4 4"], obj_id: int) -> dict[str, Any]:
    """``scene_gt.json`` entry of an instance: model-to-camera ``cam_R_m2c`` (row-major), ``cam_t_m2c`` (mm).

    Example:
        >>> entry = bop_gt_entry(np.diag([1.0, -1.0, -1.0, 1.0]), obj_id=2)
        >>> entry["cam_R_m2c"][4], entry["obj_id"]
        (-1.0, 2)
    """
    return {
        "cam_R_m2c": [float(v) + 0.0 for v in m2c[:3, :3].reshape(-1)],
        "cam_t_m2c": [float(v) + 0.0 for v in m2c[:3, 3]],
        "obj_id": int(obj_id),
    }


def depth_scale_for(depth: Float[np.ndarray, "h w"], mm_per_unit: float) -> float:
    """The finest of 0.1, 1 and 10 mm per depth PNG step that fits the view's deepest pixel in uint16."""
    deepest_mm = float(np.max(depth, initial=0.0)) * mm_per_unit
    return next((s for s in (0.1, 1.0) if deepest_mm / s <= _UINT16_MAX), 10.0)


def bop_depth_values(
    depth: Float[np.ndarray, "h w"], mm_per_unit: float, depth_scale: float
) -> UInt16[np.ndarray, "h w"]:
    """The depth PNG's values: ``depth_mm / depth_scale`` rounded; 0 where no surface is or it does not fit.

    Example:
        >>> bop_depth_values(np.array([[0.0, 1.2345]]), mm_per_unit=1000.0, depth_scale=0.1).tolist()
        [[0, 12345]]
    """
    return depth_png_values(depth, mm_per_unit / depth_scale)


def bop_image_name(im_id: int) -> str:
    """``rgb/`` and ``depth/`` file name of an image."""
    return f"{im_id:06d}.png"


def bop_mask_name(im_id: int, instance: int) -> str:
    """``mask/`` and ``mask_visib/`` file name of an instance (its index in the image's ``scene_gt`` list)."""
    return f"{im_id:06d}_{instance:06d}.png"


def write_bop_mask(path: Path, mask: Bool[np.ndarray, "h w"]) -> None:
    """A mask as BOP stores it: uint8 PNG, 255 inside, 0 outside."""
    write_png(path, np.where(mask, 255, 0).astype(np.uint8))


def _bbox(xs: Int[np.ndarray, " n"], ys: Int[np.ndarray, " n"]) -> list[int]:
    """``[x, y, width, height]`` of pixels, as the BOP toolkit's ``calc_gt_info`` computes it
    (top-left pixel, width ``x_max - x_min``); ``[-1, -1, -1, -1]`` for no pixel."""
    if len(xs) == 0:
        return [-1, -1, -1, -1]
    x, y = int(xs.min()), int(ys.min())
    return [x, y, int(xs.max()) - x, int(ys.max()) - y]


def gt_info_entry(
    silhouette_pixels: Int[np.ndarray, "n 2"],
    mask: Bool[np.ndarray, "h w"],
    mask_visib: Bool[np.ndarray, "h w"],
    depth_values: UInt16[np.ndarray, "h w"],
) -> dict[str, Any]:
    """``scene_gt_info.json`` entry of an instance, as the BOP format document defines it.

    Args:
        silhouette_pixels: ``(x, y)`` of every pixel of the amodal silhouette, including those of a
            truncated object beyond the image (BOP counts them on a canvas three image sizes wide).
        mask: The silhouette inside the image (``mask/``).
        mask_visib: Its visible part (``mask_visib/``), inside ``mask``.
        depth_values: The image's depth PNG values (0: no measurement).

    Returns:
        ``bbox_obj`` (of the whole silhouette, not clipped to the image), ``bbox_visib``,
        ``px_count_all`` (whole silhouette), ``px_count_valid`` (silhouette pixels in the image with
        depth), ``px_count_visib``, ``visib_fract = px_count_visib / px_count_all`` (0 when empty).

    Example:
        >>> mask = np.zeros((4, 4), dtype=bool); mask[1:3, 0:2] = True
        >>> visible = mask.copy(); visible[1, 0] = False
        >>> pixels = np.array([[-1, 1], [0, 1], [1, 1], [0, 2], [1, 2]])  # one pixel left of the image
        >>> info = gt_info_entry(pixels, mask, visible, np.ones((4, 4), dtype=np.uint16))
        >>> info["bbox_obj"], info["px_count_all"], info["px_count_visib"], info["visib_fract"]
        ([-1, 1, 2, 1], 5, 3, 0.6)
    """
    count_all = len(silhouette_pixels)
    count_visib = int(mask_visib.sum())
    ys, xs = np.nonzero(mask_visib)
    return {
        "bbox_obj": _bbox(silhouette_pixels[:, 0], silhouette_pixels[:, 1]),
        "bbox_visib": _bbox(xs, ys),
        "px_count_all": count_all,
        "px_count_valid": int((mask & (depth_values > 0)).sum()),
        "px_count_visib": count_visib,
        "visib_fract": count_visib / count_all if count_all > 0 else 0.0,
    }


def write_bop_scene_files(
    scene_dir: Path,
    cameras: dict[int, dict[str, Any]],
    gts: dict[int, list[dict[str, Any]]],
    infos: dict[int, list[dict[str, Any]]],
) -> None:
    """A scene's ``scene_camera.json``, ``scene_gt.json`` and ``scene_gt_info.json``, by image id in order."""
    for name, entries in (("scene_camera", cameras), ("scene_gt", gts), ("scene_gt_info", infos)):
        write_json_atomic(scene_dir / f"{name}.json", {str(i): entries[i] for i in sorted(entries)})


def read_scene_gt(path: Path) -> dict[int, list[dict[str, Any]]]:
    """A ``scene_gt.json``: per image id, its instances' ``obj_id`` and ``m2c`` (model-to-camera, float64).

    Raises:
        NerfDataError: a missing or malformed file.
    """
    document = read_json(path)
    try:
        scene_gt = {}
        for key, instances in document.items():
            entries = []
            for entry in instances:
                m2c = np.eye(4)
                m2c[:3, :3] = np.asarray(entry["cam_R_m2c"], dtype=np.float64).reshape(3, 3)
                m2c[:3, 3] = np.asarray(entry["cam_t_m2c"], dtype=np.float64).reshape(3)
                entries.append({"obj_id": int(entry["obj_id"]), "m2c": m2c})
            scene_gt[int(key)] = entries
    except (OSError, ValueError, KeyError, TypeError, AttributeError) as error:
        raise NerfDataError(f"{path}: not a readable BOP scene_gt.json ({error!r})") from None
    return scene_gt
