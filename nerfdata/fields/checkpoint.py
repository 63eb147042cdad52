"""nerfdata's checkpoint format: ``NAME.safetensors`` (tensors) + ``NAME.json`` (everything else).

``NAME.json`` holds the field type, its hyper-parameters, the box, the format version, the nerfdata
version that wrote it and the sha256 of the tensors file. Loading never unpickles anything
(safetensors holds raw tensors only) and never falls back to random weights: a missing file, a
truncated or modified tensors file, a checksum mismatch, a missing, unexpected or misshapen tensor
is a :class:`~nerfdata.errors.CheckpointError` naming the file and the problem. Only the field
types in :data:`FIELD_TYPES` are saved, since only they load again.

Loading checks, in this order, so that nothing large is allocated for a file that cannot be right:
``field.json`` (at most 64 MiB of strict JSON, every key of the right type, every number finite,
the tensors file a plain name in the checkpoint's folder); the tensors file's header (names and
shapes only, read without the tensors) against the field its description builds, built on the
meta device, which allocates nothing; the tensors file's checksum; then the tensors, refused if
any holds NaN or infinity. A field is identified by :func:`field_checksum`, which covers
``field.json``'s content as well as the tensors. Saving refuses weights that are not finite.

The field's occupancy grid (when it has one) is stored beside its weights as ``occupancy.bits``,
and a training run in progress stores its state under ``training.`` names
(:func:`load_training_state`). :func:`nerfdata.fields.loading.load_field` loads these checkpoints
and nerfstudio runs alike.
"""

import hashlib
import math
import os
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import save_file

from nerfdata import strict_json
from nerfdata.atomic import atomic_path, sha256_file, write_json_atomic
from nerfdata.cameras import check_aabb
from nerfdata.errors import CheckpointError, NerfDataError
from nerfdata.fields.analytic import AnalyticField
from nerfdata.fields.base import (
    Field,
    LoadedField,
    aabb_to_list,
    check_finite,
    check_state_dict,
    non_finite,
)
from nerfdata.fields.ngp import NGPField
from nerfdata.fields.occupancy import OccupancyGrid
from nerfdata.version import __version__

__all__ = [
    "FIELD_TYPES",
    "FORMAT_VERSION",
    "field_checksum",
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
_UNMEASURED_OK = ("occupancy_ema",)
"""Training tensors that may hold +-inf: the occupancy statistics of cells not measured yet."""


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
            so no checkpoint of it could be loaded, or a weight (as stored: float16 overflows beyond
            65504) or a training tensor is NaN or infinite; nothing is written.
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
    problem = non_finite(tensors) or (non_finite(training[0], _UNMEASURED_OK) if training is not None else None)
    if problem is not None:  # before anything is written: a NaN checkpoint would load, then render nothing
        raise CheckpointError(f"{json_path}: not saved: {problem}")
    if occupancy is not None:
        tensors[_OCCUPANCY_KEY] = occupancy.bits.cpu().contiguous()
    if training is not None:
        tensors.update(
            {_TRAINING_PREFIX + name: value.detach().cpu().contiguous() for name, value in training[0].items()}
        )
    with atomic_path(staged) as tmp:
        # One metadata key: safetensors writes several in a random (hash map) order, and the same field
        # saved twice must give the same bytes, or its checksum would call it a new field.
        save_file(tensors, str(tmp), metadata={"format": FORMAT_NAME})
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


def field_checksum(description: dict[str, Any]) -> str:
    """The checksum that identifies a checkpoint's field: sha256 of ``field.json``'s canonical content.

    ``description`` is ``field.json``'s content; its ``sha256`` (of the tensors file) is part of it,
    so the checksum changes with the weights, the hyper-parameters, the box, the occupancy grid or
    the metadata. ``tensors_file`` is left out: it names the tensors file under either of the two
    names a save goes through (:func:`save_field`), and the tensors' checksum says which bytes.
    The content is hashed as :func:`nerfdata.strict_json.canonical` writes it (sorted keys, no
    spaces), so re-indenting the file does not change it.

    Example:
        >>> field_checksum({"sha256": "ab", "tensors_file": "field.safetensors"}) == field_checksum({"sha256": "ab"})
        True
    """
    content = {key: value for key, value in description.items() if key != "tensors_file"}
    return hashlib.sha256(strict_json.canonical(content)).hexdigest()


def _plain_file_name(name: Any) -> bool:
    """Whether ``name`` names a file inside a folder: not absolute, no separator, not ``.`` or ``..``."""
    return isinstance(name, str) and name not in ("", ".", "..") and not any(c in name for c in "/\\\0")


def _check_numbers(value: Any, where: str) -> None:
    """Refuse a non-finite number anywhere in ``value`` (no field hyper-parameter means infinity)."""
    if isinstance(value, float) and not math.isfinite(value):
        raise CheckpointError(f"{where}: {value} is not a finite number")
    if isinstance(value, dict):
        for key, item in value.items():
            _check_numbers(item, f"{where}.{key}")
    elif isinstance(value, list):
        for index, item in enumerate(value):
            _check_numbers(item, f"{where}[{index}]")


def _read_description(json_path: Path) -> dict[str, Any]:
    """``field.json``, every key the loader uses of the right type."""
    description = strict_json.read_json(json_path, CheckpointError, "checkpoint description")
    if not isinstance(description, dict) or description.get("format") != FORMAT_NAME:
        raise CheckpointError(f"{json_path}: not a nerfdata field checkpoint (missing 'format': '{FORMAT_NAME}')")
    version = description.get("format_version")
    if version != FORMAT_VERSION:
        raise CheckpointError(
            f"{json_path}: checkpoint format version {version!r} is not supported "
            f"(this nerfdata reads {FORMAT_VERSION})"
        )
    missing = [key for key in ("field_type", "config", "sha256") if key not in description]
    if missing:
        raise CheckpointError(f"{json_path}: checkpoint description lacks {', '.join(missing)}")
    field_type = description["field_type"]
    if not isinstance(field_type, str) or field_type not in FIELD_TYPES:
        raise CheckpointError(f"{json_path}: unknown field type {field_type!r}; known: {sorted(FIELD_TYPES)}")
    expected_types = {
        "config": (dict,), "sha256": (str,), "metadata": (dict, type(None)), "training": (dict, type(None)),
        "occupancy": (dict, type(None)), "tensors_file": (str,),
    }
    for key, types in expected_types.items():
        if key in description and not isinstance(description[key], types):
            names = " or ".join({"dict": "an object", "str": "a string", "NoneType": "null"}[t.__name__] for t in types)
            raise CheckpointError(f"{json_path}: {key} must be {names}, got {description[key]!r}")
    if "tensors_file" in description and not _plain_file_name(description["tensors_file"]):
        raise CheckpointError(
            f"{json_path}: tensors_file {description['tensors_file']!r} must be a file name in the checkpoint's "
            "folder (no folder, no '..')"
        )
    _check_numbers(description["config"], f"{json_path}: config")
    return description


def _tensors_path(json_path: Path, description: dict[str, Any]) -> Path:
    """The tensors file the description names; after an interrupted save it may sit under the final name."""
    named = json_path.parent / description.get("tensors_file", json_path.with_suffix(".safetensors").name)
    final = json_path.with_suffix(".safetensors")
    tensors_path = named if named.is_file() else final
    if not tensors_path.is_file():
        raise CheckpointError(f"{tensors_path}: tensors file not found")
    return tensors_path


def _read_header(tensors_path: Path) -> dict[str, torch.Tensor]:
    """Every tensor's name and shape, from the file's header alone (as meta tensors: no data is read)."""
    try:
        with safe_open(str(tensors_path), framework="pt") as handle:
            shapes = {name: handle.get_slice(name).get_shape() for name in handle.keys()}
    except (SafetensorError, OSError, ValueError) as error:
        raise CheckpointError(f"{tensors_path}: truncated or corrupt tensors file ({error})") from None
    return {name: torch.empty(shape, device="meta") for name, shape in shapes.items()}


def _read_tensors(tensors_path: Path, description: dict[str, Any], names: list[str]) -> dict[str, torch.Tensor]:
    """The tensors ``names`` of a file whose checksum is the one its description records."""
    actual, expected = sha256_file(tensors_path), description["sha256"]
    if actual != expected:
        raise CheckpointError(
            f"{tensors_path}: checksum mismatch (sha256 {actual[:12]}..., expected {expected[:12]}...); "
            "the file was modified or replaced after it was saved"
        )
    try:
        with safe_open(str(tensors_path), framework="pt") as handle:
            return {name: handle.get_tensor(name) for name in names}
    except (SafetensorError, OSError, ValueError) as error:
        raise CheckpointError(f"{tensors_path}: truncated or corrupt tensors file ({error})") from None


def _occupancy_info(json_path: Path, description: dict[str, Any], bits: torch.Tensor | None) -> tuple[int, Any] | None:
    """``(resolution, aabb)`` of the stored occupancy grid, checked against its bits' size (a meta tensor will do)."""
    if bits is None:
        return None
    info = description.get("occupancy") or {}
    resolution = info.get("resolution", 0)
    if isinstance(resolution, bool) or not isinstance(resolution, int) or resolution <= 0 or bits.numel() != -(
        -(resolution**3) // 8
    ):
        raise CheckpointError(f"{json_path}: occupancy grid does not match its resolution {resolution!r}")
    try:
        aabb = check_aabb(info.get("aabb"), "occupancy aabb")
    except NerfDataError as error:
        raise CheckpointError(f"{json_path}: {error}") from None
    return resolution, aabb


def load_checkpoint(path: str | Path, device: str | torch.device = "cpu") -> LoadedField:
    """Load a checkpoint saved by :func:`save_field` (folder, ``.json`` or ``.safetensors`` path).

    Raises:
        CheckpointError: the files are missing, corrupt, modified, do not match each other, or hold
            a value that is not finite.
    """
    json_path, _ = resolve_checkpoint(path)
    description = _read_description(json_path)
    tensors_path = _tensors_path(json_path, description)
    field_class = FIELD_TYPES[description["field_type"]]
    try:
        expected = field_class.state_shapes(description["config"])  # names and shapes, allocating nothing
    except NerfDataError as error:
        raise CheckpointError(f"{json_path}: invalid field config: {error}") from None
    header = _read_header(tensors_path)
    weights = {
        name: value
        for name, value in header.items()
        if name != _OCCUPANCY_KEY and not name.startswith(_TRAINING_PREFIX)
    }
    check_state_dict(tensors_path, expected, weights, "the field described in its .json")
    occupancy_info = _occupancy_info(json_path, description, header.get(_OCCUPANCY_KEY))
    names = [*weights, *([_OCCUPANCY_KEY] if occupancy_info is not None else [])]
    tensors = _read_tensors(tensors_path, description, names)
    occupancy_bits = tensors.pop(_OCCUPANCY_KEY, None)
    check_finite(tensors_path, tensors)
    field_ = field_class.from_config_dict(description["config"])
    field_.load_state_dict({n: v.float() if v.is_floating_point() else v for n, v in tensors.items()}, strict=True)
    field_.eval().requires_grad_(False)
    occupancy = None
    if occupancy_info is not None:
        resolution, aabb = occupancy_info
        occupancy = OccupancyGrid(torch.tensor(aabb, dtype=torch.float32), resolution, occupancy_bits).to(device)
    return LoadedField(
        field=field_.to(device),
        occupancy=occupancy,
        json_path=json_path,
        sha256=field_checksum(description),
        metadata=description.get("metadata") or {},
    )


def load_training_state(path: str | Path) -> tuple[dict[str, torch.Tensor], dict[str, Any]] | None:
    """The ``(tensors, info)`` a training run saved with :func:`save_field`, or None if there is none.

    Verified like the weights (checksum, format, finite but for unmeasured occupancy cells); names
    are those given to :func:`save_field`.
    """
    json_path, _ = resolve_checkpoint(path)
    description = _read_description(json_path)
    info = description.get("training")
    if info is None:
        return None
    if not isinstance(info.get("config"), dict) or isinstance(info.get("iteration"), bool) or not isinstance(
        info.get("iteration"), int
    ):
        raise CheckpointError(f"{json_path}: training must hold the run's config (an object), iteration (an integer)")
    tensors_path = _tensors_path(json_path, description)
    names = [name for name in _read_header(tensors_path) if name.startswith(_TRAINING_PREFIX)]
    tensors = _read_tensors(tensors_path, description, names)
    state = {name.removeprefix(_TRAINING_PREFIX): value for name, value in tensors.items()}
    check_finite(tensors_path, state, _UNMEASURED_OK)
    return state, info
