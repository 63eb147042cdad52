"""The layers of a view on disk: one registry saying, per file, its name, path, format and writer.

Every file a view of a dataset can have is a :class:`LayerWriter`: its key in ``manifest.json``
(``"layers"`` and each view's ``"files"``), its path template, the description the manifest gives of
it (dtype, unit, frame, encoding) and the function that writes it. Some arrays are written twice:
depth as float32 ``.npy`` and as uint16 PNG (``depth_png``), normals as ``.npy`` and as a camera-frame
preview (``normals_png``); RGB is a PNG or, on request, a linear-light EXR.

Values are checked before anything of a view is written: NaN or infinity anywhere, RGB outside
``[0, 1]`` beyond float rounding, confidence or normal confidence outside ``[0, 1]``, negative depth or
range, normals that are neither zero (no surface) nor unit length, object ids that do not fit uint16. A bad value is a
:class:`~nerfdata.errors.NerfDataError` naming the layer and the file, never a silently clipped file.
The encodings' documented limits stay: depth beyond 65.535 units is 0 in the uint16 PNG.

Example:
    >>> import tempfile
    >>> out = tempfile.mkdtemp()
    >>> write_view_layers(out, 3, np.eye(3), depth=np.full((2, 2), 1.5), mask=np.ones((2, 2), bool))
    {'depth': 'depth/00003.npy', 'depth_png': 'depth/00003.png', 'mask': 'masks/00003.png'}
    >>> layer_specs(["mask"])["mask"]["files"]
    'masks/{index:05d}.png'
"""

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np
from jaxtyping import Float

from nerfdata.errors import NerfDataError
from nerfdata.writers.images import srgb_to_linear, to_uint8, write_depth_png, write_exr, write_npy, write_png

__all__ = [
    "LAYERS",
    "LAYER_WRITERS",
    "VIEW_ARRAYS",
    "LayerWriter",
    "RgbFormat",
    "layer_specs",
    "layer_writers",
    "normals_preview",
    "write_view_layers",
]

RgbFormat = Literal["png", "exr"]

_ROUNDING = 1e-4
"""Float32 rounding allowed beyond a range: composited colours and renormalised normals land within
about 1e-6 of it; anything farther is a wrong value, not rounding."""

Check = Callable[[np.ndarray], str | None]
"""A range check: what is wrong with an array, or None."""


def _finite(values: np.ndarray) -> str | None:
    bad = int(np.count_nonzero(~np.isfinite(values)))
    return f"{bad} NaN or infinite values" if bad else None


def _within(low: float, high: float, slack: float = 0.0) -> Check:
    """A check that every value is finite and in ``[low - slack, high + slack]``."""

    def check(values: np.ndarray) -> str | None:
        outside = (values < low - slack) | (values > high + slack)
        if not outside.any():
            return _finite(values)
        count, lowest, highest = int(np.count_nonzero(outside)), values.min(), values.max()
        return f"{count} values outside [{low:g}, {high:g}] (from {lowest:g} to {highest:g})"

    return check


def _unit_or_zero(normals: np.ndarray) -> str | None:
    """Normals are unit length on surface pixels and zero elsewhere."""
    problem = _finite(normals)
    if problem is not None:
        return problem
    surface = np.any(normals != 0, axis=-1)
    length = np.linalg.norm(normals[surface].astype(np.float64), axis=-1)
    off = np.abs(length - 1.0) > _ROUNDING
    if not off.any():
        return None
    count, shortest, longest = int(np.count_nonzero(off)), length[off].min(), length[off].max()
    return f"{count} surface normals are not unit length (lengths {shortest:g} to {longest:g})"


def _boolean(values: np.ndarray) -> str | None:
    return None if values.dtype == np.bool_ else f"expected a boolean image, got {values.dtype}"


def normals_preview(
    normals: Float[np.ndarray, "h w 3"], w2c_rotation: Float[np.ndarray, "3 3"]
) -> Float[np.ndarray, "h w 3"]:
    """World-frame normals shown in the camera frame (OpenCV axes) as ``(n + 1) / 2``; 0 where no surface.

    Example:
        >>> normals_preview(np.array([[[0.0, 0.0, -1.0], [0.0, 0.0, 0.0]]]), np.eye(3)).tolist()
        [[[0.5, 0.5, 0.0], [0.0, 0.0, 0.0]]]
    """
    surface = np.any(normals != 0, axis=-1, keepdims=True)
    return np.where(surface, (normals @ w2c_rotation.T + 1.0) / 2.0, 0.0)


Write = Callable[[Path, np.ndarray, np.ndarray], None]
"""``write(path, values, w2c_rotation)``: the rotation serves layers shown in the camera frame."""


def _rgb_png(path: Path, rgb: np.ndarray, _: np.ndarray) -> None:
    write_png(path, to_uint8(rgb))


def _rgb_exr(path: Path, rgb: np.ndarray, _: np.ndarray) -> None:
    write_exr(path, srgb_to_linear(rgb).astype(np.float32))


def _float32(path: Path, values: np.ndarray, _: np.ndarray) -> None:
    write_npy(path, values.astype(np.float32))


def _float16(path: Path, values: np.ndarray, _: np.ndarray) -> None:
    write_npy(path, values.astype(np.float16))


def _depth_png(path: Path, depth: np.ndarray, _: np.ndarray) -> None:
    write_depth_png(path, depth)


def _normals_png(path: Path, normals: np.ndarray, w2c_rotation: np.ndarray) -> None:
    write_png(path, to_uint8(normals_preview(normals, w2c_rotation)))


def _flags_png(path: Path, flags: np.ndarray, _: np.ndarray) -> None:
    write_png(path, flags.astype(np.uint8) * 255)


def _ids_png(path: Path, ids: np.ndarray, _: np.ndarray) -> None:
    write_png(path, ids.astype(np.uint16))


@dataclass(frozen=True)
class LayerWriter:
    """One file of a view: where it goes, what the manifest says of it, how it is checked and written."""

    name: str
    """Key in the manifest's ``"layers"`` and in a view's ``"files"``."""
    files: str
    """Path template relative to the dataset folder, formatted with the view's ``index``."""
    dtype: str
    unit: str
    frame: str
    encoding: str
    write: Write
    check: Check
    array: str = ""
    """The view array this file encodes (default: ``name``; ``depth_png`` encodes ``depth``)."""

    @property
    def source(self) -> str:
        return self.array or self.name

    @property
    def suffix(self) -> str:
        """File format, from the template (``png``, ``npy``, ``exr``)."""
        return self.files.rsplit(".", 1)[-1]

    @property
    def spec(self) -> dict[str, str]:
        """The manifest's description of the layer (a new dict)."""
        return {
            "files": self.files, "dtype": self.dtype, "unit": self.unit, "frame": self.frame,
            "encoding": self.encoding,
        }

    def path(self, index: int) -> str:
        """The file of view ``index``, relative to the dataset folder.

        Example:
            >>> LAYER_WRITERS[0].path(7)
            'images/00007.png'
        """
        return self.files.format(index=index)

    def validate(self, path: Path, values: np.ndarray) -> None:
        """Raise :class:`NerfDataError` naming the layer and ``path`` when ``values`` are out of range."""
        problem = self.check(values)
        if problem is not None:
            raise NerfDataError(f"layer {self.name} ({path}): {problem}; nothing of this view written")


_RGB_RANGE = _within(0.0, 1.0, _ROUNDING)
_DISTANCE = _within(0.0, np.inf)

LAYER_WRITERS: tuple[LayerWriter, ...] = (
    LayerWriter(
        "rgb", "images/{index:05d}.png", "uint8", "8-bit colour, as the field's training images", "image",
        "PNG RGB", _rgb_png, _RGB_RANGE,
    ),
    LayerWriter(
        "depth", "depth/{index:05d}.npy", "float32", "scene units", "camera z-depth",
        "NumPy .npy; 0 = no surface", _float32, _DISTANCE,
    ),
    LayerWriter(
        "depth_png", "depth/{index:05d}.png", "uint16", "1/1000 scene units (mm for metric scenes)",
        "camera z-depth", "PNG; 0 = no surface or beyond 65.535 units", _depth_png, _DISTANCE, array="depth",
    ),
    LayerWriter(
        "normals", "normals/{index:05d}.npy", "float32", "unit length", "world",
        "NumPy .npy (H, W, 3); zero where no surface (or no normal could be formed there)", _float32,
        _unit_or_zero,
    ),
    LayerWriter(
        "normals_png", "normals/{index:05d}.png", "uint8", "(n+1)/2", "camera (OpenCV axes)", "PNG preview",
        _normals_png, _unit_or_zero, array="normals",
    ),
    LayerWriter(
        "mask", "masks/{index:05d}.png", "uint8", "255 = surface, 0 = background", "image",
        "PNG; accumulation > mask_threshold", _flags_png, _boolean,
    ),
    LayerWriter(
        "object_id", "ids/{index:05d}.png", "uint16", "object index + 1", "image", "PNG; 0 = background",
        _ids_png, _within(0.0, float(np.iinfo(np.uint16).max)),
    ),
    LayerWriter(
        "rgb", "images/{index:05d}.exr", "float32", "linear light (sRGB primaries)", "image",
        "OpenEXR RGB, ZIP", _rgb_exr, _RGB_RANGE,
    ),
    LayerWriter(
        "depth_modes", "depth_modes/{index:05d}.npy", "float16", "scene units; probability", "camera z-depth",
        "NumPy .npy (H, W, K, 2): the K heaviest modes of ray termination as (z-depth, weight), "
        "heaviest first; weight 0 = no mode",
        _float16, _finite,
    ),
    LayerWriter(
        "range", "range/{index:05d}.npy", "float32", "scene units", "distance along the ray",
        "NumPy .npy; 0 = no surface", _float32, _DISTANCE,
    ),
    LayerWriter(
        "confidence", "confidence/{index:05d}.npy", "float32", "0..1", "image",
        "NumPy .npy; accumulation * exp(-(spread / (tolerance * range))^2 / 2)", _float32, _within(0.0, 1.0),
    ),
    LayerWriter(
        "normal_confidence", "normal_confidence/{index:05d}.npy", "float32", "0..1", "image",
        "NumPy .npy; trust in the normal from the local depth fit: "
        "support^2 * exp(-(residual / normal_tolerance)^2 / 2) (low at depth edges, steps and creases); 0 = no normal",
        _float32, _within(0.0, 1.0),
    ),
    LayerWriter(
        "valid", "valid/{index:05d}.png", "uint8", "255 = trusted, 0 = drop", "image",
        "PNG; mask and confidence >= confidence_threshold (and, with normals, normal_confidence >= "
        "normal_confidence_threshold)", _flags_png, _boolean,
    ),
)
"""Every file a view can have, in the order a view's files are written and listed in its manifest entry."""


def layer_writers(arrays: Iterable[str], rgb_format: RgbFormat = "png") -> list[LayerWriter]:
    """The writers of the files that encode ``arrays`` (RGB in ``rgb_format``), in file order.

    Raises:
        ValueError: an array no layer encodes.
    """
    wanted = set(arrays)
    unknown = wanted - {writer.source for writer in LAYER_WRITERS}
    if unknown:
        raise ValueError(f"no layer encodes {sorted(unknown)}")
    return [w for w in LAYER_WRITERS if w.source in wanted and (w.source != "rgb" or w.suffix == rgb_format)]


def layer_specs(
    arrays: Sequence[str], rgb_format: RgbFormat = "png", notes: Mapping[str, Mapping[str, str]] | None = None
) -> dict[str, dict[str, str]]:
    """The manifest's ``"layers"``: each array's files (its own, then its companions), in ``arrays`` order.

    Args:
        arrays: The view arrays a dataset holds (e.g. a render job's outputs).
        rgb_format: Encoding of the RGB layer.
        notes: Per layer, keys added to (or replacing in) its description, e.g. the labels' ``source``.
    """
    writers = layer_writers(arrays, rgb_format)
    specs = {w.name: w.spec for array in arrays for w in writers if w.source == array}
    for name, extra in (notes or {}).items():
        if name in specs:
            specs[name].update(extra)
    return specs


VIEW_ARRAYS: tuple[str, ...] = (
    "rgb", "depth", "normals", "mask", "range", "confidence", "normal_confidence", "valid", "depth_modes", "object_id"
)
"""Every array a view can hold, in the manifest's order."""

LAYERS = layer_specs(VIEW_ARRAYS)
"""The description of every layer (RGB as PNG), as a dataset that lists them all states it."""


def write_view_layers(
    out: str | Path,
    index: int,
    w2c_rotation: Float[np.ndarray, "3 3"],
    *,
    rgb_format: RgbFormat = "png",
    **arrays: np.ndarray,
) -> dict[str, str]:
    """Check, then write, every file of view ``index`` that encodes ``arrays``; returns ``{layer: path}``.

    Args:
        out: Dataset folder.
        index: The view's number, in its file names.
        w2c_rotation: World-to-camera rotation (OpenCV axes) of the view, for the normals preview.
        rgb_format: ``png`` (8-bit) or ``exr`` (linear light) for ``rgb``.
        arrays: The view's arrays by name: ``rgb (h, w, 3)`` in ``[0, 1]``, ``depth``, ``range`` (h, w)
            and ``normals (h, w, 3)`` already zero where there is no surface, ``mask``, ``valid``
            (bool), ``confidence`` and ``normal_confidence (h, w)``, ``depth_modes (h, w, k, 2)``,
            ``object_id`` (integers).

    Raises:
        NerfDataError: a value out of range, naming the layer and file; no file of the view is written.
    """
    out = Path(out)
    writers = layer_writers(arrays, rgb_format)
    for writer in writers:
        writer.validate(out / writer.path(index), arrays[writer.source])
    files: dict[str, str] = {}
    for writer in writers:
        files[writer.name] = writer.path(index)
        writer.write(out / files[writer.name], arrays[writer.source], w2c_rotation)
    return files
