"""``nerfdata train DATA_DIR --out CKPT_DIR``: fit an NGPField to a ``transforms.json`` dataset.

Photometric loss on random rays, an occupancy grid updated during training (decaying maximum of
density and a mean-capped threshold, Instant-NGP's rules), Adam with warm-up and step decay,
periodic checkpoints that hold the whole training state (so ``--resume`` continues exactly where an
interrupted run stopped), and a final compact checkpoint that keeps the training grid refined to
where one step gains opacity (:func:`stored_grid`): the field's appearance was fitted with the
training grid's empty cells skipped, and the finer grid clears only cells a sample adds nothing in.

:func:`run_train` is four named steps over a :class:`TrainState`: :func:`start_or_resume`,
:func:`train_step` (one optimisation step), :func:`refresh_occupancy` and :func:`save_checkpoint`
(periodic) / :func:`save_trained_field` (final).
"""

import dataclasses
import math
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Literal

import imageio.v3 as iio
import numpy as np
import torch

from nerfdata.cameras import Camera, Rays
from nerfdata.config import from_dict, to_dict
from nerfdata.device import DeviceName, resolve_device
from nerfdata.encoders.hashgrid import HashGridConfig
from nerfdata.errors import ConfigError, NerfDataError
from nerfdata.fields.checkpoint import load_checkpoint, load_training_state, save_field
from nerfdata.fields.ngp import NGPArchitecture, NGPField
from nerfdata.fields.occupancy import OccupancyGrid, occupancy_from_ema, refine_occupancy_grid, update_density_ema
from nerfdata.jobs.planarity import pixel_triplets, planarity_loss
from nerfdata.progress import Reporter
from nerfdata.render.renderer import GRADIENT_SAMPLES_PER_ROUND, RenderOptions, render_image, render_rays
from nerfdata.render.volume import distortion_loss
from nerfdata.writers.transforms import DatasetFrame, TransformsDataset, read_transforms

__all__ = [
    "TrainJobConfig",
    "TrainResult",
    "TrainState",
    "estimate_aabb",
    "psnr",
    "refresh_occupancy",
    "run_train",
    "save_checkpoint",
    "save_trained_field",
    "start_or_resume",
    "stored_grid",
    "train_step",
]

_FLAT_FIELD_KEYS = ("hash_grid", "density_hidden_dim", "color_hidden_dim")
"""The field hyper-parameters a saved training config held at its top level before ``field`` held them all."""

GRID_STEP_OPACITY = 1e-2
"""A refined cell of the final grid is empty when one training step there gains less opacity than this."""

_ALL_CELLS_STEPS = 256
"""Steps during which every occupancy cell is measured (afterwards a random quarter per refresh)."""


def _default_field() -> NGPArchitecture:
    # 12 levels from 16 to 512 cells, 2^16 entries: ~1.3 M parameters, 2.5 MB stored in float16.
    grid = HashGridConfig.from_resolutions(16, 512, num_levels=12, log2_hashmap_size=16)
    return NGPArchitecture(hash_grid=grid)


@dataclass(frozen=True)
class TrainJobConfig:
    """A training run: data, output, schedule and the field's hyper-parameters."""

    data: Path
    """Dataset folder (or its transforms.json)."""
    out: Path
    """Checkpoint folder: field.json + field.safetensors."""
    iters: int = 3000
    """Optimisation steps."""
    resume: bool = False
    """Continue the run saved in --out (its configuration is kept; --iters may extend it)."""
    overwrite: bool = False
    """Replace a checkpoint already in --out instead of refusing."""
    rays_per_batch: int = 4096
    """Rays per step once the field has taken shape (at most)."""
    samples_per_batch: int = 1 << 16
    """Field evaluations a step aims at: while the field is still haze and rays march far, a step takes
    fewer rays to stay near this (Instant-NGP's dynamic batch), never more than ``rays_per_batch``. 0: no
    budget, every step takes ``rays_per_batch`` rays (as runs saved before this option did)."""
    learning_rate: float = 1e-2
    warmup_iters: int = 100
    num_steps: int = 512
    """Marching steps along the box diagonal during training."""
    distortion_weight: float = 0.01
    """Weight of Mip-NeRF 360's distortion loss (distances in box diagonals): it pulls each ray's weight
    into one thin shell, so surfaces come out crisp (measured: sharper depth, normals and meshes at no
    PSNR cost; 0 turns it off)."""
    planarity_weight: float = 0.0
    """Weight of a planarity prior on the rendered depth (:mod:`nerfdata.jobs.planarity`): a saturating penalty
    on the second difference of inverse depth over triplets of adjacent pixels, which is zero on any plane.
    For scenes of planes: it flattens the steps a photometric loss learns where the albedo changes (measured
    on the tabletop at 0.003: normals 3.9 degrees mean against 5.2, mesh 0.40% against 0.46%, PSNR within
    0.1 dB). Off by default: on the mug it bent the cup (depth error 2.0% against 0.6%) and on the room it
    cost 0.8 dB (README, "Training for geometry")."""
    planarity_rays: float = 0.5
    """Share of a step's rays drawn as triplets of adjacent pixels for the planarity prior (the rest at random;
    every ray serves the photometric loss)."""
    field: NGPArchitecture = dataclasses.field(default_factory=_default_field)
    """The field's hyper-parameters but its box (from the data), e.g. --field.sh-degree 2; kept on --resume."""
    occupancy_resolution: int = 64
    """Cells per axis of the occupancy grid maintained during training."""
    occupancy_update_every: int = 16
    grid_refine: int = 4
    """The final checkpoint's occupancy grid is the training grid refined this many times per axis, a fine
    cell kept where one training step there gains over 1% opacity: renders then skip the soft shells
    around surfaces (fewer samples per hit ray, the same image: "Samples per ray" in README; 2 MiB of bits
    at 256^3). 1: store the training grid as it is."""
    checkpoint_every: int = 500
    background: Literal["auto", "random", "white", "black"] = "auto"
    """Colour behind the scene while training. ``random``: a new uniform colour per ray, composited under RGBA
    images' alpha (Instant-NGP's remedy: a light surface cannot be learned half transparent against a
    background of its own colour). ``auto``: random when every training image has alpha, else white."""
    storage: Literal["float32", "float16"] = "float16"
    """Precision of the weights in the final checkpoint (periodic ones are float32, for exact resume)."""
    eval_views: int = 20
    """Test views rendered at the end to report PSNR (0: none; all if the split has fewer)."""
    seed: int = 0
    device: DeviceName = "auto"
    """Where the field, its optimiser, the rays and the images live: auto (CUDA when present), cpu or cuda.
    Not saved with the run (a run resumes on any device)."""

    def __post_init__(self) -> None:
        counts = (
            "iters",
            "rays_per_batch",
            "num_steps",
            "occupancy_resolution",
            "occupancy_update_every",
            "grid_refine",
            "checkpoint_every",
        )
        for name in counts:
            if getattr(self, name) < 1:
                raise ConfigError(f"train: {name} must be >= 1, got {getattr(self, name)}")
        if self.samples_per_batch < 0:
            raise ConfigError(f"train: samples_per_batch must be >= 0 (0: a fixed batch), got {self.samples_per_batch}")
        if self.distortion_weight < 0:
            raise ConfigError(f"train: distortion_weight must be >= 0, got {self.distortion_weight}")
        if self.planarity_weight < 0:
            raise ConfigError(f"train: planarity_weight must be >= 0, got {self.planarity_weight}")
        if not 0.0 < self.planarity_rays <= 1.0:
            raise ConfigError(f"train: planarity_rays must be in (0, 1], got {self.planarity_rays}")
        if not self.learning_rate > 0:
            raise ConfigError(f"train: learning_rate must be positive, got {self.learning_rate}")


@dataclass
class TrainResult:
    checkpoint: Path
    iterations: int
    seconds: float
    train_psnr: float
    test_psnr: float | None


def psnr(mse: float) -> float:
    """Peak signal-to-noise ratio of images in [0, 1] from their mean squared error."""
    return -10.0 * math.log10(max(mse, 1e-12))


def estimate_aabb(cameras: list[Camera]) -> np.ndarray:
    """A box around what the cameras look at, for datasets that give none.

    The focus is the point closest (least squares) to every optical axis; the half-size is the
    median camera distance to it times the tangent of the widest half field of view, i.e. the
    extent one camera sees at the focus distance.
    """
    centres = np.stack([c.c2w_opengl[:3, 3].double().numpy() for c in cameras])
    axes = np.stack([c.forward.double().numpy() for c in cameras])
    projector = np.eye(3)[None] - axes[:, :, None] * axes[:, None, :]
    focus = np.linalg.lstsq(projector.sum(0), np.einsum("nij,nj->i", projector, centres), rcond=None)[0]
    distance = float(np.median(np.linalg.norm(centres - focus, axis=-1)))
    half_fov = max(math.atan(0.5 * c.intrinsics.width / c.intrinsics.fl_x) for c in cameras)
    half = distance * math.tan(half_fov)
    return np.stack([focus - half, focus + half])


_BACKGROUND_VALUE: dict[str, float | None] = {"white": 1.0, "black": 0.0, "random": None}
"""Grey level a resolved ``background`` composites RGBA images onto (``None``: a new colour per ray)."""


def _load_images(frames: list[DatasetFrame], background: float | None) -> torch.Tensor:
    """Training colours ``(n, 3)``, RGBA composited onto ``background``; ``None`` keeps alpha: ``(n, 4)``
    (an opaque image gets alpha 1)."""
    images = []
    for frame in frames:
        try:
            image = iio.imread(frame.image_path)
        except (OSError, ValueError, SyntaxError) as error:  # PIL reports a broken PNG as a SyntaxError
            raise NerfDataError(f"{frame.image_path}: unreadable image ({error})") from None
        scale = 65535.0 if image.dtype == np.uint16 else 255.0
        image = image.astype(np.float32) / scale
        if image.ndim == 2:
            image = np.repeat(image[..., None], 3, axis=-1)
        if image.shape[-1] == 3 and background is None:
            image = np.concatenate([image, np.ones_like(image[..., :1])], axis=-1)
        elif image.shape[-1] == 4 and background is not None:  # composite RGBA onto the training background
            image = image[..., :3] * image[..., 3:] + background * (1.0 - image[..., 3:])
        channels = 3 if background is not None else 4
        images.append(torch.from_numpy(np.ascontiguousarray(image[..., :channels])).reshape(-1, channels))
    return torch.cat(images)


def _has_alpha(frames: list[DatasetFrame]) -> bool:
    try:
        return all(len(shape := iio.improps(f.image_path).shape) == 3 and shape[-1] == 4 for f in frames)
    except (OSError, ValueError, SyntaxError):
        return False  # an unreadable image is reported, naming it, when the images are loaded


def resolve_background(config: TrainJobConfig, frames: list[DatasetFrame]) -> Literal["random", "white", "black"]:
    """The background a run trains against: ``auto`` is ``random`` when every training image has alpha."""
    if config.background != "auto":
        return config.background
    return "random" if _has_alpha(frames) else "white"


def _learning_rate(config: TrainJobConfig, iteration: int) -> float:
    """Linear warm-up, then x0.33 at 50%, 75% and 90% of the run (the Instant-NGP recipe in nerfacc)."""
    warmup = min(1.0, (iteration + 1) / max(config.warmup_iters, 1))
    decay = 0.33 ** sum(iteration >= fraction * config.iters for fraction in (0.5, 0.75, 0.9))
    return config.learning_rate * warmup * decay


def _optimizer(field_: NGPField, config: TrainJobConfig) -> torch.optim.Adam:
    mlp = [p for name, p in field_.named_parameters() if not name.startswith("encoder.")]
    return torch.optim.Adam(
        [{"params": [field_.encoder.params], "weight_decay": 0.0}, {"params": mlp, "weight_decay": 1e-6}],
        lr=config.learning_rate,
        betas=(0.9, 0.99),
        eps=1e-15,
        fused=True,  # one kernel over each parameter (CPU and CUDA): a third of the time of the per-tensor loop
    )


def _restore_optimizer(optimizer: torch.optim.Adam, tensors: dict[str, torch.Tensor]) -> None:
    saved = optimizer.state_dict()
    for name, value in tensors.items():
        if name.startswith("adam."):
            _, index, key = name.split(".")
            saved["state"].setdefault(int(index), {})[key] = value
    optimizer.load_state_dict(saved)


@torch.no_grad()
def _evaluate(field_: NGPField, frames: list[DatasetFrame], occupancy: OccupancyGrid, background: str) -> float:
    options = RenderOptions(normals=False, background=background)  # type: ignore[arg-type]
    errors = []
    for frame in frames:
        target = _load_images([frame], _BACKGROUND_VALUE[background]).to(field_.aabb.device)
        image = render_image(field_, frame.camera, options, occupancy)
        errors.append(float(((image.rgb.reshape(-1, 3) - target) ** 2).mean()))
    return psnr(float(np.mean(errors)))


@dataclass
class TrainState:
    """A run in progress: what a periodic checkpoint holds, and what each step changes."""

    config: TrainJobConfig
    field: NGPField
    optimizer: torch.optim.Adam
    ema: torch.Tensor
    """Decaying maximum of the density per occupancy cell, ``(R^3,)`` (``inf``: not measured yet)."""
    occupancy: OccupancyGrid
    """The grid the renderer skips empty cells by; rebuilt from ``ema`` by :func:`refresh_occupancy`."""
    generator: torch.Generator
    """The run's only source of randomness after the field's initialisation (saved, for exact resume)."""
    iteration: int
    """Optimisation steps done."""
    batch_rays: int
    """Rays the next step takes (see ``TrainJobConfig.samples_per_batch``)."""


def _training_state(state: TrainState) -> dict[str, torch.Tensor]:
    tensors = {
        "occupancy_ema": state.ema, "rng": state.generator.get_state(), "batch_rays": torch.tensor(state.batch_rays),
    }
    for index, values in state.optimizer.state_dict()["state"].items():
        for key, value in values.items():
            tensors[f"adam.{index}.{key}"] = torch.as_tensor(value)
    return tensors


def _run_config(config: TrainJobConfig) -> dict[str, Any]:
    """The config a checkpoint saves: where the run computed is not part of it (nor of the checkpoint's checksum)."""
    return {key: value for key, value in to_dict(config).items() if key != "device"}


def _saved_config(out: Path, values: dict[str, Any]) -> TrainJobConfig:
    """The config a periodic checkpoint saved (older ones kept three of the field's keys flat: moved into ``field``)."""
    flat = {key: values[key] for key in _FLAT_FIELD_KEYS if key in values}
    values = {key: value for key, value in values.items() if key not in flat}
    if flat:
        values["field"] = values.get("field", {}) | flat
    # Runs saved before the dynamic batch resume as they ran: rays_per_batch rays every step; and those saved
    # before the planarity prior, without it.
    values.setdefault("samples_per_batch", 0)
    values.setdefault("planarity_weight", 0.0)
    return from_dict(TrainJobConfig, values, f"{out}: saved training config")


def _start(
    config: TrainJobConfig, dataset: TransformsDataset, generator: torch.Generator, device: torch.device
) -> TrainState:
    aabb = dataset.aabb
    if aabb is None:
        aabb = estimate_aabb([f.camera for f in dataset.split("train")])
    # Initialised on the CPU, then moved: the same seed gives the same start on every device.
    field_ = NGPField(config.field.in_box(tuple(tuple(float(v) for v in corner) for corner in aabb)))  # type: ignore[arg-type]
    field_ = field_.to(device)
    ema = torch.full((config.occupancy_resolution**3,), float("inf"), device=device)  # all occupied until measured
    occupancy = occupancy_from_ema(ema, field_.aabb)
    return TrainState(
        config, field_, _optimizer(field_, config), ema, occupancy, generator, iteration=0,
        batch_rays=config.rays_per_batch,
    )


def _resume(config: TrainJobConfig, generator: torch.Generator, device: torch.device) -> TrainState:
    saved_state = load_training_state(config.out)
    if saved_state is None:
        raise NerfDataError(
            f"{config.out}: no training state to resume (the run is complete or was not saved by train)"
        )
    tensors, info = saved_state
    saved = _saved_config(config.out, info["config"])
    config = replace(saved, iters=config.iters, resume=True, out=config.out, data=config.data, device=config.device)
    field_: NGPField = load_checkpoint(config.out, device).field.train().requires_grad_(True)  # type: ignore[assignment]
    optimizer = _optimizer(field_, config)
    _restore_optimizer(optimizer, tensors)  # Adam moves its moments onto the parameters' device
    ema = tensors["occupancy_ema"].float().to(device)
    generator.set_state(tensors["rng"])
    occupancy = occupancy_from_ema(ema, field_.aabb)
    # Runs saved before the dynamic batch took rays_per_batch rays every step.
    batch_rays = int(tensors["batch_rays"]) if "batch_rays" in tensors else config.rays_per_batch
    iteration = int(info["iteration"])
    return TrainState(config, field_, optimizer, ema, occupancy, generator, iteration, batch_rays)


def start_or_resume(config: TrainJobConfig, dataset: TransformsDataset) -> TrainState:
    """A new run (in the dataset's box, or one around what the cameras see), or the one saved in ``config.out``.

    On resume the saved configuration is kept but for ``iters``, ``data`` and ``out``; the weights,
    optimizer moments, occupancy statistics and random state continue exactly.

    Raises:
        NerfDataError: ``config.out`` holds a checkpoint and neither ``resume`` nor ``overwrite``
            is set, or ``resume`` is set and it holds no training state.
    """
    if (config.out / "field.json").exists() and not (config.resume or config.overwrite):
        raise NerfDataError(f"{config.out}: already holds a checkpoint; pass --resume to continue it or --overwrite")
    device = resolve_device(config.device)
    torch.manual_seed(config.seed)  # the field's initialisation
    generator = torch.Generator().manual_seed(config.seed)  # on the CPU: the same draws on every device
    return _resume(config, generator, device) if config.resume else _start(config, dataset, generator, device)


def train_step(
    state: TrainState, rays: Rays, targets: torch.Tensor, options: RenderOptions, image_sizes: torch.Tensor
) -> float:
    """One optimisation step on ``state.batch_rays`` rays of ``rays`` (colours ``targets``, ``(n, 3)``): the
    images' rays one after the other, each image row-major, ``image_sizes`` ``(images, 2)`` their widths and
    heights. A share of the rays (``planarity_rays``) are triplets of adjacent pixels, the rest at random.

    With ``targets`` ``(n, 4)`` (straight alpha; ``options.background`` must be ``"none"``) each ray is
    composited, rendered and target alike, onto its own random background colour.

    Loss: photometric MSE plus, when ``distortion_weight > 0``, Mip-NeRF 360's distortion loss
    (distances in box diagonals), and when ``planarity_weight > 0`` the planarity prior over the triplets
    (:func:`~nerfdata.jobs.planarity.planarity_loss`). Returns the photometric MSE; ``state.iteration``
    advances by one and ``state.batch_rays`` moves toward ``samples_per_batch`` evaluations per step.

    Raises:
        NerfDataError: the loss is NaN or infinite (the run diverged); the weights are left untouched.
    """
    config, field_ = state.config, state.field
    for group in state.optimizer.param_groups:
        group["lr"] = _learning_rate(config, state.iteration)
    triplets = int(state.batch_rays * config.planarity_rays / 3) if config.planarity_weight > 0 else 0
    batch = torch.randint(len(rays), (state.batch_rays - 3 * triplets,), generator=state.generator)
    if triplets:
        widths, heights = image_sizes.T
        batch = torch.cat([batch, pixel_triplets(widths, heights, triplets, state.generator).reshape(-1)])
    batch = batch.to(targets.device)
    # The prior reads the renderer's own expected range (its termination distances, off in training without it).
    options = replace(options, return_samples=config.distortion_weight > 0, ranges=triplets > 0)
    batch_rays = rays[batch]
    result = render_rays(field_, batch_rays, options, state.occupancy, state.generator)
    rgb, target = result.rgb, targets[batch]
    if target.shape[1] == 4:  # straight alpha: composite both onto a random colour per ray
        background = torch.rand(len(batch), 3, generator=state.generator).to(target.device)
        rgb = rgb + (1.0 - result.accumulation[:, None]) * background
        target = target[:, :3] * target[:, 3:] + background * (1.0 - target[:, 3:])
    photometric = torch.nn.functional.mse_loss(rgb, target)
    loss = photometric
    if result.samples is not None:  # returned for the distortion loss
        s = result.samples
        scale = 1.0 / field_.extent
        distortion = distortion_loss(s.ray_indices, s.t_start * scale, s.t_end * scale, s.weights, len(batch))
        loss = loss + config.distortion_weight * distortion.mean()
    if triplets:  # the batch's last 3 * triplets rays: first pixels, middle ones, last ones
        depths = batch_rays.depth_z(result.range_expected)[-3 * triplets :].reshape(3, triplets)
        opacity = result.accumulation[-3 * triplets :].reshape(3, triplets)
        loss = loss + config.planarity_weight * planarity_loss(depths, opacity)
    if not torch.isfinite(loss):  # before the step, so that the weights stay as they were
        raise NerfDataError(
            f"train: the loss is {float(loss.detach())} at step {state.iteration + 1}; the run diverged "
            f"(a learning_rate of "
            f"{config.learning_rate:g} may be too high) and stops without saving a checkpoint of it"
        )
    state.optimizer.zero_grad(set_to_none=True)
    loss.backward()
    state.optimizer.step()
    state.iteration += 1
    if config.samples_per_batch > 0:
        samples = max(int(result.num_samples.sum()), 1)
        state.batch_rays = max(min(round(len(batch) * config.samples_per_batch / samples), config.rays_per_batch), 1)
    return float(photometric.detach())


def refresh_occupancy(state: TrainState) -> None:
    """Fold the field's current density into the occupancy statistics and rebuild the grid from them.

    During the first 256 steps every cell is measured (cells never measured count as empty from
    then on); later a random quarter of them, as in Instant-NGP.
    """
    num_cells = state.ema.numel()
    if state.iteration <= _ALL_CELLS_STEPS:  # the step just taken was one of the first 256
        cells, ema = torch.arange(num_cells), torch.nan_to_num(state.ema, posinf=0.0)
    else:
        cells, ema = torch.randint(num_cells, (num_cells // 4,), generator=state.generator), state.ema
    cells = cells.to(ema.device)
    state.ema = update_density_ema(ema, state.field.density, state.field.aabb, cells, state.generator)
    state.occupancy = occupancy_from_ema(state.ema, state.field.aabb)


def stored_grid(state: TrainState) -> OccupancyGrid:
    """The grid the final checkpoint keeps: the training grid, refined by ``grid_refine``.

    Refining only clears cells (:func:`~nerfdata.fields.occupancy.refine_occupancy_grid`), and by the
    opacity of the training step, the coarsest a shipped job renders with: finer steps are conservative.
    """
    if state.config.grid_refine == 1:
        return state.occupancy
    field_, config = state.field, state.config
    return refine_occupancy_grid(
        state.occupancy, field_.density, field_.extent / config.num_steps, config.grid_refine, GRID_STEP_OPACITY
    )


def save_checkpoint(state: TrainState) -> Path:
    """A checkpoint of the run in progress (float32 weights, the training grid, the whole training state)."""
    info = {"config": _run_config(state.config), "iteration": state.iteration, "complete": False}
    return save_field(state.field, state.config.out, state.occupancy, training=(_training_state(state), info))


def save_trained_field(
    state: TrainState, dataset: TransformsDataset, grid: OccupancyGrid, seconds: float, test_psnr: float | None
) -> Path:
    """The final checkpoint: weights in ``storage`` precision and ``grid`` (:func:`stored_grid`), no training state."""
    config = state.config
    info = {
        "config": _run_config(config), "iteration": config.iters, "complete": True,
        "seconds": round(seconds, 1), "test_psnr": test_psnr,
    }
    storage = torch.float16 if config.storage == "float16" else torch.float32
    metadata = {"dataset": str(dataset.path), "meters_per_unit": dataset.meters_per_unit, "training": info}
    return save_field(state.field, config.out, grid, metadata=metadata, storage_dtype=storage)


def run_train(config: TrainJobConfig, show_progress: bool = True) -> TrainResult:
    """Train (or resume) and write the checkpoint; returns where it is and how it went."""
    dataset = read_transforms(config.data)
    train_frames = dataset.split("train")
    test_frames = [f for f in dataset.frames if f.split == "test"]
    state = start_or_resume(config, dataset)
    state.config = config = replace(state.config, background=resolve_background(state.config, train_frames))
    device = state.field.aabb.device
    fixed = _BACKGROUND_VALUE[config.background]
    targets = _load_images(train_frames, fixed).to(device)
    rays = Rays.cat([frame.camera.rays(device=device) for frame in train_frames])
    options = RenderOptions(
        num_steps=config.num_steps, background="none" if fixed is None else config.background,  # type: ignore[arg-type]
        normals=False, ranges=False, stratified=True,
        # Training keeps its deeper stop and fixed rounds: the tail a render drops still carries gradients.
        min_transmittance=1e-4, adaptive_rounds=False, samples_per_round=GRADIENT_SAMPLES_PER_ROUND,
        chunk_rays=config.rays_per_batch,
    )
    sizes = torch.tensor([[f.camera.intrinsics.width, f.camera.intrinsics.height] for f in train_frames])
    start = time.perf_counter()
    running_mse = None
    earlier = {"done in an earlier run": state.iteration} if state.iteration else None
    progress = Reporter("train", config.iters, "steps", enabled=show_progress, done=earlier, work_unit="rays")
    with progress:
        while state.iteration < config.iters:
            batch_rays = state.batch_rays
            mse = train_step(state, rays, targets, options, sizes)
            running_mse = mse if running_mse is None else 0.95 * running_mse + 0.05 * mse
            if state.iteration % config.occupancy_update_every == 0:
                refresh_occupancy(state)
            if state.iteration % config.checkpoint_every == 0 and state.iteration < config.iters:
                save_checkpoint(state)
            status = f"loss {running_mse:.5f}, psnr {psnr(running_mse):.2f}"
            progress.advance(work=batch_rays, status=status)
    seconds = time.perf_counter() - start
    state.field.eval().requires_grad_(False)
    # Judged as it will be rendered: through the grid the checkpoint keeps.
    grid = stored_grid(state)
    test_psnr = None
    if test_frames and config.eval_views > 0:
        # A field trained on random colours is judged on white, where the scene datasets' RGB lies.
        shown = "white" if config.background == "random" else config.background
        test_psnr = _evaluate(state.field, test_frames[: config.eval_views], grid, shown)
    checkpoint = save_trained_field(state, dataset, grid, seconds, test_psnr)
    return TrainResult(checkpoint, config.iters, seconds, psnr(running_mse or 1.0), test_psnr)
