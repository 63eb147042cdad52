"""Image and array files: PNG, EXR, NumPy, depth PNG and their encodings. All writes are atomic.

Conventions (DESIGN.md): depth is float32 z-depth in scene units (0 = no surface) in ``.npy``, and
uint16 PNG in millimetres (``depth * 1000``, rounded; 0 = no surface or beyond 65.535 units) for
nerfstudio's ``depth_unit_scale_factor: 0.001``. Colours are 8-bit sRGB in PNG and linear light in
EXR. Which layer of a view goes in which file: :mod:`nerfdata.writers.layers`.
"""

from pathlib import Path

import imageio.v3 as iio
import numpy as np

from nerfdata.atomic import atomic_path

__all__ = [
    "DEPTH_PNG_SCALE",
    "depth_png_values",
    "read_depth_png",
    "srgb_to_linear",
    "to_uint8",
    "write_depth_png",
    "write_exr",
    "write_npy",
    "write_png",
]

DEPTH_PNG_SCALE = 1000.0
"""uint16 depth PNG values per scene unit (millimetres for metric scenes)."""


def srgb_to_linear(rgb: np.ndarray) -> np.ndarray:
    """Decode sRGB values in ``[0, 1]`` to linear light (IEC 61966-2-1)."""
    rgb = np.clip(rgb, 0.0, 1.0)
    return np.where(rgb <= 0.04045, rgb / 12.92, ((rgb + 0.055) / 1.055) ** 2.4)


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


def depth_png_values(depth: np.ndarray, values_per_unit: float = DEPTH_PNG_SCALE) -> np.ndarray:
    """The uint16 values a depth PNG holds: ``depth * values_per_unit`` rounded.

    0 where there is no surface, and where the value does not fit in uint16.

    Example:
        >>> depth_png_values(np.array([0.0, 1.2345, 70.0]), 1000.0).tolist()
        [0, 1234, 0]
    """
    scaled = np.round(depth.astype(np.float64) * values_per_unit)
    scaled[(scaled > np.iinfo(np.uint16).max) | ~np.isfinite(scaled) | (scaled < 0)] = 0
    return scaled.astype(np.uint16)


def write_depth_png(path: str | Path, depth: np.ndarray, values_per_unit: float = DEPTH_PNG_SCALE) -> None:
    """uint16 PNG of ``depth * values_per_unit`` (default 1000: millimetres for metric scenes).

    0 where there is no surface, and where the value does not fit in uint16 (:func:`depth_png_values`).
    """
    write_png(path, depth_png_values(depth, values_per_unit))


def read_depth_png(path: str | Path) -> np.ndarray:
    """Inverse of :func:`write_depth_png`: float32 depth in scene units."""
    return (iio.imread(path).astype(np.float64) / DEPTH_PNG_SCALE).astype(np.float32)
