"""A nerfstudio run's checkpoint: the latest ``step-*.ckpt``, read as weights only (no pickled code)."""

import re
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor

from nerfdata.errors import CheckpointError

__all__ = ["find_checkpoint", "read_checkpoint"]


def find_checkpoint(config_path: Path, config: Any) -> Path:
    """The latest ``step-*.ckpt`` in the run's model folder, resolved beside ``config.yml``."""
    relative = Path(getattr(config, "relative_model_dir", None) or "nerfstudio_models")
    folder = relative if relative.is_absolute() else config_path.parent / relative
    if not folder.is_dir():
        raise CheckpointError(
            f"{folder}: checkpoint folder not found (config.yml expects its step-*.ckpt files in "
            f"'{relative}' beside it)"
        )
    steps = sorted(
        (int(match.group(1)), path)
        for path in folder.glob("step-*.ckpt")
        if (match := re.fullmatch(r"step-(\d+)\.ckpt", path.name))
    )
    if not steps:
        raise CheckpointError(f"{folder}: no step-*.ckpt checkpoint in the checkpoint folder")
    return steps[-1][1]


def _numpy_safe_globals() -> list[Any]:
    """Exactly the numpy types nerfstudio's checkpoints hold: scalars (in its scheduler state) and their dtype."""
    try:
        from numpy._core.multiarray import scalar  # numpy >= 2
    except ImportError:
        from numpy.core.multiarray import scalar
    # A pickled scalar names its dtype's class (numpy.dtypes.Float64DType...): the numeric ones nerfstudio stores.
    dtype_classes = [type(np.dtype(t)) for t in (np.float64, np.float32, np.int64, np.int32)]
    return [
        (scalar, "numpy.core.multiarray.scalar"),
        (scalar, "numpy._core.multiarray.scalar"),
        np.dtype,
        *dtype_classes,
    ]


def read_checkpoint(path: Path) -> tuple[dict[str, Tensor], int]:
    """The model's tensors (``_model.`` prefix removed) and the training step, loaded without pickled code."""
    try:
        with torch.serialization.safe_globals(_numpy_safe_globals()):
            state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:  # torch raises many types: UnpicklingError, RuntimeError, EOFError...
        first = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise CheckpointError(f"{path}: cannot be loaded as weights only ({first[:300]})") from None
    if not isinstance(state, dict) or not isinstance(state.get("pipeline"), dict):
        raise CheckpointError(f"{path}: not a nerfstudio checkpoint (no 'pipeline' state)")
    tensors = {
        key.replace("module.", "").removeprefix("_model."): value
        for key, value in state["pipeline"].items()
        if key.replace("module.", "").startswith("_model.")
    }
    return tensors, int(state.get("step", -1))
