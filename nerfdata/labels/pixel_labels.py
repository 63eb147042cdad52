"""Per-pixel confidence of a rendered view's depth (normals and their confidence: :mod:`nerfdata.labels.normals`).

Confidence says how much a pixel's depth can be trusted, from the distribution of ray termination:
``accumulation * exp(-0.5 * (spread / (spread_tolerance * range))^2)``. A crisp, opaque surface
(spread well under ``spread_tolerance`` of the distance) scores near 1; haze, semi-transparency
or a ray split between two surfaces scores low.
"""

import numpy as np
from jaxtyping import Float

__all__ = ["confidence"]


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
