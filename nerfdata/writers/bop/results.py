"""Pose estimates as a BOP19 results file, which the BOP toolkit's scoring scripts take as any method's.

One CSV per dataset, named ``METHOD_DATASET-SPLIT.csv``, with the header
``scene_id,im_id,obj_id,score,R,t,time`` and one estimate per line: ``R`` the 3x3 model-to-camera
rotation row-major, ``t`` the translation in millimetres (OpenCV camera axes), both with their
numbers separated by spaces; ``score`` a confidence (higher is better, any range); ``time`` the
seconds the method took for the whole image (the same on every line of an image; -1: unknown).
Numbers are written with Python's shortest round-tripping ``repr``, so reading the file back gives
the very floats that were written.
"""

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from jaxtyping import Float

from nerfdata.atomic import write_text_atomic

__all__ = ["BOP19_HEADER", "BopEstimate", "bop_results_name", "write_bop_results"]

BOP19_HEADER = "scene_id,im_id,obj_id,score,R,t,time"


@dataclass(frozen=True)
class BopEstimate:
    """One pose estimate of an object instance in an image."""

    scene_id: int
    im_id: int
    obj_id: int
    score: float
    R: Float[np.ndarray, "3 3"]
    """Model-to-camera rotation, OpenCV axes."""
    t: Float[np.ndarray, "3"]
    """Model-to-camera translation, millimetres."""
    time: float
    """Seconds for the image (every estimate of the image has the same); -1: unknown."""


def bop_results_name(method: str, dataset: str, split: str, suffix: str | None = None) -> str:
    """``METHOD_DATASET-SPLIT[_SUFFIX].csv``, the name BOP's scripts parse (no ``_`` or ``-`` in the parts).

    Example:
        >>> bop_results_name("inerf", "nerfdata", "test")
        'inerf_nerfdata-test.csv'
        >>> bop_results_name("inerf", "nerfdata", "test", "run2")
        'inerf_nerfdata-test_run2.csv'
    """
    return f"{method}_{dataset}-{split}{'' if suffix is None else '_' + suffix}.csv"


def _numbers(values: np.ndarray) -> str:
    return " ".join(repr(float(v) + 0.0) for v in np.asarray(values, dtype=np.float64).reshape(-1))


def write_bop_results(path: Path, estimates: Sequence[BopEstimate]) -> None:
    """Write ``estimates`` as a BOP19 results CSV (header, one line each, in order)."""
    lines = [BOP19_HEADER]
    for e in estimates:
        lines.append(
            f"{e.scene_id},{e.im_id},{e.obj_id},{float(e.score)!r},{_numbers(e.R)},{_numbers(e.t)},{float(e.time)!r}"
        )
    write_text_atomic(path, "\n".join(lines) + "\n")
