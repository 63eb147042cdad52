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
its index. The driver alone writes ``targets.json``, the BOP scene's JSON files and ``results.json``.
"""

import math
import shutil
import time
from collections.abc import Callable, Sequence
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
from nerfdata.errors import ConfigError, NerfDataError
from nerfdata.executors import (
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
from nerfdata.jobs.bop import BopExport, meters_per_unit_of, object_estimates
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
from nerfdata.poses import SamplerConfig, ShellConfig, View, sample_views
from nerfdata.progress import Reporter, Steps
from nerfdata.render.renderer import RenderOptions, render_image
from nerfdata.version import __version__
from nerfdata.writers.bop import BopEstimate, bop_results_name, read_scene_gt, write_bop_results
from nerfdata.writers.conventions import BOP_CONVENTIONS, conventions
from nerfdata.writers.images import to_uint8
from nerfdata.writers.transforms import read_cameras

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
    return seed * 1_000_003 + index


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
    executor: ExecutorConfig = dataclass_field(default_factory=ExecutorConfig)
    """Where the targets are rendered: local (this process) or ray (--executor ray, --ray-address ADDR)."""

    def __post_init__(self) -> None:
        if self.num < 1:
            raise ConfigError(f"num must be >= 1, got {self.num}")
        if self.width < 1 or self.height < 1:
            raise ConfigError(f"width and height must be positive, got {self.width}x{self.height}")
        if not 0.0 < self.fov_deg < 180.0:
            raise ConfigError(f"fov_deg must be in (0, 180), got {self.fov_deg}")
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


def _prepare(out: Path, overwrite: bool) -> None:
    if out.exists() and not out.is_dir():
        raise NerfDataError(f"{out}: output path exists and is not a folder")
    if out.is_dir() and any(out.iterdir()):
        if not overwrite:
            raise NerfDataError(f"{out}: output folder is not empty; choose another --out or pass --overwrite")
        shutil.rmtree(out)
    out.mkdir(parents=True, exist_ok=True)


def _matrix(t: torch.Tensor) -> list[list[float]]:
    return [[float(v) + 0.0 for v in row] for row in t.double()]


def run_inerf_targets(config: InerfTargetsConfig, show_progress: bool = True) -> Path:
    """Render the targets, their BOP twin and the model; return the path of ``inerf/targets.json``."""
    loaded = load_field(config.field)
    field_ = loaded.field
    occupancy = loaded.occupancy_grid()
    meters_per_unit, mpu_source = meters_per_unit_of(loaded, config.meters_per_unit)
    samplers = config.views or _default_views(config, loaded)
    views = sample_views(samplers, config.seed, read_cameras)
    if len(views) < config.num:
        raise ConfigError(f"views: the samplers give {len(views)} poses, fewer than num={config.num}")
    shards = split_shards(range(config.num), config.executor.shard_size)
    executor = make_executor(config.executor, len(shards))  # joins Ray before anything is written
    _prepare(config.out, config.overwrite)
    mesh = MeshConfig(resolution=config.mesh_resolution) if config.mesh else None
    bop = BopExport.create(config.out, BOP_SCENE, field_, occupancy, config.objects, mesh, meters_per_unit)
    intrinsics = Intrinsics.from_fov(config.width, config.height, config.fov_deg)
    options = RenderOptions(num_steps=config.num_steps, normals=False, background="white")
    by_index: dict[int, tuple[dict[str, Any], dict[str, Any]]] = {}
    progress = Reporter("inerf targets", config.num, "targets", enabled=show_progress, outcomes=("rendered",),
                        work_unit="rays")
    work = TargetWork(config, tuple(views[: config.num]), intrinsics, options, occupancy, bop)

    def take_in(result: ShardResult) -> None:
        for index, item in zip(result.shard.indices, result.items, strict=True):
            by_index[index] = item
            progress.advance(work=intrinsics.num_pixels)

    with progress:
        runner = field_work(render_targets, work, loaded, config.field)
        failures = executor.run(runner, shards, take_in, retry_reporter(progress, "targets"))
    if failures:
        progress.summary([f"failed: {f.describe('targets')}" for f in failures])
        raise_failures(failures, "targets")
    records = [by_index[index][0] for index in range(config.num)]
    bop.write_scene({index: by_index[index][1] for index in range(config.num)})
    mode, rot_range, trans_range = config.perturbation.ranges
    document = {
        "format": TARGETS_FORMAT,
        "nerfdata_version": __version__,
        "field": {"path": str(loaded.json_path), "sha256": loaded.sha256, "type": field_.field_type},
        # Where the targets went and whether a folder was replaced do not define them: left out, so
        # the same config and seed give byte-identical files wherever they are written.
        "config": {k: v for k, v in to_dict(config).items() if k not in ("out", "overwrite", "executor")},
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
    intrinsics: Intrinsics
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
    config, field_, occupancy, intrinsics, options = (
        work.config, loaded.field, work.occupancy, work.intrinsics, work.options
    )
    items = []
    for index in indices:
        view = work.views[index]
        camera = Camera(view.c2w_opengl, intrinsics)
        image = render_image(field_, camera, options, occupancy)
        seed = _seed_of(config.seed, index)
        perturbation = draw_perturbations(config.perturbation, 1, torch.Generator().manual_seed(seed))[0]
        gt = camera.c2w_opengl.double()
        pivot = look_at_point(gt, pivot_depth(field_, occupancy, gt, intrinsics, options))
        init = apply_perturbation(gt, perturbation, pivot)  # kept in float64, as stored
        validate_c2w(init, f"target {index} start pose")
        rgb, depth = to_uint8(image.rgb.numpy()), image.depth_median.numpy()
        files, bop_view = work.bop.write_view(index, camera, rgb, depth, image.range_median.numpy())
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
    raise NerfDataError(f"{path}: no inerf targets here (expected {path / TARGETS_FILE}); run `nerfdata inerf targets` first")


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
    import json

    json_path = _targets_json(Path(path))
    root = _targets_root(json_path)
    try:
        document = json.loads(json_path.read_text())
        entries = document["targets"]
    except (OSError, ValueError, KeyError, TypeError) as error:
        raise NerfDataError(f"{json_path}: not a readable inerf targets file ({error})") from None
    targets = []
    for entry in entries:
        try:
            index = int(entry["id"])
            K = entry["K"]
            intrinsics = Intrinsics(float(K[0][0]), float(K[1][1]), float(K[0][2]), float(K[1][2]), int(entry["width"]), int(entry["height"]))
            image = root / entry["image"]
            # Kept in float64 as stored; validate_c2w only checks that they are rigid.
            gt = torch.tensor(entry["gt_c2w"], dtype=torch.float64)
            init = torch.tensor(entry["init_c2w"], dtype=torch.float64)
            validate_c2w(gt, f"{json_path}: target {index} gt_c2w")
            validate_c2w(init, f"{json_path}: target {index} init_c2w")
            seed = int(entry["seed"])
        except (KeyError, TypeError, ValueError, IndexError) as error:
            if isinstance(error, NerfDataError):
                raise
            raise NerfDataError(f"{json_path}: malformed target entry ({error!r})") from None
        if not image.is_file():
            raise NerfDataError(f"{json_path}: target {index}: image {image} is missing")
        targets.append(Target(index, image, intrinsics, gt, init, seed))
    return document, targets


def _load_target_image(target: Target) -> np.ndarray:
    try:
        image = iio.imread(target.image)
    except Exception as error:  # noqa: BLE001  any decoder failure is bad input
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


def run_inerf_solve(config: InerfSolveConfig, show_progress: bool = True) -> dict[str, Any]:
    """Solve every target; write and return ``results.json``'s content."""
    document, targets = read_targets(config.targets)
    loaded = load_field(config.field)
    stored_sha = (document.get("field") or {}).get("sha256")
    if stored_sha is not None and stored_sha != loaded.sha256:
        raise NerfDataError(f"{config.targets}: targets were rendered from a different field than {config.field}")
    occupancy = loaded.occupancy_grid()
    if config.limit is not None:
        targets = targets[: config.limit]
    background = document.get("background", "white")
    pivot_options = RenderOptions(num_steps=config.solver.num_steps, normals=False, background=background)
    scene_id, scene_gt, mm_per_unit = _bop_ground_truth(config.targets, document)
    outcomes = ("solved", "not solved")
    progress = Reporter("inerf solve", len(targets), "targets", enabled=show_progress, outcomes=outcomes,
                        every=1)  # each target is slow: a line per target
    shards = split_shards(range(len(targets)), config.executor.shard_size)
    executor = make_executor(config.executor, len(shards))
    work = SolveWork(config, tuple(targets), occupancy, background, pivot_options, scene_gt, mm_per_unit, scene_id)
    by_position: dict[int, tuple[dict[str, Any], list[BopEstimate]]] = {}

    def take_in(result: ShardResult) -> None:
        for position, item in zip(result.shard.indices, result.items, strict=True):
            by_position[position] = item
            progress.advance("solved" if item[0]["success"] else "not solved")

    with progress:
        # Here the solver's steps show in a second bar; a Ray worker's are not followed.
        runner = replace(field_work(solve_targets, work, loaded, config.field),
                         local=partial(solve_targets, work, loaded, steps=progress.steps))
        failures = executor.run(runner, shards, take_in, retry_reporter(progress, "targets"))
    if failures:
        progress.summary([f"failed: {f.describe('targets')}" for f in failures])
        raise_failures(failures, "targets")
    records = [by_position[position][0] for position in range(len(targets))]
    estimates = [e for position in range(len(targets)) for e in by_position[position][1]]
    times = [r["seconds"] for r in records]
    metric = recorded_meters_per_unit(document)
    results = {
        "nerfdata_version": __version__,
        "success_rate": sum(r["success"] for r in records) / max(len(records), 1),
        "criteria": {
            "rot_deg": config.success_rot_deg,
            "trans": config.success_trans,
            "trans_unit": "scene units (camera-centre distance)",
            # In metres only when the targets record the field's units (not when assumed).
            "trans_m": None if metric is None else config.success_trans * metric,
        },
        "median_seconds": float(np.median(times)) if times else 0.0,
        "config": {k: v for k, v in to_dict(config).items() if k != "executor"},  # the same results anywhere
        "field": {"path": str(loaded.json_path), "sha256": loaded.sha256},
        "targets": records,
    }
    out = config.out if config.out is not None else _targets_json(Path(config.targets)).parent / "results.json"
    bop_csv = _bop_results_path(out)
    write_bop_results(bop_csv, estimates)
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
    scene_gt: dict[int, list[dict[str, Any]]]
    """The targets' BOP ground truth, by image id."""
    mm_per_unit: float
    scene_id: int


def solve_targets(
    work: SolveWork,
    loaded: LoadedField,
    positions: Sequence[int],
    steps: Callable[[str, int], AbstractContextManager[Steps]] | None = None,
) -> list[tuple[dict[str, Any], list[BopEstimate]]]:
    """Solve targets ``positions`` (in ``work.targets``); returns per target its ``results.json``
    entry and its BOP estimates. ``steps``: follows the solver's steps (:meth:`Reporter.steps`).

    A target's result depends on the config and the target only (its generator is seeded by the
    target's seed); its ``seconds`` are what it took.

    Raises:
        NerfDataError: an unreadable target image, a target missing from the BOP scene_gt.json.
    """
    config, occupancy, background = work.config, work.occupancy, work.background
    items = []
    for position in positions:
        target = work.targets[position]
        image = _load_target_image(target)
        depth = pivot_depth(loaded.field, occupancy, target.init_c2w, target.intrinsics, work.pivot_options)
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
        success = rot_err < config.success_rot_deg and trans_err < config.success_trans
        if target.id not in work.scene_gt:
            raise NerfDataError(f"{config.targets}: target {target.id} is not in the BOP scene_gt.json")
        score = 1.0 / (1.0 + float(result.losses[result.best]))  # BOP ranks by score: lower loss, higher
        gt_instances = work.scene_gt[target.id]
        scored = object_estimates(
            gt_instances, target.gt_c2w, result.est_c2w, work.mm_per_unit, work.scene_id, target.id, score, seconds
        )
        items.append(({
            "id": target.id,
            "est_c2w": _matrix(result.est_c2w),
            "rot_err_deg": rot_err,
            "trans_err": trans_err,
            "success": success,
            "iters": result.iters,
            "converged": result.converged,
            "seconds": seconds,
            "init_rot_err_deg": init_rot,
            "init_trans_err": init_trans,
            "best_hypothesis": result.best,
            "hypothesis_steps": result.steps,
            "hypothesis_losses": [float(v) for v in result.losses],
            "start_c2w": [_matrix(s) for s in starts],
            "bop": [{"obj_id": s.estimate.obj_id, "re_deg": s.re_deg, "te_mm": s.te_mm} for s in scored],
        }, [s.estimate for s in scored]))
    return items


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
