"""``nerfdata train DATA_DIR --out CKPT_DIR``: fit an NGPField to a ``transforms.json`` dataset.

Photometric loss on random rays, an occupancy grid updated during training (decaying maximum of
density and a mean-capped threshold, Instant-NGP's rules), Adam with warm-up and step decay,
periodic checkpoints that hold the whole training state (so ``--resume`` continues exactly where an
interrupted run stopped), and a final compact checkpoint that keeps the training grid: the field's
appearance was fitted with exactly those cells skipped.
"""

import math
import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Literal

import imageio.v3 as iio
import numpy as np
import torch
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

from nerfdata.cameras import Camera, Rays
from nerfdata.config import from_dict, to_dict
from nerfdata.encoders.hashgrid import HashGridConfig
from nerfdata.errors import ConfigError, NerfDataError
from nerfdata.fields.checkpoint import load_field, load_training_state, save_field
from nerfdata.fields.ngp import NGPField, NGPFieldConfig
from nerfdata.fields.occupancy import OccupancyGrid, occupancy_from_ema, update_density_ema
from nerfdata.render.renderer import RenderOptions, render_image, render_rays
from nerfdata.render.volume import distortion_loss
from nerfdata.writers.transforms import DatasetFrame, read_transforms

__all__ = ["TrainJobConfig", "TrainResult", "estimate_aabb", "psnr", "run_train"]


def _default_grid() -> HashGridConfig:
    # 12 levels from 16 to 512 cells, 2^16 entries: ~1.3 M parameters, 2.5 MB stored in float16.
    return HashGridConfig.from_resolutions(16, 512, num_levels=12, log2_hashmap_size=16)


@dataclass(frozen=True)
class TrainJobConfig:
    """A training run: data, output, schedule and the field's size."""

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
    learning_rate: float = 1e-2
    warmup_iters: int = 100
    num_steps: int = 512
    """Marching steps along the box diagonal during training."""
    distortion_weight: float = 0.0
    """Weight of Mip-NeRF 360's distortion loss (distances in box diagonals): crisper surfaces."""
    hash_grid: HashGridConfig = field(default_factory=_default_grid)
    density_hidden_dim: int = 64
    color_hidden_dim: int = 64
    occupancy_resolution: int = 64
    """Cells per axis of the occupancy grid maintained during training."""
    occupancy_update_every: int = 16
    checkpoint_every: int = 500
    background: Literal["white", "black"] = "white"
    """Colour behind the scene in the training images (RGBA images are composited onto it)."""
    storage: Literal["float32", "float16"] = "float16"
    """Precision of the weights in the final checkpoint (periodic ones are float32, for exact resume)."""
    eval_views: int = 20
    """Test views rendered at the end to report PSNR (0: none; all if the split has fewer)."""
    seed: int = 0

    def __post_init__(self) -> None:
        for name in ("iters", "rays_per_batch", "num_steps", "occupancy_resolution", "occupancy_update_every", "checkpoint_every"):
            if getattr(self, name) < 1:
                raise ConfigError(f"train: {name} must be >= 1, got {getattr(self, name)}")
        if self.distortion_weight < 0:
            raise ConfigError(f"train: distortion_weight must be >= 0, got {self.distortion_weight}")
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


def _load_images(frames: list[DatasetFrame], background: float) -> torch.Tensor:
    images = []
    for frame in frames:
        try:
            image = iio.imread(frame.image_path)
        except (OSError, ValueError) as error:
            raise NerfDataError(f"{frame.image_path}: unreadable image ({error})") from None
        scale = 65535.0 if image.dtype == np.uint16 else 255.0
        image = image.astype(np.float32) / scale
        if image.ndim == 2:
            image = np.repeat(image[..., None], 3, axis=-1)
        if image.shape[-1] == 4:  # composite RGBA onto the training background
            image = image[..., :3] * image[..., 3:] + background * (1.0 - image[..., 3:])
        images.append(torch.from_numpy(np.ascontiguousarray(image[..., :3])).reshape(-1, 3))
    return torch.cat(images)


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
    )


def _training_state(optimizer: torch.optim.Adam, ema: torch.Tensor, generator: torch.Generator) -> dict[str, torch.Tensor]:
    state = {"occupancy_ema": ema, "rng": generator.get_state()}
    for index, values in optimizer.state_dict()["state"].items():
        for key, value in values.items():
            state[f"adam.{index}.{key}"] = torch.as_tensor(value)
    return state


def _restore_optimizer(optimizer: torch.optim.Adam, tensors: dict[str, torch.Tensor]) -> None:
    saved = optimizer.state_dict()
    for name, value in tensors.items():
        if name.startswith("adam."):
            _, index, key = name.split(".")
            saved["state"].setdefault(int(index), {})[key] = value
    optimizer.load_state_dict(saved)


def _prepare_out(config: TrainJobConfig) -> None:
    if (config.out / "field.json").exists() and not (config.resume or config.overwrite):
        raise NerfDataError(f"{config.out}: already holds a checkpoint; pass --resume to continue it or --overwrite")


@torch.no_grad()
def _evaluate(field_: NGPField, frames: list[DatasetFrame], occupancy: OccupancyGrid, background: str) -> float:
    options = RenderOptions(normals=False, background=background)  # type: ignore[arg-type]
    errors = []
    for frame in frames:
        target = _load_images([frame], 1.0 if background == "white" else 0.0)
        image = render_image(field_, frame.camera, options, occupancy)
        errors.append(float(((image.rgb.reshape(-1, 3) - target) ** 2).mean()))
    return psnr(float(np.mean(errors)))


def run_train(config: TrainJobConfig, show_progress: bool = True) -> TrainResult:
    """Train (or resume) and write the checkpoint; returns where it is and how it went."""
    dataset = read_transforms(config.data)
    train_frames = dataset.split("train")
    test_frames = [f for f in dataset.frames if f.split == "test"]
    _prepare_out(config)
    torch.manual_seed(config.seed)
    generator = torch.Generator().manual_seed(config.seed)
    start_iteration = 0
    if config.resume:
        state = load_training_state(config.out)
        if state is None:
            raise NerfDataError(f"{config.out}: no training state to resume (the run is complete or was not saved by train)")
        tensors, info = state
        saved = from_dict(TrainJobConfig, info["config"], f"{config.out}: saved training config")
        config = replace(saved, iters=config.iters, resume=True, out=config.out, data=config.data)
        loaded = load_field(config.out)
        field_: NGPField = loaded.field.train().requires_grad_(True)  # type: ignore[assignment]
        optimizer = _optimizer(field_, config)
        _restore_optimizer(optimizer, tensors)
        ema = tensors["occupancy_ema"].float()
        generator.set_state(tensors["rng"])
        start_iteration = int(info["iteration"])
    else:
        aabb = dataset.aabb if dataset.aabb is not None else estimate_aabb([f.camera for f in train_frames])
        field_config = NGPFieldConfig(
            aabb=tuple(tuple(float(v) for v in corner) for corner in aabb),  # type: ignore[arg-type]
            hash_grid=config.hash_grid,
            density_hidden_dim=config.density_hidden_dim,
            color_hidden_dim=config.color_hidden_dim,
        )
        field_ = NGPField(field_config)
        optimizer = _optimizer(field_, config)
        ema = torch.full((config.occupancy_resolution**3,), float("inf"))  # everything occupied until measured
    background = 1.0 if config.background == "white" else 0.0
    targets = _load_images(train_frames, background)
    rays = Rays.cat([frame.camera.rays() for frame in train_frames])
    options = RenderOptions(
        num_steps=config.num_steps, background=config.background, normals=False, stratified=True,
        chunk_rays=config.rays_per_batch, return_samples=config.distortion_weight > 0,
    )
    occupancy = occupancy_from_ema(ema, field_.aabb)
    info: dict[str, Any] = {"config": to_dict(config), "iteration": start_iteration, "complete": False}
    num_cells = ema.numel()
    start = time.perf_counter()
    running_mse = None
    columns = (TextColumn("training"), BarColumn(), MofNCompleteColumn(), TextColumn("{task.fields[status]}"), TimeRemainingColumn())
    with Progress(*columns, disable=not show_progress) as progress:
        task = progress.add_task("train", total=config.iters, completed=start_iteration, status="")
        for iteration in range(start_iteration, config.iters):
            for group in optimizer.param_groups:
                group["lr"] = _learning_rate(config, iteration)
            batch = torch.randint(len(rays), (config.rays_per_batch,), generator=generator)
            result = render_rays(field_, rays[batch], options, occupancy, generator)
            photometric = torch.nn.functional.mse_loss(result.rgb, targets[batch])
            loss = photometric
            if result.samples is not None:
                s = result.samples
                scale = 1.0 / field_.extent
                distortion = distortion_loss(s.ray_indices, s.t_start * scale, s.t_end * scale, s.weights, len(batch))
                loss = loss + config.distortion_weight * distortion.mean()
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            mse = float(photometric.detach())
            running_mse = mse if running_mse is None else 0.95 * running_mse + 0.05 * mse
            if (iteration + 1) % config.occupancy_update_every == 0:
                cells = torch.arange(num_cells) if iteration < 256 else torch.randint(num_cells, (num_cells // 4,), generator=generator)
                ema = update_density_ema(torch.nan_to_num(ema, posinf=0.0) if iteration < 256 else ema, field_.density, field_.aabb, cells, generator)
                occupancy = occupancy_from_ema(ema, field_.aabb)
            if (iteration + 1) % config.checkpoint_every == 0 and iteration + 1 < config.iters:
                info["iteration"] = iteration + 1
                save_field(field_, config.out, occupancy, training=(_training_state(optimizer, ema, generator), dict(info)))
            progress.update(task, advance=1, status=f"loss {running_mse:.5f} psnr {psnr(running_mse):.2f}")
    seconds = time.perf_counter() - start
    field_.eval().requires_grad_(False)
    # The field was fitted with the training grid's empty cells skipped: render it with the same grid.
    final_grid = occupancy
    test_psnr = None
    if test_frames and config.eval_views > 0:
        test_psnr = _evaluate(field_, test_frames[: config.eval_views], final_grid, config.background)
    info.update(iteration=config.iters, complete=True, seconds=round(seconds, 1), test_psnr=test_psnr)
    storage = torch.float16 if config.storage == "float16" else torch.float32
    metadata = {"dataset": str(dataset.path), "meters_per_unit": dataset.meters_per_unit, "training": info}
    checkpoint = save_field(field_, config.out, final_grid, metadata=metadata, storage_dtype=storage)
    return TrainResult(checkpoint, config.iters, seconds, psnr(running_mse or 1.0), test_psnr)

