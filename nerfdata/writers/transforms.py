"""nerfstudio / Blender ``transforms.json``: cameras and file paths of a dataset, written and read.

Poses are camera-to-world 4x4 with OpenGL axes (``transform_matrix``); intrinsics are pinhole
``fl_x, fl_y, cx, cy, w, h`` in pixels, written per frame (so every view may have its own focal
length) and also at the top level when all frames share them.
"""

import math
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import imageio.v3 as iio
import numpy as np
import torch

from nerfdata.atomic import write_json_atomic
from nerfdata.cameras import Camera, Intrinsics, check_aabb, validate_c2w
from nerfdata.errors import NerfDataError, PoseError
from nerfdata.strict_json import read_json
from nerfdata.writers.images import DEPTH_PNG_SCALE

__all__ = [
    "DatasetFrame",
    "FrameRecord",
    "TransformsDataset",
    "dataset_path",
    "read_cameras",
    "read_transforms",
    "transforms_dict",
    "write_transforms",
]


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


# --------------------------------------------------------------------------------------------------
# Reading: nerfdata's own datasets and any nerfstudio / Blender-format dataset with pinhole cameras.
# --------------------------------------------------------------------------------------------------

Split = Literal["train", "val", "test"]
_SPLIT_KEYS: dict[Split, str] = {"train": "train_filenames", "val": "val_filenames", "test": "test_filenames"}
_DISTORTION_KEYS = ("k1", "k2", "k3", "k4", "p1", "p2")
_PINHOLE_MODELS = ("OPENCV", "PINHOLE", "SIMPLE_PINHOLE")
_PER_FRAME_KEYS = ("fl_x", "fl_y", "cx", "cy", "w", "h", "camera_angle_x")
_DATASET_KEYS = ("aabb", "meters_per_unit", "depth_unit_scale_factor")
"""Keys that describe the whole dataset, not one split's frames."""
_IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".PNG", ".JPG", ".JPEG")


@dataclass
class DatasetFrame:
    """One frame read from a ``transforms.json``: its camera and absolute file paths."""

    camera: Camera
    image_path: Path
    """Absolute path of the image (it may be missing when read with ``require_images=False``)."""
    depth_path: Path | None
    split: Split | None
    """The split the dataset puts this frame in, if it says."""


@dataclass
class TransformsDataset:
    """The cameras and files of a dataset, in the order of its ``frames`` list."""

    path: Path
    frames: list[DatasetFrame]
    aabb: np.ndarray | None
    """``(2, 3)`` scene box when the dataset gives one (key ``aabb``)."""
    meters_per_unit: float | None
    depth_unit_scale_factor: float

    def split(self, name: Split) -> list[DatasetFrame]:
        """Frames of a split; a dataset without splits puts every frame in ``train``.

        Raises:
            NerfDataError: the split is empty.
        """
        has_splits = any(frame.split is not None for frame in self.frames)
        frames = [f for f in self.frames if f.split == name] if has_splits else (self.frames if name == "train" else [])
        if not frames:
            raise NerfDataError(f"{self.path}: the {name} split is empty")
        return frames


def _load_json(path: Path) -> dict[str, Any]:
    content = read_json(path)
    if not isinstance(content, dict):
        raise NerfDataError(f"{path}: expected a JSON object")
    return content


def dataset_path(root: Path, value: Any, where: str, key: str = "file_path") -> Path:
    """``root / value`` for a path a dataset file gives, refused unless it stays inside ``root``.

    ``value`` must be a relative path that does not climb out of ``root`` (no leading ``/``, no
    ``..`` past it), judged on the path as written: a link inside the dataset may point anywhere,
    since whoever made the folder put it there. Paths a user gives on the command line are theirs
    and are not checked.

    Raises:
        NerfDataError: ``where: key ... must be a path inside the dataset folder``.

    Example:
        >>> dataset_path(Path("data"), "./images/../images/a.png", "transforms.json frame 0")
        PosixPath('data/images/../images/a.png')
        >>> dataset_path(Path("data"), "../secret.png", "transforms.json frame 0")  # doctest: +ELLIPSIS
        Traceback (most recent call last):
        ...
        nerfdata.errors.NerfDataError: transforms.json frame 0: file_path '../secret.png' must be a path inside ...
    """
    if not isinstance(value, str) or not value or "\0" in value:
        raise NerfDataError(f"{where}: {key} must be a path (a string), got {value!r}")
    normal = os.path.normpath(value)
    if os.path.isabs(value) or normal == ".." or normal.startswith("../"):
        raise NerfDataError(
            f"{where}: {key} {value!r} must be a path inside the dataset folder {root} (relative, no '..' out of it)"
        )
    return root / value


def _resolve_image(root: Path, file_path: Any, where: str, required: bool) -> Path | None:
    path = dataset_path(root, file_path, where).resolve()
    if path.is_file():
        return path
    if path.suffix == "":  # Blender datasets name frames without an extension
        for suffix in _IMAGE_SUFFIXES:
            if path.with_suffix(suffix).is_file():
                return path.with_suffix(suffix)
    if required:
        raise NerfDataError(f"{where}: image {file_path!r} not found")
    return None


def _number(value: Any, where: str, key: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise NerfDataError(f"{where}: {key} must be a finite number, got {value!r}")
    return float(value)


def _size(value: Any, where: str, key: str) -> int:
    number = isinstance(value, (int, float)) and not isinstance(value, bool)
    whole = number and math.isfinite(value) and value == int(value)
    if not whole:
        raise NerfDataError(f"{where}: {key} must be a whole number of pixels, got {value!r}")
    return int(value)


def _image_size(image_path: Path, where: str) -> tuple[int, int]:
    """``(height, width)`` of an image file, read from its header."""
    try:
        shape = iio.improps(image_path).shape
    except (OSError, ValueError, SyntaxError) as error:  # PIL reports a broken PNG as a SyntaxError
        reason = str(error).splitlines()[0] if str(error) else type(error).__name__
        raise NerfDataError(f"{where}: {image_path.name} is not an image nerfdata can read ({reason})") from None
    if len(shape) < 2:
        raise NerfDataError(f"{where}: {image_path.name} is not an image (shape {shape})")
    return int(shape[0]), int(shape[1])


def _frame_intrinsics(meta: dict[str, Any], frame: dict[str, Any], image_path: Path | None, where: str) -> Intrinsics:
    def value(key: str) -> Any:
        return frame.get(key, meta.get(key))

    for key in _DISTORTION_KEYS:
        if value(key) is not None and abs(_number(value(key), where, key)) > 0.0:
            raise NerfDataError(
                f"{where}: distortion parameter {key}={value(key)} is not modelled (pinhole cameras only)"
            )
    model = value("camera_model")
    if model is not None and model not in _PINHOLE_MODELS:
        raise NerfDataError(f"{where}: camera_model {model!r} is not supported (pinhole cameras only)")
    w = _size(value("w"), where, "w") if value("w") is not None else None
    h = _size(value("h"), where, "h") if value("h") is not None else None
    if image_path is None:
        if w is None or h is None:
            raise NerfDataError(f"{where}: image not found and no image size (w, h) given")
        width, height = w, h
    else:
        height, width = _image_size(image_path, where)
    if w is not None and (w, h or height) != (width, height):
        raise NerfDataError(
            f"{where}: image {image_path.name} is {width}x{height} but the intrinsics say {value('w')}x{value('h')}"
        )
    if value("fl_x") is not None:
        fl_x = _number(value("fl_x"), where, "fl_x")
        fl_y = _number(value("fl_y"), where, "fl_y") if value("fl_y") is not None else fl_x
    elif value("camera_angle_x") is not None:
        angle = _number(value("camera_angle_x"), where, "camera_angle_x")
        if not 0.0 < angle < math.pi:
            raise NerfDataError(f"{where}: camera_angle_x must be in (0, pi) radians, got {angle}")
        fl_x = fl_y = 0.5 * width / math.tan(0.5 * angle)
    else:
        raise NerfDataError(f"{where}: no intrinsics (need fl_x/fl_y/cx/cy or camera_angle_x)")
    cx = _number(value("cx"), where, "cx") if value("cx") is not None else width / 2.0
    cy = _number(value("cy"), where, "cy") if value("cy") is not None else height / 2.0
    try:
        return Intrinsics(fl_x, fl_y, cx, cy, int(width), int(height))
    except PoseError as error:
        raise NerfDataError(f"{where}: {error}") from None


def _splits_of(root: Path, meta: dict[str, Any]) -> dict[str, Split]:
    """``{resolved image path: split}`` from nerfstudio's ``*_filenames`` keys."""
    splits: dict[str, Split] = {}
    for split, key in _SPLIT_KEYS.items():
        names = meta.get(key, [])
        if not isinstance(names, list) or not all(isinstance(name, str) and "\0" not in name for name in names):
            raise NerfDataError(f"{root}: {key} must be a list of file paths")
        for name in names:
            splits[str((root / name).resolve())] = split
    return splits


def read_transforms(path: str | Path, require_images: bool = True) -> TransformsDataset:
    """Read a ``transforms.json`` (or a folder holding one, or Blender's ``transforms_{split}.json`` files).

    Accepts per-frame or shared pinhole intrinsics (``fl_x, fl_y, cx, cy, w, h``) or Blender's
    ``camera_angle_x``; splits from nerfstudio's ``train_filenames`` / ``val_filenames`` /
    ``test_filenames`` keys or Blender's per-split files; an optional ``aabb``, ``meters_per_unit``
    and ``depth_unit_scale_factor`` (with per-split files: from whichever files give them).

    With ``require_images=False`` (a file read only for its poses) a frame's image may be missing
    when the frame or file gives the image size ``w, h``; images that exist are still checked.

    Raises:
        NerfDataError: one line naming the file (and frame) and what is wrong: no transforms.json,
            missing images, mixed image sizes without per-frame intrinsics, distortion, bad poses,
            split files that disagree on a dataset-wide key (naming both files).
    """
    path = Path(path)
    if path.is_dir():
        candidates = [path / "transforms.json"]
        blender = [path / f"transforms_{split}.json" for split in ("train", "val", "test")]
        if not candidates[0].exists() and any(p.exists() for p in blender):
            candidates = [p for p in blender if p.exists()]
        elif not candidates[0].exists():
            raise NerfDataError(f"{path}: no transforms.json in this folder")
    else:
        candidates = [path]
    frames: list[DatasetFrame] = []
    metas = {file: _load_json(file) for file in candidates}
    shared_size: tuple[int, int] | None = None
    for file, meta in metas.items():
        root = file.parent
        split_of = _splits_of(root, meta)
        blender_split = file.stem.removeprefix("transforms_")
        blender_split = blender_split if blender_split in _SPLIT_KEYS else None
        raw_frames = meta.get("frames")
        if not isinstance(raw_frames, list) or not raw_frames:
            raise NerfDataError(f"{file}: no frames")
        for index, frame in enumerate(raw_frames):
            where = f"{file} frame {index}"
            if not isinstance(frame, dict) or "file_path" not in frame or "transform_matrix" not in frame:
                raise NerfDataError(f"{where}: needs file_path and transform_matrix")
            image_path = _resolve_image(root, frame["file_path"], where, require_images)
            intrinsics = _frame_intrinsics(meta, frame, image_path, where)
            if not any(key in frame for key in _PER_FRAME_KEYS):
                size = (intrinsics.width, intrinsics.height)
                shared_size = shared_size or size
                if size != shared_size:
                    raise NerfDataError(
                        f"{where}: image is {size[0]}x{size[1]}, others are {shared_size[0]}x{shared_size[1]}; "
                        "images of different sizes need per-frame intrinsics"
                    )
            try:
                pose = validate_c2w(torch.tensor(frame["transform_matrix"], dtype=torch.float64), "camera pose")
                camera = Camera(pose, intrinsics)  # 3x4 is a pose too: validate_c2w gave it its last row
            except (PoseError, TypeError, ValueError, RuntimeError) as error:
                raise NerfDataError(f"{where}: {error}") from None
            depth = frame.get("depth_file_path")
            depth_path = dataset_path(root, depth, where, "depth_file_path").resolve() if depth else None
            split = split_of.get(str((root / frame["file_path"]).resolve()), blender_split)  # type: ignore[arg-type]
            frames.append(
                DatasetFrame(camera, image_path or (root / frame["file_path"]).resolve(), depth_path, split)  # type: ignore[arg-type]
            )
    shared = _dataset_values(metas)
    aabb = None
    if "aabb" in shared:
        file, given = shared["aabb"]
        try:
            aabb = np.asarray(check_aabb(given), dtype=np.float64)
        except NerfDataError as error:
            raise NerfDataError(f"{file}: {error}") from None
    _, meters_per_unit = shared.get("meters_per_unit", (None, None))
    _, depth_unit_scale_factor = shared.get("depth_unit_scale_factor", (None, 1.0 / DEPTH_PNG_SCALE))
    for key, value in (("meters_per_unit", meters_per_unit), ("depth_unit_scale_factor", depth_unit_scale_factor)):
        if value is not None and not _number(value, str(shared[key][0]) if key in shared else str(path), key) > 0:
            raise NerfDataError(f"{shared[key][0]}: {key} must be positive, got {value}")
    return TransformsDataset(
        path=candidates[0],
        frames=frames,
        aabb=aabb,
        meters_per_unit=meters_per_unit,
        depth_unit_scale_factor=float(depth_unit_scale_factor),
    )


def _dataset_values(metas: dict[Path, dict[str, Any]]) -> dict[str, tuple[Path, Any]]:
    """``{key: (file, value)}`` of the dataset-wide keys, from the files that give them.

    Blender datasets repeat them in each split file (or give them in one); files that disagree are
    an error rather than one silently winning.
    """
    shared: dict[str, tuple[Path, Any]] = {}
    for file, meta in metas.items():
        for key in _DATASET_KEYS:
            if meta.get(key) is None:
                continue
            if key in shared and shared[key][1] != meta[key]:
                first, value = shared[key]
                raise NerfDataError(f"{first} and {file} disagree on {key}: {value} against {meta[key]}")
            shared.setdefault(key, (file, meta[key]))
    return shared


def read_cameras(path: str | Path, split: str = "all") -> list[Camera]:
    """The cameras of a ``transforms.json`` (or its folder): every frame (``"all"``) or one split's.

    Only poses and intrinsics are read: the images need not exist when the file gives their size.
    This is what the pose samplers that start from a file (``perturb``, ``path``, ``file``) are given.

    Raises:
        NerfDataError: as :func:`read_transforms`, or the split is empty.
    """
    dataset = read_transforms(path, require_images=False)
    frames = dataset.frames if split == "all" else dataset.split(split)  # type: ignore[arg-type]
    return [frame.camera for frame in frames]
