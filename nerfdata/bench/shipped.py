"""What the benchmarks measure and where they write, found from the package's checkout.

The benchmarks run on the repository's shipped scenes (``scenes/NAME`` with a recipe and a trained
field), its per-scene recipes (``configs/``) and write ``benchmarks/results.json``: all found beside
the ``nerfdata`` package of the checkout, so ``nerfdata bench`` and ``python benchmarks/X.py`` work
from any folder. Another scenes folder can be given instead (``nerfdata bench --scenes DIR``).
"""

from pathlib import Path

from nerfdata.errors import NerfDataError

__all__ = ["CHECKOUT", "CONFIGS", "RESULTS", "SCENES", "shipped_scenes"]

CHECKOUT = Path(__file__).resolve().parents[2]
"""The repository the package was imported from (its ``scenes/``, ``configs/``, ``benchmarks/``)."""
SCENES = CHECKOUT / "scenes"
CONFIGS = CHECKOUT / "configs"
RESULTS = CHECKOUT / "benchmarks" / "results.json"
"""Where ``nerfdata bench`` writes its figures by default."""


def shipped_scenes(root: Path = SCENES) -> list[Path]:
    """Scene folders under ``root`` that hold both a recipe and a trained field, by name.

    Raises:
        NerfDataError: ``root`` is not a folder (an installed package without its checkout).

    Example:
        >>> [scene.name for scene in shipped_scenes()]
        ['mug', 'room', 'tabletop']
    """
    if not root.is_dir():
        raise NerfDataError(f"{root}: no scenes folder here; pass the folder of the scenes (--scenes DIR)")
    return sorted(p for p in root.iterdir() if (p / "scene.yaml").exists() and (p / "field.json").exists())
