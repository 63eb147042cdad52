"""``nerfdata correspond``: dense correspondences between the views of a rendered dataset.

The flow: read the dataset's cameras (``transforms.json``) and depth maps -> choose overlapping view
pairs (:mod:`nerfdata.labels.pair_selection`) -> for each pair, draw ``per_pair`` surface pixels of
view A (seeded per pair) and match them to view B through the field
(:func:`nerfdata.labels.correspondences.match_pixels`) -> ``AAAAA_BBBBB.npz`` per pair, previews of
the first pairs -> ``pairs.json`` last.

``pairs.json`` marks a complete export: it is removed before anything else is written and written
only after every pair, so an interrupted run never leaves an index pointing at a mix of old and new
files. The same config and seed give byte-identical files, under any executor: the pairs are matched
in shards (:func:`match_pairs`, in this process or on Ray workers), and the driver alone writes
``pairs.json`` and the manifest. ``correspondences/manifest.json`` lists every file of the export
before it is written (:mod:`nerfdata.writers.output_folder`: an earlier export of another job is
replaced only with ``overwrite``, and then only its listed files removed).
"""

import hashlib
import math
import os
import time
from collections.abc import Sequence
from dataclasses import dataclass, replace
from dataclasses import field as dataclass_field
from pathlib import Path
from typing import Any

import imageio.v3 as iio
import numpy as np
import torch
from PIL import Image, ImageDraw

from nerfdata.atomic import write_json_atomic
from nerfdata.cameras import Camera
from nerfdata.config import from_dict, to_dict
from nerfdata.device import DeviceName, resolve_device
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
from nerfdata.fields.base import Field, LoadedField
from nerfdata.fields.loading import load_field
from nerfdata.fields.occupancy import OccupancyGrid
from nerfdata.labels.correspondences import ARRAYS, write_matches
from nerfdata.labels.matching import MatchConfig, Matches, MatchMode, match_pixels
from nerfdata.labels.pair_selection import ViewPair, choose_pairs
from nerfdata.progress import Reporter
from nerfdata.render.renderer import RenderOptions
from nerfdata.version import __version__
from nerfdata.writers.conventions import conventions
from nerfdata.writers.images import read_depth_png, to_uint8, write_png
from nerfdata.writers.manifest import (
    MANIFEST_NAME,
    check_recorded_field,
    config_hash,
    field_identity,
    read_manifest,
    sha256_json_file,
    write_manifest,
)
from nerfdata.writers.output_folder import claim_output_folder
from nerfdata.writers.preview import colormap
from nerfdata.writers.transforms import TransformsDataset, read_transforms

__all__ = ["CorrespondJobConfig", "CorrespondResult", "PairWork", "dataset_depths", "match_pairs", "run_correspond"]


@dataclass(frozen=True)
class CorrespondJobConfig:
    """A correspondence job: which field, which rendered dataset, how many pairs and matches."""

    dataset: Path
    """Dataset written by nerfdata render (folder holding transforms.json and depth/), complete."""
    field: Path | None = None
    """Checkpoint the dataset was rendered from (folder, or its .json / .safetensors); default: the one its
    manifest names. A field other than the one the manifest records (its sha256) is refused."""
    out: Path | None = None
    """Folder that receives correspondences/ (default: the dataset folder)."""
    overwrite: bool = False
    """Replace an earlier export of a different job in correspondences/ (only the files it lists)."""
    pairs: int = 20
    """View pairs to match (fewer when fewer pairs overlap enough)."""
    per_pair: int = 4096
    """Pixels of view A matched per pair (all surface pixels when A has fewer)."""
    mode: MatchMode = MatchConfig.mode
    """Depth per pixel: a sample of the ray-termination distribution (NeRF-Supervision), or its median / mean."""
    min_overlap: float = 0.3
    """Smallest share of surface a pair must have in common to be chosen."""
    depth_tolerance: float = MatchConfig.depth_tolerance
    """Visibility window around a point in view B, relative to its distance; surfaces closer together
    along B's ray than this (the two sides of a thin part) are not told apart."""
    min_accumulation: float = MatchConfig.min_accumulation
    """Both rays of a valid match must be at least this opaque."""
    min_visibility: float = MatchConfig.min_visibility
    """Weight view B's ray must put within the window around the point for a valid match."""
    preview_pairs: int = 3
    """Pairs drawn as preview images (two views side by side, match lines coloured by confidence)."""
    num_steps: int | None = None
    """Render steps along the box diagonal; default: the dataset's render setting (its manifest), else 1024."""
    seed: int = 0
    """Seed of the pair choice, the pixels drawn in view A and the depth samples."""
    executor: ExecutorConfig = dataclass_field(default_factory=ExecutorConfig)
    """Where the pairs are matched: local (this process) or ray (--executor ray, --ray-address ADDR)."""
    device: DeviceName = "auto"
    """Where the field and the pairs' rays live: auto (CUDA when present), cpu or cuda."""

    def __post_init__(self) -> None:
        for name in ("pairs", "per_pair"):
            if getattr(self, name) < 1:
                raise ConfigError(f"{name} must be >= 1, got {getattr(self, name)}")
        if self.preview_pairs < 0:
            raise ConfigError(f"preview_pairs must be >= 0, got {self.preview_pairs}")
        if not 0.0 <= self.min_overlap <= 1.0:
            raise ConfigError(f"min_overlap must be in [0, 1], got {self.min_overlap}")
        if self.num_steps is not None and self.num_steps < 1:
            raise ConfigError(f"num_steps must be >= 1, got {self.num_steps}")
        _ = self.match_config  # raises ConfigError naming a bad mode or threshold

    @property
    def match_config(self) -> MatchConfig:
        return MatchConfig(self.mode, self.depth_tolerance, self.min_accumulation, self.min_visibility)


@dataclass
class CorrespondResult:
    """What :func:`run_correspond` wrote."""

    folder: Path
    """The correspondences folder (holding pairs.json)."""
    pairs: int
    matches: int
    valid: int
    seconds: float

    def describe(self) -> str:
        share = self.valid / max(self.matches, 1)
        return (f"{self.pairs} pairs, {self.matches:,} matches ({100 * share:.1f}% valid) in {self.seconds:.1f} s "
                f"({self.pairs / max(self.seconds, 1e-9):.2f} pairs/s); written to {self.folder}")


def dataset_depths(dataset: TransformsDataset) -> list[np.ndarray]:
    """The float32 z-depth map of every frame: ``depth/NNNNN.npy`` beside its PNG when present, else the PNG.

    Raises:
        NerfDataError: a frame without depth, naming ``transforms.json`` and the frame.
    """
    depths = []
    for index, frame in enumerate(dataset.frames):
        where = f"{dataset.path} frame {index}"
        if frame.depth_path is None:
            raise NerfDataError(f"{where}: no depth_file_path; render the dataset with the depth output")
        exact = frame.depth_path.with_suffix(".npy")
        try:
            if exact.is_file():
                depth = np.load(exact, allow_pickle=False).astype(np.float32)
            else:
                # The PNG holds depth / depth_unit_scale_factor; read_depth_png assumes nerfdata's 1/1000.
                depth = read_depth_png(frame.depth_path) * np.float32(dataset.depth_unit_scale_factor * 1000.0)
        except (OSError, ValueError) as error:
            raise NerfDataError(f"{where}: cannot read depth {frame.depth_path} ({error})") from None
        k = frame.camera.intrinsics
        if depth.shape != (k.height, k.width):
            size = f"{depth.shape[1]}x{depth.shape[0]}"
            raise NerfDataError(f"{where}: depth {exact.name} is {size}, the camera {k.width}x{k.height}")
        depths.append(depth)
    return depths


def _render_options(dataset_dir: Path, num_steps: int | None) -> RenderOptions:
    """The dataset's own ray-marching settings (so matches see the surfaces its depth maps show)."""
    manifest = read_manifest(dataset_dir) or {}
    render = manifest.get("config", {}).get("render") if manifest.get("kind") == "render" else None
    options = RenderOptions()
    if isinstance(render, dict):
        options = from_dict(RenderOptions, render, f"{dataset_dir / 'manifest.json'} render")
    return options if num_steps is None else replace(options, num_steps=num_steps)


def _pair_generator(seed: int, a: int, b: int) -> torch.Generator:
    """A generator for one pair, independent of which other pairs are matched."""
    digest = hashlib.sha256(f"correspond/{seed}/{a}/{b}".encode()).digest()
    return torch.Generator().manual_seed(int.from_bytes(digest[:7], "little"))


def _pixels_of(depth: np.ndarray, count: int, generator: torch.Generator) -> torch.Tensor:
    """Up to ``count`` surface pixels (depth > 0) drawn without replacement, as pixel centres, row-major."""
    rows, cols = np.nonzero(depth > 0)
    if len(rows) > count:
        keep = np.sort(torch.randperm(len(rows), generator=generator)[:count].numpy())
        rows, cols = rows[keep], cols[keep]
    return torch.from_numpy(np.stack([cols, rows], axis=-1).astype(np.float32) + 0.5)


def _view_tile(image_path: Path, depth: np.ndarray) -> np.ndarray:
    """A view's RGB as float ``(h, w, 3)``, or its colour-mapped depth when the image is not there."""
    if image_path.suffix.lower() in (".png", ".jpg", ".jpeg") and image_path.is_file():
        image = iio.imread(image_path)
        return image[..., :3].astype(np.float64) / np.iinfo(image.dtype).max
    surface = depth[depth > 0]
    low, high = (float(surface.min()), float(surface.max())) if surface.size else (0.0, 1.0)
    return colormap(depth, low, high, invalid=depth <= 0)


def match_preview(tile_a: np.ndarray, tile_b: np.ndarray, matches: Matches, lines: int, seed: int) -> np.ndarray:
    """Two views side by side (enlarged to about 256 pixels high) with up to ``lines`` valid matches
    drawn as lines coloured by confidence (viridis, 0..1); returns uint8 ``(H, 2W, 3)``."""
    h = max(tile_a.shape[0], tile_b.shape[0])
    scale = max(1, math.ceil(256 / h))
    canvas = np.ones((h, tile_a.shape[1] + tile_b.shape[1], 3))
    canvas[: tile_a.shape[0], : tile_a.shape[1]] = tile_a
    canvas[: tile_b.shape[0], tile_a.shape[1] :] = tile_b
    image = Image.fromarray(to_uint8(canvas)).resize((canvas.shape[1] * scale, h * scale), Image.Resampling.NEAREST)
    matches = matches.cpu()
    valid = matches.valid.nonzero()[:, 0].numpy()
    chosen = np.random.default_rng(seed).choice(valid, size=min(lines, len(valid)), replace=False)
    draw = ImageDraw.Draw(image)
    colors = to_uint8(colormap(matches.confidence.numpy()[chosen].astype(np.float64), 0.0, 1.0))
    for index, color in zip(np.sort(chosen), colors[np.argsort(chosen)], strict=True):
        (xa, ya), (xb, yb) = matches.uv_a[index].tolist(), matches.uv_b[index].tolist()
        start, end = (xa * scale, ya * scale), ((xb + tile_a.shape[1]) * scale, yb * scale)
        draw.line([start, end], fill=tuple(int(c) for c in color), width=1)
        for x, y in (start, end):
            draw.ellipse([x - 2, y - 2, x + 2, y + 2], outline=tuple(int(c) for c in color))
    return np.asarray(image)


def _pair_name(pair: ViewPair) -> str:
    return f"{pair.a:05d}_{pair.b:05d}"


def _pair_files(pairs: list[ViewPair], preview_pairs: int) -> list[str]:
    """Every file an export of ``pairs`` writes (pairs.json, each pair's .npz, the previews)."""
    previews = [f"preview_{_pair_name(pair)}.png" for pair in pairs[:preview_pairs]]
    return sorted(["pairs.json", *(f"{_pair_name(pair)}.npz" for pair in pairs), *previews])


def _source_manifest(dataset_dir: Path) -> dict[str, Any]:
    """The dataset's manifest, refused when it says the dataset is not complete ({} when it has none)."""
    manifest = read_manifest(dataset_dir)
    if manifest is None:
        return {}
    if manifest.get("complete") is not True:
        raise NerfDataError(
            f"{dataset_dir / MANIFEST_NAME}: the dataset is not complete (its manifest says so); "
            "finish it by rerunning its render job first"
        )
    return manifest


def _field_path(config: CorrespondJobConfig, manifest: dict[str, Any], dataset_dir: Path) -> Path:
    """``--field``, or the field the dataset's manifest names."""
    if config.field is not None:
        return config.field
    where = dataset_dir / MANIFEST_NAME
    recorded = (manifest.get("field") or {}).get("path") if isinstance(manifest.get("field"), dict) else None
    if not isinstance(recorded, str) or not recorded:
        what = "its manifest names no field" if manifest else "it has no manifest naming its field"
        raise NerfDataError(f"{dataset_dir}: {what}; pass --field (the checkpoint it was rendered from)")
    path = Path(recorded)
    if not path.exists():
        raise NerfDataError(f"{where}: names field {recorded}, which is not there from this folder; pass --field")
    return path


def run_correspond(config: CorrespondJobConfig, show_progress: bool = True) -> CorrespondResult:
    """Choose view pairs of ``config.dataset``, match them through its field and write the export.

    The dataset must be complete and the field the one that rendered it (the checksum its manifest
    records); both are checked, and the output folder claimed (locked; an earlier export of another
    job refused unless ``overwrite``), before any pair is matched. The same job again writes the
    same files.

    Raises:
        NerfDataError: a dataset without transforms.json or depth, not complete, a bad checkpoint or
            another field, no overlapping pair, an output folder holding another export or a user's files.
    """
    start = time.perf_counter()
    dataset = read_transforms(config.dataset, require_images=False)  # images are only previewed
    dataset_dir = dataset.path.parent
    source = _source_manifest(dataset_dir)
    field_path = _field_path(config, source, dataset_dir)
    loaded = load_field(field_path, resolve_device(config.device))
    check_recorded_field(source.get("field"), loaded.sha256, field_path, dataset_dir / MANIFEST_NAME)
    depths = dataset_depths(dataset)
    cameras: list[Camera] = [frame.camera for frame in dataset.frames]
    options = _render_options(dataset_dir, config.num_steps)
    field_ = loaded.field
    occupancy = loaded.occupancy_grid()
    pairs = choose_pairs(cameras, depths, config.pairs, config.min_overlap, config.seed)
    shards = split_shards(range(len(pairs)), config.executor.shard_size)
    executor = make_executor(config.executor, len(shards))  # joins Ray before anything is written
    folder = (config.out if config.out is not None else dataset_dir) / "correspondences"
    # The export is defined by what it is made of: the dataset (its index file's checksum), the
    # field's content and the config, not by where any of them lies (nor where or on what it runs).
    index_file = dataset_dir / MANIFEST_NAME if source else dataset.path
    given = to_dict(replace(config, field=field_path))
    how = ("field", "overwrite", "executor", "device")
    resolved = {"field": given["field"], **{k: v for k, v in given.items() if k not in how}}
    what = {k: v for k, v in resolved.items() if k not in ("field", "dataset", "out")}
    job_hash = config_hash(what | {"dataset": sha256_json_file(index_file),
                                   "field": field_identity(loaded.sha256, loaded.json_path)})
    with claim_output_folder(folder, job_hash, config.overwrite):
        manifest = {"kind": "correspondences", "complete": False, "config_hash": job_hash,
                    "executor": executor.describe(), "device": str(loaded.field.aabb.device),
                    "files": _pair_files(pairs, config.preview_pairs)}
        write_manifest(folder, manifest)  # lists every file before any is written
        (folder / "pairs.json").unlink(missing_ok=True)
        by_number: dict[int, dict[str, Any]] = {}
        progress = Reporter("correspond", len(pairs), "pairs", enabled=show_progress, outcomes=("matched",),
                            work_unit="matches")
        # CPU tensors only in what travels to workers (they may have no GPU); each runner moves the grid.
        work = PairWork(config, folder, tuple(pairs), cameras, depths, dataset, options, occupancy.to("cpu"))

        def take_in(result: ShardResult) -> None:
            for number, record in zip(result.shard.indices, result.items, strict=True):
                by_number[number] = record
                progress.advance(work=record["matches"])

        with progress:
            runner = field_work(match_pairs, work, loaded, field_path, config.device)
            failures = executor.run(runner, shards, take_in, retry_reporter(progress, "pairs"))
        if failures:
            progress.summary([f"failed: {f.describe('pairs')}" for f in failures])
            raise_failures(failures, "pairs")
        records = [by_number[number] for number in range(len(pairs))]
        index = {
            "nerfdata_version": __version__,
            "kind": "correspondences",
            "dataset": os.path.relpath(dataset.path, folder),
            "field": {"path": str(loaded.json_path), "sha256": loaded.sha256, "type": field_.field_type},
            "config": resolved,
            "seed": config.seed,
            "render": to_dict(options),
            "conventions": conventions("pairs", "files", "uv", "rotation_deg", "baseline", "overlap", "json_numbers"),
            "arrays": ARRAYS,
            "pairs": records,
        }
        write_json_atomic(folder / "pairs.json", index)
        manifest["complete"] = True
        write_manifest(folder, manifest)
    matches, valid = sum(r["matches"] for r in records), sum(r["valid"] for r in records)
    return CorrespondResult(folder, len(records), matches, valid, time.perf_counter() - start)


@dataclass(frozen=True)
class PairWork:
    """What matching a pair takes beside the field; picklable (each Ray worker gets it once)."""

    config: CorrespondJobConfig
    folder: Path
    """The correspondences folder."""
    pairs: tuple[ViewPair, ...]
    cameras: list[Camera]
    depths: list[np.ndarray]
    dataset: TransformsDataset
    options: RenderOptions
    occupancy: OccupancyGrid


def match_pairs(work: PairWork, loaded: LoadedField, numbers: Sequence[int]) -> list[dict[str, Any]]:
    """Match pairs ``numbers`` (positions in ``work.pairs``), writing their files; returns their records.

    A pair's files depend on the config, the seed and the pair only (its generator is the pair's own).
    """
    occupancy = work.occupancy.to(loaded.field.aabb.device)
    return [
        _match_pair(work.config, work.folder, number, work.pairs[number], work.cameras, work.depths, work.dataset,
                    loaded.field, work.options, occupancy)
        for number in numbers
    ]


def _match_pair(
    config: CorrespondJobConfig,
    folder: Path,
    number: int,
    pair: ViewPair,
    cameras: list[Camera],
    depths: list[np.ndarray],
    dataset: TransformsDataset,
    field_: Field,
    options: RenderOptions,
    occupancy: OccupancyGrid,
) -> dict[str, Any]:
    """Match one pair, write its ``.npz`` (and preview); returns its ``pairs.json`` record."""
    generator = _pair_generator(config.seed, pair.a, pair.b)
    pixels = _pixels_of(depths[pair.a], config.per_pair, generator)
    camera_a, camera_b = cameras[pair.a], cameras[pair.b]
    matches = match_pixels(field_, camera_a, camera_b, pixels, config.match_config, options, occupancy, generator)
    name = _pair_name(pair)
    write_matches(folder / f"{name}.npz", matches)
    record: dict[str, Any] = {
        "a": pair.a, "b": pair.b, "file": f"{name}.npz",
        "rotation_deg": round(pair.rotation_deg, 4), "baseline": round(pair.baseline, 6),
        "overlap": round(pair.overlap, 4),
        "matches": len(matches.valid), "valid": int(matches.valid.sum()),
    }
    if number < config.preview_pairs:
        tiles = [_view_tile(dataset.frames[i].image_path, depths[i]) for i in (pair.a, pair.b)]
        record["preview"] = f"preview_{name}.png"
        write_png(folder / record["preview"], match_preview(*tiles, matches, lines=64, seed=config.seed))
    return record
