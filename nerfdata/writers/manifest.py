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
from nerfdata.writers.conventions import conventions

__all__ = ["CONVENTIONS", "config_hash", "prepare_output_folder", "read_manifest", "write_manifest"]

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
