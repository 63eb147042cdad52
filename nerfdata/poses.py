"""Camera pose samplers: where the views of a render job come from.

Every sampler is a pure function of its config and a ``torch.Generator`` (so a job's seed fixes its
views), and returns :class:`View` s: a camera-to-world pose with OpenGL axes (``c2w_opengl``), the
intrinsics of its source when it has one (poses read from a file), and a label. A job's ``views`` is
a list of samplers whose views are concatenated in order:

* ``orbit``: a horizontal circle at a fixed elevation, evenly spaced in azimuth;
* ``shell``: uniform on a sphere or upper hemisphere between two radii;
* ``spiral``: around the target while rising from one elevation to another;
* ``perturb``: the poses of a ``transforms.json`` (e.g. the training poses) with rotation and
  translation noise of given magnitude, the classic augmentation;
* ``path``: interpolated along a path through key poses (positions and rotations slerped);
* ``file``: exactly the poses of a ``transforms.json``, in its order, with its intrinsics.

Samplers that look at a target accept ``roll_jitter_deg``: a random roll about the optical axis.
"World up" is +y.
"""

import math
from collections.abc import Callable
from dataclasses import dataclass, fields
from pathlib import Path

import numpy as np
import torch
from jaxtyping import Float
from torch import Tensor

from nerfdata.cameras import Camera, Intrinsics, look_at_c2w_opengl
from nerfdata.errors import ConfigError
from nerfdata.rotations import axis_angle_matrix, slerp_matrices

__all__ = [
    "FileConfig",
    "Keyframe",
    "OrbitConfig",
    "PathConfig",
    "PerturbConfig",
    "SamplerConfig",
    "ShellConfig",
    "SpiralConfig",
    "View",
    "derived_seed",
    "orbit_poses",
    "sample_views",
]

Vec3 = tuple[float, float, float]
_UP = torch.tensor([0.0, 1.0, 0.0], dtype=torch.float64)


@dataclass(frozen=True)
class View:
    """One camera to render: pose, the intrinsics of its source (if any), and where it came from."""

    c2w_opengl: Float[Tensor, "4 4"]
    source_intrinsics: Intrinsics | None
    label: str


def _positive(name: str, value: float) -> None:
    if not value > 0:
        raise ConfigError(f"{name} must be positive, got {value}")


def _count(name: str, value: int) -> None:
    if value < 1:
        raise ConfigError(f"{name} count must be >= 1, got {value}")


@dataclass(frozen=True)
class OrbitConfig:
    """Views on a horizontal circle around ``target``, evenly spaced in azimuth."""

    count: int = 24
    radius: float = 3.0
    """Distance from the target (scene units)."""
    elevation_deg: float = 25.0
    """Angle above the horizontal plane through the target."""
    target: Vec3 = (0.0, 0.0, 0.0)
    start_azimuth_deg: float = 0.0
    roll_jitter_deg: float = 0.0

    def __post_init__(self) -> None:
        _count("orbit", self.count)
        _positive("orbit radius", self.radius)
        if not -90.0 < self.elevation_deg < 90.0:
            raise ConfigError(f"orbit elevation_deg must be in (-90, 90), got {self.elevation_deg}")


@dataclass(frozen=True)
class ShellConfig:
    """Views drawn uniformly over a sphere (or the upper hemisphere) between two radii."""

    count: int = 24
    radius: tuple[float, float] = (2.5, 3.5)
    """Smallest and largest distance from the target (uniform in volume between them)."""
    hemisphere: bool = False
    """Only views above the horizontal plane through the target."""
    target: Vec3 = (0.0, 0.0, 0.0)
    roll_jitter_deg: float = 0.0

    def __post_init__(self) -> None:
        _count("shell", self.count)
        _positive("shell radius", self.radius[0])
        if self.radius[1] < self.radius[0]:
            raise ConfigError(f"shell radius must be [smallest, largest], got {list(self.radius)}")


@dataclass(frozen=True)
class SpiralConfig:
    """Views spiralling around ``target``: ``turns`` revolutions while the elevation sweeps its range."""

    count: int = 24
    radius: float = 3.0
    elevation_deg: tuple[float, float] = (10.0, 60.0)
    turns: float = 2.0
    target: Vec3 = (0.0, 0.0, 0.0)
    roll_jitter_deg: float = 0.0

    def __post_init__(self) -> None:
        _count("spiral", self.count)
        _positive("spiral radius", self.radius)
        if not all(-90.0 < e < 90.0 for e in self.elevation_deg):
            raise ConfigError(f"spiral elevation_deg must be within (-90, 90), got {list(self.elevation_deg)}")


@dataclass(frozen=True)
class PerturbConfig:
    """The poses of a ``transforms.json`` with random rotation and translation noise.

    Each perturbed view rotates its source camera about a uniformly random axis through its centre
    by an angle uniform in ``[0, rotation_deg]`` and moves it in a uniformly random direction by a
    distance uniform in ``[0, translation]`` scene units.
    """

    poses: Path
    """A transforms.json (or its folder), e.g. the training data of the field."""
    per_pose: int = 1
    """Perturbed views per source pose."""
    rotation_deg: float = 5.0
    translation: float = 0.05
    split: str = "all"
    """Which frames to perturb: "all", or a split name of the file ("train", "test")."""

    def __post_init__(self) -> None:
        _count("perturb per_pose", self.per_pose)
        if self.rotation_deg < 0 or self.translation < 0:
            raise ConfigError("perturb rotation_deg and translation must be >= 0")


@dataclass(frozen=True)
class Keyframe:
    """A key pose of a path: camera position and the point it looks at."""

    eye: Vec3
    target: Vec3 = (0.0, 0.0, 0.0)


@dataclass(frozen=True)
class PathConfig:
    """Views interpolated along a path through key poses: positions linearly, rotations by slerp."""

    count: int = 30
    keyframes: tuple[Keyframe, ...] = ()
    """Key poses given by eye and target..."""
    poses: Path | None = None
    """...or taken from a transforms.json (its frames in order)."""
    closed: bool = False
    """Return to the first key pose at the end."""

    def __post_init__(self) -> None:
        _count("path", self.count)
        if (len(self.keyframes) == 0) == (self.poses is None):
            raise ConfigError("path needs either keyframes or poses (a transforms.json), not both")


@dataclass(frozen=True)
class FileConfig:
    """Exactly the poses of a ``transforms.json``, in its frame order, with its intrinsics."""

    path: Path


@dataclass(frozen=True)
class SamplerConfig:
    """One entry of a job's ``views`` list: exactly one sampler."""

    orbit: OrbitConfig | None = None
    shell: ShellConfig | None = None
    spiral: SpiralConfig | None = None
    perturb: PerturbConfig | None = None
    path: PathConfig | None = None
    file: FileConfig | None = None

    def __post_init__(self) -> None:
        chosen = [f.name for f in fields(self) if getattr(self, f.name) is not None]
        if len(chosen) != 1:
            names = ", ".join(f.name for f in fields(self))
            raise ConfigError(f"each views entry names exactly one sampler ({names}); got {chosen or 'none'}")

    @property
    def name(self) -> str:
        return next(f.name for f in fields(self) if getattr(self, f.name) is not None)


# ------------------------------------------------------------------------------------- geometry


def _look_at(eye: Tensor, target: Tensor) -> Tensor:
    return look_at_c2w_opengl(eye, target.expand_as(eye), _UP.expand_as(eye))


def _spherical(radius: Tensor, azimuth: Tensor, elevation: Tensor) -> Tensor:
    """Offsets ``(n, 3)``; azimuth 0 is +z, 90 degrees is +x; elevation above the xz plane."""
    return radius[:, None] * torch.stack(
        [torch.sin(azimuth) * torch.cos(elevation), torch.sin(elevation), torch.cos(azimuth) * torch.cos(elevation)], -1
    )


def _roll(c2w: Tensor, max_deg: float, generator: torch.Generator) -> Tensor:
    """Rotate each camera about its own optical axis by an angle uniform in ``[-max_deg, max_deg]``."""
    if max_deg == 0:
        return c2w
    angles = torch.deg2rad((torch.rand(len(c2w), generator=generator, dtype=torch.float64) * 2 - 1) * max_deg)
    rolled = c2w.clone()
    rolled[:, :3, :3] = c2w[:, :3, :3] @ axis_angle_matrix(torch.tensor([[0.0, 0.0, 1.0]], dtype=torch.float64), angles)
    return rolled


def _random_directions(n: int, generator: torch.Generator) -> Tensor:
    return torch.nn.functional.normalize(torch.randn(n, 3, generator=generator, dtype=torch.float64), dim=-1)


# ------------------------------------------------------------------------------------- samplers


def orbit_poses(config: OrbitConfig, generator: torch.Generator | None = None) -> Float[Tensor, "count 4 4"]:
    """Camera-to-world (OpenGL axes) poses on an orbit, each looking at the target.

    Example:
        >>> orbit_poses(OrbitConfig(count=4, radius=2.0, elevation_deg=0.0))[0, :3, 3].tolist()
        [0.0, 0.0, 2.0]
    """
    steps = torch.arange(config.count, dtype=torch.float64)
    azimuth = torch.deg2rad(config.start_azimuth_deg + steps * (360.0 / config.count))
    elevation = torch.full_like(azimuth, math.radians(config.elevation_deg))
    target = torch.tensor(config.target, dtype=torch.float64)
    c2w = _look_at(target + _spherical(torch.full_like(azimuth, config.radius), azimuth, elevation), target)
    if config.roll_jitter_deg and generator is not None:
        c2w = _roll(c2w, config.roll_jitter_deg, generator)
    return c2w.float()


def _shell(config: ShellConfig, generator: torch.Generator) -> Tensor:
    n = config.count
    direction = _random_directions(n, generator)
    if config.hemisphere:
        direction[:, 1] = direction[:, 1].abs()
    low, high = config.radius
    u = torch.rand(n, generator=generator, dtype=torch.float64)
    radius = (low**3 + u * (high**3 - low**3)) ** (1.0 / 3.0)  # uniform in the shell's volume
    target = torch.tensor(config.target, dtype=torch.float64)
    return _roll(_look_at(target + radius[:, None] * direction, target), config.roll_jitter_deg, generator)


def _spiral(config: SpiralConfig, generator: torch.Generator) -> Tensor:
    fraction = torch.linspace(0.0, 1.0, config.count, dtype=torch.float64)
    azimuth = 2 * math.pi * config.turns * fraction
    low, high = (math.radians(e) for e in config.elevation_deg)
    elevation = low + (high - low) * fraction
    target = torch.tensor(config.target, dtype=torch.float64)
    eye = target + _spherical(torch.full_like(azimuth, config.radius), azimuth, elevation)
    return _roll(_look_at(eye, target), config.roll_jitter_deg, generator)


def _perturb(c2w: Tensor, config: PerturbConfig, generator: torch.Generator) -> Tensor:
    source = c2w.double().repeat_interleave(config.per_pose, dim=0)
    n = len(source)
    angles = torch.deg2rad(torch.rand(n, generator=generator, dtype=torch.float64) * config.rotation_deg)
    rotation = axis_angle_matrix(_random_directions(n, generator), angles)
    directions = _random_directions(n, generator)  # drawn before the lengths: the seed fixes this order
    shift = directions * (torch.rand(n, 1, generator=generator, dtype=torch.float64) * config.translation)
    perturbed = source.clone()
    perturbed[:, :3, :3] = rotation @ source[:, :3, :3]
    perturbed[:, :3, 3] = source[:, :3, 3] + shift
    return perturbed


def _path(keys: Tensor, count: int, closed: bool) -> Tensor:
    keys = keys.double()
    if closed:
        keys = torch.cat([keys, keys[:1]])
    if len(keys) == 1:
        return keys.repeat(count, 1, 1)
    times = np.arange(len(keys), dtype=np.float64)
    samples = np.linspace(0.0, times[-1], count, endpoint=not closed)
    rotations = slerp_matrices(keys[:, :3, :3], times, samples)
    positions = np.stack([np.interp(samples, times, keys[:, :3, 3].numpy()[:, d]) for d in range(3)], -1)
    c2w = torch.eye(4, dtype=torch.float64).repeat(count, 1, 1)
    c2w[:, :3, :3], c2w[:, :3, 3] = rotations, torch.from_numpy(positions)
    return c2w


def derived_seed(seed: int, stride: int, index: int) -> int:
    """The seed of part ``index`` of a job seeded ``seed``: ``seed * stride + index``, wrapped to 64 bits.

    Every seed below ``2^64 / stride`` gives the value it always gave; larger ones (a job's seed may
    be anything in ``[0, 2^63)``) wrap instead of overflowing what a generator takes.

    Example:
        >>> derived_seed(7, 1000, 2), derived_seed(2**63 - 1, 1000, 0) < 2**64
        (7002, True)
    """
    return (seed * stride + index) % 2**64


def sample_views(
    samplers: tuple[SamplerConfig, ...], seed: int, read_cameras: Callable[[Path, str], list[Camera]]
) -> list[View]:
    """All views of a job, sampler after sampler; sampler ``i`` draws from ``seed`` and ``i`` only.

    Args:
        samplers: The job's ``views`` list.
        seed: The job's seed.
        read_cameras: Reads the cameras of a ``transforms.json`` (path, split name or "all") for the
            samplers that start from a file; the caller owns file formats and their errors.
    """
    views: list[View] = []
    for index, sampler in enumerate(samplers):
        generator = torch.Generator().manual_seed(derived_seed(seed, 1000, index))
        name, config = sampler.name, getattr(sampler, sampler.name)
        intrinsics: list[Intrinsics | None] | None = None
        if isinstance(config, OrbitConfig):
            c2w = orbit_poses(config, generator).double()
        elif isinstance(config, ShellConfig):
            c2w = _shell(config, generator)
        elif isinstance(config, SpiralConfig):
            c2w = _spiral(config, generator)
        elif isinstance(config, PerturbConfig):
            cameras = read_cameras(config.poses, config.split)
            c2w = _perturb(torch.stack([c.c2w_opengl for c in cameras]), config, generator)
            intrinsics = [c.intrinsics for c in cameras for _ in range(config.per_pose)]
        elif isinstance(config, PathConfig):
            if config.poses is not None:
                keys = torch.stack([c.c2w_opengl for c in read_cameras(config.poses, "all")])
            else:
                eyes = torch.tensor([k.eye for k in config.keyframes], dtype=torch.float64)
                keys = _look_at(eyes, torch.tensor([k.target for k in config.keyframes], dtype=torch.float64))
            c2w = _path(keys, config.count, config.closed)
        else:
            cameras = read_cameras(config.path, "all")
            c2w = torch.stack([c.c2w_opengl for c in cameras]).double()
            intrinsics = [c.intrinsics for c in cameras]
        for i, pose in enumerate(c2w.float()):
            source = intrinsics[i] if intrinsics is not None else None
            views.append(View(pose, source, f"{name}[{i}]"))
    return views
