"""``nerfdata render``: render views of a trained field and write a labelled dataset.

The flow: load the field (and its occupancy grid) -> sample the views -> for each view, render it
in chunks, derive its labels (:mod:`nerfdata.labels.view_labels`) and write every requested layer
atomically (:mod:`nerfdata.writers.layers`), recording each file's checksum in ``manifest.json`` ->
``transforms.json`` and ``preview.png`` -> the manifest marked complete.

With ``formats: [bop]`` the views are also written as a BOP scene (``bop.split``, ``train_pbr`` by
default) with each object's model, masks and poses (:mod:`nerfdata.jobs.bop`); the nerfstudio
files are the same as without it.

Rerunning the same job into the same folder resumes it: views whose files are all present with
their recorded checksums are kept, the others rendered. Rendering is deterministic, so a resumed
dataset is byte-identical to an uninterrupted one. "The same job" is decided by content
(:func:`render_job_hash`: the field's checksums and every view's pose and intrinsics, not the paths
they came from); the folder is locked while the job runs, and ``overwrite`` removes only the files a
different job's manifest lists (:mod:`nerfdata.writers.output_folder`).

The views are rendered in shards (``executor.shard_size`` views, see :mod:`nerfdata.executors`), in
this process or on Ray workers, by :func:`render_views`; a view's files depend only on the config,
the seed and its index. The driver alone writes the manifest (recording per view its shard and
attempt, and the executor), ``transforms.json`` and the preview. With ``fields: [{name, path}, ...]``
the job renders each field into ``OUT/NAME`` (:mod:`nerfdata.jobs.multi_field`).
"""

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from dataclasses import field as dataclass_field
from pathlib import Path
from typing import Any, Literal

import torch

from nerfdata.atomic import sha256_file
from nerfdata.cameras import Camera, Intrinsics
from nerfdata.config import to_dict
from nerfdata.device import DeviceName, resolve_device
from nerfdata.errors import ConfigError, NerfDataError
from nerfdata.executors import (
    Executor,
    ExecutorConfig,
    field_work,
    make_executor,
    raise_failures,
    retry_reporter,
    split_shards,
)
from nerfdata.executors.shards import ShardResult
from nerfdata.fields.base import Field, LoadedField
from nerfdata.fields.loading import load_field
from nerfdata.fields.occupancy import OccupancyGrid
from nerfdata.jobs.bop import BopConfig, BopExport, bop_export_files, meters_per_unit_of
from nerfdata.jobs.coverage import CoverageConfig, image_coverage_problem, probe_coverage_problem
from nerfdata.labels.depth_modes import render_depth_modes
from nerfdata.labels.mesh import MeshConfig, extract_mesh
from nerfdata.labels.normals import FIELD_PASS_MODES, render_field_normals
from nerfdata.labels.objects import ObjectConfig, check_objects
from nerfdata.labels.view_labels import LabelsConfig, OutputName, label_arrays, label_sources, view_labels
from nerfdata.memory import check_view_memory
from nerfdata.poses import OrbitConfig, SamplerConfig, View, sample_views
from nerfdata.progress import Reporter
from nerfdata.render.renderer import RenderOptions, render_image
from nerfdata.scenes.groundtruth import MeshRaycaster
from nerfdata.writers.conventions import BOP_CONVENTIONS
from nerfdata.writers.images import to_uint8
from nerfdata.writers.layers import layer_specs, write_view_layers
from nerfdata.writers.manifest import CONVENTIONS, cameras_sha256, config_hash, field_identity, write_manifest
from nerfdata.writers.mesh import write_mesh
from nerfdata.writers.output_folder import claim_output_folder
from nerfdata.writers.preview import depth_unit, preview_rows, write_contact_sheet
from nerfdata.writers.transforms import FrameRecord, read_cameras, write_transforms

__all__ = [
    "CameraConfig",
    "CoverageConfig",
    "NamedField",
    "RenderJobConfig",
    "ViewWork",
    "render_job_hash",
    "render_views",
    "run_render",
]

_EXTRACTED_MESH = "mesh.ply"
"""Where a job with ``labels.geometry: mesh`` and no ``labels.mesh`` writes the mesh it extracts."""

_BOP_KEYS = ("formats", "objects", "bop")
"""Config keys that only matter with ``formats: [bop]``: left out of the manifest without it, so a job
without BOP output has the manifest (and hash) it had before these keys existed."""


@dataclass(frozen=True)
class CameraConfig:
    """Intrinsics of the rendered views: square pixels, centred principal point."""

    width: int = 256
    height: int = 256
    fov_deg: float = 45.0
    """Horizontal field of view in degrees."""
    fov_range_deg: tuple[float, float] | None = None
    """If set, each view draws its horizontal field of view uniformly from this range (seeded)."""
    keep_source: bool = True
    """Views taken from a transforms.json (file, perturb) keep that file's intrinsics and size."""

    def __post_init__(self) -> None:
        if self.width < 1 or self.height < 1:
            raise ConfigError(f"camera: image width and height must be positive, got {self.width}x{self.height}")
        for fov in (self.fov_deg, *(self.fov_range_deg or ())):
            if not 0.0 < fov < 180.0:
                raise ConfigError(f"camera: fields of view must be in (0, 180) degrees, got {fov}")


@dataclass(frozen=True)
class NamedField:
    """One field of a many-field job: rendered into ``OUT/NAME``."""

    name: str
    """The dataset's folder under the job's output (a plain folder name)."""
    path: Path
    """Its checkpoint (as ``field``)."""

    def __post_init__(self) -> None:
        plain = self.name not in ("", ".", "..") and not any(c in self.name for c in "/\\")
        if not plain or self.name != self.name.strip():
            raise ConfigError(f"fields: a name must be a plain folder name, got {self.name!r}")


@dataclass(frozen=True)
class RenderJobConfig:
    """A render job: which field, which views, which layers, where."""

    field: Path | None = dataclass_field(default=None, metadata={"required_unless": "fields"})  # see nerfdata.flags
    """Checkpoint folder (field.json + field.safetensors), or its .safetensors / .json file."""
    out: Path = Path("renders/demo")
    """Output dataset folder."""
    views: tuple[SamplerConfig, ...] = (SamplerConfig(orbit=OrbitConfig()),)
    """Pose samplers; their views are concatenated in order (see nerfdata.poses)."""
    camera: CameraConfig = dataclass_field(default_factory=CameraConfig)
    outputs: tuple[OutputName, ...] = ("rgb", "depth", "normals", "mask", "confidence")
    """Layers written per view."""
    labels: LabelsConfig = dataclass_field(default_factory=LabelsConfig)
    coverage: CoverageConfig = dataclass_field(default_factory=CoverageConfig)
    render: RenderOptions = dataclass_field(default_factory=RenderOptions)
    preview_views: int = 4
    """Views shown in preview.png (0: no preview)."""
    occupancy_resolution: int = 128
    """Resolution of the occupancy grid built when the checkpoint carries none."""
    seed: int = 0
    overwrite: bool = False
    """Replace an output folder that holds a different job."""
    max_memory_gb: float = 8.0
    """Refuse views whose estimated memory (see nerfdata.memory) exceeds this, before anything is rendered."""
    formats: tuple[Literal["bop"], ...] = ()
    """Formats written beside the nerfstudio layout (always written): bop, a BOP scene (see bop)."""
    objects: tuple[ObjectConfig, ...] = ()
    """With formats [bop]: the field's objects as oriented boxes {id, name, center, size, rotation_deg}
    (world frame, scene units); empty: the whole field is object 1."""
    bop: BopConfig = dataclass_field(default_factory=BopConfig)
    """With formats [bop]: split and scene folder, metres per unit, the mesh the models are cut from."""
    fields: tuple[NamedField, ...] = ()
    """Instead of field: several fields [{name, path}], each rendered with these views into OUT/NAME."""
    executor: ExecutorConfig = dataclass_field(default_factory=ExecutorConfig)
    """Where the views are rendered: local (this process) or ray (--executor ray, --ray-address ADDR)."""
    device: DeviceName = "auto"
    """Where the field, rays and images live: auto (CUDA when present), cpu or cuda (see nerfdata.device)."""

    def __post_init__(self) -> None:
        if self.field is None and not self.fields:
            raise ConfigError("missing --field PATH (the checkpoint), or fields: [{name, path}, ...] for several")
        if self.field is not None and self.fields:
            raise ConfigError("field and fields: give one checkpoint or a list of fields, not both")
        names = [f.name for f in self.fields]
        if len(set(names)) != len(names):
            raise ConfigError(f"fields: a name is listed twice: {names}")
        check_objects(self.objects)
        if (self.objects or self.bop != BopConfig()) and "bop" not in self.formats:
            raise ConfigError("objects and bop are only used with formats: [bop]")
        if not self.outputs:
            raise ConfigError(
                "outputs: no layer requested; choose from rgb, depth, range, normals, mask, confidence, depth_modes"
            )
        if len(set(self.outputs)) != len(self.outputs):
            raise ConfigError(f"outputs: a layer is listed twice: {list(self.outputs)}")
        if not self.views:
            raise ConfigError("views: no pose sampler; add one (e.g. orbit) or pass --poses transforms.json")
        if not self.max_memory_gb > 0:
            raise ConfigError(f"max_memory_gb must be positive, got {self.max_memory_gb}")


def _intrinsics(view: View, config: CameraConfig, generator: torch.Generator) -> Intrinsics:
    if view.source_intrinsics is not None and config.keep_source:
        return view.source_intrinsics
    fov = config.fov_deg
    if config.fov_range_deg is not None:
        low, high = config.fov_range_deg
        fov = low + (high - low) * float(torch.rand(1, generator=generator, dtype=torch.float64))
    return Intrinsics.from_fov(config.width, config.height, fov)


def _complete_view(out: Path, record: dict[str, Any]) -> bool:
    """Whether a view recorded in a manifest is on disk, file for file, with its checksums."""
    if record.get("status") == "rejected":
        return True
    files = record.get("files", {})
    return record.get("status") == "complete" and all(
        (out / f["path"]).is_file() and sha256_file(out / f["path"]) == f["sha256"] for f in files.values()
    )


def run_render(config: RenderJobConfig, show_progress: bool = True) -> Path:
    """Render the job's views and write (or finish) the dataset; returns the output folder.

    Everything is read and checked before the output folder is touched; the folder is then locked
    for the whole job (:func:`~nerfdata.writers.output_folder.claim_output_folder`).

    Raises:
        NerfDataError: bad field, bad config or poses, an output folder holding another job (or a
            user's files), or another job writing it.
    """
    if config.fields:
        from nerfdata.jobs.multi_field import run_fields  # the many-field driver runs this one per field

        return run_fields(config, show_progress)
    assert config.field is not None
    resolved = to_dict(config)
    # Where and how the job runs, and how much memory it may take, are not what it writes: out of the
    # manifest's config and its hash.
    for key in ("overwrite", "max_memory_gb", "fields", "executor", "device"):
        resolved.pop(key)
    if "bop" not in config.formats:
        for key in _BOP_KEYS:
            resolved.pop(key)
    loaded = load_field(config.field, resolve_device(config.device))
    views = sample_views(config.views, config.seed, read_cameras)
    if not views:
        raise NerfDataError("views: the samplers produced no view")
    executor = make_executor(config.executor, len(split_shards(range(len(views)), config.executor.shard_size)))
    generator = torch.Generator().manual_seed(config.seed)
    cameras = {i: Camera(v.c2w_opengl, _intrinsics(v, config.camera, generator)) for i, v in enumerate(views)}
    check_view_memory([c.intrinsics for c in cameras.values()], config.max_memory_gb)
    job_hash = render_job_hash(resolved, loaded, cameras.values())
    with claim_output_folder(config.out, job_hash, config.overwrite) as previous:
        return _render_into(
            config, resolved, job_hash, loaded, views, cameras, previous or {}, executor, show_progress
        )


def render_job_hash(resolved: dict[str, Any], loaded: LoadedField, cameras: Iterable[Camera]) -> str:
    """What makes two render runs the same job: the config, the field's content and the resolved views.

    Where things are is not what they are: the output folder, the field's path and the samplers'
    files (``--poses``) are left out, and the field's checksums and the views themselves (every
    camera's pose and intrinsics) go in. A moved folder or checkpoint still resumes; a retrained
    field or an edited poses file is a different job.
    """
    what = {k: v for k, v in resolved.items() if k not in ("out", "field", "views")}
    what["field"] = field_identity(loaded.sha256, loaded.json_path)
    what["views"] = cameras_sha256(cameras)
    return config_hash(what)


def _job_files(config: RenderJobConfig, loaded: LoadedField) -> list[str]:
    """The job's own files beside its views', listed in the manifest before they are written."""
    files = ["transforms.json"]
    if config.preview_views > 0:
        files.append("preview.png")
    if config.labels.geometry == "mesh" and config.labels.mesh is None:
        files.append(_EXTRACTED_MESH)
    if "bop" in config.formats:
        files += bop_export_files(config.bop.scene, config.objects, loaded.field, models=True)
    return sorted(files)


def _render_into(
    config: RenderJobConfig,
    resolved: dict[str, Any],
    job_hash: str,
    loaded: LoadedField,
    views: list[View],
    cameras: dict[int, Camera],
    previous: dict[str, Any],
    executor: Executor,
    show_progress: bool,
) -> Path:
    """The job proper, in its locked output folder (``previous``: the manifest of a run to resume),
    its views rendered by ``executor``."""
    field_ = loaded.field
    occupancy = loaded.occupancy_grid(config.occupancy_resolution)
    kept = {v["index"]: v for v in previous.get("views", []) if _complete_view(config.out, v)}
    mesh = config.labels.mesh
    mesh_name = str(mesh) if mesh is not None else f"{_EXTRACTED_MESH} (extracted from the field)"
    volume = config.labels.geometry != "mesh"
    gradient_normals = "normals" in config.outputs and config.labels.normals == "gradient" and volume
    options = replace(config.render, normals=gradient_normals)
    field_pass = "normals" in config.outputs and config.labels.normals in FIELD_PASS_MODES and volume
    shards = split_shards((i for i in range(len(views)) if i not in kept), config.executor.shard_size)
    manifest: dict[str, Any] = {
        "kind": "render",
        "complete": False,
        "config": resolved,
        "config_hash": job_hash,
        "executor": executor.describe(),
        "device": str(loaded.field.aabb.device),
        "field": {
            "path": str(loaded.json_path), "sha256": loaded.sha256, "type": field_.field_type,
            # A nerfstudio field's normalisation, undone so that every layer is in the data's frame.
            **{k: v for k, v in loaded.metadata.items() if k == "dataparser_transform"},
        },
        "seed": config.seed,
        "conventions": CONVENTIONS | BOP_CONVENTIONS if "bop" in config.formats else CONVENTIONS,
        "layers": layer_specs(
            label_arrays(config.outputs), config.labels.rgb_format, label_sources(config.labels, mesh_name)
        ),
        "views": [kept[i] for i in sorted(kept)],
        "files": _job_files(config, loaded),
    }
    write_manifest(config.out, manifest)  # lists the job's files before any is written
    caster, mesh_record = _mesh_caster(config, field_, occupancy) if config.labels.geometry == "mesh" else (None, None)
    bop = _bop_export(config, loaded, occupancy) if "bop" in config.formats else None
    if mesh_record is not None:
        manifest["mesh"] = mesh_record
    if bop is not None:
        manifest["bop"] = bop.describe()
    write_manifest(config.out, manifest)
    earlier = "kept from an earlier run (checksums match)"
    outcomes = ("rendered", earlier, "rejected")
    progress = Reporter("render", len(views), "views", enabled=show_progress, outcomes=outcomes,
                        done={earlier: len(kept)} if kept else None, work_unit="rays")
    # The work travels to Ray workers, which may have no GPU: its grid goes on the CPU, and each runner
    # puts it on its own field's device.
    cpu_occupancy = occupancy.to("cpu")
    work = ViewWork(config, tuple(v.label for v in views), cameras, cpu_occupancy, caster, bop, options, field_pass)

    def take_in(result: ShardResult) -> None:
        records = [{**r, "shard": result.shard.number, "attempt": result.attempt} for r in result.items]
        manifest["views"] = sorted([*manifest["views"], *records], key=lambda v: v["index"])
        write_manifest(config.out, manifest)
        for record in records:
            if record["status"] == "complete":
                progress.advance("rendered", work=cameras[record["index"]].intrinsics.num_pixels)
            else:
                inside = record["reason"] == "camera inside geometry"
                little = f"seeing under {config.coverage.min_fraction:.0%} foreground"
                progress.advance("rejected", reason="inside geometry" if inside else little)

    with progress:
        runner = field_work(render_views, work, loaded, config.field, config.device)
        failures = executor.run(runner, shards, take_in, retry_reporter(progress, "views"))
    if failures:
        progress.summary([f"failed: {f.describe('views')}" for f in failures])
        raise_failures(failures, "views")
    complete = [v for v in manifest["views"] if v["status"] == "complete"]
    frames = [
        FrameRecord(
            cameras[v["index"]], v["files"].get("rgb", {}).get("path", ""), v["files"].get("depth_png", {}).get("path")
        )
        for v in complete
    ]
    meters = {"meters_per_unit": loaded.metadata.get("meters_per_unit")}
    write_transforms(config.out / "transforms.json", frames, meters)
    if config.preview_views > 0 and complete:
        rotations = {i: c.w2c_opencv[:3, :3].numpy() for i, c in cameras.items()}
        rows = preview_rows(config.out, complete, rotations, config.preview_views)
        if rows:
            units = depth_unit(loaded.metadata.get("meters_per_unit"))
            write_contact_sheet(config.out / "preview.png", rows, units)
    if bop is not None:
        bop.write_scene({v["index"]: v["bop"] for v in complete})
    manifest["complete"] = True
    write_manifest(config.out, manifest)
    progress.summary()
    return config.out


@dataclass(frozen=True)
class ViewWork:
    """What rendering a view takes beside the field; picklable (each Ray worker gets it once)."""

    config: RenderJobConfig
    labels: tuple[str, ...]
    """Each view's label, by index."""
    cameras: dict[int, Camera]
    """Each view's camera, by index (intrinsics drawn on the driver, in view order)."""
    occupancy: OccupancyGrid
    caster: MeshRaycaster | None
    """The mesh labels are cast on (labels.geometry: mesh), else None."""
    bop: BopExport | None
    """The BOP export (formats: [bop]; its models written by the driver), else None."""
    options: RenderOptions
    field_pass: bool
    """Whether the normals mode queries the field again at each view's samples (FIELD_PASS_MODES)."""


def render_views(work: ViewWork, loaded: LoadedField, indices: Sequence[int]) -> list[dict[str, Any]]:
    """Render views ``indices``, writing every file of each (atomically); returns their manifest records.

    A view's files depend on the job's config, seed and its index only, never on which views are
    rendered with it or where.
    """
    config, field_, caster, bop = work.config, loaded.field, work.caster, work.bop
    occupancy = work.occupancy.to(field_.aabb.device)
    records = []
    for index in indices:
        camera = work.cameras[index]
        record: dict[str, Any] = {"index": index, "label": work.labels[index]}
        coverage, threshold = config.coverage, config.labels.mask_threshold
        problem, image = None, None
        if coverage.min_fraction > 0:  # views may well be rejected: judge the lattice before the full render
            problem = probe_coverage_problem(field_, camera, config.render, occupancy, coverage, threshold)
        if problem is None:
            image = render_image(field_, camera, work.options, occupancy)
            if coverage.reject_inside and coverage.min_fraction == 0:  # the same lattice, read from the render
                problem = image_coverage_problem(image, field_.extent, coverage, threshold)
        if problem is not None:
            record.update(status="rejected", reason=problem)
        else:
            assert image is not None
            hits = caster.cast_rays(camera.rays()) if caster is not None else None
            normals = None
            if work.field_pass:  # normals that query the field again, at this view's samples
                normals = render_field_normals(field_, camera, config.labels.normals, config.render, occupancy)
                normals = normals.cpu().numpy()
            layers = view_labels(camera, image, config.labels, config.outputs, hits, normals)
            if "depth_modes" in config.outputs:  # one more pass, keeping every ray's samples
                layers["depth_modes"] = render_depth_modes(field_, camera, config.render, occupancy).cpu().numpy()
            rotation, rgb_format = camera.w2c_opencv[:3, :3].numpy(), config.labels.rgb_format
            files = write_view_layers(config.out, index, rotation, rgb_format=rgb_format, **layers)
            if bop is not None:  # the depth label and its range, whether or not they are outputs
                surface = view_labels(camera, image, config.labels, ("depth", "range"), hits)
                rgb = to_uint8(image.rgb.cpu().numpy())
                depth, ranges = surface["depth"], surface["range"]
                bop_files, record["bop"] = bop.write_view(index, camera, rgb, depth, ranges)
                files |= bop_files
            checksums = {k: {"path": p, "sha256": sha256_file(config.out / p)} for k, p in files.items()}
            record.update(status="complete", files=checksums)
        records.append(record)
    return records


def _bop_export(config: RenderJobConfig, loaded: LoadedField, occupancy: OccupancyGrid) -> BopExport:
    """The job's BOP export, its models written (deterministic: a resumed job writes the same models)."""
    meters_per_unit, _ = meters_per_unit_of(loaded, config.bop.meters_per_unit)
    return BopExport.create(
        config.out, config.bop.scene, loaded.field, occupancy, config.objects, config.bop.mesh,
        meters_per_unit, config.bop.eval_faces,
    )


def _mesh_caster(
    config: RenderJobConfig, field_: Field, occupancy: OccupancyGrid
) -> tuple[MeshRaycaster, dict[str, Any]]:
    """The ray caster for mesh-based labels, and the manifest's record of its mesh.

    The mesh is ``labels.mesh``, or extracted from the field with :class:`MeshConfig` defaults and
    written into the dataset (extraction is deterministic, so a resumed job writes the same file).
    """
    import trimesh  # only mesh-based labels need it (0.6 s to import)

    if config.labels.mesh is not None:
        path = config.labels.mesh
        try:
            mesh = trimesh.load(path, force="mesh", process=False)
        except (OSError, ValueError) as error:
            raise NerfDataError(f"labels.mesh: cannot read {path} ({error})") from None
        if not isinstance(mesh, trimesh.Trimesh) or len(mesh.faces) == 0:
            raise NerfDataError(f"labels.mesh: {path} holds no triangles")
        record: dict[str, Any] = {"path": str(path), "source": "given"}
    else:
        extracted = extract_mesh(field_, MeshConfig(), occupancy)
        mesh, path = extracted.mesh, write_mesh(extracted.mesh, config.out / _EXTRACTED_MESH)
        record = {"path": _EXTRACTED_MESH, "source": "extracted", "threshold": extracted.threshold,
                  "config": to_dict(MeshConfig())}
    record["sha256"] = sha256_file(path)
    return MeshRaycaster.from_meshes([mesh], smooth_normals=True), record
