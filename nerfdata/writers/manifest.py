"""``manifest.json``: what a dataset is, how it was made, and whether it is complete.

A dataset folder is complete only when its manifest says ``"complete": true``. The manifest is
written first (``complete: false``) and rewritten last, so an interrupted job never leaves a
folder that looks finished.
"""

import hashlib
import json
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import numpy as np

from nerfdata.atomic import sha256_file, write_json_atomic
from nerfdata.cameras import Camera
from nerfdata.errors import NerfDataError
from nerfdata.strict_json import read_json
from nerfdata.version import __version__
from nerfdata.writers.conventions import conventions

__all__ = [
    "CONVENTIONS",
    "MANIFEST_NAME",
    "cameras_sha256",
    "check_recorded_field",
    "config_hash",
    "field_identity",
    "read_manifest",
    "sha256_json_file",
    "write_manifest",
]

MANIFEST_NAME = "manifest.json"

CONVENTIONS = conventions(
    "world_frame", "transforms_json_pose", "intrinsics", "depth", "range", "normals", "image_pixels", "json_numbers"
)
"""What a dataset's manifest states (see :mod:`nerfdata.writers.conventions`)."""


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
    manifest = read_json(path, what="manifest")  # size cap, NaN and nesting refused, like every JSON input
    if not isinstance(manifest, dict):
        raise NerfDataError(f"{path}: manifest is not a JSON object")
    return manifest


def field_identity(sha256: str, description: str | Path) -> str:
    """What a job's hash knows of its field: the tensors' checksum and the bytes of the file describing them.

    The description (a checkpoint's ``field.json``, a nerfstudio ``config.yml``) says how the tensors
    are read (hyper-parameters, box, density bias): a field edited there renders differently with the
    same tensors. Its path is not part of it: a moved checkpoint is the same field.
    """
    digest = hashlib.sha256(sha256.encode())
    digest.update(Path(description).read_bytes())
    return digest.hexdigest()


def cameras_sha256(cameras: Iterable[Camera]) -> str:
    """Checksum of resolved views: each camera's camera-to-world and intrinsics as float64 bytes, in order.

    Example:
        >>> import torch
        >>> from nerfdata.cameras import Intrinsics
        >>> a = Camera(torch.eye(4), Intrinsics.from_fov(8, 6, 50.0))
        >>> b = Camera(torch.eye(4), Intrinsics.from_fov(8, 6, 60.0))
        >>> cameras_sha256([a, b]) == cameras_sha256([b, a])
        False
    """
    digest = hashlib.sha256()
    for camera in cameras:
        k = camera.intrinsics
        digest.update(camera.c2w_opengl.double().contiguous().numpy().tobytes())
        digest.update(np.array([k.fl_x, k.fl_y, k.cx, k.cy, k.width, k.height], dtype=np.float64).tobytes())
    return digest.hexdigest()


def sha256_json_file(path: str | Path) -> str:
    """Checksum of an index file a job reads (a dataset's manifest, a targets.json).

    Raises:
        NerfDataError: it cannot be read.
    """
    try:
        return sha256_file(path)
    except OSError as error:
        raise NerfDataError(f"{path}: cannot read ({error.strerror or error})") from None


def check_recorded_field(recorded: Any, sha256: str, field_path: str | Path, where: str | Path) -> None:
    """Refuse a field other than the one an output was made from (the checksum its file records).

    Args:
        recorded: The output's ``"field"`` record (``{"path", "sha256", ...}``), or None when it records none.
        sha256: The checksum of the field given (:attr:`~nerfdata.fields.base.LoadedField.sha256`).
        field_path: The field given, for the message.
        where: The output's file, for the message.

    Raises:
        NerfDataError: the output records a different checksum.
    """
    stored = recorded.get("sha256") if isinstance(recorded, dict) else None
    if stored is not None and stored != sha256:
        raise NerfDataError(
            f"{where}: made from a different field than {field_path} (field sha256 {str(stored)[:12]}..., "
            f"given {sha256[:12]}...); pass the field it records"
        )
