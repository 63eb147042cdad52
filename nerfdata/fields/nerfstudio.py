"""nerfstudio checkpoints as nerfdata fields (the ``[nerfstudio]`` extra).

``load_nerfstudio_field("outputs/x/nerfacto/2024-01-01_000000/config.yml")`` reads a nerfstudio run
folder and returns a :class:`NerfstudioField`, which answers nerfdata's field protocol in the
frame and units of the data the model was trained on:

* **Frames.** nerfstudio trains in a normalised frame: its dataparser maps the data's points
  with ``x_ns = scale * (R x + t)`` (``dataparser_transforms.json``: ``transform`` = ``[R | t]``,
  ``scale``). The field maps world points into that frame before querying the model, and
  returns density per *world* unit of length (``sigma_world = scale * sigma_ns``), so renders,
  depth, normals, meshes, correspondences and poses come out in the original frame and units.
* **Loading.** With nerfstudio's own model code, built from ``config.yml`` without its datamanager
  (no training images needed): the scene box and the number of training images come from the
  checkpoint's tensors. The checkpoint folder is resolved beside ``config.yml`` (nerfstudio's
  ``relative_model_dir``), not from the current directory. ``config.yml`` is read with a YAML
  loader that constructs only nerfstudio's config classes, paths, enums and tuples; the
  checkpoint is read with ``torch.load(weights_only=True)``, allowing exactly the numpy scalar
  types nerfstudio stores in it. The LPIPS evaluation metric is not built (its construction
  downloads AlexNet weights).
* **tiny-cuda-nn checkpoints** (nerfstudio's default on a GPU) load on a CPU: hash grids run on
  nerfdata's hash grid (tiny-cuda-nn's exact layout), MLP vectors become ``nn.Linear`` weights and
  the spherical-harmonics encoding is tiny-cuda-nn's (:mod:`nerfdata.fields.tcnn_convert`). A key
  or shape that does not convert is an error; nothing is ever left at random initialisation.
* **Rendering.** nerfacto is rendered by its proposal sampler; :func:`render_rays_nerfstudio`
  renders nerfdata rays that way (the model's own output, for parity with ``ns-render``). nerfdata's
  renderer samples the field on its own, which is what every nerfdata label does.

Supported methods: nerfacto and its variants (``nerfacto-big``, ``nerfacto-huge``,
``depth-nerfacto``). Anything else (splatfacto, instant-ngp...) is a :class:`CheckpointError`.
nerfstudio is imported only inside this module's functions.
"""

import contextlib
import json
import math
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from jaxtyping import Float
from torch import Tensor, nn

from nerfdata.atomic import sha256_file
from nerfdata.cameras import Rays
from nerfdata.errors import CheckpointError
from nerfdata.fields.base import Field, inside_aabb

__all__ = [
    "DataparserTransform",
    "NerfstudioField",
    "load_nerfstudio_field",
    "load_nerfstudio_loaded_field",
    "read_nerfstudio_config",
    "render_rays_nerfstudio",
    "without_lpips_download",
]

NERFSTUDIO_HINT = (
    "needs the [nerfstudio] extra: nerfstudio==1.1.5 with the CUDA build of torch and torchvision "
    "(see README, 'nerfstudio checkpoints')"
)


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


# --- frames ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class DataparserTransform:
    """nerfstudio's dataparser map from the data's frame to its own: ``x_ns = scale * (R x + t)``.

    Example:
        >>> frame = DataparserTransform(torch.eye(3), torch.tensor([0.0, 0.0, 1.0]), 0.5)
        >>> frame.to_nerfstudio(torch.tensor([[1.0, 0.0, 0.0]])).tolist()
        [[0.5, 0.0, 0.5]]
        >>> frame.from_nerfstudio(frame.to_nerfstudio(torch.tensor([[1.0, 2.0, 3.0]]))).tolist()
        [[1.0, 2.0, 3.0]]
    """

    rotation: Float[Tensor, "3 3"]
    translation: Float[Tensor, "3"]
    scale: float

    @classmethod
    def from_json(cls, path: Path) -> "DataparserTransform":
        """Read ``dataparser_transforms.json``; the transform must be a rotation and a translation."""
        try:
            values = json.loads(path.read_text())
            matrix = torch.tensor(values["transform"], dtype=torch.float64)
            scale = float(values["scale"])
        except FileNotFoundError:
            raise CheckpointError(
                f"{path}: not found; nerfstudio writes it beside config.yml, and without it exports cannot be "
                "mapped back to the data's frame"
            ) from None
        except (OSError, ValueError, KeyError, TypeError) as error:
            raise CheckpointError(f"{path}: unreadable dataparser transform ({error})") from None
        if matrix.shape != (3, 4) or not torch.isfinite(matrix).all() or not (math.isfinite(scale) and scale > 0):
            raise CheckpointError(f"{path}: 'transform' must be a finite 3x4 matrix and 'scale' a positive number")
        rotation = matrix[:, :3]
        orthonormal = torch.allclose(rotation @ rotation.T, torch.eye(3, dtype=torch.float64), atol=1e-4)
        if not orthonormal or torch.det(rotation) < 0:
            raise CheckpointError(f"{path}: 'transform' is not a rotation and a translation")
        return cls(rotation.float(), matrix[:, 3].float(), scale)

    def to_nerfstudio(self, points: Float[Tensor, "n 3"]) -> Float[Tensor, "n 3"]:
        return self.scale * (points @ self.rotation.T.to(points) + self.translation.to(points))

    def from_nerfstudio(self, points: Float[Tensor, "n 3"]) -> Float[Tensor, "n 3"]:
        return (points / self.scale - self.translation.to(points)) @ self.rotation.to(points)

    def directions_to_nerfstudio(self, directions: Float[Tensor, "n 3"]) -> Float[Tensor, "n 3"]:
        return directions @ self.rotation.T.to(directions)

    def c2w_to_nerfstudio(self, c2w: Float[Tensor, "*batch 4 4"]) -> Float[Tensor, "*batch 3 4"]:
        """A camera-to-world pose (OpenGL axes, as nerfstudio's) in nerfstudio's frame, ``3 x 4``."""
        rotation = self.rotation.to(c2w) @ c2w[..., :3, :3]
        centre = self.to_nerfstudio(c2w[..., :3, 3].reshape(-1, 3)).reshape(c2w.shape[:-2] + (3,))
        return torch.cat([rotation, centre[..., None]], dim=-1)

    def to_dict(self) -> dict[str, Any]:
        matrix = torch.cat([self.rotation, self.translation[:, None]], dim=1)
        return {"transform": matrix.tolist(), "scale": self.scale}


# --- reading the run folder -----------------------------------------------------------------------

_SAFE_MODULES = ("nerfstudio.", "pathlib.", "torch.optim.", "torch.nn.")
"""Modules whose names config.yml may reference (nerfstudio's configs, paths, optimizer and layer classes)."""


def _config_loader() -> type:
    """A YAML loader for nerfstudio's ``config.yml`` that builds only harmless objects.

    nerfstudio writes its dataclass configs with ``!!python/object`` tags (instances filled field
    by field, no constructor runs), ``!!python/name`` references and ``!!python/object/apply``
    calls of paths and enums. Names from other modules, and calls of anything but a path, an enum
    or a tuple, are refused.
    """
    import enum
    import pathlib

    import yaml

    class Loader(yaml.UnsafeLoader):
        def find_python_name(self, name: str, mark: Any) -> Any:
            if not name.startswith(_SAFE_MODULES):
                raise yaml.constructor.ConstructorError(None, None, f"refusing to load python name {name!r}", mark)
            return super().find_python_name(name, mark)

        def find_python_module(self, name: str, mark: Any) -> Any:
            raise yaml.constructor.ConstructorError(None, None, f"refusing to load python module {name!r}", mark)

        def make_python_instance(
            self, suffix: str, node: Any, args: Any = None, kwds: Any = None, newobj: bool = False
        ) -> Any:
            cls = self.find_python_name(suffix, node.start_mark)
            # !!python/object: a bare __new__, then its fields are set; no constructor runs.
            instance_only = newobj and isinstance(cls, type) and not args and not kwds
            harmless = isinstance(cls, type) and issubclass(cls, (pathlib.PurePath, enum.Enum, tuple))
            if not (instance_only or harmless):
                raise yaml.constructor.ConstructorError(None, None, f"refusing to call {suffix!r}", node.start_mark)
            return super().make_python_instance(suffix, node, args, kwds, newobj)

    return Loader


def read_nerfstudio_config(config_path: str | Path) -> Any:
    """nerfstudio's ``TrainerConfig`` from a run's ``config.yml`` (restricted YAML loader)."""
    import yaml

    config_path = Path(config_path)
    if not config_path.is_file():
        raise CheckpointError(f"{config_path}: no such nerfstudio config file")
    try:
        config = yaml.load(config_path.read_text(), Loader=_config_loader())  # noqa: S506 (restricted loader)
    except (yaml.YAMLError, ImportError, AttributeError, UnicodeDecodeError) as error:
        detail = getattr(error, "problem", None) or str(error).strip().splitlines()[0] or type(error).__name__
        raise CheckpointError(f"{config_path}: not a readable nerfstudio config ({detail})") from None
    if not hasattr(config, "pipeline") or not hasattr(getattr(config.pipeline, "model", None), "_target"):
        raise CheckpointError(f"{config_path}: not a nerfstudio run config (no pipeline.model)")
    return config


def _checkpoint_file(config_path: Path, config: Any) -> Path:
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
    return [(scalar, "numpy.core.multiarray.scalar"), (scalar, "numpy._core.multiarray.scalar"), np.dtype, *dtype_classes]


def _load_checkpoint(path: Path) -> tuple[dict[str, Tensor], int]:
    """The model's tensors (``_model.`` prefix removed) and the training step, loaded without pickled code."""
    try:
        with torch.serialization.safe_globals(_numpy_safe_globals()):
            state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:  # noqa: BLE001 (torch raises many types: UnpicklingError, RuntimeError, EOFError...)
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


# --- building the model ---------------------------------------------------------------------------


def _model_class_check(config_path: Path, config: Any) -> None:
    from nerfstudio.models.nerfacto import NerfactoModel

    target = config.pipeline.model._target
    if not (isinstance(target, type) and issubclass(target, NerfactoModel)):
        method = getattr(config, "method_name", None) or "?"
        raise CheckpointError(
            f"{config_path}: nerfstudio method {method!r} (model {getattr(target, '__name__', repr(target))}) is not "
            "supported; nerfdata loads nerfacto and its variants (nerfacto-big, nerfacto-huge, depth-nerfacto)"
        )


def _build_model(config_path: Path, config: Any, tensors: dict[str, Tensor]) -> nn.Module:
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


def _load_weights(path: Path, model: nn.Module, tensors: dict[str, Tensor]) -> None:
    from nerfdata.fields.nerfstudio_tcnn import convert_tcnn_modules

    tensors = convert_tcnn_modules(path, model, tensors)
    expected = model.state_dict()
    missing = sorted(set(expected) - set(tensors))
    unexpected = sorted(set(tensors) - set(expected))
    if missing or unexpected:
        parts = ([f"missing tensors {missing[:8]}"] if missing else []) + (
            [f"unexpected tensors {unexpected[:8]}"] if unexpected else []
        )
        raise CheckpointError(f"{path}: does not match the model its config describes: {'; '.join(parts)}")
    for name, value in expected.items():
        if tuple(tensors[name].shape) != tuple(value.shape):
            raise CheckpointError(
                f"{path}: tensor {name!r} has shape {tuple(tensors[name].shape)}, the model in config.yml "
                f"expects {tuple(value.shape)}"
            )
    model.load_state_dict(tensors, strict=True)


# --- the field ------------------------------------------------------------------------------------


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
        return RaySamples(frustums=frustums, camera_indices=torch.zeros(n, 1, dtype=torch.long, device=positions.device))

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
        from nerfstudio.field_components.field_heads import FieldHeadNames

        if positions.shape[0] == 0:
            return positions.new_zeros(0), positions.new_zeros(0, 3)
        samples = self._samples(positions, directions)
        sigma, embedding = self._density(positions, samples)
        rgb = self.model.field.get_outputs(samples, density_embedding=embedding)[FieldHeadNames.RGB]
        return sigma, rgb.reshape(-1, 3).float()

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


def load_nerfstudio_field(
    config_path: str | Path, aabb: Float[Tensor, "2 3"] | list | None = None
) -> NerfstudioCheckpoint:
    """Load a nerfstudio run (its ``config.yml``) as a frozen :class:`NerfstudioField` on the CPU.

    Args:
        config_path: The run's ``config.yml``; ``dataparser_transforms.json`` and the checkpoint
            folder (``nerfstudio_models/`` by default) are found beside it.
        aabb: World-frame box ``[min, max]`` of the field; default: around the model's scene box.

    Raises:
        CheckpointError: a file is missing or unreadable, the method is not supported, or a
            tensor is missing, unexpected, misshapen or not convertible.
    """
    try:
        import nerfstudio  # noqa: F401
    except ImportError:
        raise CheckpointError(
            f"{config_path}: nerfstudio run configs are not supported without the [nerfstudio] extra; it {NERFSTUDIO_HINT}"
        ) from None
    config_path = Path(config_path)
    config = read_nerfstudio_config(config_path)
    _model_class_check(config_path, config)
    frame = DataparserTransform.from_json(config_path.parent / "dataparser_transforms.json")
    checkpoint = _checkpoint_file(config_path, config)
    tensors, step = _load_checkpoint(checkpoint)
    model = _build_model(config_path, config, tensors)
    _load_weights(checkpoint, model, tensors)
    model.eval().requires_grad_(False)
    box = None if aabb is None else torch.as_tensor(aabb, dtype=torch.float32)
    field_ = NerfstudioField(model, frame, config_path, box).eval()
    return NerfstudioCheckpoint(field_, config_path, checkpoint, step, str(getattr(config, "method_name", "?")))


def load_nerfstudio_loaded_field(config_path: str | Path, device: str | torch.device = "cpu") -> Any:
    """:func:`load_nerfstudio_field` as the :class:`~nerfdata.fields.checkpoint.LoadedField` every job takes.

    ``json_path`` is the ``config.yml``, ``sha256`` the checksum of the weights file, and the
    metadata records the method, step, checkpoint and the dataparser transform that was undone.
    """
    from nerfdata.fields.checkpoint import LoadedField

    loaded = load_nerfstudio_field(config_path)
    metadata = {
        "source": "nerfstudio",
        "method": loaded.method,
        "step": loaded.step,
        "checkpoint": str(loaded.checkpoint_path),
        "dataparser_transform": loaded.field.frame.to_dict(),
    }
    return LoadedField(
        field=loaded.field.to(device), occupancy=None, json_path=loaded.config_path,
        sha256=sha256_file(loaded.checkpoint_path), metadata=metadata,
    )


# --- the model's own rendering --------------------------------------------------------------------


@dataclass
class NerfstudioRayOutputs:
    """The model's own render of rays, in the data's frame and units (``range``: along the unit ray)."""

    rgb: Float[Tensor, "n 3"]
    accumulation: Float[Tensor, " n"]
    range_median: Float[Tensor, " n"]
    range_expected: Float[Tensor, " n"]
    depth_median: Float[Tensor, " n"]
    """z-depth along the camera's optical axis (``range * z_per_range``)."""
    depth_expected: Float[Tensor, " n"]


@torch.no_grad()
def render_rays_nerfstudio(field_: NerfstudioField, rays: Rays) -> NerfstudioRayOutputs:
    """Render nerfdata rays (world frame) with the model's own sampler and renderer (nerfacto: proposals).

    The rays are mapped into nerfstudio's frame and rendered by the model exactly as
    ``model.get_outputs_for_camera`` renders a camera's rays; ranges come back in world units.
    """
    from nerfstudio.cameras.rays import RayBundle

    n = len(rays)
    bundle = RayBundle(
        origins=field_.frame.to_nerfstudio(rays.origins).reshape(n, 1, 3),
        directions=field_.frame.directions_to_nerfstudio(rays.directions).reshape(n, 1, 3),
        pixel_area=torch.ones(n, 1, 1),
        camera_indices=torch.zeros(n, 1, 1, dtype=torch.long),
    )
    outputs = field_.model.get_outputs_for_camera_ray_bundle(bundle)
    range_median = outputs["depth"].reshape(n) / field_.frame.scale
    range_expected = outputs["expected_depth"].reshape(n) / field_.frame.scale
    return NerfstudioRayOutputs(
        rgb=outputs["rgb"].reshape(n, 3),
        accumulation=outputs["accumulation"].reshape(n),
        range_median=range_median,
        range_expected=range_expected,
        depth_median=rays.depth_z(range_median),
        depth_expected=rays.depth_z(range_expected),
    )
