"""``nerfdata inerf targets`` and ``nerfdata inerf solve``: pose-inversion benchmarks on a field.

``targets`` renders target views (poses from the render samplers) with exact ground-truth poses
and, per target, a start pose perturbed by a protocol preset (:mod:`nerfdata.labels.pose_perturbation`).
It writes, under OUT::

    inerf/targets.json          ground truth, start poses, the drawn perturbations (complete marker: written last)
    test/000001/...             the same targets as a BOP scene (:mod:`nerfdata.jobs.bop`): rgb/, depth/,
                                mask/, mask_visib/, scene_camera.json, scene_gt.json, scene_gt_info.json
    models/obj_000001.ply       each object's model in millimetres (the whole field without named objects),
                                models_info.json; models_eval/ the same, decimated

``solve`` runs the iNeRF solver (:mod:`nerfdata.labels.inerf`) on each target and writes
``results.json`` with estimated poses, errors (nerfdata's and BOP's), iterations and time, and the
success rate, and beside it the estimates as a BOP19 results CSV (:mod:`nerfdata.writers.bop.results`).

Both run their targets in shards (:func:`render_targets`, :func:`solve_targets`), in this process or
on Ray workers (``executor``); a target's files and results depend only on the config, the seed and
its index. The driver alone writes ``targets.json``, the BOP scene's JSON files, the manifest and
``results.json``.
"""

import contextlib
import math
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass, replace
from dataclasses import field as dataclass_field
from functools import partial
from pathlib import Path
from typing import Any

import imageio.v3 as iio
import numpy as np
import torch

from nerfdata.atomic import write_json_atomic
from nerfdata.cameras import Camera, Intrinsics, validate_c2w
from nerfdata.config import to_dict
from nerfdata.device import DeviceName, resolve_device
from nerfdata.errors import ConfigError, NerfDataError, PoseError
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
from nerfdata.fields.base import LoadedField
from nerfdata.fields.loading import load_field
from nerfdata.fields.occupancy import OccupancyGrid
from nerfdata.jobs.bop import BopExport, bop_export_files, meters_per_unit_of, object_estimates
from nerfdata.labels.inerf import SolverConfig, pivot_depth, solve_pose
from nerfdata.labels.mesh import MeshConfig
from nerfdata.labels.objects import ObjectConfig, check_objects
from nerfdata.labels.pose_perturbation import (
    PerturbationConfig,
    PresetName,
    apply_perturbation,
    draw_perturbations,
    look_at_point,
    orbit,
    pose_errors,
)
from nerfdata.memory import check_view_memory
from nerfdata.poses import SamplerConfig, ShellConfig, View, derived_seed, sample_views
from nerfdata.progress import Reporter, Steps
from nerfdata.render.renderer import RenderOptions, render_image
from nerfdata.strict_json import read_json
from nerfdata.version import __version__
from nerfdata.writers.bop import bop_results_name, read_scene_gt, write_bop_results
from nerfdata.writers.conventions import BOP_CONVENTIONS, conventions
from nerfdata.writers.images import to_uint8
from nerfdata.writers.manifest import (
    cameras_sha256,
    check_recorded_field,
    config_hash,
    field_identity,
    read_manifest,
    sha256_json_file,
    write_manifest,
)
from nerfdata.writers.output_folder import add_owned_files, check_output_file, claim_output_folder, output_folder_lock
from nerfdata.writers.transforms import dataset_path, read_cameras

__all__ = [
    "InerfSolveConfig",
    "InerfTargetsConfig",
    "SolveWork",
    "Target",
    "TargetWork",
    "describe_results",
    "hypothesis_starts",
    "read_targets",
    "recorded_meters_per_unit",
    "render_targets",
    "run_inerf_solve",
    "run_inerf_targets",
    "solve_targets",
]

TARGETS_FILE = Path("inerf/targets.json")
TARGETS_FORMAT = "nerfdata-inerf-targets"
BOP_SCENE = "test/000001"


def _seed_of(seed: int, index: int) -> int:
    """Seed of target ``index``: independent of how many targets are drawn."""
    return derived_seed(seed, 1_000_003, index)


@dataclass(frozen=True)
class InerfTargetsConfig:
    """``nerfdata inerf targets``: target views with ground truth and perturbed start poses."""

    field: Path
    """Checkpoint folder (field.json + field.safetensors), or its .safetensors / .json file."""
    out: Path = Path("renders/inerf")
    num: int = 10
    """Number of targets."""
    seed: int = 0
    preset: PresetName = "inerf"
    """Perturbation protocol: inerf (random axis, +-40 deg, +-0.1 per axis), pinerf (Euler +-15 deg, +-0.25), custom."""
    rot_deg: float | None = None
    """Override the preset's rotation range (degrees)."""
    trans: float | None = None
    """Override the preset's translation range (scene units per axis)."""
    views: tuple[SamplerConfig, ...] = ()
    """Pose samplers of the targets (see nerfdata.poses; set them in a --config YAML); empty: a
    hemisphere shell around the field's box, far enough to see all of it."""
    width: int = 128
    height: int = 128
    fov_deg: float = 40.0
    num_steps: int = 1024
    """Render samples along the box diagonal for the targets."""
    meters_per_unit: float | None = None
    """Metres per scene unit for the BOP millimetres; None: the checkpoint's, else 1 (stated in targets.json)."""
    mesh: bool = True
    """Write models/ (each object's model cut from the field's mesh) and models_info.json."""
    mesh_resolution: int = 128
    objects: tuple[ObjectConfig, ...] = ()
    """The field's objects as oriented boxes (in a --config YAML); empty: the whole field is object 1."""
    overwrite: bool = False
    """Replace an output folder that is not empty."""
    max_memory_gb: float = 8.0
    """Refuse targets whose views would need more memory than this (GiB) to render, before any work."""
    executor: ExecutorConfig = dataclass_field(default_factory=ExecutorConfig)
    """Where the targets are rendered: local (this process) or ray (--executor ray, --ray-address ADDR)."""
    device: DeviceName = "auto"
    """Where the field, rays and images live: auto (CUDA when present), cpu or cuda."""

    def __post_init__(self) -> None:
        if self.num < 1:
            raise ConfigError(f"num must be >= 1, got {self.num}")
        if self.width < 1 or self.height < 1:
            raise ConfigError(f"width and height must be positive, got {self.width}x{self.height}")
        if not 0.0 < self.fov_deg < 180.0:
            raise ConfigError(f"fov_deg must be in (0, 180), got {self.fov_deg}")
        if not self.max_memory_gb > 0:
            raise ConfigError(f"max_memory_gb must be positive, got {self.max_memory_gb}")
        if self.meters_per_unit is not None and not (math.isfinite(self.meters_per_unit) and self.meters_per_unit > 0):
            raise ConfigError(f"meters_per_unit must be positive, got {self.meters_per_unit}")
        self.perturbation  # noqa: B018  validates preset and ranges now, naming the key
        check_objects(self.objects)
        if self.objects and not self.mesh:
            raise ConfigError("objects: each object's model is cut from the field's mesh; keep mesh: true")

    @property
    def perturbation(self) -> PerturbationConfig:
        return PerturbationConfig(self.preset, self.rot_deg, self.trans)


@dataclass(frozen=True)
class InerfSolveConfig:
    """``nerfdata inerf solve``: the iNeRF solver on a targets folder."""

    field: Path
    """The field the targets were rendered from."""
    targets: Path
    """Targets root (holding inerf/targets.json), its inerf/ folder, or the targets.json file."""
    out: Path | None = None
    """results.json path; None: inerf/results.json beside targets.json."""
    solver: SolverConfig = dataclass_field(default_factory=SolverConfig)
    """Steps, rays per step, sampling strategy, learning rate, halving of hypotheses (flags without prefix)."""
    hypotheses: int = 1
    """Start poses per target solved together: the stored one, and hypotheses - 1 orbits of it."""
    hypothesis_rot_deg: float = 25.0
    """How far the extra hypotheses orbit the stored start pose (degrees, about the point it looks at)."""
    success_rot_deg: float = 5.0
    success_trans: float = 0.05
    """Success: rotation error below success_rot_deg and camera-centre error below this (scene units)."""
    limit: int | None = None
    """Solve only the first N targets."""
    executor: ExecutorConfig = dataclass_field(default_factory=ExecutorConfig)
    """Where the targets are solved: local (this process) or ray (--executor ray, --ray-address ADDR)."""
    device: DeviceName = "auto"
    """Where the field and the solver's rays live: auto (CUDA when present), cpu or cuda (poses stay on the CPU)."""

    def __post_init__(self) -> None:
        if self.hypotheses < 1:
            raise ConfigError(f"hypotheses must be >= 1, got {self.hypotheses}")
        if self.limit is not None and self.limit < 1:
            raise ConfigError(f"limit must be >= 1, got {self.limit}")
        if not (self.success_rot_deg > 0 and self.success_trans > 0):
            raise ConfigError("success_rot_deg and success_trans must be positive")
        if not (math.isfinite(self.hypothesis_rot_deg) and 0 < self.hypothesis_rot_deg < 180):
            raise ConfigError(f"hypothesis_rot_deg must be in (0, 180), got {self.hypothesis_rot_deg}")


# ------------------------------------------------------------------------------------- targets


def _default_views(config: InerfTargetsConfig, loaded: LoadedField) -> tuple[SamplerConfig, ...]:
    """A hemisphere shell around the box centre, far enough to see the whole box."""
    aabb = loaded.field.aabb.double()
    centre = tuple(float(v) for v in (aabb[0] + aabb[1]) / 2)
    extent = loaded.field.extent
    shell = ShellConfig(count=config.num, radius=(1.05 * extent, 1.3 * extent), hemisphere=True, target=centre)
    return (SamplerConfig(shell=shell),)


def _matrix(t: torch.Tensor) -> list[list[float]]:
    return [[float(v) + 0.0 for v in row] for row in t.double()]


def run_inerf_targets(config: InerfTargetsConfig, show_progress: bool = True) -> Path:
    """Render the targets, their BOP twin and the model; return the path of ``inerf/targets.json``.

    The output folder is locked while the targets are written; ``OUT/manifest.json`` lists every file
    before it is written (so ``--overwrite`` removes those and nothing else) and says when they are complete.
    """
    intrinsics = Intrinsics.from_fov(config.width, config.height, config.fov_deg)
    check_view_memory([intrinsics], config.max_memory_gb)  # before the field is loaded
    loaded = load_field(config.field, resolve_device(config.device))
    field_ = loaded.field
    meters_per_unit, mpu_source = meters_per_unit_of(loaded, config.meters_per_unit)
    samplers = config.views or _default_views(config, loaded)
    views = sample_views(samplers, config.seed, read_cameras)
    if len(views) < config.num:
        raise ConfigError(f"views: the samplers give {len(views)} poses, fewer than num={config.num}")
    cameras = [Camera(view.c2w_opengl, intrinsics) for view in views[: config.num]]
    # Where the targets went and whether a folder was replaced do not define them: left out, so
    # the same config and seed give byte-identical files wherever they are written.
    unrecorded = ("out", "overwrite", "max_memory_gb", "executor", "device")  # how and where, not what
    resolved = {k: v for k, v in to_dict(config).items() if k not in unrecorded}
    what = {k: v for k, v in resolved.items() if k not in ("field", "views")}
    job_hash = config_hash(what | {"field": field_identity(loaded.sha256, loaded.json_path),
                                   "views": cameras_sha256(cameras)})
    executor = make_executor(config.executor, len(split_shards(range(config.num), config.executor.shard_size)))
    with claim_output_folder(config.out, job_hash, config.overwrite, same_job="refuse"):
        manifest: dict[str, Any] = {
            "kind": "inerf targets", "complete": False, "config_hash": job_hash, "executor": executor.describe(),
            "device": str(field_.aabb.device),
            "files": sorted([str(TARGETS_FILE), *bop_export_files(BOP_SCENE, config.objects, field_, config.mesh)]),
        }
        write_manifest(config.out, manifest)
        path = _write_targets(config, loaded, resolved, views, cameras, (meters_per_unit, mpu_source), manifest,
                              executor, show_progress)
        manifest["complete"] = True
        write_manifest(config.out, manifest)
    return path


def _write_targets(
    config: InerfTargetsConfig,
    loaded: LoadedField,
    resolved: dict[str, Any],
    views: list[View],
    cameras: list[Camera],
    units: tuple[float, str],
    manifest: dict[str, Any],
    executor: Executor,
    show_progress: bool,
) -> Path:
    """The targets job in its locked folder: models, each target's files (by ``executor``), then targets.json."""
    field_ = loaded.field
    occupancy = loaded.occupancy_grid()
    meters_per_unit, mpu_source = units
    mesh = MeshConfig(resolution=config.mesh_resolution) if config.mesh else None
    bop = BopExport.create(config.out, BOP_SCENE, field_, occupancy, config.objects, mesh, meters_per_unit)
    view_files = [p for index in range(len(cameras)) for p in bop.view_files(index).values()]
    manifest["files"] = sorted({*manifest["files"], *view_files})
    write_manifest(config.out, manifest)  # every target's files listed before the first is written
    intrinsics = cameras[0].intrinsics
    options = RenderOptions(num_steps=config.num_steps, normals=False, background="white")
    by_index: dict[int, tuple[dict[str, Any], dict[str, Any]]] = {}
    progress = Reporter("inerf targets", config.num, "targets", enabled=show_progress, outcomes=("rendered",),
                        work_unit="rays")
    # CPU tensors only in what travels to workers (they may have no GPU); each runner moves the grid.
    work = TargetWork(config, tuple(views[: len(cameras)]), tuple(cameras), options, occupancy.to("cpu"), bop)

    def take_in(result: ShardResult) -> None:
        for index, item in zip(result.shard.indices, result.items, strict=True):
            by_index[index] = item
            progress.advance(work=intrinsics.num_pixels)

    with progress:
        runner = field_work(render_targets, work, loaded, config.field, config.device)
        shards = split_shards(range(len(cameras)), config.executor.shard_size)
        failures = executor.run(runner, shards, take_in, retry_reporter(progress, "targets"))
    if failures:
        progress.summary([f"failed: {f.describe('targets')}" for f in failures])
        raise_failures(failures, "targets")
    records = [by_index[index][0] for index in range(len(cameras))]
    bop.write_scene({index: by_index[index][1] for index in range(len(cameras))})
    mode, rot_range, trans_range = config.perturbation.ranges
    document = {
        "format": TARGETS_FORMAT,
        "nerfdata_version": __version__,
        "field": {"path": str(loaded.json_path), "sha256": loaded.sha256, "type": field_.field_type},
        "config": resolved,
        "seed": config.seed,
        "perturbation": {"preset": config.preset, "rotation": mode, "rot_deg": rot_range, "trans": trans_range},
        "meters_per_unit": meters_per_unit,
        "meters_per_unit_source": mpu_source,
        "render_num_steps": config.num_steps,
        "background": "white",
        "conventions": conventions("poses", "K", "image", "perturbation", "rot_perturb_deg")
        | BOP_CONVENTIONS,
        "bop": bop.describe(),
        "targets": records,
    }
    path = config.out / TARGETS_FILE
    write_json_atomic(path, document)  # last: its presence marks a complete targets folder
    progress.summary()
    return path


@dataclass(frozen=True)
class TargetWork:
    """What rendering a target takes beside the field; picklable (each Ray worker gets it once)."""

    config: InerfTargetsConfig
    views: tuple[View, ...]
    """The targets' views, by index."""
    cameras: tuple[Camera, ...]
    """The targets' cameras, by index."""
    options: RenderOptions
    occupancy: OccupancyGrid
    bop: BopExport
    """The BOP export (its models written by the driver)."""


def render_targets(
    work: TargetWork, loaded: LoadedField, indices: Sequence[int]
) -> list[tuple[dict[str, Any], dict[str, Any]]]:
    """Render targets ``indices`` and write their BOP files; returns per target its ``targets.json``
    entry and its BOP scene entries. A target depends on the config, the seed and its index only.

    Raises:
        PoseError: a target's perturbed start pose is not rigid.
    """
    config, field_, options = work.config, loaded.field, work.options
    occupancy = work.occupancy.to(field_.aabb.device)
    items = []
    for index in indices:
        view, camera = work.views[index], work.cameras[index]
        intrinsics = camera.intrinsics
        image = render_image(field_, camera, options, occupancy)
        seed = _seed_of(config.seed, index)
        perturbation = draw_perturbations(config.perturbation, 1, torch.Generator().manual_seed(seed))[0]
        gt = camera.c2w_opengl.double()
        pivot = look_at_point(gt, pivot_depth(field_, occupancy, gt, intrinsics, options))
        init = apply_perturbation(gt, perturbation, pivot)  # kept in float64, as stored
        validate_c2w(init, f"target {index} start pose")
        written = image.cpu()  # the writers read NumPy
        rgb, depth = to_uint8(written.rgb.numpy()), written.depth_median.numpy()
        files, bop_view = work.bop.write_view(index, camera, rgb, depth, written.range_median.numpy())
        items.append(({
            "id": index,
            "image": files["bop_rgb"],
            "K": _matrix(intrinsics.K),
            "width": intrinsics.width,
            "height": intrinsics.height,
            "gt_c2w": _matrix(gt),
            "init_c2w": _matrix(init),
            "rot_perturb_deg": perturbation.rot_deg,
            "trans_perturb": [float(v) for v in perturbation.translation],
            "pivot": [float(v) for v in pivot],
            "perturbation": perturbation.description,
            "seed": seed,
            "view": view.label,
        }, bop_view))
    return items


# ------------------------------------------------------------------------------------- solve


@dataclass(frozen=True)
class Target:
    """One target read back from ``targets.json``, validated."""

    id: int
    image: Path
    intrinsics: Intrinsics
    gt_c2w: torch.Tensor
    init_c2w: torch.Tensor
    seed: int


def _targets_json(path: Path) -> Path:
    for candidate in (path / TARGETS_FILE, path / "targets.json", path):
        if candidate.is_file():
            return candidate
    raise NerfDataError(
        f"{path}: no inerf targets here (expected {path / TARGETS_FILE}); run `nerfdata inerf targets` first"
    )


def _targets_root(json_path: Path) -> Path:
    """The folder holding ``inerf/`` (and the BOP scene) of a ``targets.json``."""
    return json_path.parent.parent if json_path.parent.name == "inerf" else json_path.parent


def _bop_ground_truth(targets: Path, document: dict[str, Any]) -> tuple[int, dict[int, list[dict]], float]:
    """The targets' BOP scene id, its ``scene_gt.json`` and millimetres per scene unit."""
    scene = str((document.get("bop") or {}).get("scene", BOP_SCENE))
    scene_gt = read_scene_gt(_targets_root(_targets_json(Path(targets))) / scene / "scene_gt.json")
    return int(Path(scene).name), scene_gt, 1000.0 * float(document.get("meters_per_unit") or 1.0)


def _bop_results_path(results: Path) -> Path:
    """The BOP19 CSV beside ``results.json`` (another results name adds its stem to the CSV's)."""
    suffix = None if results.stem == "results" else results.stem.replace(".", "-")
    return results.with_name(bop_results_name("inerf", "nerfdata", Path(BOP_SCENE).parent.name, suffix))


def read_targets(path: Path) -> tuple[dict[str, Any], list[Target]]:
    """Read and validate a targets folder (or its ``targets.json``): the document and its targets.

    Raises:
        NerfDataError: missing or malformed file, missing or mis-sized image, non-rigid pose.
    """
    json_path = _targets_json(Path(path))
    root = _targets_root(json_path)
    document = read_json(json_path)
    entries = document.get("targets") if isinstance(document, dict) else None
    if not isinstance(entries, list) or not entries:
        raise NerfDataError(f"{json_path}: not an inerf targets file (no list of targets)")
    targets = []
    for entry in entries:
        try:
            index = int(entry["id"])
            K = entry["K"]
            focal, centre = (float(K[0][0]), float(K[1][1])), (float(K[0][2]), float(K[1][2]))
            values = *focal, *centre, int(entry["width"]), int(entry["height"])
            try:
                intrinsics = Intrinsics(*values)
            except PoseError as error:  # it names the value, not the file
                raise PoseError(f"{json_path}: target {index}: {error}") from None
            image = dataset_path(root, entry["image"], f"{json_path}: target {index}", "image")
            # Kept in float64 as stored; validate_c2w only checks that they are rigid.
            gt = torch.tensor(entry["gt_c2w"], dtype=torch.float64)
            init = torch.tensor(entry["init_c2w"], dtype=torch.float64)
            validate_c2w(gt, f"{json_path}: target {index} gt_c2w")
            validate_c2w(init, f"{json_path}: target {index} init_c2w")
            seed = int(entry["seed"])
            if not 0 <= seed < 2**64:
                raise ValueError(f"seed {seed} is not in [0, 2^64)")
        except (KeyError, TypeError, ValueError, IndexError, OverflowError) as error:
            if isinstance(error, NerfDataError):
                raise
            raise NerfDataError(f"{json_path}: malformed target entry ({error!r})") from None
        if not image.is_file():
            raise NerfDataError(f"{json_path}: target {index}: image {image} is missing")
        if any(t.id == index for t in targets):
            raise NerfDataError(f"{json_path}: target id {index} is given twice")
        targets.append(Target(index, image, intrinsics, gt, init, seed))
    return document, targets


def _load_target_image(target: Target) -> np.ndarray:
    try:
        image = iio.imread(target.image)
    except Exception as error:  # any decoder failure is bad input
        raise NerfDataError(f"{target.image}: cannot read target image ({error})") from None
    expected = (target.intrinsics.height, target.intrinsics.width)
    if image.shape[:2] != expected or image.ndim != 3 or image.shape[2] < 3:
        raise NerfDataError(f"{target.image}: image is {image.shape}, expected {expected[0]}x{expected[1]} RGB")
    return image[..., :3].astype(np.float32) / 255.0


def hypothesis_starts(config: InerfSolveConfig, target: Target, depth: float) -> torch.Tensor:
    """Start poses ``(hypotheses, 4, 4)``: the stored one first, then orbits of it.

    Each extra hypothesis orbits the stored start by ``hypothesis_rot_deg`` about the point it looks
    at (``depth`` along its axis: the solver knows nothing of the ground truth), in directions
    evenly spread around its optical axis (4 hypotheses: 3 directions 120 degrees apart). Orbits,
    because which side of the scene the camera sees is what the solver recovers worst from a far
    start; a roll or a slide of the image it recovers from any start.
    """
    start = target.init_c2w.double()
    pivot = look_at_point(start, depth)
    extra = config.hypotheses - 1
    starts = [start]
    for index in range(extra):
        direction = 2.0 * math.pi * index / extra
        across = torch.tensor([math.cos(direction), math.sin(direction), 0.0], dtype=torch.float64)  # camera axes
        axis = start[:3, :3] @ across
        starts.append(apply_perturbation(start, orbit(axis, config.hypothesis_rot_deg), pivot))
    return torch.stack(starts)


_EARLIER = "kept from an earlier run"


def _results_path(config: InerfSolveConfig) -> Path:
    return config.out if config.out is not None else _targets_json(Path(config.targets)).parent / "results.json"


def _read_results(path: Path) -> dict[str, Any] | None:
    """A results file nerfdata wrote, or None when there is none; refuses any other file at that path."""
    import json

    if not path.exists():
        return None
    try:
        results = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, ValueError):
        results = None
    if not (isinstance(results, dict) and "nerfdata_version" in results and isinstance(results.get("targets"), list)):
        raise NerfDataError(f"--out: {path} exists and is not a nerfdata results file; choose another --out")
    return results


def _check_results_paths(out: Path, bop_csv: Path) -> dict[str, Any] | None:
    """Refuse, before any solving, results paths that cannot be written or hold files nerfdata did not
    write (ours: a results.json nerfdata wrote, and the CSV it names); returns the earlier results."""
    check_output_file(out)
    earlier = _read_results(out)
    if bop_csv.exists():
        if bop_csv.is_dir() or earlier is None or earlier.get("bop_results") != bop_csv.name:
            raise NerfDataError(
                f"--out: {bop_csv} (the BOP results beside {out.name}) exists and was not written with it; "
                "choose another --out"
            )
    return earlier


def _check_units(document: dict[str, Any], json_path: Path) -> None:
    """Refuse a targets file whose ``meters_per_unit`` is not a positive number (before any solving)."""
    value = document.get("meters_per_unit")
    number = isinstance(value, (int, float)) and not isinstance(value, bool)
    if value is not None and not (number and math.isfinite(value) and value > 0):
        raise NerfDataError(f"{json_path}: meters_per_unit must be a positive number or null, got {value!r}")
    source = document.get("meters_per_unit_source")
    if source is not None and not isinstance(source, str):
        raise NerfDataError(f"{json_path}: meters_per_unit_source must be a string, got {source!r}")


def _kept_record(record: Any, target: Target) -> bool:
    """Whether an earlier run's record of ``target`` can stand (it has what the results and the CSV need)."""
    try:
        validate_c2w(torch.tensor(record["est_c2w"], dtype=torch.float64))
        return record["id"] == target.id and float(record["hypothesis_losses"][record["best_hypothesis"]]) >= 0 \
            and float(record["seconds"]) >= 0
    except (KeyError, TypeError, ValueError, IndexError):
        return False


def _scored(record: dict[str, Any], target: Target, scene_gt: dict[int, list[dict]], mm_per_unit: float,
            scene_id: int) -> list[Any]:
    """The BOP estimates of a target's record (from its estimated pose, loss and time)."""
    score = 1.0 / (1.0 + float(record["hypothesis_losses"][record["best_hypothesis"]]))  # lower loss, higher
    est_c2w = torch.tensor(record["est_c2w"], dtype=torch.float64)
    return object_estimates(scene_gt[target.id], target.gt_c2w, est_c2w, mm_per_unit, scene_id, target.id, score,
                            float(record["seconds"]))


def run_inerf_solve(config: InerfSolveConfig, show_progress: bool = True) -> dict[str, Any]:
    """Solve every target; write and return ``results.json``'s content.

    Every input and output path is checked before the first target is solved. ``results.json`` is
    rewritten after each target (``"complete": false`` until the last), so a late failure loses
    nothing, and a rerun of the same job (same config, field and targets) keeps the targets already solved.
    """
    document, targets = read_targets(config.targets)
    json_path = _targets_json(Path(config.targets))
    _check_units(document, json_path)
    out = _results_path(config)
    bop_csv = _bop_results_path(out)
    earlier = _check_results_paths(out, bop_csv)
    loaded = load_field(config.field, resolve_device(config.device))
    check_recorded_field(document.get("field"), loaded.sha256, config.field, json_path)
    occupancy = loaded.occupancy_grid()
    if config.limit is not None:
        targets = targets[: config.limit]
    ground_truth = _bop_ground_truth(config.targets, document)
    scene_gt = ground_truth[1]
    missing = [t.id for t in targets if t.id not in scene_gt]
    if missing:
        raise NerfDataError(f"{config.targets}: target {missing[0]} is not in the BOP scene_gt.json")
    where = ("out", "targets", "field", "limit", "executor", "device")
    what = {k: v for k, v in to_dict(config).items() if k not in where}
    job_hash = config_hash(what | {"field": field_identity(loaded.sha256, loaded.json_path),
                                   "targets": sha256_json_file(json_path)})
    same = earlier is not None and earlier.get("config_hash") == job_hash
    kept = {r.get("id"): r for r in (earlier or {}).get("targets", []) if same and isinstance(r, dict)}
    kept = {t.id: kept[t.id] for t in targets if t.id in kept and _kept_record(kept[t.id], t)}
    todo = [position for position, target in enumerate(targets) if target.id not in kept]
    executor = make_executor(config.executor, len(split_shards(todo, config.executor.shard_size)))
    with _results_claimed(_targets_root(json_path), (out, bop_csv)):
        return _solve_all(config, document, targets, ground_truth, loaded, occupancy, job_hash, kept, (out, bop_csv),
                          executor, show_progress)


@contextlib.contextmanager
def _results_claimed(root: Path, paths: tuple[Path, ...]) -> Iterator[None]:
    """Results written inside a targets folder are that output's files: listed in its manifest (under its
    lock, held while solving, so that the targets are not replaced meanwhile). Elsewhere, nothing to claim."""
    inside = all(root.absolute() in p.absolute().parents for p in paths)
    if not inside or read_manifest(root) is None:  # targets written before manifests: nothing lists their files
        yield
        return
    with output_folder_lock(root):
        add_owned_files(root, paths)
        yield


def _solve_all(
    config: InerfSolveConfig,
    document: dict[str, Any],
    targets: list[Target],
    ground_truth: tuple[int, dict[int, list[dict]], float],
    loaded: LoadedField,
    occupancy: Any,
    job_hash: str,
    kept: dict[int, dict[str, Any]],
    paths: tuple[Path, Path],
    executor: Executor,
    show_progress: bool,
) -> dict[str, Any]:
    """Solve the targets not ``kept`` (by ``executor``), writing the results (``paths``: results.json
    and the BOP CSV) after each shard; the complete results last."""
    scene_id, scene_gt, mm_per_unit = ground_truth
    out, bop_csv = paths
    background = document.get("background", "white")
    pivot_options = RenderOptions(num_steps=config.solver.num_steps, normals=False, background=background)
    outcomes = ("solved", "not solved", _EARLIER)
    progress = Reporter("inerf solve", len(targets), "targets", enabled=show_progress, outcomes=outcomes,
                        done={_EARLIER: len(kept)} if kept else None, every=1)  # each target is slow: a line each
    by_id = dict(kept)
    # CPU tensors only in what travels to workers (they may have no GPU); each runner moves the grid.
    work = SolveWork(config, tuple(targets), occupancy.to("cpu"), background, pivot_options)

    def take_in(result: ShardResult) -> None:
        for position, record in zip(result.shard.indices, result.items, strict=True):
            target = targets[position]
            scored = _scored(record, target, scene_gt, mm_per_unit, scene_id)
            record["bop"] = [{"obj_id": s.estimate.obj_id, "re_deg": s.re_deg, "te_mm": s.te_mm} for s in scored]
            by_id[target.id] = record
        done = [by_id[t.id] for t in targets if t.id in by_id]
        write_json_atomic(out, _results(config, document, loaded, job_hash, done, complete=False))
        for record in result.items:
            progress.advance("solved" if record["success"] else "not solved")

    todo = [position for position, target in enumerate(targets) if target.id not in kept]
    with progress:
        # Here the solver's steps show in a second bar; a Ray worker's are not followed.
        runner = replace(field_work(solve_targets, work, loaded, config.field, config.device),
                         local=partial(solve_targets, work, loaded, steps=progress.steps))
        failures = executor.run(runner, split_shards(todo, config.executor.shard_size), take_in,
                                retry_reporter(progress, "targets"))
    if failures:
        progress.summary([f"failed: {f.describe('targets')}" for f in failures])
        raise_failures(failures, "targets")
    records = [by_id[t.id] for t in targets]
    estimates = [s.estimate for t in targets for s in _scored(by_id[t.id], t, scene_gt, mm_per_unit, scene_id)]
    write_bop_results(bop_csv, estimates)
    results = _results(config, document, loaded, job_hash, records, complete=True)
    results["bop_results"] = bop_csv.name  # beside results.json
    write_json_atomic(out, results)
    return results


@dataclass(frozen=True)
class SolveWork:
    """What solving a target takes beside the field; picklable (each Ray worker gets it once)."""

    config: InerfSolveConfig
    targets: tuple[Target, ...]
    occupancy: OccupancyGrid
    background: str
    pivot_options: RenderOptions


StepsOf = Callable[[str, int], AbstractContextManager[Steps]]
"""Follows the solver's steps on one target (:meth:`~nerfdata.progress.Reporter.steps`)."""


def solve_targets(
    work: SolveWork, loaded: LoadedField, positions: Sequence[int], steps: StepsOf | None = None
) -> list[dict[str, Any]]:
    """Solve targets ``positions`` (in ``work.targets``); their results records (without the BOP
    errors). A target's result depends on the config and the target only (its generator is seeded by
    the target's seed); its ``seconds`` are what it took.

    Raises:
        NerfDataError: an unreadable target image.
    """
    occupancy = work.occupancy.to(loaded.field.aabb.device)
    return [
        _solve_target(work.config, work.targets[position], loaded, occupancy, work.background,
                      work.pivot_options, steps)
        for position in positions
    ]


def _solve_target(
    config: InerfSolveConfig,
    target: Target,
    loaded: LoadedField,
    occupancy: Any,
    background: str,
    pivot_options: RenderOptions,
    steps: StepsOf | None,
) -> dict[str, Any]:
    """Solve one target; its results record (without the BOP errors)."""
    image = _load_target_image(target)
    depth = pivot_depth(loaded.field, occupancy, target.init_c2w, target.intrinsics, pivot_options)
    starts = hypothesis_starts(config, target, depth)
    start_time = time.perf_counter()
    follow = steps(f"target {target.id}", config.solver.iters) if steps is not None else nullcontext(None)
    with follow as step:
        result = solve_pose(
            loaded.field, occupancy, image, target.intrinsics, starts, config.solver,
            torch.Generator().manual_seed(target.seed), background,
            on_step=step.update if step is not None else None,
        )
    seconds = time.perf_counter() - start_time
    rot_err, trans_err = (float(e) for e in pose_errors(result.est_c2w, target.gt_c2w))
    init_rot, init_trans = (float(e) for e in pose_errors(target.init_c2w, target.gt_c2w))
    return {
        "id": target.id,
        "est_c2w": _matrix(result.est_c2w),
        "rot_err_deg": rot_err,
        "trans_err": trans_err,
        "success": rot_err < config.success_rot_deg and trans_err < config.success_trans,
        "iters": result.iters,
        "converged": result.converged,
        "seconds": seconds,
        "init_rot_err_deg": init_rot,
        "init_trans_err": init_trans,
        "best_hypothesis": result.best,
        "hypothesis_steps": result.steps,
        "hypothesis_losses": [float(v) for v in result.losses],
        "start_c2w": [_matrix(s) for s in starts],
    }


def _results(
    config: InerfSolveConfig,
    document: dict[str, Any],
    loaded: LoadedField,
    job_hash: str,
    records: list[dict[str, Any]],
    complete: bool,
) -> dict[str, Any]:
    """The content of ``results.json`` for the targets solved so far."""
    times = [r["seconds"] for r in records]
    metric = recorded_meters_per_unit(document)
    return {
        "nerfdata_version": __version__,
        "complete": complete,
        "success_rate": sum(r["success"] for r in records) / max(len(records), 1),
        "criteria": {
            "rot_deg": config.success_rot_deg,
            "trans": config.success_trans,
            "trans_unit": "scene units (camera-centre distance)",
            # In metres only when the targets record the field's units (not when assumed).
            "trans_m": None if metric is None else config.success_trans * metric,
        },
        "median_seconds": float(np.median(times)) if times else 0.0,
        # The same results anywhere, on any device: where they were computed is recorded beside.
        "config": {k: v for k, v in to_dict(config).items() if k not in ("executor", "device")},
        "config_hash": job_hash,
        "device": str(loaded.field.aabb.device),
        "field": {"path": str(loaded.json_path), "sha256": loaded.sha256},
        "targets": records,
    }


def recorded_meters_per_unit(document: dict[str, Any]) -> float | None:
    """Metres per scene unit when a targets document records them (from the checkpoint or the
    config), None when they were only assumed (or an older file does not say where they came from).

    Example:
        >>> recorded_meters_per_unit({"meters_per_unit": 1.0, "meters_per_unit_source": "checkpoint"})
        1.0
        >>> recorded_meters_per_unit({"meters_per_unit": 1.0, "meters_per_unit_source": "assumed"}) is None
        True
    """
    value, source = document.get("meters_per_unit"), document.get("meters_per_unit_source")
    return float(value) if value is not None and source in ("checkpoint", "config") else None


def describe_results(results: dict[str, Any]) -> list[str]:
    """Lines the CLI prints after ``solve``: success rate with its criteria, median time and errors."""
    records, criteria = results["targets"], results["criteria"]
    solved = sum(r["success"] for r in records)
    median = lambda key: float(np.median([r[key] for r in records])) if records else 0.0  # noqa: E731
    return [
        f"success rate {results['success_rate']:.1%} ({solved}/{len(records)} targets): rotation error < "
        f"{criteria['rot_deg']:g} deg and camera-centre error < {criteria['trans']:g} scene units"
        + (f" ({criteria['trans_m']:g} m)" if criteria.get("trans_m") is not None else ""),
        f"median per target: {results['median_seconds']:.1f} s, {median('iters'):.0f} steps, "
        f"rotation error {median('rot_err_deg'):.2f} deg, translation error {median('trans_err'):.4f} scene units",
    ]
