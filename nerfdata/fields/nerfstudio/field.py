"""A nerfstudio nerfacto run as a nerfdata field, in the frame and units of its training data."""

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from jaxtyping import Float
from torch import Tensor, nn

from nerfdata.atomic import sha256_file
from nerfdata.errors import CheckpointError
from nerfdata.fields.base import Field, LoadedField, inside_aabb
from nerfdata.fields.nerfstudio.checkpoint import find_checkpoint, read_checkpoint
from nerfdata.fields.nerfstudio.config import read_nerfstudio_config
from nerfdata.fields.nerfstudio.frame import DataparserTransform
from nerfdata.fields.nerfstudio.hashgrid import swap_hash_encodings
from nerfdata.fields.nerfstudio.model import build_model, check_model_class, load_weights

__all__ = ["NerfstudioCheckpoint", "NerfstudioField", "load_nerfstudio_field", "load_nerfstudio_loaded_field"]

NERFSTUDIO_HINT = (
    "needs the [nerfstudio] extra: nerfstudio==1.1.5 with the CUDA build of torch and torchvision "
    "(see README, 'nerfstudio checkpoints')"
)


class NerfstudioField(Field):
    """A loaded nerfstudio nerfacto model as a nerfdata field, in the data's frame and units.

    ``aabb`` is the world-frame box around the model's scene box (nerfstudio's normalised
    ``[-1, 1]^3`` by default), unless a tighter one is given.
    """

    field_type = "nerfstudio"

    def __init__(
        self,
        model: nn.Module,
        frame: DataparserTransform,
        config_path: Path,
        aabb: Float[Tensor, "2 3"] | None = None,
    ) -> None:
        if aabb is None:
            box = model.scene_box.aabb.float()
            corners = torch.stack(torch.meshgrid(*box.T, indexing="ij"), dim=-1).reshape(-1, 3)
            world = frame.from_nerfstudio(corners)
            aabb = torch.stack([world.min(dim=0).values, world.max(dim=0).values])
        super().__init__(aabb)
        self.model = model
        self.frame = frame
        self.config_path = Path(config_path)

    def _samples(self, positions: Tensor, directions: Tensor) -> Any:
        from nerfstudio.cameras.rays import Frustums, RaySamples

        n = positions.shape[0]
        zeros = positions.new_zeros(n, 1)
        frustums = Frustums(
            origins=self.frame.to_nerfstudio(positions),
            directions=self.frame.directions_to_nerfstudio(directions),
            starts=zeros, ends=zeros, pixel_area=torch.ones_like(zeros),
        )
        camera_indices = torch.zeros(n, 1, dtype=torch.long, device=positions.device)
        return RaySamples(frustums=frustums, camera_indices=camera_indices)

    def _density(self, positions: Tensor, samples: Any) -> tuple[Tensor, Tensor]:
        density_ns, embedding = self.model.field.get_density(samples)
        sigma = density_ns[:, 0] * self.frame.scale
        return sigma * inside_aabb(positions, self.aabb), embedding

    def density(self, positions: Float[Tensor, "n 3"]) -> Float[Tensor, " n"]:
        if positions.shape[0] == 0:
            return positions.new_zeros(0)
        return self._density(positions, self._samples(positions, torch.zeros_like(positions)))[0]

    def query(
        self, positions: Float[Tensor, "n 3"], directions: Float[Tensor, "n 3"]
    ) -> tuple[Float[Tensor, " n"], Float[Tensor, "n 3"]]:
        if positions.shape[0] == 0:
            return positions.new_zeros(0), positions.new_zeros(0, 3)
        samples = self._samples(positions, directions)
        sigma, embedding = self._density(positions, samples)
        return sigma, self._rgb(samples, embedding)

    def geometry(self, positions: Float[Tensor, "n 3"]) -> tuple[Float[Tensor, " n"], Float[Tensor, "n f"]]:
        """Density, and as features the positions (nerfacto's colour reads the samples) beside its density embedding."""
        if positions.shape[0] == 0:
            return positions.new_zeros(0), positions.new_zeros(0, 3)
        sigma, embedding = self._density(positions, self._samples(positions, torch.zeros_like(positions)))
        return sigma, torch.cat([positions, embedding.to(positions.dtype)], dim=-1)

    def shade(self, features: Float[Tensor, "n f"], directions: Float[Tensor, "n 3"]) -> Float[Tensor, "n 3"]:
        if features.shape[0] == 0:
            return features.new_zeros(0, 3)
        return self._rgb(self._samples(features[:, :3], directions), features[:, 3:])

    def _rgb(self, samples: Any, embedding: Tensor) -> Tensor:
        from nerfstudio.field_components.field_heads import FieldHeadNames

        rgb = self.model.field.get_outputs(samples, density_embedding=embedding)[FieldHeadNames.RGB]
        return rgb.reshape(-1, 3).float()

    def config_dict(self) -> dict[str, Any]:
        return {"config": str(self.config_path), "aabb": self.aabb.tolist()}

    @classmethod
    def from_config_dict(cls, config: dict[str, Any]) -> "NerfstudioField":
        return load_nerfstudio_field(config["config"], aabb=config.get("aabb")).field


@dataclass
class NerfstudioCheckpoint:
    """What :func:`load_nerfstudio_field` read: the field, its files and the training step."""

    field: NerfstudioField
    config_path: Path
    checkpoint_path: Path
    step: int
    method: str
    hash_grids: dict[str, str]
    """Per PyTorch hash grid of the model: "nerfdata" (on nerfdata's kernels) or "nerfstudio: <why not>"."""


def load_nerfstudio_field(
    config_path: str | Path, aabb: Float[Tensor, "2 3"] | list | None = None, nerfdata_kernels: bool = True
) -> NerfstudioCheckpoint:
    """Load a nerfstudio run (its ``config.yml``) as a frozen :class:`NerfstudioField` on the CPU.

    Args:
        config_path: The run's ``config.yml``; ``dataparser_transforms.json`` and the checkpoint
            folder (``nerfstudio_models/`` by default) are found beside it.
        aabb: World-frame box ``[min, max]`` of the field; default: around the model's scene box.
        nerfdata_kernels: Evaluate the model's PyTorch hash grids (``hash_table``) with nerfdata's
            kernels where they give nerfstudio's outputs (:mod:`.hashgrid`); ``False`` keeps
            nerfstudio's own modules (as ``ns-render`` runs them).

    Raises:
        CheckpointError: a file is missing or unreadable, the method is not supported, or a
            tensor is missing, unexpected, misshapen or not convertible.
    """
    try:
        import nerfstudio  # noqa: F401
    except ImportError:
        raise CheckpointError(
            f"{config_path}: nerfstudio run configs are not supported without the [nerfstudio] extra; "
            f"it {NERFSTUDIO_HINT}"
        ) from None
    config_path = Path(config_path)
    config = read_nerfstudio_config(config_path)
    check_model_class(config_path, config)
    frame = DataparserTransform.from_json(config_path.parent / "dataparser_transforms.json")
    checkpoint = find_checkpoint(config_path, config)
    tensors, step = read_checkpoint(checkpoint)
    model = build_model(config_path, config, tensors)
    load_weights(checkpoint, model, tensors)
    hash_grids = swap_hash_encodings(model) if nerfdata_kernels else {}
    model.eval().requires_grad_(False)
    box = None if aabb is None else torch.as_tensor(aabb, dtype=torch.float32)
    field_ = NerfstudioField(model, frame, config_path, box).eval()
    method = str(getattr(config, "method_name", "?"))
    return NerfstudioCheckpoint(field_, config_path, checkpoint, step, method, hash_grids)


def load_nerfstudio_loaded_field(config_path: str | Path, device: str | torch.device = "cpu") -> LoadedField:
    """:func:`load_nerfstudio_field` as the :class:`~nerfdata.fields.base.LoadedField` every job takes.

    ``json_path`` is the ``config.yml``, ``sha256`` the checksum of the weights file, and the
    metadata records the method, step, checkpoint and the dataparser transform that was undone.
    """
    loaded = load_nerfstudio_field(config_path)
    metadata = {
        "source": "nerfstudio",
        "method": loaded.method,
        "step": loaded.step,
        "checkpoint": str(loaded.checkpoint_path),
        "dataparser_transform": loaded.field.frame.to_dict(),
        "hash_grids": loaded.hash_grids,
    }
    return LoadedField(
        field=loaded.field.to(device), occupancy=None, json_path=loaded.config_path,
        sha256=sha256_file(loaded.checkpoint_path), metadata=metadata,
    )
