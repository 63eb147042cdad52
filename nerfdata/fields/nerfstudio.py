"""nerfstudio checkpoints as nerfdata fields (the ``[nerfstudio]`` extra)."""

import contextlib
from collections.abc import Iterator
from typing import Any

import torch
from torch import Tensor, nn

__all__ = ["without_lpips_download"]


class _NoLPIPS(nn.Module):
    """Stands in for torchmetrics' LPIPS: no weights, every score NaN (an evaluation metric only)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__()

    def forward(self, *args: Any, **kwargs: Any) -> Tensor:
        return torch.tensor(float("nan"))


@contextlib.contextmanager
def without_lpips_download() -> Iterator[None]:
    """Build nerfstudio models without torchmetrics' LPIPS (whose construction downloads AlexNet)."""
    from torchmetrics.image import lpip

    original = lpip.LearnedPerceptualImagePatchSimilarity
    lpip.LearnedPerceptualImagePatchSimilarity = _NoLPIPS
    try:
        yield
    finally:
        lpip.LearnedPerceptualImagePatchSimilarity = original
