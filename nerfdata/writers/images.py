"""Per-view image layers on disk: RGB, depth, normals, masks, float arrays. All writes are atomic.

Conventions (DESIGN.md): depth is float32 z-depth in scene units (0 = no surface) in ``.npy``, and
uint16 PNG in millimetres (``depth * 1000``, rounded; 0 = no surface or beyond 65.535 units) for
nerfstudio's ``depth_unit_scale_factor: 0.001``. Normals are float32 world-frame unit vectors in
``.npy``; their PNG preview shows the camera-frame normal (OpenCV axes) as ``(n + 1) / 2``.
"""

from pathlib import Path

import imageio.v3 as iio
import numpy as np

from nerfdata.atomic import atomic_path

__all__ = [
    "DEPTH_PNG_SCALE",
    "read_depth_png",
    "to_uint8",
    "write_depth_png",
    "write_exr",
    "write_npy",
    "write_png",
    "write_view_layers",
]

DEPTH_PNG_SCALE = 1000.0
"""uint16 depth PNG values per scene unit (millimetres for metric scenes)."""


def to_uint8(image: np.ndarray) -> np.ndarray:
    """Float image in ``[0, 1]`` -> uint8, rounding to nearest (values outside are clipped)."""
    return (np.clip(image, 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8)


def write_png(path: str | Path, image: np.ndarray) -> None:
    """Write a uint8/uint16 image (``(H, W)``, ``(H, W, 3)`` or ``(H, W, 4)``) as PNG."""
    with atomic_path(path) as tmp:
        iio.imwrite(tmp, image, extension=".png")


def write_npy(path: str | Path, array: np.ndarray) -> None:
    """Write a NumPy array (``.npy``, no pickling)."""
    with atomic_path(path) as tmp, open(tmp, "wb") as handle:
        np.save(handle, array, allow_pickle=False)


def write_exr(path: str | Path, image: np.ndarray) -> None:
    """Write a float32 ``(H, W, 3)`` image (linear light) as an OpenEXR file, ZIP-compressed."""
    import OpenEXR  # only needed for EXR output

    header = {"compression": OpenEXR.ZIP_COMPRESSION, "type": OpenEXR.scanlineimage}
    with atomic_path(path) as tmp:
        with OpenEXR.File(header, {"RGB": np.ascontiguousarray(image, dtype=np.float32)}) as exr:
            exr.write(str(tmp))


def write_depth_png(path: str | Path, depth: np.ndarray, values_per_unit: float = DEPTH_PNG_SCALE) -> None:
    """uint16 PNG of ``depth * values_per_unit`` (default 1000: millimetres for metric scenes).

    0 where there is no surface, and where the value does not fit in uint16.
    """
    scaled = np.round(depth.astype(np.float64) * values_per_unit)
    scaled[(scaled > np.iinfo(np.uint16).max) | ~np.isfinite(scaled) | (scaled < 0)] = 0
    write_png(path, scaled.astype(np.uint16))


def read_depth_png(path: str | Path) -> np.ndarray:
    """Inverse of :func:`write_depth_png`: float32 depth in scene units."""
    return (iio.imread(path).astype(np.float64) / DEPTH_PNG_SCALE).astype(np.float32)


def write_view_layers(
    out: str | Path,
    name: str,
    w2c_rotation_opencv: np.ndarray,
    *,
    rgb: np.ndarray | None = None,
    depth: np.ndarray | None = None,
    normals: np.ndarray | None = None,
    mask: np.ndarray | None = None,
    object_id: np.ndarray | None = None,
) -> dict[str, str]:
    """Write the given layers of one view under ``out``; returns ``{layer: relative path}``.

    Layout: ``images/NAME.png``, ``depth/NAME.npy`` + ``depth/NAME.png``, ``normals/NAME.npy`` +
    ``normals/NAME.png`` (camera-frame preview, rotated by ``w2c_rotation_opencv``),
    ``masks/NAME.png``, ``ids/NAME.png`` (uint16 object ids). ``depth`` and ``normals`` must already
    be zero where there is no surface.
    """
    out = Path(out)
    files: dict[str, str] = {}
    if rgb is not None:
        files["rgb"] = f"images/{name}.png"
        write_png(out / files["rgb"], to_uint8(rgb))
    if depth is not None:
        files["depth"], files["depth_png"] = f"depth/{name}.npy", f"depth/{name}.png"
        write_npy(out / files["depth"], depth.astype(np.float32))
        write_depth_png(out / files["depth_png"], depth)
    if normals is not None:
        surface = np.any(normals != 0, axis=-1, keepdims=True)
        preview = np.where(surface, (normals @ w2c_rotation_opencv.T + 1.0) / 2.0, 0.0)
        files["normals"], files["normals_png"] = f"normals/{name}.npy", f"normals/{name}.png"
        write_npy(out / files["normals"], normals.astype(np.float32))
        write_png(out / files["normals_png"], to_uint8(preview))
    if mask is not None:
        files["mask"] = f"masks/{name}.png"
        write_png(out / files["mask"], mask.astype(np.uint8) * 255)
    if object_id is not None:
        files["object_id"] = f"ids/{name}.png"
        write_png(out / files["object_id"], object_id.astype(np.uint16))
    return files
