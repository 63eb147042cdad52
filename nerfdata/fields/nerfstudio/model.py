"""nerfstudio's model built from a run's config without its datamanager, and its weights loaded.

Only nerfacto and its variants are built. nerfstudio's models construct torchmetrics' LPIPS
metric, which downloads AlexNet weights; :func:`without_lpips_download` builds them with a
stand-in (an evaluation metric only), here and in the training launcher
(:mod:`nerfdata.fields.nerfstudio.train`).
"""

import contextlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from nerfdata.errors import CheckpointError
from nerfdata.fields.base import check_state_dict

__all__ = ["build_model", "check_model_class", "load_weights", "without_lpips_download"]


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


def check_model_class(config_path: Path, config: Any) -> None:
    """Refuse a run whose model is not nerfacto's (or a subclass of it), naming its method."""
    from nerfstudio.models.nerfacto import NerfactoModel

    target = config.pipeline.model._target
    if not (isinstance(target, type) and issubclass(target, NerfactoModel)):
        method = getattr(config, "method_name", None) or "?"
        raise CheckpointError(
            f"{config_path}: nerfstudio method {method!r} (model {getattr(target, '__name__', repr(target))}) is not "
            "supported; nerfdata loads nerfacto and its variants (nerfacto-big, nerfacto-huge, depth-nerfacto)"
        )


def build_model(config_path: Path, config: Any, tensors: dict[str, Tensor]) -> nn.Module:
    """nerfstudio's model for ``config``, built without a datamanager (sizes from the tensors)."""
    from nerfstudio.data.scene_box import SceneBox

    model_config = config.pipeline.model
    if "field.aabb" not in tensors:
        raise CheckpointError(f"{config_path}: checkpoint lacks the field's scene box ('_model.field.aabb')")
    num_images = 1
    for key in ("field.embedding_appearance.embedding.weight", "camera_optimizer.pose_adjustment"):
        if key in tensors:
            num_images = int(tensors[key].shape[0])
            break
    model_config.implementation = "torch"  # tiny-cuda-nn weights are converted (convert_tcnn_modules)
    with without_lpips_download():
        model = model_config.setup(
            scene_box=SceneBox(aabb=tensors["field.aabb"].float()), num_train_data=num_images,
            metadata={}, device="cpu", grad_scaler=None,
        )
    return model


def load_weights(path: Path, model: nn.Module, tensors: dict[str, Tensor]) -> None:
    """Load checkpoint ``path``'s ``tensors`` into ``model``, tiny-cuda-nn vectors converted; all or nothing."""
    from nerfdata.fields.nerfstudio.tcnn import convert_tcnn_modules

    tensors = convert_tcnn_modules(path, model, tensors)
    check_state_dict(path, model.state_dict(), tensors, "the model in config.yml")
    model.load_state_dict(tensors, strict=True)
