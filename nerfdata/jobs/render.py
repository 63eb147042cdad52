"""``nerfdata render``: render views of a trained field and write a labelled dataset.

The flow: load the field (and its occupancy grid) -> sample camera poses -> render each view in
chunks -> write each layer atomically -> ``transforms.json`` -> ``manifest.json`` marked complete.
"""

import shutil
import time
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np
import torch
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

from nerfdata.cameras import Camera, Intrinsics
from nerfdata.config import to_dict
from nerfdata.errors import ConfigError, NerfDataError
from nerfdata.fields.checkpoint import load_field
from nerfdata.fields.occupancy import occupancy_grid_from_density
from nerfdata.poses import OrbitConfig, orbit_poses
from nerfdata.render.renderer import ImageOutputs, RenderOptions, render_image
from nerfdata.writers.images import to_uint8, write_depth_png, write_npy, write_png
from nerfdata.writers.manifest import CONVENTIONS, LAYERS, config_hash, read_manifest, write_manifest
from nerfdata.writers.transforms import FrameRecord, write_transforms

__all__ = ["CameraConfig", "OutputsConfig", "RenderJobConfig", "run_render"]


@dataclass(frozen=True)
class CameraConfig:
    """Intrinsics of every rendered view: square pixels, centred principal point."""

    width: int = 256
    height: int = 256
    fov_deg: float = 50.0
    """Horizontal field of view in degrees."""

    def intrinsics(self) -> Intrinsics:
        return Intrinsics.from_fov(self.width, self.height, self.fov_deg)


@dataclass(frozen=True)
class OutputsConfig:
    """Which layers each view gets."""

    rgb: bool = True
    depth: bool = True
    """Median z-depth as float32 .npy and uint16 millimetre PNG."""
    normals: bool = True
    mask: bool = True
    mask_threshold: float = 0.5
    """A pixel is foreground when its accumulation exceeds this."""

    def __post_init__(self) -> None:
        if not 0.0 < self.mask_threshold < 1.0:
            raise ConfigError(f"outputs.mask_threshold must be in (0, 1), got {self.mask_threshold}")
        if not any((self.rgb, self.depth, self.normals, self.mask)):
            raise ConfigError("outputs: every layer is switched off; nothing to render")


@dataclass(frozen=True)
class RenderJobConfig:
    """A render job: which field, which views, which layers, where."""

    field: Path
    """Checkpoint folder (field.json + field.safetensors), or its .safetensors / .json file."""
    out: Path = Path("renders/demo")
    """Output dataset folder."""
    orbit: OrbitConfig = field(default_factory=OrbitConfig)
    camera: CameraConfig = field(default_factory=CameraConfig)
    outputs: OutputsConfig = field(default_factory=OutputsConfig)
    render: RenderOptions = field(default_factory=RenderOptions)
    occupancy_resolution: int = 128
    """Resolution of the occupancy grid built when the checkpoint carries none."""
    seed: int = 0
    overwrite: bool = False
    """Replace an output folder that holds a different job."""


def _prepare_output(config: RenderJobConfig, job_hash: str) -> None:
    out = config.out
    if out.exists() and not out.is_dir():
        raise NerfDataError(f"{out}: output path exists and is not a folder")
    if out.is_dir() and any(out.iterdir()):
        manifest = read_manifest(out)
        same_job = manifest is not None and manifest.get("config_hash") == job_hash
        if not same_job and not config.overwrite:
            what = "a different nerfdata job" if manifest is not None else "files that are not a nerfdata dataset"
            raise NerfDataError(f"{out}: output folder holds {what}; choose another --out or pass --overwrite")
        if not same_job:
            shutil.rmtree(out)
    out.mkdir(parents=True, exist_ok=True)


def _write_view(out: Path, index: int, camera: Camera, image: ImageOutputs, outputs: OutputsConfig) -> dict[str, str]:
    """Write every requested layer of one view; returns the files written (relative paths)."""
    files: dict[str, str] = {}
    mask = (image.accumulation > outputs.mask_threshold).numpy()
    name = f"{index:05d}"
    if outputs.rgb:
        files["rgb"] = f"images/{name}.png"
        write_png(out / files["rgb"], to_uint8(image.rgb.numpy()))
    if outputs.depth:
        depth = np.where(mask, image.depth_median.numpy(), 0.0).astype(np.float32)
        files["depth"], files["depth_png"] = f"depth/{name}.npy", f"depth/{name}.png"
        write_npy(out / files["depth"], depth)
        write_depth_png(out / files["depth_png"], depth)
    if outputs.normals and image.normal is not None:
        normals = np.where(mask[..., None], image.normal.numpy(), 0.0).astype(np.float32)
        rotation_w2c = camera.w2c_opencv[:3, :3].numpy()
        preview = np.where(mask[..., None], (normals @ rotation_w2c.T + 1.0) / 2.0, 0.0)
        files["normals"], files["normals_png"] = f"normals/{name}.npy", f"normals/{name}.png"
        write_npy(out / files["normals"], normals)
        write_png(out / files["normals_png"], to_uint8(preview))
    if outputs.mask:
        files["mask"] = f"masks/{name}.png"
        write_png(out / files["mask"], mask.astype(np.uint8) * 255)
    return files


def run_render(config: RenderJobConfig, show_progress: bool = True) -> Path:
    """Render the job's views and write the dataset; returns the output folder.

    Raises:
        NerfDataError: bad field, bad config, or an output folder holding another job.
    """
    torch.manual_seed(config.seed)
    resolved = to_dict(config)
    resolved.pop("overwrite")
    job_hash = config_hash(resolved)
    loaded = load_field(config.field)
    field_ = loaded.field
    occupancy = loaded.occupancy or occupancy_grid_from_density(
        field_.density, field_.aabb, resolution=config.occupancy_resolution
    )
    intrinsics = config.camera.intrinsics()
    cameras = [Camera(c2w, intrinsics) for c2w in orbit_poses(config.orbit)]
    options = replace(config.render, normals=config.outputs.normals)
    _prepare_output(config, job_hash)
    manifest = {
        "kind": "render",
        "complete": False,
        "config": resolved,
        "config_hash": job_hash,
        "field": {"path": str(loaded.json_path), "sha256": loaded.sha256, "type": field_.field_type},
        "seed": config.seed,
        "conventions": CONVENTIONS,
        "layers": {},
        "views": [],
    }
    write_manifest(config.out, manifest)
    frames: list[FrameRecord] = []
    columns = (TextColumn("rendering"), BarColumn(), MofNCompleteColumn(), TextColumn("{task.fields[rate]}"), TimeRemainingColumn())
    start = time.perf_counter()
    with Progress(*columns, disable=not show_progress) as progress:
        task = progress.add_task("render", total=len(cameras), rate="")
        for index, camera in enumerate(cameras):
            image = render_image(field_, camera, options, occupancy)
            files = _write_view(config.out, index, camera, image, config.outputs)
            manifest["views"].append({"index": index, "status": "complete", "files": files})
            frames.append(
                FrameRecord(camera, files.get("rgb", ""), files.get("depth_png"), files.get("mask"))
            )
            rays_per_second = (index + 1) * intrinsics.num_pixels / (time.perf_counter() - start)
            progress.update(task, advance=1, rate=f"{rays_per_second / 1e3:.0f}k rays/s")
    written = {layer for view in manifest["views"] for layer in view["files"]}
    manifest["layers"] = {name: spec for name, spec in LAYERS.items() if name in written}
    write_transforms(config.out / "transforms.json", frames)
    manifest["complete"] = True
    write_manifest(config.out, manifest)
    return config.out
