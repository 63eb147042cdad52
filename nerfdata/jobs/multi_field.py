"""Many fields in one render job: ``fields: [{name, path}, ...]``, each rendered into ``OUT/NAME``.

Every field gets the job's views, layers and executor, and its folder is a complete dataset of its
own: the files a job of that field alone into ``OUT/NAME`` writes, manifest included.
``OUT/manifest.json`` lists the datasets and is marked complete after the last. The fields are
rendered one after another, each one's shards spread over the executor's workers (Ray keeps its
workers from field to field; each loads the next field once). Rerunning the job resumes every
field's dataset.

``OUT`` is locked while the job runs, and holds nothing but its manifest and the datasets: any other
file (or an output of another job) is refused. Each dataset folder is claimed by its own render job
(:func:`~nerfdata.writers.output_folder.claim_output_folder`), so ``overwrite`` replaces, there,
only the files a different job's manifest lists; with ``overwrite``, the datasets of an earlier
many-field job that this one does not name are removed the same way.
"""

from dataclasses import replace
from pathlib import Path
from typing import Any

from nerfdata.config import to_dict
from nerfdata.device import resolve_device
from nerfdata.errors import NerfDataError
from nerfdata.jobs.render import RenderJobConfig, run_render
from nerfdata.writers.manifest import MANIFEST_NAME, config_hash, read_manifest, write_manifest
from nerfdata.writers.output_folder import (
    foreign_files,
    output_folder_lock,
    owned_files,
    remove_owned_files,
    remove_temp_files,
)

__all__ = ["KIND", "field_job", "run_fields"]

KIND = "fields"
"""The ``kind`` of a many-field job's top-level manifest."""


def field_job(config: RenderJobConfig, name: str) -> RenderJobConfig:
    """The single-field job of ``config``'s field ``name``, into ``OUT/NAME``.

    Raises:
        KeyError: no field of that name.
    """
    entry = next((f for f in config.fields if f.name == name), None)
    if entry is None:
        raise KeyError(name)
    return replace(config, field=entry.path, fields=(), out=config.out / entry.name)


def run_fields(config: RenderJobConfig, show_progress: bool = True) -> Path:
    """Render every field of ``config.fields`` into ``OUT/NAME``; write ``OUT/manifest.json``; return ``OUT``.

    Raises:
        NerfDataError: as :func:`~nerfdata.jobs.render.run_render`, for the first field that fails
            (the datasets before it are complete, and listed); ``OUT`` holding anything but this
            job's manifest and datasets (another many-field job's, without ``overwrite``).
    """
    resolved = to_dict(config)
    for key in ("field", "overwrite", "executor", "device"):
        resolved.pop(key)
    job_hash = config_hash({k: v for k, v in resolved.items() if k != "out"})
    with output_folder_lock(config.out):
        _claim(config, job_hash)
        manifest: dict[str, Any] = {
            "kind": KIND,
            "complete": False,
            "config": resolved,
            "config_hash": job_hash,
            "executor": {"kind": config.executor.kind},
            "device": str(resolve_device(config.device)),
            "datasets": [],
        }
        write_manifest(config.out, manifest)
        for entry in config.fields:
            out = run_render(field_job(config, entry.name), show_progress)
            dataset = read_manifest(out) or {}
            views = dataset.get("views", [])
            manifest["datasets"].append({
                "name": entry.name,
                "path": entry.name,
                "field": dataset.get("field", {}),
                "views": sum(v.get("status") == "complete" for v in views),
                "rejected": sum(v.get("status") == "rejected" for v in views),
                "complete": bool(dataset.get("complete")),
            })
            write_manifest(config.out, manifest)
        manifest["complete"] = True
        write_manifest(config.out, manifest)
    return config.out


def _claim(config: RenderJobConfig, job_hash: str) -> None:
    """Make the locked ``OUT`` ready: this job's (to resume), empty, or, with ``overwrite``, an earlier
    many-field job's, whose datasets this job does not name are removed (their listed files only)."""
    out = config.out
    remove_temp_files(out)
    earlier = read_manifest(out)
    if earlier is not None and earlier.get("kind") != KIND:
        raise NerfDataError(f"{out}: output folder holds another nerfdata output ({earlier.get('kind')}); "
                            "choose another --out")
    if earlier is not None and earlier.get("config_hash") != job_hash:
        if not config.overwrite:
            raise NerfDataError(f"{out}: output folder holds a different many-field job; choose another --out, "
                                "or pass --overwrite to replace the files nerfdata wrote there")
        names = {f.name for f in config.fields}
        for dataset in earlier.get("datasets") or []:
            name = dataset.get("path") if isinstance(dataset, dict) else None
            folder = out / name if isinstance(name, str) and "/" not in name and name not in ("", ".", "..") else None
            if folder is not None and name not in names and folder.is_dir():
                with output_folder_lock(folder):
                    remove_owned_files(folder, owned_files(read_manifest(folder)))
    ours = {MANIFEST_NAME, *(f"{f.name}/{MANIFEST_NAME}" for f in config.fields)}
    foreign = foreign_files(out, ours)
    if foreign:
        raise NerfDataError(f"{out}: output folder holds files this job did not write ({foreign[0]}); "
                            "nerfdata never removes them: choose another --out")
