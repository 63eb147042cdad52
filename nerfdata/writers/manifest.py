"""``manifest.json``: what a dataset is, how it was made, and whether it is complete.

A dataset folder is complete only when its manifest says ``"complete": true``. The manifest is
written first (``complete: false``) and rewritten last, so an interrupted job never leaves a
folder that looks finished.
"""

import hashlib
import json
import shutil
from pathlib import Path
from typing import Any

from nerfdata.atomic import write_json_atomic
from nerfdata.errors import NerfDataError
from nerfdata.version import __version__

__all__ = ["CONVENTIONS", "LAYERS", "config_hash", "prepare_output_folder", "read_manifest", "write_manifest"]

MANIFEST_NAME = "manifest.json"

CONVENTIONS: dict[str, str] = {
    "world_frame": "the frame and units of the data the field was trained on",
    "transforms_json_pose": "camera-to-world 4x4, OpenGL camera axes (x right, y up, looking down -z)",
    "intrinsics": "pinhole fl_x, fl_y, cx, cy in pixels; pixel centres at +0.5",
    "depth": "z-depth along the optical axis, scene units; 0 = no surface",
    "range": "distance along the ray from the camera centre, scene units; 0 = no surface",
    "normals": "unit vectors in the world frame; PNG previews show camera-frame (OpenCV axes) normals as (n+1)/2",
    "image_pixels": "row-major, x right, y down",
}

LAYERS: dict[str, dict[str, str]] = {
    "rgb": {"files": "images/{index:05d}.png", "dtype": "uint8", "unit": "8-bit colour, as the field's training images", "frame": "image", "encoding": "PNG RGB"},
    "depth": {"files": "depth/{index:05d}.npy", "dtype": "float32", "unit": "scene units", "frame": "camera z-depth", "encoding": "NumPy .npy; 0 = no surface"},
    "depth_png": {"files": "depth/{index:05d}.png", "dtype": "uint16", "unit": "1/1000 scene units (mm for metric scenes)", "frame": "camera z-depth", "encoding": "PNG; 0 = no surface or beyond 65.535 units"},
    "normals": {"files": "normals/{index:05d}.npy", "dtype": "float32", "unit": "unit length", "frame": "world", "encoding": "NumPy .npy (H, W, 3); zero where no surface"},
    "normals_png": {"files": "normals/{index:05d}.png", "dtype": "uint8", "unit": "(n+1)/2", "frame": "camera (OpenCV axes)", "encoding": "PNG preview"},
    "mask": {"files": "masks/{index:05d}.png", "dtype": "uint8", "unit": "255 = surface, 0 = background", "frame": "image", "encoding": "PNG; accumulation > mask_threshold"},
    "range": {"files": "range/{index:05d}.npy", "dtype": "float32", "unit": "scene units", "frame": "distance along the ray", "encoding": "NumPy .npy; 0 = no surface"},
    "confidence": {"files": "confidence/{index:05d}.npy", "dtype": "float32", "unit": "0..1", "frame": "image", "encoding": "NumPy .npy; accumulation * exp(-(spread / (tolerance * range))^2 / 2)"},
    "valid": {"files": "valid/{index:05d}.png", "dtype": "uint8", "unit": "255 = trusted, 0 = drop", "frame": "image", "encoding": "PNG; mask and confidence >= confidence_threshold"},
    "depth_modes": {"files": "depth_modes/{index:05d}.npy", "dtype": "float16", "unit": "scene units; probability", "frame": "camera z-depth", "encoding": "NumPy .npy (H, W, K, 2): the K heaviest modes of ray termination as (z-depth, weight), heaviest first; weight 0 = no mode"},
    "object_id": {"files": "ids/{index:05d}.png", "dtype": "uint16", "unit": "object index + 1", "frame": "image", "encoding": "PNG; 0 = background"},
}


def config_hash(config: dict[str, Any]) -> str:
    """Stable hash of a resolved config (what makes two runs "the same job")."""
    return hashlib.sha256(json.dumps(config, sort_keys=True).encode()).hexdigest()


def write_manifest(folder: str | Path, manifest: dict[str, Any]) -> None:
    """Write ``folder/manifest.json`` atomically, stamped with the nerfdata version."""
    write_json_atomic(Path(folder) / MANIFEST_NAME, {"nerfdata_version": __version__, **manifest})


def read_manifest(folder: str | Path) -> dict[str, Any] | None:
    """The manifest of a dataset folder, or ``None`` when it has none."""
    path = Path(folder) / MANIFEST_NAME
    if not path.exists():
        return None
    try:
        manifest = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as error:
        raise NerfDataError(f"{path}: unreadable manifest ({error})") from None
    if not isinstance(manifest, dict):
        raise NerfDataError(f"{path}: manifest is not a JSON object")
    return manifest


def prepare_output_folder(out: str | Path, job_hash: str, overwrite: bool) -> None:
    """Make ``out`` ready for the job identified by ``job_hash``.

    An empty or missing folder, or one holding the same job (resume), is used as is. A folder holding
    a different job, or files that are not a nerfdata dataset, is refused unless ``overwrite``, in
    which case it is emptied first.
    """
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise NerfDataError(f"{out}: output path exists and is not a folder")
    if out.is_dir() and any(out.iterdir()):
        manifest = read_manifest(out)
        same_job = manifest is not None and manifest.get("config_hash") == job_hash
        if not same_job and not overwrite:
            what = "a different nerfdata job" if manifest is not None else "files that are not a nerfdata dataset"
            raise NerfDataError(f"{out}: output folder holds {what}; choose another --out or pass --overwrite")
        if not same_job:
            shutil.rmtree(out)
    out.mkdir(parents=True, exist_ok=True)
