"""Many fields in one render job: ``fields: [{name, path}, ...]``, each rendered into ``OUT/NAME``.

Every field gets the job's views, layers and executor, and its folder is a complete dataset of its
own: the files a job of that field alone into ``OUT/NAME`` writes, manifest included.
``OUT/manifest.json`` lists the datasets and is marked complete after the last. The fields are
rendered one after another, each one's shards spread over the executor's workers (Ray keeps its
workers from field to field; each loads the next field once). Rerunning the job resumes every
field's dataset.
"""

from dataclasses import replace
from pathlib import Path
from typing import Any

from nerfdata.config import to_dict
from nerfdata.jobs.render import RenderJobConfig, run_render
from nerfdata.writers.manifest import config_hash, prepare_output_folder, read_manifest, write_manifest

__all__ = ["field_job", "run_fields"]


def field_job(config: RenderJobConfig, name: str) -> RenderJobConfig:
    """The single-field job of ``config``'s field ``name``, into ``OUT/NAME``.

    Raises:
        KeyError: no field of that name.
    """
    entry = next((f for f in config.fields if f.name == name), None)
    if entry is None:
        raise KeyError(name)
    return replace(config, field=entry.path, fields=(), out=config.out / entry.name, overwrite=False)


def run_fields(config: RenderJobConfig, show_progress: bool = True) -> Path:
    """Render every field of ``config.fields`` into ``OUT/NAME``; write ``OUT/manifest.json``; return ``OUT``.

    Raises:
        NerfDataError: as :func:`~nerfdata.jobs.render.run_render`, for the first field that fails
            (the datasets before it are complete, and listed).
    """
    resolved = to_dict(config)
    for key in ("field", "overwrite", "executor"):
        resolved.pop(key)
    job_hash = config_hash({k: v for k, v in resolved.items() if k != "out"})
    prepare_output_folder(config.out, job_hash, config.overwrite)
    manifest: dict[str, Any] = {
        "kind": "fields",
        "complete": False,
        "config": resolved,
        "config_hash": job_hash,
        "executor": {"kind": config.executor.kind},
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
