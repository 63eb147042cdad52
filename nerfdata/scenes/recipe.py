"""Scene recipes: ``scenes/<name>/scene.yaml`` describes meshes, their colours, and a camera rig.

A recipe is data only; :mod:`nerfdata.scenes.meshes` builds the meshes (trimesh) and
:mod:`nerfdata.scenes.groundtruth` renders them exactly (open3d ray casting).
"""

from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from nerfdata.config import from_dict, load_yaml
from nerfdata.errors import ConfigError
from nerfdata.fields.analytic import Pattern

__all__ = ["LightConfig", "MaterialConfig", "ObjectConfig", "RigConfig", "SceneRecipe", "load_recipe"]

Vec3 = tuple[float, float, float]
Shape = Literal["box", "sphere", "cylinder", "capsule", "cone", "torus", "cup"]


@dataclass(frozen=True)
class MaterialConfig:
    """Base colour (sRGB in [0, 1]) modulated by a pattern with ``frequency`` cycles per scene unit."""

    color: Vec3 = (0.8, 0.8, 0.8)
    pattern: Pattern = "checker"
    frequency: float = 4.0


@dataclass(frozen=True)
class ObjectConfig:
    """One mesh: a shape, its size parameters, where it stands and what it looks like.

    Sizes by shape (scene units): ``box``: ``extents`` (x, y, z); ``sphere``: ``radius``;
    ``cylinder``/``capsule``/``cone``: ``radius``, ``height`` (along y); ``torus``: ``radius``
    (major), ``thickness`` (minor radius), lying in the xz plane; ``cup``: ``radius``, ``height``,
    ``thickness`` (wall): an open-topped vessel, i.e. a concavity.
    """

    shape: Shape
    name: str = ""
    position: Vec3 = (0.0, 0.0, 0.0)
    rotation_deg: Vec3 = (0.0, 0.0, 0.0)
    """Rotation about the x, then y, then z axis (extrinsic), in degrees."""
    extents: Vec3 = (1.0, 1.0, 1.0)
    radius: float = 0.5
    height: float = 1.0
    thickness: float = 0.1
    material: MaterialConfig = field(default_factory=MaterialConfig)

    def __post_init__(self) -> None:
        for name in ("radius", "height", "thickness"):
            if getattr(self, name) <= 0:
                raise ConfigError(f"object {self.name or self.shape}: {name} must be positive")
        if min(self.extents) <= 0:
            raise ConfigError(f"object {self.name or self.shape}: extents must be positive")
        if self.shape == "cup" and self.thickness >= self.radius:
            raise ConfigError(f"object {self.name or 'cup'}: wall thickness must be smaller than the radius")


@dataclass(frozen=True)
class RigConfig:
    """Cameras on a spherical patch around ``target``, all looking at it (up = world +y).

    Positions are drawn uniformly over the patch's area (seeded): azimuth uniform in
    ``azimuth_deg``, sine of elevation uniform in ``elevation_deg``. Training and test views are
    separate draws, so test views are novel.
    """

    train_views: int = 100
    test_views: int = 20
    radius: float = 3.0
    target: Vec3 = (0.0, 0.0, 0.0)
    azimuth_deg: tuple[float, float] = (-180.0, 180.0)
    elevation_deg: tuple[float, float] = (-60.0, 80.0)
    width: int = 128
    height: int = 128
    fov_deg: float = 40.0
    """Horizontal field of view."""

    def __post_init__(self) -> None:
        if self.train_views < 1 or self.test_views < 1:
            raise ConfigError("rig: train_views and test_views must be >= 1")
        if self.radius <= 0:
            raise ConfigError(f"rig: radius must be positive, got {self.radius}")
        low, high = self.elevation_deg
        if not -90.0 <= low < high <= 90.0:
            raise ConfigError(
                f"rig: elevation_deg must be an increasing range within [-90, 90], got {self.elevation_deg}"
            )
        if not self.azimuth_deg[0] < self.azimuth_deg[1]:
            raise ConfigError(f"rig: azimuth_deg must be an increasing range, got {self.azimuth_deg}")


@dataclass(frozen=True)
class LightConfig:
    """Lambert shading: ``albedo * (ambient + (1 - ambient) * max(0, n . direction))``."""

    direction: Vec3 = (0.4, 1.0, 0.5)
    ambient: float = 0.35


@dataclass(frozen=True)
class SceneRecipe:
    """A ground-truth scene: meshes, light, camera rig, units."""

    name: str
    objects: tuple[ObjectConfig, ...]
    rig: RigConfig = field(default_factory=RigConfig)
    light: LightConfig = field(default_factory=LightConfig)
    meters_per_unit: float | None = None
    """Metres per scene unit for metric scenes (1.0 when the scene is in metres); None if not metric."""
    aabb_margin: float = 0.05
    """The scene box is the meshes' bounds grown by this fraction of their diagonal."""
    description: str = ""
    seed: int = 0

    def __post_init__(self) -> None:
        if not self.objects:
            raise ConfigError(f"scene {self.name}: needs at least one object")


def load_recipe(path: str | Path) -> SceneRecipe:
    """Read ``scene.yaml`` (or a folder holding one) into a :class:`SceneRecipe`."""
    path = Path(path)
    if path.is_dir():
        path = path / "scene.yaml"
    return from_dict(SceneRecipe, load_yaml(path), str(path))
