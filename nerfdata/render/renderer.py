"""Ray marching and per-ray outputs: the fast marcher, its dense reference twin, and images.

Samples are spaced uniformly along each ray inside the field's box, ``step = box diagonal /
num_steps``; sample ``i`` of a ray covers ``[t_near + i * step, t_near + (i + 1) * step]``.

* :func:`render_rays` (fast): rays advance in rounds. Each round finds each ray's next
  ``samples_per_round`` steps whose midpoints lie in occupied cells of the occupancy grid
  (:mod:`nerfdata.render.marching`: empty space costs one bit lookup, no field evaluation), evaluates
  the field's geometry there only, colours only the samples that weigh in the pixel
  (``unshaded_weight``), and composites them. A ray stops once its transmittance falls below
  ``min_transmittance`` (early termination) or it leaves the box.
* :func:`render_rays_reference` (reference twin): every step of every ray, evaluated and
  composited in one block, no skipping, no early termination. Tests compare the two.

Both share :mod:`nerfdata.render.volume`'s compositing, and both process rays in chunks of
``chunk_rays`` so memory is bounded by the chunk, whatever the number of rays.
"""

import math
from collections.abc import Iterator
from dataclasses import dataclass, field, fields, replace
from typing import Literal

import torch
from jaxtyping import Float
from torch import Tensor

from nerfdata.cameras import Camera, Rays, ray_aabb_intersect
from nerfdata.errors import ConfigError
from nerfdata.fields.base import Field
from nerfdata.fields.occupancy import OccupancyGrid
from nerfdata.render.marching import MarchState, growing_round_limit, next_samples, round_limit, truncate_round
from nerfdata.render.volume import BlockWeights, block_weights, median_crossing, unshaded_samples

__all__ = [
    "EIGHT_BIT_TRANSMITTANCE",
    "GRADIENT_SAMPLES_PER_ROUND",
    "ImageOutputs",
    "RayOutputs",
    "RaySamples",
    "RenderOptions",
    "render_camera_samples",
    "render_image",
    "render_rays",
    "render_rays_reference",
]

EIGHT_BIT_TRANSMITTANCE = 0.5 / 255
"""The default early termination. A ray stopped at transmittance ``T`` misses light worth at most ``T``
in each channel (what lies behind, or the background, weighs ``T``): under half an 8-bit level, so no
stored pixel moves by more than one level (rounding), accumulation by at most ``T`` (no mask flips), and
the median depth not at all (fixed when ``T`` fell past 0.5). The expected depth moves by at most
``T`` times the distance to the box's far side, normalised by the accumulation."""

GRADIENT_SAMPLES_PER_ROUND = 16
"""Rounds of a render that is differentiated (training, the iNeRF solver): they keep training's deeper stop
and fixed rounds, and longer rounds, because there each round adds autograd bookkeeping that outweighs the
samples shorter rounds save (measured: rounds of 8 trained 4% fewer rays/s than rounds of 16)."""

Background = Literal["white", "black", "none"]
_BACKGROUNDS = {"white": 1.0, "black": 0.0, "none": 0.0}


@dataclass(frozen=True)
class RenderOptions:
    """How rays are marched and what is returned."""

    num_steps: int = 1024
    """Samples along the box diagonal; the step size is ``diagonal / num_steps``."""
    near: float = 0.0
    """No samples closer than this to the ray origin (scene units)."""
    far: float = math.inf
    """No samples farther than this from the ray origin (scene units)."""
    background: Background = "white"
    """Colour behind the field; ``"none"`` leaves rgb premultiplied by accumulation."""
    normals: bool = True
    """Compute normals (one extra gradient evaluation of density per sample)."""
    return_samples: bool = False
    """Also return every evaluated sample with its weight (packed, see :class:`RaySamples`)."""
    ranges: bool = True
    """Compute where rays terminate (``range_expected``, ``range_median``, ``depth_spread``; zeros otherwise):
    training needs only colour, accumulation and the samples."""
    min_transmittance: float = EIGHT_BIT_TRANSMITTANCE
    """Early termination: a ray stops once its transmittance falls below this (see :data:`EIGHT_BIT_TRANSMITTANCE`)."""
    chunk_rays: int = 8192
    """Rays processed at once; bounds memory whatever the image size."""
    window: int = 128
    """Steps the PyTorch marcher looks ahead per round (the C marcher has no limit)."""
    samples_per_round: int = 8
    """Field evaluations per ray per round of the fast marcher (at most; a ray that has taken 8 rounds' worth takes
    longer ones: :func:`~nerfdata.render.marching.growing_round_limit`). Every sample of the round in which a
    ray stops is evaluated; a round that reaches a surface from empty space cannot be cut short (nothing says
    the surface is coming), so about half a round is spent past the stop on every hit ray: on the shipped
    fields rounds of 8 spend 18-36% fewer samples per hit ray than rounds of 16 at 512 steps (7-13% at
    1024), at 5% fewer to 42% more rays/s."""
    unshaded_weight: float = 1e-3
    """Per ray, samples lighter than 1/16 of this are composited without evaluating their colour (counted black)
    while the weights so left out add up to at most this (:func:`~nerfdata.render.volume.unshaded_samples`):
    the colour MLP skips empty space inside occupied cells and what lies behind surfaces; colour changes by at
    most this per channel (a quarter of an 8-bit level), accumulation, depth and normals not at all. Training
    renders so too: a sample in front of a surface loses the gradient its colour gives its density (about
    ``c delta``), which measured no PSNR (skipping only samples behind surfaces trained 24% slower to the same
    test PSNR). 0 shades every sample."""
    adaptive_rounds: bool = True
    """Cut a ray's round short where it will terminate sooner (from the optical depth of its last sample):
    fewer samples evaluated past early termination, the same ones before it."""
    stratified: bool = False
    """Jitter each sample uniformly inside its interval (training); needs a generator."""
    marcher: Literal["auto", "torch", "fused"] = "auto"
    """Which implementation picks samples: the C loop on CPU ("auto"), or its PyTorch twin."""

    def __post_init__(self) -> None:
        for name in ("num_steps", "chunk_rays", "window", "samples_per_round"):
            if getattr(self, name) < 1:
                raise ConfigError(f"render option {name} must be >= 1, got {getattr(self, name)}")
        if self.background not in _BACKGROUNDS:
            raise ConfigError(f"background must be one of {sorted(_BACKGROUNDS)}, got {self.background!r}")
        if not 0 <= self.near < self.far:
            raise ConfigError(f"need 0 <= near < far, got near={self.near}, far={self.far}")
        if not 0.0 <= self.min_transmittance < 1.0:
            raise ConfigError(f"min_transmittance must be in [0, 1), got {self.min_transmittance}")
        if not 0.0 <= self.unshaded_weight < 1.0:
            raise ConfigError(f"unshaded_weight must be in [0, 1), got {self.unshaded_weight}")


@dataclass
class RaySamples:
    """Evaluated samples of a batch of rays, packed: sample ``m`` belongs to ray ``ray_indices[m]``.

    Within one ray, samples are ordered front to back.
    """

    ray_indices: Tensor
    t_start: Float[Tensor, " m"]
    t_end: Float[Tensor, " m"]
    weights: Float[Tensor, " m"]
    density: Float[Tensor, " m"]


@dataclass
class RayOutputs:
    """Per-ray results. Distances are ranges along the unit ray direction, in scene units."""

    rgb: Float[Tensor, "n 3"]
    accumulation: Float[Tensor, " n"]
    range_expected: Float[Tensor, " n"]
    """Weighted mean distance of ray termination (normalised by accumulation; 0 if nothing was hit)."""
    range_median: Float[Tensor, " n"]
    """Where the accumulated weight crosses 0.5; 0 where it never does (no surface)."""
    depth_spread: Float[Tensor, " n"]
    """Standard deviation of the termination distance (normalised weights), scene units."""
    num_samples: Tensor
    """Field evaluations spent on each ray (int)."""
    normal: Float[Tensor, "n 3"] | None = None
    """World-frame unit normal: the weighted mean of ``-grad(density) / |grad(density)|``."""
    samples: RaySamples | None = None


@dataclass
class _Accumulator:
    """Running per-ray sums of one chunk (out-of-place updates keep them differentiable)."""

    rgb: Tensor
    weight: Tensor
    t: Tensor
    t_squared: Tensor
    normal: Tensor
    optical_depth: Tensor
    median: Tensor
    median_found: Tensor
    num_samples: Tensor
    unshaded: Tensor
    """Weight composited without colour so far (:func:`~nerfdata.render.volume.unshaded_samples`), detached."""
    samples: list[RaySamples] = field(default_factory=list)

    @classmethod
    def zeros(cls, n: int, device: torch.device) -> "_Accumulator":
        def z(*shape: int, dtype: torch.dtype = torch.float32) -> Tensor:
            return torch.zeros(*shape, dtype=dtype, device=device)

        return cls(
            z(n, 3), z(n), z(n, dtype=torch.float64), z(n, dtype=torch.float64), z(n, 3), z(n), z(n),
            z(n, dtype=torch.bool), z(n, dtype=torch.int64), z(n),
        )


def _evaluate_geometry(
    field_: Field, positions: Tensor, normals: bool
) -> tuple[Tensor, Tensor, Tensor | None]:
    """Density, colour features and (optionally) normals ``-grad(density) / |grad(density)|`` at samples."""
    if not normals:
        density, features = field_.geometry(positions)
        return density, features, None
    training = torch.is_grad_enabled()
    with torch.enable_grad():
        x = positions.detach().requires_grad_(True)
        density, features = field_.geometry(x)
        (gradient,) = torch.autograd.grad(density.sum(), x, retain_graph=training)
    if not training:  # the graph was only needed for the gradient
        density, features = density.detach(), features.detach()
    return density, features, -torch.nn.functional.normalize(gradient.detach(), dim=-1)


def _composite(
    acc: _Accumulator,
    rays: Tensor,
    t_start: Tensor,
    delta: float,
    valid: Tensor,
    density: Tensor,
    blk: BlockWeights,
    rgb: Tensor,
    normals: Tensor | None,
    options: RenderOptions,
) -> _Accumulator:
    """Composite one block ``(k, S)`` of samples of rays ``rays`` (indices into the chunk), weights ``blk``."""
    w = blk.weights
    updated = replace(
        acc,
        rgb=acc.rgb.index_add(0, rays, (w[..., None] * rgb).sum(dim=1)),
        weight=acc.weight.index_add(0, rays, w.sum(dim=1)),
        optical_depth=acc.optical_depth.index_copy(0, rays, blk.optical_depth_end),
        num_samples=acc.num_samples.index_add(0, rays, valid.sum(dim=1)),
    )
    if options.ranges:
        t_mid = (t_start + 0.5 * delta).double()
        found, median = median_crossing(t_start, torch.full_like(density, delta), density, blk.transmittance)
        first = found & ~acc.median_found[rays]
        updated.t = acc.t.index_add(0, rays, (w.double() * t_mid).sum(dim=1))
        updated.t_squared = acc.t_squared.index_add(0, rays, (w.double() * t_mid**2).sum(dim=1))
        updated.median = acc.median.index_add(0, rays, torch.where(first, median, torch.zeros_like(median)))
        updated.median_found = acc.median_found.index_copy(0, rays, acc.median_found[rays] | found)
    if normals is not None:
        updated.normal = acc.normal.index_add(0, rays, (w[..., None] * normals).sum(dim=1))
    if options.return_samples:
        ray_ids = rays[:, None].expand_as(valid)[valid]
        updated.samples.append(
            RaySamples(ray_ids, t_start[valid], t_start[valid] + delta, w[valid], density[valid])
        )
    return updated


def _block_geometry(
    field_: Field, positions: Tensor, valid: Tensor, normals: bool
) -> tuple[Tensor, Tensor, Tensor | None]:
    """The field's geometry on the valid samples of a ``(k, S)`` block: density and normals (zeros elsewhere),
    and the valid samples' colour features, packed."""
    shape = valid.shape
    density_v, features, normal_v = _evaluate_geometry(field_, positions[valid], normals)
    density = torch.zeros(shape, dtype=density_v.dtype, device=density_v.device).masked_scatter(valid, density_v)
    normal = None
    if normal_v is not None:
        normal = torch.zeros(*shape, 3, dtype=normal_v.dtype, device=normal_v.device)
        normal = normal.masked_scatter(valid[..., None], normal_v)
    return density, features, normal


def _block_colour(
    field_: Field, features: Tensor, directions: Tensor, valid: Tensor, shaded: Tensor
) -> Tensor:
    """Radiance ``(k, S, 3)`` of a block's ``shaded`` samples (a subset of ``valid``, whose packed features
    ``features`` are); zeros elsewhere."""
    if not bool(shaded.any()):
        return torch.zeros(*valid.shape, 3, dtype=features.dtype, device=features.device)
    if shaded is not valid:
        features = features[shaded[valid]]
    rgb_v = field_.shade(features, directions[shaded])
    rgb = torch.zeros(*valid.shape, 3, dtype=rgb_v.dtype, device=rgb_v.device)
    return rgb.masked_scatter(shaded[..., None], rgb_v)


def _evaluate_block(
    field_: Field,
    acc: _Accumulator,
    rays: Tensor,
    positions: Tensor,
    directions: Tensor,
    delta: float,
    valid: Tensor,
    options: RenderOptions,
) -> tuple[Tensor, BlockWeights, Tensor, Tensor | None, _Accumulator]:
    """Evaluate a block ``(k, S)`` of rays ``rays``: density, weights, colour (of the samples that weigh in
    the pixel, ``options.unshaded_weight``) and normals; ``acc`` with the weight left unshaded."""
    density, features, normals = _block_geometry(field_, positions, valid, options.normals)
    blk = block_weights(density, torch.full_like(density, delta), acc.optical_depth[rays])
    shaded = valid
    if options.unshaded_weight > 0:
        unshaded, spent = unshaded_samples(blk.weights.detach(), valid, acc.unshaded[rays], options.unshaded_weight)
        shaded = valid & ~unshaded
        acc = replace(acc, unshaded=acc.unshaded.index_copy(0, rays, spent))
    return density, blk, _block_colour(field_, features, directions, valid, shaded), normals, acc


# A ray's normal is the weighted mean of its samples' unit normals. Where that mean is far shorter
# than the weight behind it, the samples' gradients were rounding noise (a fog of even density) or
# cancelled out, and ``normalize``'s epsilon would return a vector neither zero nor unit length
# (the writer refuses those). Such a ray has no surface normal: zero.
_MIN_NORMAL_COHERENCE = 1e-4


def _surface_normal(normal_sum: Tensor, weight: Tensor) -> Tensor:
    """Unit normals ``(N, 3)`` from weighted sums of sample normals ``(N, 3)`` with weights ``(N,)``; zero
    where the sum is shorter than ``_MIN_NORMAL_COHERENCE`` of the weight (or underflows)."""
    length = normal_sum.norm(dim=-1, keepdim=True)
    floor = (_MIN_NORMAL_COHERENCE * weight[:, None]).clamp(min=torch.finfo(normal_sum.dtype).tiny)
    defined = length > floor
    return torch.where(defined, normal_sum / torch.where(defined, length, 1.0), torch.zeros_like(normal_sum))


def _finish(acc: _Accumulator, options: RenderOptions) -> RayOutputs:
    weight = acc.weight
    hit = weight > 0
    safe = weight.double().clamp(min=1e-12)
    expected = torch.where(hit, acc.t / safe, torch.zeros_like(acc.t))
    variance = torch.where(hit, acc.t_squared / safe - expected**2, torch.zeros_like(acc.t))
    rgb = acc.rgb + (1.0 - weight[:, None]) * _BACKGROUNDS[options.background]
    samples = None
    if options.return_samples:
        device = weight.device
        empty = RaySamples(*(torch.zeros(0, device=device) for _ in fields(RaySamples)))
        empty.ray_indices = empty.ray_indices.long()
        samples = RaySamples(
            *(torch.cat([getattr(s, f.name) for s in [empty, *acc.samples]]) for f in fields(RaySamples))
        )
    return RayOutputs(
        rgb=rgb,
        accumulation=weight,
        range_expected=expected.float(),
        range_median=torch.where(acc.median_found, acc.median, torch.zeros_like(acc.median)),
        depth_spread=variance.clamp(min=0.0).sqrt().float(),
        num_samples=acc.num_samples,
        normal=_surface_normal(acc.normal, weight) if options.normals else None,
        samples=samples,
    )


def _march_start(field_: Field, rays: Rays, options: RenderOptions) -> MarchState:
    """Each ray at its first step: start distance, number of steps inside the box, and the step size."""
    step = field_.extent / options.num_steps
    t_near, t_far = ray_aabb_intersect(rays.origins, rays.directions, field_.aabb)
    t_near = t_near.clamp(min=options.near)
    t_far = t_far.clamp(max=options.far)
    num_steps = torch.ceil((t_far - t_near) / step).clamp(min=0).long()
    cursor = torch.zeros(len(rays), dtype=torch.int64, device=rays.origins.device)
    return MarchState(rays.origins, rays.directions, t_near, num_steps, cursor, step)


def _march_chunk(
    field_: Field,
    rays: Rays,
    options: RenderOptions,
    occupancy: OccupancyGrid | None,
    generator: torch.Generator | None,
) -> RayOutputs:
    """The fast marcher on one chunk: rounds of up to ``samples_per_round`` occupied samples per ray."""
    device = rays.origins.device
    state = _march_start(field_, rays, options)
    step = state.step
    acc = _Accumulator.zeros(len(rays), device)
    stop_depth = -math.log(options.min_transmittance) if options.min_transmittance > 0 else math.inf
    rate = torch.zeros(len(rays), device=device)  # optical depth of each ray's last sample so far
    active = (state.num_steps > 0).nonzero()[:, 0]
    while active.numel() > 0:
        marching = state[active]
        limit = growing_round_limit(acc.num_samples[active], options.samples_per_round)
        k = int(limit.max())
        steps, count, new_cursor = next_samples(marching, occupancy, k, options.window, options.marcher)
        depth_before = acc.optical_depth[active].detach()
        if options.adaptive_rounds:
            limit = torch.minimum(limit, round_limit(depth_before, rate[active], stop_depth, k))
        count, new_cursor = truncate_round(steps, count, new_cursor, limit)
        valid = torch.arange(k, device=device) < count[:, None]
        if valid.any():
            t_start = marching.t_near[:, None] + steps * step
            t_sample = t_start + _jitter(steps.shape, options, generator, device) * step
            positions = marching.origins[:, None] + marching.directions[:, None] * t_sample[..., None]
            block_dirs = marching.directions[:, None].expand(-1, k, -1)
            density, blk, rgb, normals, acc = _evaluate_block(
                field_, acc, active, positions, block_dirs, step, valid, options
            )
            acc = _composite(acc, active, t_start, step, valid, density, blk, rgb, normals, options)
        state = state.advanced(active, new_cursor)
        depth_after = acc.optical_depth[active].detach()
        if valid.any():  # the optical depth of each ray's last sample: its local rate (a shell thickens inward)
            last = density.detach().gather(1, (count - 1).clamp(min=0)[:, None])[:, 0] * step
            rate = rate.index_copy(0, active, torch.where(count > 0, last, rate[active]))
        alive = (new_cursor < marching.num_steps) & (depth_after < stop_depth)
        active = active[alive]
    return _finish(acc, options)


def _jitter(
    shape: torch.Size, options: RenderOptions, generator: torch.Generator | None, device: torch.device
) -> Tensor:
    if not options.stratified:
        return torch.full(shape, 0.5, device=device)
    if generator is None:
        raise ConfigError("stratified sampling needs a torch.Generator (every random draw is seeded)")
    return torch.rand(shape, generator=generator, device=generator.device).to(device)


def _reference_chunk(field_: Field, rays: Rays, options: RenderOptions) -> RayOutputs:
    """Every step of every ray in one block: no occupancy, no early termination."""
    device = rays.origins.device
    start = _march_start(field_, rays, options)
    t_near, num_steps, step = start.t_near, start.num_steps, start.step
    acc = _Accumulator.zeros(len(rays), device)
    max_steps = int(num_steps.max()) if len(rays) else 0
    if max_steps == 0:
        return _finish(acc, options)
    steps = torch.arange(max_steps, device=device).expand(len(rays), -1)
    valid = steps < num_steps[:, None]
    t_start = t_near[:, None] + steps * step
    positions = rays.origins[:, None] + rays.directions[:, None] * (t_start + 0.5 * step)[..., None]
    directions = rays.directions[:, None].expand(-1, max_steps, -1)
    all_rays = torch.arange(len(rays), device=device)
    every = replace(options, unshaded_weight=0.0)  # the reference shades every sample
    density, blk, rgb, normals, acc = _evaluate_block(field_, acc, all_rays, positions, directions, step, valid, every)
    acc = _composite(acc, all_rays, t_start, step, valid, density, blk, rgb, normals, options)
    return _finish(acc, options)


def _concat_outputs(parts: list[RayOutputs], offsets: list[int]) -> RayOutputs:
    def cat(name: str) -> Tensor | None:
        values = [getattr(p, name) for p in parts]
        return None if values[0] is None else torch.cat(values)

    samples = None
    if parts[0].samples is not None:
        samples = RaySamples(
            torch.cat([p.samples.ray_indices + o for p, o in zip(parts, offsets, strict=True)]),
            *(torch.cat([getattr(p.samples, f.name) for p in parts]) for f in fields(RaySamples)[1:]),
        )
    names = [f.name for f in fields(RayOutputs) if f.name != "samples"]
    return RayOutputs(**{name: cat(name) for name in names}, samples=samples)


def render_rays(
    field_: Field,
    rays: Rays,
    options: RenderOptions = RenderOptions(),
    occupancy: OccupancyGrid | None = None,
    generator: torch.Generator | None = None,
) -> RayOutputs:
    """Render rays with empty-space skipping and early termination (the fast marcher).

    Differentiable w.r.t. the field's parameters (colour, accumulation and expected range).

    Args:
        field_: The radiance field.
        rays: World-frame rays with unit directions.
        options: Step size, background, outputs, chunk size.
        occupancy: Skip samples in cells whose bit is clear; ``None`` evaluates every step.
        generator: Random source for ``options.stratified``.

    Example:
        >>> from nerfdata.fields.analytic import AnalyticField, Sphere
        >>> field = AnalyticField([Sphere((0.0, 0.0, 0.0), 0.5)], aabb=[[-1, -1, -1], [1, 1, 1]])
        >>> rays = Rays(torch.tensor([[0.0, 0.0, 3.0]]), torch.tensor([[0.0, 0.0, -1.0]]), torch.ones(1))
        >>> round(render_rays(field, rays).range_median.item(), 2)
        2.5
    """
    return _render_chunked(rays, options, lambda chunk: _march_chunk(field_, chunk, options, occupancy, generator))


def render_rays_reference(field_: Field, rays: Rays, options: RenderOptions = RenderOptions()) -> RayOutputs:
    """Reference twin of :func:`render_rays`: every step evaluated, no skipping, no early termination."""
    return _render_chunked(rays, options, lambda chunk: _reference_chunk(field_, chunk, options))


def _render_chunked(rays: Rays, options: RenderOptions, render_chunk) -> RayOutputs:
    offsets = list(range(0, max(len(rays), 1), options.chunk_rays))
    parts = [render_chunk(rays[o : o + options.chunk_rays]) for o in offsets]
    return parts[0] if len(parts) == 1 else _concat_outputs(parts, offsets)


def render_camera_samples(
    field_: Field,
    camera: Camera,
    options: RenderOptions = RenderOptions(),
    occupancy: OccupancyGrid | None = None,
) -> Iterator[tuple[Rays, RayOutputs]]:
    """Every pixel ray of ``camera`` (row-major), rendered ``options.chunk_rays`` at a time with its samples.

    For the labels computed from a view's samples (depth modes, the field-pass normals): memory holds
    one chunk's samples at a time, whatever the image size. Normals are not computed here.

    Yields:
        Per chunk, its rays (on the field's device) and their outputs, ``samples`` set.
    """
    options = replace(options, normals=False, return_samples=True)
    rays = camera.rays(device=field_.aabb.device)
    for start in range(0, len(rays), options.chunk_rays):
        chunk = rays[start : start + options.chunk_rays]
        yield chunk, render_rays(field_, chunk, options, occupancy)


@dataclass
class ImageOutputs:
    """Per-pixel results of one camera, ``(H, W, ...)``. ``depth_*`` are z-depths along the optical axis."""

    rgb: Float[Tensor, "h w 3"]
    accumulation: Float[Tensor, "h w"]
    depth_median: Float[Tensor, "h w"]
    """z-depth where the accumulated weight crosses 0.5; 0 = no surface."""
    depth_expected: Float[Tensor, "h w"]
    range_median: Float[Tensor, "h w"]
    range_expected: Float[Tensor, "h w"]
    depth_spread: Float[Tensor, "h w"]
    """Standard deviation of the termination distance along the ray (scene units)."""
    normal: Float[Tensor, "h w 3"] | None

    def cpu(self) -> "ImageOutputs":
        """The same images on the CPU, where NumPy and the writers read them (itself when already there)."""
        moved = {f.name: getattr(self, f.name) for f in fields(self)}
        return ImageOutputs(**{name: None if value is None else value.cpu() for name, value in moved.items()})


@torch.no_grad()
def render_image(
    field_: Field,
    camera: Camera,
    options: RenderOptions = RenderOptions(),
    occupancy: OccupancyGrid | None = None,
) -> ImageOutputs:
    """Render every pixel of ``camera``, chunk by chunk, into ``(H, W, ...)`` images.

    Only the output images scale with the resolution: rays are generated and marched one chunk
    at a time. Rays and images live on the field's device (``.cpu()`` before writing them).
    """
    intrinsics = camera.intrinsics
    h, w = intrinsics.height, intrinsics.width
    device = field_.aabb.device
    out = {
        name: torch.zeros(h * w, *tail, device=device)
        for name, tail in [
            ("rgb", (3,)), ("accumulation", ()), ("depth_median", ()), ("depth_expected", ()),
            ("range_median", ()), ("range_expected", ()), ("depth_spread", ()), ("normal", (3,)),
        ]
    }
    row_chunk = max(1, options.chunk_rays // w)
    pixel_options = replace(options, return_samples=False)
    for row in range(0, h, row_chunk):
        rows = torch.arange(row, min(row + row_chunk, h), dtype=torch.float32, device=device) + 0.5
        cols = torch.arange(w, dtype=torch.float32, device=device) + 0.5
        pixels = torch.stack(torch.meshgrid(rows, cols, indexing="ij")[::-1], dim=-1).reshape(-1, 2)
        rays = camera.rays(pixels)
        result = render_rays(field_, rays, pixel_options, occupancy)
        span = slice(row * w, row * w + len(rays))
        out["rgb"][span] = result.rgb
        out["accumulation"][span] = result.accumulation
        out["range_median"][span] = result.range_median
        out["range_expected"][span] = result.range_expected
        out["depth_median"][span] = rays.depth_z(result.range_median)
        out["depth_expected"][span] = rays.depth_z(result.range_expected)
        out["depth_spread"][span] = result.depth_spread
        if result.normal is not None:
            out["normal"][span] = result.normal
    images = {name: value.reshape(h, w, *value.shape[1:]) for name, value in out.items()}
    if not options.normals:
        images["normal"] = None
    return ImageOutputs(**images)
