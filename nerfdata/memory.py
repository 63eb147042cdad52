"""Memory estimates, checked before anything large is allocated: one rule for every job that has a cap.

A job that could be asked for more memory than the machine has (a mesh at a high resolution, a
render of huge images) estimates what it needs from its config alone and refuses, in one line,
when that exceeds its ``max_memory_gb``, before it allocates anything or makes any folder.
"""

from collections.abc import Iterable

from nerfdata.cameras import Intrinsics
from nerfdata.errors import ConfigError

__all__ = ["VIEW_BYTES_PER_PIXEL", "check_memory", "check_view_memory", "view_memory"]

VIEW_BYTES_PER_PIXEL = 512
"""Peak bytes per pixel of rendering one view and writing its layers.

Measured: 234 bytes per pixel with every volume layer (rgb, depth, range, normals, mask, confidence,
depth_modes), from the peak resident memory of a 768x768 and a 256x256 render of the analytic demo
field; doubled for the mesh-based labels and BOP files, which ray cast the whole image at once.
Rays are marched in chunks, so the field's samples do not grow with the image."""


def view_memory(width: int, height: int) -> int:
    """Bytes needed to render and write one ``width x height`` view (:data:`VIEW_BYTES_PER_PIXEL`).

    Example:
        >>> view_memory(4096, 4096) / 2**30
        8.0
    """
    return VIEW_BYTES_PER_PIXEL * width * height


def check_memory(needed: int, max_memory_gb: float, what: str, advice: str) -> None:
    """Refuse a job whose estimate ``needed`` (bytes) exceeds ``max_memory_gb`` (GiB).

    Raises:
        ConfigError: ``{what}: about N GB, more than max_memory_gb = M; {advice}``.

    Example:
        >>> check_memory(2**33, 8.0, "a view", "render smaller images")
        >>> check_memory(2**34, 8.0, "a 5792x5792 view", "render smaller images")
        Traceback (most recent call last):
        ...
        nerfdata.errors.ConfigError: a 5792x5792 view: about 16.0 GB, more than max_memory_gb = 8; render smaller images
    """
    if needed > max_memory_gb * 2**30:
        raise ConfigError(
            f"{what}: about {needed / 2**30:.1f} GB, more than max_memory_gb = {max_memory_gb:g}; {advice}"
        )


def check_view_memory(views: Iterable[Intrinsics], max_memory_gb: float) -> None:
    """Refuse a render whose largest view would need more than ``max_memory_gb`` (views render one at a time).

    Raises:
        ConfigError: naming the view's size, e.g. ``camera: a 100000x100000 view: about 4768.4 GB, ...``.
    """
    largest = max(views, key=lambda k: k.num_pixels, default=None)
    if largest is not None:
        check_memory(
            view_memory(largest.width, largest.height), max_memory_gb,
            f"camera: a {largest.width}x{largest.height} view", "render smaller images or raise max_memory_gb",
        )
