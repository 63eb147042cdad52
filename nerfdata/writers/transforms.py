"""nerfstudio / Blender ``transforms.json``: cameras and file paths of a dataset.

Poses are camera-to-world 4x4 with OpenGL axes (``transform_matrix``); intrinsics are pinhole
``fl_x, fl_y, cx, cy, w, h`` in pixels, written per frame (so every view may have its own focal
length) and also at the top level when all frames share them.
"""

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from nerfdata.atomic import write_json_atomic
from nerfdata.cameras import Camera
from nerfdata.writers.images import DEPTH_PNG_SCALE

__all__ = ["FrameRecord", "transforms_dict", "write_transforms"]


@dataclass
class FrameRecord:
    """One frame of a dataset: its camera and file paths relative to the dataset folder."""

    camera: Camera
    file_path: str
    depth_file_path: str | None = None
    mask_path: str | None = None
    extra: dict[str, Any] | None = None


def _intrinsics_dict(camera: Camera) -> dict[str, Any]:
    k = camera.intrinsics
    return {"fl_x": k.fl_x, "fl_y": k.fl_y, "cx": k.cx, "cy": k.cy, "w": k.width, "h": k.height}


def transforms_dict(frames: list[FrameRecord], extra: dict[str, Any] | None = None) -> dict[str, Any]:
    """The ``transforms.json`` content for ``frames`` (intrinsics per frame, pinhole)."""
    records = []
    for frame in frames:
        record: dict[str, Any] = {"file_path": frame.file_path}
        if frame.depth_file_path is not None:
            record["depth_file_path"] = frame.depth_file_path
        if frame.mask_path is not None:
            record["mask_path"] = frame.mask_path
        record.update(_intrinsics_dict(frame.camera))
        record["transform_matrix"] = [[float(v) for v in row] for row in frame.camera.c2w_opengl.tolist()]
        record.update(frame.extra or {})
        records.append(record)
    content: dict[str, Any] = {"camera_model": "OPENCV", "k1": 0.0, "k2": 0.0, "p1": 0.0, "p2": 0.0}
    shared = {frozenset(_intrinsics_dict(f.camera).items()) for f in frames}
    if len(shared) == 1:
        # Only when every frame agrees: nerfstudio's parser lets top-level values override frames.
        content.update(_intrinsics_dict(frames[0].camera))
    content["depth_unit_scale_factor"] = 1.0 / DEPTH_PNG_SCALE
    content.update(extra or {})
    content["frames"] = records
    return content


def write_transforms(path: str | Path, frames: list[FrameRecord], extra: dict[str, Any] | None = None) -> None:
    """Write ``transforms.json`` atomically."""
    write_json_atomic(path, transforms_dict(frames, extra))
