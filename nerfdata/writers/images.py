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
    "write_npy",
    "write_png",
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


def write_depth_png(path: str | Path, depth: np.ndarray) -> None:
    """uint16 PNG of ``depth * 1000`` (millimetres for metric scenes); 0 where there is no surface."""
    scaled = np.round(depth.astype(np.float64) * DEPTH_PNG_SCALE)
    scaled[(scaled > np.iinfo(np.uint16).max) | ~np.isfinite(scaled) | (scaled < 0)] = 0
    write_png(path, scaled.astype(np.uint16))


def read_depth_png(path: str | Path) -> np.ndarray:
    """Inverse of :func:`write_depth_png`: float32 depth in scene units."""
    return (iio.imread(path).astype(np.float64) / DEPTH_PNG_SCALE).astype(np.float32)
