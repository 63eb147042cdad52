"""Per-pixel labels derived from a rendered view: confidence and normals from depth.

* Confidence says how much a pixel's depth can be trusted, from the distribution of ray termination:
  ``accumulation * exp(-0.5 * (spread / (spread_tolerance * range))^2)``. A crisp, opaque surface
  (spread well under ``spread_tolerance`` of the distance) scores near 1; haze, semi-transparency
  or a ray split between two surfaces scores low.
* Normals from depth: the cross product of the back-projected neighbours' differences, a
  geometric alternative to the density gradient, whose direction is noisy on hash-grid fields.
"""

import numpy as np
from jaxtyping import Float

__all__ = ["confidence", "normals_from_points"]


def confidence(
    accumulation: Float[np.ndarray, "h w"],
    spread: Float[np.ndarray, "h w"],
    ranges: Float[np.ndarray, "h w"],
    spread_tolerance: float = 0.01,
) -> Float[np.ndarray, "h w"]:
    """Per-pixel confidence in ``[0, 1]`` (0 where nothing was hit).

    Example:
        >>> float(confidence(np.ones((1, 1)), np.full((1, 1), 0.01), np.ones((1, 1)), 0.01)[0, 0])
        0.6065306597126334
    """
    relative = spread / np.maximum(spread_tolerance * ranges, 1e-12)
    # Accumulation is a sum of float32 weights and may exceed 1 by rounding.
    return np.where(ranges > 0, np.clip(accumulation, 0.0, 1.0) * np.exp(-0.5 * relative**2), 0.0)


def normals_from_points(
    points: Float[np.ndarray, "h w 3"], directions: Float[np.ndarray, "h w 3"], valid: np.ndarray
) -> Float[np.ndarray, "h w 3"]:
    """Unit normals of the surface through back-projected ``points``, facing the camera.

    Uses central differences across the image where both neighbours are valid, one-sided ones at
    borders of the valid region; 0 where a pixel has no valid neighbour along an axis.

    Args:
        points: World points of each pixel's surface hit.
        directions: The pixels' ray directions (to orient normals towards the camera).
        valid: Boolean ``(h, w)``: pixels with a surface.
    """
    def difference(axis: int) -> tuple[np.ndarray, np.ndarray]:
        forward = np.roll(points, -1, axis) - points
        backward = points - np.roll(points, 1, axis)
        has_next = np.roll(valid, -1, axis) & valid
        has_prev = np.roll(valid, 1, axis) & valid
        last = [slice(None)] * 2
        last[axis] = -1
        has_next[tuple(last)] = False
        first = [slice(None)] * 2
        first[axis] = 0
        has_prev[tuple(first)] = False
        both = (has_next & has_prev)[..., None]
        diff = np.where(both, forward + backward, np.where(has_next[..., None], forward, backward))
        return diff, has_next | has_prev

    d_x, ok_x = difference(1)
    d_y, ok_y = difference(0)
    normal = np.cross(d_y, d_x)
    length = np.linalg.norm(normal, axis=-1, keepdims=True)
    normal = np.where(length > 0, normal / np.maximum(length, 1e-30), 0.0)
    facing_away = np.sum(normal * directions, axis=-1, keepdims=True) > 0
    normal = np.where(facing_away, -normal, normal)
    return np.where((valid & ok_x & ok_y)[..., None], normal, 0.0).astype(np.float32)
