"""nerfdata's checkpoint format: ``NAME.safetensors`` (tensors) + ``NAME.json`` (everything else).

``NAME.json`` holds the field type, its hyper-parameters, the box, the format version, the nerfdata
version that wrote it and the sha256 of the tensors file. Loading never unpickles anything
(safetensors holds raw tensors only) and never falls back to random weights: a missing file, a
truncated or modified tensors file, a checksum mismatch, a missing, unexpected or misshapen tensor
is a :class:`~nerfdata.errors.CheckpointError` naming the file and the problem. Only the field
types in :data:`FIELD_TYPES` are saved, since only they load again.

The field's occupancy grid (when it has one) is stored beside its weights as ``occupancy.bits``,
and a training run in progress stores its state under ``training.`` names
(:func:`load_training_state`). :func:`nerfdata.fields.loading.load_field` loads these checkpoints
and nerfstudio runs alike.
"""

import json
import os
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import save_file

from nerfdata.atomic import atomic_path, sha256_file, write_json_atomic
from nerfdata.errors import CheckpointError, NerfDataError
from nerfdata.fields.analytic import AnalyticField
from nerfdata.fields.base import Field, LoadedField, aabb_to_list, check_state_dict
from nerfdata.fields.ngp import NGPField
from nerfdata.fields.occupancy import OccupancyGrid
from nerfdata.version import __version__

__all__ = [
    "FIELD_TYPES",
    "FORMAT_VERSION",
    "load_checkpoint",
    "load_training_state",
    "resolve_checkpoint",
    "save_field",
]

FORMAT_NAME = "nerfdata-field"
FORMAT_VERSION = 1
FIELD_TYPES: dict[str, type[Field]] = {cls.field_type: cls for cls in (NGPField, AnalyticField)}
_OCCUPANCY_KEY = "occupancy.bits"
_TRAINING_PREFIX = "training."


def resolve_checkpoint(path: str | Path) -> tuple[Path, Path]:
    """``(json, safetensors)`` paths for a checkpoint folder, its ``.json`` or its ``.safetensors``."""
    path = Path(path)
    if not path.exists():
        raise CheckpointError(f"{path}: no such file or folder")
    if path.is_dir():
        json_path = path / "field.json"
    elif path.suffix == ".safetensors":
        json_path = path.with_suffix(".json")
    elif path.suffix == ".json":
        json_path = path
    elif path.suffix in (".yml", ".yaml"):
        raise CheckpointError(f"{path}: a nerfstudio run config holds no nerfdata checkpoint; load it with load_field")
    else:
        raise CheckpointError(
            f"{path}: not a checkpoint; expected a folder holding field.json and field.safetensors, "
            "or a .safetensors / .json file of one"
        )
    if not json_path.is_file():
        raise CheckpointError(f"{json_path}: checkpoint description not found")
    return json_path, json_path.with_suffix(".safetensors")


def save_field(
    field_: Field,
    path: str | Path,
    occupancy: OccupancyGrid | None = None,
    metadata: dict[str, Any] | None = None,
    storage_dtype: torch.dtype = torch.float32,
    training: tuple[dict[str, torch.Tensor], dict[str, Any]] | None = None,
) -> Path:
    """Save ``field_`` (and its occupancy grid) as a checkpoint; returns the ``.json`` path.

    ``path`` is a folder (``field.json`` + ``field.safetensors`` inside it) or a ``.safetensors``
    or ``.json`` file name. ``storage_dtype`` (float32 or float16) is how floating-point weights
    are stored; they load as float32. ``training`` is ``(tensors, info)`` of a run in progress
    (optimizer state, step...), stored beside the weights for :func:`load_training_state`.

    The save is a two-phase commit, so that a crash at any moment leaves a loadable checkpoint:
    the tensors go to ``NAME.next.safetensors``, the description is pointed at it, the file is
    renamed to ``NAME.safetensors``, and the description is pointed there. Every step is atomic,
    and the loader finds the tensors under either name by their checksum.

    Example:
        >>> import tempfile
        >>> from nerfdata.fields.analytic import AnalyticField, Sphere
        >>> field = AnalyticField([Sphere((0.0, 0.0, 0.0), 0.5)], aabb=[[-1, -1, -1], [1, 1, 1]])
        >>> json_path = save_field(field, tempfile.mkdtemp())
        >>> type(load_checkpoint(json_path).field).__name__
        'AnalyticField'

    Raises:
        CheckpointError: ``field_`` is not one of :data:`FIELD_TYPES` (a nerfstudio field, say),
            so no checkpoint of it could be loaded; nothing is written.
    """
    if FIELD_TYPES.get(field_.field_type) is not type(field_):
        known = ", ".join(f"{cls.__name__} ({name!r})" for name, cls in FIELD_TYPES.items())
        raise CheckpointError(
            f"cannot save a {type(field_).__name__} (field type {field_.field_type!r}): "
            f"a nerfdata checkpoint holds {known} only"
        )
    if storage_dtype not in (torch.float32, torch.float16):
        raise ValueError(f"storage_dtype must be float32 or float16, got {storage_dtype}")
    path = Path(path)
    if path.suffix not in (".json", ".safetensors"):
        path.mkdir(parents=True, exist_ok=True)
        path = path / "field.json"
    json_path, tensors_path = path.with_suffix(".json"), path.with_suffix(".safetensors")
    staged = tensors_path.with_name(tensors_path.stem + ".next.safetensors")

    def stored(value: torch.Tensor) -> torch.Tensor:
        value = value.detach().cpu()
        return (value.to(storage_dtype) if value.is_floating_point() else value).contiguous()

    tensors = {name: stored(value) for name, value in field_.state_dict().items()}
    if occupancy is not None:
        tensors[_OCCUPANCY_KEY] = occupancy.bits.cpu().contiguous()
    if training is not None:
        tensors.update({_TRAINING_PREFIX + name: value.detach().cpu().contiguous() for name, value in training[0].items()})
    with atomic_path(staged) as tmp:
        save_file(tensors, str(tmp), metadata={"format": FORMAT_NAME, "field_type": field_.field_type})
    description = {
        "format": FORMAT_NAME,
        "format_version": FORMAT_VERSION,
        "nerfdata_version": __version__,
        "field_type": field_.field_type,
        "aabb": aabb_to_list(field_.aabb),
        "config": field_.config_dict(),
        "tensors_file": staged.name,
        "sha256": sha256_file(staged),
        "storage_dtype": str(storage_dtype).removeprefix("torch."),
        "occupancy": None
        if occupancy is None
        else {"resolution": occupancy.resolution, "aabb": aabb_to_list(occupancy.aabb)},
        "training": None if training is None else training[1],
        "metadata": metadata or {},
    }
    write_json_atomic(json_path, description)
    os.replace(staged, tensors_path)
    write_json_atomic(json_path, description | {"tensors_file": tensors_path.name})
    return json_path


def _read_description(json_path: Path) -> dict[str, Any]:
    try:
        description = json.loads(json_path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
        raise CheckpointError(f"{json_path}: unreadable checkpoint description ({error})") from None
    if not isinstance(description, dict) or description.get("format") != FORMAT_NAME:
        raise CheckpointError(f"{json_path}: not a nerfdata field checkpoint (missing 'format': '{FORMAT_NAME}')")
    version = description.get("format_version")
    if version != FORMAT_VERSION:
        raise CheckpointError(
            f"{json_path}: checkpoint format version {version!r} is not supported (this nerfdata reads {FORMAT_VERSION})"
        )
    missing = [key for key in ("field_type", "config", "sha256") if key not in description]
    if missing:
        raise CheckpointError(f"{json_path}: checkpoint description lacks {', '.join(missing)}")
    if description["field_type"] not in FIELD_TYPES:
        raise CheckpointError(
            f"{json_path}: unknown field type {description['field_type']!r}; known: {sorted(FIELD_TYPES)}"
        )
    return description


def _read_tensors(json_path: Path, description: dict[str, Any]) -> tuple[Path, dict[str, torch.Tensor]]:
    """The tensors the description points at; after an interrupted save they may sit under the final name."""
    named = json_path.parent / description.get("tensors_file", json_path.with_suffix(".safetensors").name)
    final = json_path.with_suffix(".safetensors")
    tensors_path = named if named.is_file() else final
    if not tensors_path.is_file():
        raise CheckpointError(f"{tensors_path}: tensors file not found")
    try:
        with safe_open(str(tensors_path), framework="pt") as handle:
            tensors = {name: handle.get_tensor(name) for name in handle.keys()}  # noqa: SIM118
    except (SafetensorError, OSError, ValueError) as error:
        raise CheckpointError(f"{tensors_path}: truncated or corrupt tensors file ({error})") from None
    actual, expected = sha256_file(tensors_path), description["sha256"]
    if actual != expected:
        raise CheckpointError(
            f"{tensors_path}: checksum mismatch (sha256 {actual[:12]}..., expected {expected[:12]}...); "
            "the file was modified or replaced after it was saved"
        )
    return tensors_path, tensors


def load_checkpoint(path: str | Path, device: str | torch.device = "cpu") -> LoadedField:
    """Load a checkpoint saved by :func:`save_field` (folder, ``.json`` or ``.safetensors`` path).

    Raises:
        CheckpointError: the files are missing, corrupt, modified, or do not match each other.
    """
    json_path, _ = resolve_checkpoint(path)
    description = _read_description(json_path)
    tensors_path, tensors = _read_tensors(json_path, description)
    try:
        field_ = FIELD_TYPES[description["field_type"]].from_config_dict(description["config"])
    except NerfDataError as error:
        raise CheckpointError(f"{json_path}: invalid field config: {error}") from None
    occupancy_bits = tensors.pop(_OCCUPANCY_KEY, None)
    tensors = {
        name: value.float() if value.is_floating_point() else value
        for name, value in tensors.items()
        if not name.startswith(_TRAINING_PREFIX)
    }
    check_state_dict(tensors_path, field_.state_dict(), tensors, "the field described in its .json")
    field_.load_state_dict(tensors, strict=True)
    field_.eval().requires_grad_(False)
    occupancy = None
    if occupancy_bits is not None:
        info = description.get("occupancy") or {}
        resolution = int(info.get("resolution", 0))
        if resolution <= 0 or occupancy_bits.numel() != -(-(resolution**3) // 8):
            raise CheckpointError(f"{json_path}: occupancy grid does not match its resolution {resolution}")
        occupancy = OccupancyGrid(torch.tensor(info["aabb"], dtype=torch.float32), resolution, occupancy_bits)
    return LoadedField(
        field=field_.to(device),
        occupancy=occupancy,
        json_path=json_path,
        sha256=description["sha256"],
        metadata=description.get("metadata", {}),
    )


def load_training_state(path: str | Path) -> tuple[dict[str, torch.Tensor], dict[str, Any]] | None:
    """The ``(tensors, info)`` a training run saved with :func:`save_field`, or None if there is none.

    Verified like the weights (checksum, format); names are those given to :func:`save_field`.
    """
    json_path, _ = resolve_checkpoint(path)
    description = _read_description(json_path)
    if description.get("training") is None:
        return None
    _, tensors = _read_tensors(json_path, description)
    state = {name.removeprefix(_TRAINING_PREFIX): value for name, value in tensors.items() if name.startswith(_TRAINING_PREFIX)}
    return state, description["training"]
