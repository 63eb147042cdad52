"""Dense correspondences on disk and back: the export's files, and batches for descriptor training.

On disk (DESIGN.md): ``correspondences/pairs.json`` and one ``AAAAA_BBBBB.npz`` per pair (frame
indices in the dataset's ``transforms.json``) holding ``uv_a``, ``uv_b`` (float32 ``(n, 2)`` pixel
coordinates, x right, y down, pixel centres at +0.5), ``valid`` (bool ``(n,)``) and ``confidence``
(float32 ``(n,)``); how matches are made is in :mod:`nerfdata.labels.matching`. :func:`load_pairs`
reads them back as batches of tensors for a descriptor-training loop.
"""

import io
import zipfile
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import imageio.v3 as iio
import numpy as np
import torch
from jaxtyping import Float, Int
from torch import Tensor

from nerfdata.atomic import atomic_path
from nerfdata.errors import ConfigError, NerfDataError
from nerfdata.labels.matching import Matches
from nerfdata.strict_json import read_json
from nerfdata.writers.transforms import read_transforms

__all__ = [
    "ARRAYS",
    "CorrespondenceBatch",
    "correspondence_folder",
    "load_pairs",
    "read_pair",
    "read_pairs_json",
    "sample_at",
    "write_matches",
]

ARRAYS: dict[str, str] = {
    "uv_a": "float32 (n, 2): pixel in view A, x right, y down, pixel centres at +0.5",
    "uv_b": "float32 (n, 2): where the same surface point projects in view B (meaningful where valid)",
    "valid": "bool (n,): in front of B, inside B's image, opaque in both views, not occluded in B",
    "confidence": "float32 (n,) in [0, 1]: weight of ray A near the point times weight of ray B near it",
}
"""The arrays of every ``AAAAA_BBBBB.npz``, as ``pairs.json`` describes them."""


def write_matches(path: str | Path, matches: Matches) -> None:
    """Write one pair's matches as ``.npz`` atomically, byte-identical for identical matches.

    ``numpy.savez`` stamps each member with the current time; here every member gets a fixed date.
    """
    matches = matches.cpu()
    arrays = {
        "uv_a": matches.uv_a.numpy().astype(np.float32),
        "uv_b": matches.uv_b.numpy().astype(np.float32),
        "valid": matches.valid.numpy().astype(bool),
        "confidence": matches.confidence.numpy().astype(np.float32),
    }
    with atomic_path(path) as tmp, zipfile.ZipFile(tmp, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, array in arrays.items():
            buffer = io.BytesIO()
            np.lib.format.write_array(buffer, np.ascontiguousarray(array), allow_pickle=False)
            info = zipfile.ZipInfo(f"{name}.npy", date_time=(1980, 1, 1, 0, 0, 0))
            info.compress_type = zipfile.ZIP_DEFLATED
            archive.writestr(info, buffer.getvalue())


# --------------------------------------------------------------------------------------------------
# Reading back: pairs.json, one pair, batches for a descriptor-training loop.
# --------------------------------------------------------------------------------------------------


def correspondence_folder(path: str | Path) -> Path:
    """The ``correspondences`` folder of a dataset folder (or the folder itself, or its ``pairs.json``).

    Raises:
        NerfDataError: no ``pairs.json`` there.
    """
    path = Path(path)
    for candidate in (path.parent if path.name == "pairs.json" else path / "correspondences", path):
        if (candidate / "pairs.json").is_file():
            return candidate
    raise NerfDataError(f"{path}: no correspondences/pairs.json (write it with nerfdata correspond)")


def read_pairs_json(path: str | Path) -> dict[str, Any]:
    """The content of ``pairs.json`` (see :func:`correspondence_folder` for ``path``)."""
    file = correspondence_folder(path) / "pairs.json"
    content = read_json(file)
    if not isinstance(content, dict) or not isinstance(content.get("pairs"), list):
        raise NerfDataError(f"{file}: not a correspondences index (no pairs list)")
    return content


def read_pair(path: str | Path, index: int) -> tuple[dict[str, Any], Matches]:
    """Pair number ``index`` of ``pairs.json``: its record (frames ``a``, ``b``, baseline, ...) and matches.

    Raises:
        NerfDataError: ``index`` out of range, or its ``.npz`` missing or malformed.
    """
    folder = correspondence_folder(path)
    pairs = read_pairs_json(folder)["pairs"]
    if not 0 <= index < len(pairs):
        raise NerfDataError(f"{folder / 'pairs.json'}: pair index {index} out of range (it lists {len(pairs)} pairs)")
    record = pairs[index]
    file = folder / record["file"]
    try:
        with np.load(file, allow_pickle=False) as data:
            arrays = {name: torch.from_numpy(data[name].copy()) for name in ARRAYS}
    except (OSError, KeyError, ValueError, zipfile.BadZipFile) as error:
        raise NerfDataError(f"{file}: cannot read matches ({error})") from None
    return record, Matches(**arrays)


@dataclass
class CorrespondenceBatch:
    """``b`` pairs of views with ``n`` valid matches each (sampled; see :func:`load_pairs`)."""

    frames: Int[Tensor, "b 2"]
    """Frame indices (A, B) in the dataset's ``transforms.json``."""
    uv_a: Float[Tensor, "b n 2"]
    uv_b: Float[Tensor, "b n 2"]
    confidence: Float[Tensor, "b n"]
    image_a: Float[Tensor, "b 3 h w"] | None
    """RGB in [0, 1] (``None`` when read with ``images=False``)."""
    image_b: Float[Tensor, "b 3 h w"] | None


def sample_at(
    features: Float[Tensor, "b d h w"], uv: Float[Tensor, "b n 2"], image_size: tuple[int, int] | None = None
) -> Float[Tensor, "b n d"]:
    """Bilinear samples of per-pixel features (descriptor maps) at pixel coordinates ``uv``.

    ``uv`` is in the export's convention (x right, y down, pixel centres at +0.5) of an image of
    ``image_size = (height, width)``; feature maps of a lower resolution covering the same image
    (a strided network) are sampled at the same places. Default ``image_size``: the maps' own size.

    Example:
        >>> features = torch.arange(4.0).reshape(1, 1, 2, 2)  # pixel (x=1, y=0) holds 1.0
        >>> sample_at(features, torch.tensor([[[1.5, 0.5], [1.0, 1.0]]])).flatten().tolist()
        [1.0, 1.5]
    """
    height, width = image_size or features.shape[-2:]
    grid = uv / uv.new_tensor([width, height]) * 2.0 - 1.0  # align_corners=False: -1 and 1 are the image's edges
    samples = torch.nn.functional.grid_sample(features, grid[:, :, None], align_corners=False, padding_mode="border")
    return samples[..., 0].transpose(1, 2)


def _read_image(path: Path) -> Tensor:
    try:
        image = iio.imread(path)
    except (OSError, ValueError) as error:
        raise NerfDataError(f"{path}: cannot read image ({error})") from None
    scale = np.iinfo(image.dtype).max if image.dtype.kind == "u" else 1.0
    return torch.from_numpy(np.ascontiguousarray(image[..., :3], dtype=np.float32) / scale).permute(2, 0, 1)


def load_pairs(
    path: str | Path,
    batch_size: int = 4,
    matches_per_pair: int = 1024,
    pairs: Sequence[int] | None = None,
    shuffle: bool = True,
    seed: int = 0,
    min_confidence: float = 0.0,
    images: bool = True,
) -> Iterator[CorrespondenceBatch]:
    """Yield batches of view pairs with their valid matches, for a descriptor-training loop (one epoch).

    Each pair contributes ``matches_per_pair`` of its valid matches with confidence >= ``min_confidence``,
    drawn at random (with replacement only when it has fewer), so that pairs stack into tensors.
    Pairs without such matches are skipped. Images of one batch must share a size.

    Args:
        path: The dataset folder (holding ``correspondences/``), that folder, or its ``pairs.json``.
        batch_size: Pairs per batch (the last batch may be smaller).
        matches_per_pair: ``n``, matches per pair.
        pairs: Indices into ``pairs.json``'s list (default: all).
        shuffle: Visit pairs in a random order (seeded).
        seed: Seed of the order and of the match sampling.
        min_confidence: Drop matches below this confidence.
        images: Also read both views' RGB images.

    Example (a descriptor network ``net``; tests/test_correspondences.py runs the reader)::

        for batch in load_pairs("renders/demo", batch_size=8, min_confidence=0.5):
            da, db = sample_at(net(batch.image_a), batch.uv_a), sample_at(net(batch.image_b), batch.uv_b)
            loss = (batch.confidence * (da - db).pow(2).sum(-1)).mean()  # (b, n) weighted pull term
    """
    if batch_size < 1 or matches_per_pair < 1:
        raise ConfigError(f"batch_size and matches_per_pair must be >= 1, got {batch_size}, {matches_per_pair}")
    folder = correspondence_folder(path)
    index = read_pairs_json(folder)
    chosen = list(range(len(index["pairs"]))) if pairs is None else [int(i) for i in pairs]
    generator = torch.Generator().manual_seed(seed)
    if shuffle:
        chosen = [chosen[i] for i in torch.randperm(len(chosen), generator=generator).tolist()]
    frames = read_transforms(folder / index["dataset"], require_images=False).frames if images else []
    batch: list[tuple[tuple[int, int], Matches]] = []

    def emit() -> CorrespondenceBatch:
        stacked = {name: torch.stack([getattr(m, name) for _, m in batch]) for name in ("uv_a", "uv_b", "confidence")}
        views: dict[str, Tensor | None] = {"image_a": None, "image_b": None}
        if images:
            for key, side in (("image_a", 0), ("image_b", 1)):
                tiles = [_read_image(frames[ab[side]].image_path) for ab, _ in batch]
                if len({tuple(t.shape) for t in tiles}) > 1:
                    raise NerfDataError(f"{folder}: images of different sizes in one batch; use batch_size=1")
                views[key] = torch.stack(tiles)
        return CorrespondenceBatch(torch.tensor([ab for ab, _ in batch], dtype=torch.int64), **stacked, **views)

    for number in chosen:
        record, matches = read_pair(folder, number)
        if images and not (0 <= record["a"] < len(frames) and 0 <= record["b"] < len(frames)):
            raise NerfDataError(
                f"{folder / 'pairs.json'}: pair {number} names frames beyond the dataset's {len(frames)}"
            )
        keep = (matches.valid & (matches.confidence >= min_confidence)).nonzero()[:, 0]
        if len(keep) == 0:
            continue
        if len(keep) >= matches_per_pair:
            pick = keep[torch.randperm(len(keep), generator=generator)[:matches_per_pair]]
        else:
            pick = keep[torch.randint(len(keep), (matches_per_pair,), generator=generator)]
        subset = Matches(matches.uv_a[pick], matches.uv_b[pick], matches.valid[pick], matches.confidence[pick])
        batch.append(((int(record["a"]), int(record["b"])), subset))
        if len(batch) == batch_size:
            yield emit()
            batch = []
    if batch:
        yield emit()
