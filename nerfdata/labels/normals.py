"""Normals of a rendered view, by every method nerfdata offers, and how far each pixel's normal can be trusted.

The methods (``labels.normals``), measured side by side in ``benchmarks/quality.py``:

* ``depth-fit`` (default): robust local surface fits to the view's depth map (:func:`fit_normals`).
  Field-agnostic: it needs only the depth and the pinhole camera. Each pixel's inverse depth is fitted
  over a 11x11 window by a quadric in pixel offsets (a plane in 3D is exactly linear in inverse depth
  under perspective), ignoring neighbours across depth edges; where a 7x7 planar window beside the
  pixel fits its neighbourhood at least twice as well (a crease, or a step in the surface on one side),
  that plane is taken instead: of those, the one the pixel itself lies on.
* ``gradient``: the density gradient at every sample, normalised and weighted along the ray (the
  renderer's normal). Exact on smooth analytic fields, noise on hash grids.
* ``smooth-gradient``: the same with central differences of density over a step tied to the hash
  grid (four cells of its finest level: Neuralangelo's smoothing) (:func:`render_field_normals`).
* ``transmittance``: the gradient of the optical depth from the camera to where transmittance crosses
  one half, by differences over two cells: the normal of that level set (Normal-NeRF's argument:
  transmittance, an integral, is better defined than density at a sample).
* ``depth``: the cross product of the back-projected depth map's neighbours (:func:`normals_from_points`).

Every method gives world-frame unit normals, 0 where there is no surface (or no normal could be
formed); those from the depth map face the camera by construction.
"""

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Literal

import numpy as np
import torch
from jaxtyping import Float
from torch import Tensor

from nerfdata.cameras import Camera, Intrinsics, Rays
from nerfdata.fields.base import Field
from nerfdata.fields.ngp import NGPField
from nerfdata.fields.occupancy import OccupancyGrid
from nerfdata.render.renderer import RaySamples, RenderOptions, render_camera_samples

__all__ = [
    "AGREEMENT_DEG",
    "DEFAULT_CELLS",
    "FIELD_PASS_MODES",
    "NORMAL_MODES",
    "NORMAL_SOURCES",
    "NormalFit",
    "NormalMode",
    "fit_normals",
    "hash_cell",
    "normal_confidence",
    "normals_from_points",
    "render_field_normals",
]

NormalMode = Literal["depth-fit", "gradient", "smooth-gradient", "transmittance", "depth"]
"""How a view's normals are estimated (see the module's description)."""
NORMAL_MODES: tuple[str, ...] = ("depth-fit", "gradient", "smooth-gradient", "transmittance", "depth")
FIELD_PASS_MODES = ("smooth-gradient", "transmittance")
"""Modes that query the field again at each view's samples (:func:`render_field_normals`)."""

NORMAL_SOURCES: dict[str, str] = {
    "depth-fit": "robust local fits to the depth map: a quadric in inverse depth over a 11x11 window, "
    "or a better-fitting 7x7 plane beside the pixel; neighbours across depth edges left out",
    "gradient": "negative normalised density gradient, weighted along the ray",
    "smooth-gradient": "negative density gradient by central differences over four cells of the finest hash-grid "
    "level (the exact gradient on fields without a hash grid), normalised and weighted along the ray",
    "transmittance": "negative gradient of the optical depth from the camera to where transmittance crosses 1/2 "
    "(one-sided differences over two cells of the finest hash-grid level)",
    "depth": "cross product of the back-projected depth map's neighbours",
}
"""Each mode in words, for the manifest's layer ``source``."""


@dataclass(frozen=True)
class NormalFit:
    """Normals from :func:`fit_normals` with what the fit says of each pixel, ``(h, w, ...)``."""

    normals: Float[np.ndarray, "h w 3"]
    """World-frame unit normals facing the camera; 0 where no fit was possible."""
    residual: Float[np.ndarray, "h w"]
    """RMS residual of the chosen fit, relative to the pixel's depth (inf where no fit)."""
    support: Float[np.ndarray, "h w"]
    """Share of the pixel's 11x11 window (its part inside the image) on the pixel's own surface (no depth
    edge between): 1 away from depth edges and silhouettes, 0 where there is no surface."""


# The windows and the preference below were chosen against exact normals on the shipped tabletop and mug:
# the rule on their first five test views, the window sizes on ten of their training views (every tenth);
# the alternatives tried are listed in benchmarks/README.md.
_QUADRIC_RADIUS = 5
_PLANE_RADIUS = 3
_STEEPEST = 3.08
"""A neighbour ``k`` pixels away is on the pixel's surface when its depth differs by at most
``k * _STEEPEST / focal length`` of the pixel's depth: the change of a plane seen 72 degrees from its
normal (tan 72 = 3.08); a depth edge changes far more. 2% per pixel at 128 px over 45 degrees."""
_PLANE_PREFERENCE = 0.5
"""A planar window beside the pixel replaces the centred quadric when its residual is at most this
share of the quadric's: a step or a crease inside the centred window, not mere curvature."""
_RIDGE = 1e-3
"""Tikhonov weight (per neighbour) on the quadratic terms: a window too narrow for curvature (a thin
part, two pixels across) degrades to a plane instead of a singular fit."""
_BAND_PIXELS = 1 << 16
"""Pixels fitted at once (rows of a band): memory stays bounded for any image size."""


def _windows(image: np.ndarray, radius: int, fill: float | bool) -> Iterator[tuple[int, int, np.ndarray]]:
    """``(dy, dx, view)`` for every offset of a ``(2 radius + 1)^2`` window: ``view[y, x] = image[y + dy, x + dx]``
    (``fill`` beyond the border)."""
    h, w = image.shape[:2]
    pad = [(radius, radius), (radius, radius)] + [(0, 0)] * (image.ndim - 2)
    padded = np.pad(image, pad, constant_values=fill)
    for dy in range(-radius, radius + 1):
        for dx in range(-radius, radius + 1):
            yield dy, dx, padded[radius + dy : radius + dy + h, radius + dx : radius + dx + w]


def _same_surface(
    depth: np.ndarray, neighbour: np.ndarray, valid: np.ndarray, neighbour_valid: np.ndarray, steps: int, gate: float
) -> np.ndarray:
    """Whether a neighbour ``steps`` pixels away lies on the pixel's surface (no depth edge between);
    ``gate``: the relative change allowed per pixel."""
    return valid & neighbour_valid & (np.abs(neighbour - depth) <= gate * max(steps, 1) * depth)


def _basis(dy: int, dx: int, radius: int, quadratic: bool) -> np.ndarray:
    x, y = dx / radius, dy / radius
    return np.array([1.0, x, y, x * x, x * y, y * y] if quadratic else [1.0, x, y])


@dataclass(frozen=True)
class _Fits:
    """Least-squares fits of inverse depth over each pixel's window (in offsets divided by the radius)."""

    coefficients: np.ndarray
    """(h, w, k): ``[c, d/dx, d/dy, (quadratic terms)]`` at the window's centre."""
    residual: np.ndarray
    """(h, w) RMS residual relative to depth; inf where the fit is not defined."""
    count: np.ndarray
    """(h, w) neighbours on the pixel's surface (itself included)."""


def _fit_windows(
    depth: np.ndarray, inverse: np.ndarray, valid: np.ndarray, radius: int, quadratic: bool, min_count: int,
    gate: float,
) -> _Fits:
    """Fit ``inverse`` (``1 / depth`` where ``valid``, else 0) over each pixel's window.

    The window's offsets are stacked, so that every sum over them is one matrix product over the
    offsets: several times faster than a loop over offsets. The fit is of each neighbour's inverse
    depth less the pixel's own, so that its sums stay small and the residual follows from them
    (``sum y^2 - c . b - c^T R c`` for the ridged normal equations ``(M + R) c = b``) without a pass
    over every neighbour's miss.
    """
    h, w = depth.shape
    same_rows, relative_rows, basis_rows = [], [], []
    for (dy, dx, near), (_, _, near_valid), (_, _, near_inverse) in zip(
        _windows(depth, radius, 0.0), _windows(valid, radius, False), _windows(inverse, radius, 0.0), strict=True
    ):
        same = _same_surface(depth, near, valid, near_valid, max(abs(dy), abs(dx)), gate)
        same_rows.append(same.reshape(-1))
        relative_rows.append(np.where(same, near_inverse - inverse, 0.0).reshape(-1))
        basis_rows.append(_basis(dy, dx, radius, quadratic))
    same = np.stack(same_rows).astype(np.float64)  # (offsets, h * w): neighbours on the pixel's surface
    relative = np.stack(relative_rows)  # (offsets, h * w): their inverse depth less the pixel's, 0 off it
    phi = np.stack(basis_rows)  # (offsets, k)
    k = phi.shape[1]
    count = same.sum(axis=0)
    moments = (same.T @ np.einsum("oi,oj->oij", phi, phi).reshape(len(phi), k * k)).reshape(-1, k, k)
    ridge = np.zeros(k)
    ridge[3:] = _RIDGE
    penalty = count[:, None] * ridge + 1e-12  # (h * w, k): the ridge's diagonal
    diagonal = np.arange(k)
    moments[:, diagonal, diagonal] += penalty
    rhs = relative.T @ phi
    fitted = count >= min_count
    coefficients = np.zeros((h * w, k))
    coefficients[fitted] = np.linalg.solve(moments[fitted], rhs[fitted][..., None])[..., 0]
    explained = np.einsum("hk,hk->h", coefficients, rhs + penalty * coefficients)  # c . b + c^T R c
    squared = np.einsum("oh,oh->h", relative, relative) - explained
    residual = np.sqrt(np.maximum(squared, 0.0) / np.maximum(count, 1.0)).reshape(h, w) * depth  # d(1/z) z = dz / z
    coefficients[fitted, 0] += inverse.reshape(-1)[fitted]  # back to inverse depth itself at the window's centre
    fitted, count = fitted.reshape(h, w), count.reshape(h, w)
    return _Fits(coefficients.reshape(h, w, k), np.where(fitted, residual, np.inf), count)


def _camera_normals(
    coefficients: np.ndarray, radius: int, intrinsics: Intrinsics, offset_x: np.ndarray, offset_y: np.ndarray
) -> np.ndarray:
    """Unit normals (OpenCV camera axes, facing the camera) of the surfaces fitted by ``coefficients``
    (:class:`_Fits`, over offsets divided by ``radius``) at pixels ``offset`` from the principal point.

    A plane ``n . X = d`` has ``1/z = (n_x (u - cx) / fx + n_y (v - cy) / fy + n_z) / d``: its normal is
    ``(fx d/du, fy d/dv, 1/z - (u - cx) d/du - (v - cy) d/dv)`` up to scale, pointing away from the camera.
    """
    inverse, d_dx, d_dy = coefficients[..., 0], coefficients[..., 1] / radius, coefficients[..., 2] / radius
    normal = -np.stack(
        [intrinsics.fl_x * d_dx, intrinsics.fl_y * d_dy, inverse - offset_x * d_dx - offset_y * d_dy], axis=-1
    )
    return normal / np.maximum(np.linalg.norm(normal, axis=-1, keepdims=True), 1e-30)


def _fit_band(depth: np.ndarray, valid: np.ndarray, intrinsics: Intrinsics, rows: np.ndarray) -> tuple[np.ndarray, ...]:
    """:func:`fit_normals` on a band of rows (their image rows ``rows``): camera-frame normals, residual, and
    the number of window pixels on each pixel's surface."""
    offset_x = np.arange(depth.shape[1])[None, :] + 0.5 - intrinsics.cx
    offset_y = rows[:, None] + 0.5 - intrinsics.cy
    gate = 2.0 * _STEEPEST / (intrinsics.fl_x + intrinsics.fl_y)
    inverse = np.where(valid, 1.0 / np.where(valid, depth, 1.0), 0.0)
    quadric = _fit_windows(depth, inverse, valid, _QUADRIC_RADIUS, quadratic=True, min_count=10, gate=gate)
    normals = _camera_normals(quadric.coefficients, _QUADRIC_RADIUS, intrinsics, offset_x, offset_y)
    planes = _fit_windows(
        depth, inverse, valid, _PLANE_RADIUS, quadratic=False, min_count=(_PLANE_RADIUS + 1) ** 2, gate=gate
    )
    # A plane's normal is the same everywhere on it: form it at its window's centre.
    plane_normals = _camera_normals(planes.coefficients, _PLANE_RADIUS, intrinsics, offset_x, offset_y)
    candidates = zip(
        _windows(plane_normals, _PLANE_RADIUS, 0.0), _windows(planes.residual, _PLANE_RADIUS, np.inf),
        _windows(planes.coefficients, _PLANE_RADIUS, 0.0), _windows(depth, _PLANE_RADIUS, 0.0),
        _windows(valid, _PLANE_RADIUS, False), strict=True,
    )
    # The plane the pixel lies on: ranked by its window's residual or, where larger, by how far it misses
    # the pixel itself. At a crease both faces' windows fit alike, but only one face passes through the pixel.
    plane_score = np.full(depth.shape, np.inf)
    plane_residual = np.full(depth.shape, np.inf)
    plane_normal = np.zeros_like(plane_normals)
    for (dy, dx, normal), (_, _, fit_residual), (_, _, coefficients), (_, _, centre_depth), (_, _, centre_valid) in (
        candidates
    ):
        # The window centred (dy, dx) away holds this pixel when the pixel is on its centre's surface.
        usable = _same_surface(centre_depth, depth, centre_valid, valid, max(abs(dy), abs(dx)), gate)
        miss = np.abs(inverse - coefficients @ _basis(-dy, -dx, _PLANE_RADIUS, quadratic=False)) * depth
        score = np.maximum(fit_residual, miss)
        better = usable & (score < plane_score)
        np.copyto(plane_score, score, where=better)
        np.copyto(plane_residual, fit_residual, where=better)
        np.copyto(plane_normal, normal, where=better[..., None])
    quadric_residual = np.where(valid, quadric.residual, np.inf)
    chosen = plane_residual < _PLANE_PREFERENCE * quadric_residual
    residual = np.where(chosen, plane_residual, quadric_residual)
    normals = np.where(chosen[..., None], plane_normal, normals)
    fitted = np.isfinite(residual)
    count = np.where(valid, quadric.count, 0.0)
    return np.where(fitted[..., None], normals, 0.0), np.where(fitted, residual, np.inf), count


def fit_normals(
    depth: Float[np.ndarray, "h w"], valid: np.ndarray, camera: Camera
) -> NormalFit:
    """Normals of the surface seen in a z-depth map by robust local fits (the ``depth-fit`` mode).

    Per pixel, the inverse depth of its 11x11 window is fitted by a quadric in pixel offsets (least
    squares, over the neighbours on its own surface: no depth edge between); the quadric's tangent
    plane at the pixel gives the normal. Where a 7x7 window whose centre lies within 3 pixels fits a
    plane with at most half that residual (the centred window straddles a crease or a step in the
    surface), its plane's normal is taken instead; the windows are ranked by their residual or, where
    larger, by their plane's miss at the pixel (at a crease both faces fit their windows, only one
    passes through the pixel). Works in bands of rows: memory is bounded whatever
    the image size, and the result is the same as in one piece.

    Args:
        depth: z-depth along the optical axis (any positive unit), 0 where no surface.
        valid: Boolean ``(h, w)``: pixels with a surface.
        camera: The view's pinhole camera (intrinsics and pose).

    Returns:
        World-frame normals facing the camera, the chosen fit's relative residual and the pixels' support.

    Example:
        >>> camera = Camera(torch.eye(4), Intrinsics.from_fov(16, 16, 60.0))  # looks down -z
        >>> fit = fit_normals(np.full((16, 16), 2.0), np.ones((16, 16), bool), camera)  # a wall facing it
        >>> (np.round(fit.normals[8, 8], 6) + 0.0).tolist()  # + 0.0: no signed zeros
        [0.0, 0.0, 1.0]
    """
    from threadpoolctl import threadpool_limits  # imported here: a job without depth-fit normals never pays

    # The fit's sums are BLAS products, whose last bits follow how OpenBLAS splits them among its threads
    # (seen on an AMD EPYC: one pixel's normal 1 ulp apart between 1 and 2 threads). One thread, as a Ray
    # worker has, makes a view's normals the same bits in every process; at 128x128 it costs under 5%.
    with threadpool_limits(1, "blas"):
        return _fit_normals(np.asarray(depth, dtype=np.float64), np.asarray(valid, dtype=bool), camera)


def _fit_normals(depth: np.ndarray, valid: np.ndarray, camera: Camera) -> NormalFit:
    valid = valid & (depth > 0)
    h, w = depth.shape
    halo = max(_QUADRIC_RADIUS, 2 * _PLANE_RADIUS)
    band = max(1, _BAND_PIXELS // w)
    normals = np.zeros((h, w, 3))
    residual = np.full((h, w), np.inf)
    same = np.zeros((h, w))
    for top in range(0, h, band):
        bottom = min(top + band, h)
        start, stop = max(top - halo, 0), min(bottom + halo, h)
        part = _fit_band(depth[start:stop], valid[start:stop], camera.intrinsics, np.arange(start, stop))
        keep = slice(top - start, top - start + bottom - top)
        normals[top:bottom], residual[top:bottom], same[top:bottom] = (a[keep] for a in part)
    # Support counts the window's pixels inside the image: a border is no depth edge.
    def inside(n: int) -> np.ndarray:
        index = np.arange(n)
        return np.minimum(index + _QUADRIC_RADIUS, n - 1) - np.maximum(index - _QUADRIC_RADIUS, 0) + 1

    support = same / (inside(h)[:, None] * inside(w)[None, :])
    rotation = camera.c2w_opencv[:3, :3].double().numpy()
    world = normals @ rotation.T
    return NormalFit(world.astype(np.float32), residual.astype(np.float32), support.astype(np.float32))


AGREEMENT_DEG = 10.0
"""Angle between a normal and the depth fit's at which a non-fit normal's confidence falls to exp(-1/2)."""


def normal_confidence(
    fit: NormalFit, normals: Float[np.ndarray, "h w 3"] | None = None, tolerance: float = 0.005
) -> Float[np.ndarray, "h w"]:
    """How far each pixel's normal can be trusted, in ``[0, 1]`` (0 where there is none).

    ``support^2 * exp(-(residual / tolerance)^2 / 2)`` of the depth fit: the residual says whether the
    surface around the pixel is one smooth piece (it rises at steps, creases and bumps the fit cannot
    follow), the support (share of the 11x11 window on the pixel's own surface) falls towards depth edges
    and silhouettes. On the shipped scenes both predict the depth fit's error; the angle to the view ray
    does not (grazing pixels were not worse), so it is left out. Normals from elsewhere (``normals``: the
    density gradient, a mesh) are also weighed by their agreement with the fit's,
    ``exp(-(angle / AGREEMENT_DEG)^2 / 2)``.

    Args:
        fit: :func:`fit_normals` of the view's depth.
        normals: The normals written, when they are not ``fit.normals``.
        tolerance: Relative residual at which the fit's term falls to ``exp(-1/2)``.

    Example:
        >>> camera = Camera(torch.eye(4), Intrinsics.from_fov(16, 16, 60.0))
        >>> fit = fit_normals(np.full((16, 16), 2.0), np.ones((16, 16), bool), camera)
        >>> trust = normal_confidence(fit)
        >>> float(trust[8, 8]), float(trust[0, 0])  # a flat wall, trusted up to the image's corners
        (1.0, 1.0)
    """
    score = fit.support.astype(np.float64) ** 2 * np.exp(-0.5 * (fit.residual.astype(np.float64) / tolerance) ** 2)
    has_normal = np.any(fit.normals != 0, axis=-1)
    if normals is not None:
        cosine = np.clip(np.sum(normals.astype(np.float64) * fit.normals, axis=-1), -1.0, 1.0)
        score = score * np.exp(-0.5 * (np.degrees(np.arccos(cosine)) / AGREEMENT_DEG) ** 2)
        has_normal &= np.any(normals != 0, axis=-1)
    return np.where(has_normal, score, 0.0).astype(np.float32)


def normals_from_points(
    points: Float[np.ndarray, "h w 3"], directions: Float[np.ndarray, "h w 3"], valid: np.ndarray
) -> Float[np.ndarray, "h w 3"]:
    """Unit normals of the surface through back-projected ``points``, facing the camera (the ``depth`` mode).

    Uses central differences across the image where both neighbours are valid, one-sided ones at
    borders of the valid region; 0 where a pixel has no valid neighbour along an axis.

    Args:
        points: World points of each pixel's surface hit.
        directions: The pixels' ray directions (to orient normals towards the camera).
        valid: Boolean ``(h, w)``: pixels with a surface.
    """
    def difference(axis: int) -> tuple[np.ndarray, np.ndarray]:
        forward = np.roll(points, -1, axis) - points
        backward = points - np.roll(points, 1, axis)
        has_next = np.roll(valid, -1, axis) & valid
        has_prev = np.roll(valid, 1, axis) & valid
        last = [slice(None)] * 2
        last[axis] = -1
        has_next[tuple(last)] = False
        first = [slice(None)] * 2
        first[axis] = 0
        has_prev[tuple(first)] = False
        both = (has_next & has_prev)[..., None]
        diff = np.where(both, forward + backward, np.where(has_next[..., None], forward, backward))
        return diff, has_next | has_prev

    d_x, ok_x = difference(1)
    d_y, ok_y = difference(0)
    normal = np.cross(d_y, d_x)
    length = np.linalg.norm(normal, axis=-1, keepdims=True)
    normal = np.where(length > 0, normal / np.maximum(length, 1e-30), 0.0)
    facing_away = np.sum(normal * directions, axis=-1, keepdims=True) > 0
    normal = np.where(facing_away, -normal, normal)
    return np.where((valid & ok_x & ok_y)[..., None], normal, 0.0).astype(np.float32)


DEFAULT_CELLS: dict[str, float] = {"smooth-gradient": 4.0, "transmittance": 2.0}
"""Per field-pass mode, its step in cells of the finest hash-grid level (benchmarks/normals.py sweeps it)."""


def hash_cell(field_: Field) -> Float[Tensor, "3"] | None:
    """Per axis, the cell size of the field's finest hash-grid level; None for a field without one.

    A hash grid's density is trilinear within a cell of its finest level, with kinks between cells:
    over a few cells the surface shows, not the cell pattern.

    Example:
        >>> from nerfdata.fields.ngp import NGPFieldConfig
        >>> from nerfdata.encoders.hashgrid import HashGridConfig
        >>> grid = HashGridConfig(num_levels=2, log2_hashmap_size=12, base_resolution=16, per_level_scale=2.0)
        >>> field = NGPField(NGPFieldConfig(aabb=((0.0, 0.0, 0.0), (1.0, 2.0, 1.0)), hash_grid=grid))
        >>> [round(v, 4) for v in hash_cell(field).tolist()]
        [0.0323, 0.0645, 0.0323]
    """
    if isinstance(field_, NGPField):
        finest = float(field_.config.hash_grid.scales[-1])
        return (field_.aabb[1] - field_.aabb[0]) / finest
    return None


def _difference_gradient(field_: Field, positions: Tensor, step: Tensor | None) -> Tensor:
    """The density gradient ``(n, 3)`` at ``positions``: central differences over ``step`` per axis, or
    (``step`` None: a field with no cell to smooth over) the exact gradient."""
    if step is None:
        with torch.enable_grad():
            x = positions.detach().requires_grad_(True)
            (gradient,) = torch.autograd.grad(field_.density(x).sum(), x)
        return gradient
    offsets = torch.diag(step).to(positions)
    shifted = torch.cat([positions + offset for offset in offsets] + [positions - offset for offset in offsets])
    density = field_.density(shifted).reshape(6, -1)
    return ((density[:3] - density[3:]) / (2.0 * step.to(positions)[:, None])).T


def _smooth_gradient(field_: Field, rays: Rays, samples: RaySamples, step: Tensor | None) -> Tensor:
    """Per ray, the weighted sum of its samples' unit normals from :func:`_difference_gradient`."""
    keep = samples.weights > 1e-4  # lighter samples cannot move the average
    ray = samples.ray_indices[keep]
    t = 0.5 * (samples.t_start[keep] + samples.t_end[keep])
    positions = rays.origins[ray] + rays.directions[ray] * t[:, None]
    normals = -torch.nn.functional.normalize(_difference_gradient(field_, positions, step), dim=-1)
    return torch.zeros(len(rays), 3, device=normals.device).index_add(0, ray, samples.weights[keep, None] * normals)


_SEGMENT_SAMPLES = 64
"""Midpoint samples of each ray segment integrated by :func:`_transmittance_gradient`."""


def _optical_depth(field_: Field, origins: Tensor, ends: Tensor, starts: Tensor) -> Tensor:
    """Optical depth ``(m,)`` from ``origins`` to ``ends`` over the stretch from ``starts`` (distances from the
    origins) on: midpoint quadrature of :data:`_SEGMENT_SAMPLES` points."""
    vector = ends - origins
    length = vector.norm(dim=-1)
    starts = torch.minimum(starts.clamp(min=0.0), length)
    fractions = (torch.arange(_SEGMENT_SAMPLES, dtype=ends.dtype, device=ends.device) + 0.5) / _SEGMENT_SAMPLES
    t = starts[:, None] + (length - starts)[:, None] * fractions
    points = origins[:, None] + (vector / length[:, None])[:, None] * t[..., None]
    density = field_.density(points.reshape(-1, 3)).reshape(len(ends), _SEGMENT_SAMPLES)
    return density.sum(dim=-1) * (length - starts) / _SEGMENT_SAMPLES


def _transmittance_gradient(field_: Field, rays: Rays, samples: RaySamples, median: Tensor, step: Tensor) -> Tensor:
    """Per ray, ``-grad tau`` where transmittance crosses one half, by one-sided differences over ``step``.

    ``tau(y)`` is the optical depth from the ray's origin to ``y`` (:func:`_optical_depth`, from the
    ray's first weighted sample on: empty space before it adds nothing). Its level set ``tau = ln 2``
    is the surface where transmittance crosses one half; the crossing ``x`` is found again on the ray
    at the quadrature's resolution (the renderer's median is exact only for density constant over a
    render step). Differences start at ``x``: past the surface ``tau`` rises, before it ``tau`` is 0, a
    kink that a central difference would straddle; the steeper side per axis is taken.
    """
    weighted = samples.weights > 1e-6
    device = rays.origins.device
    first = torch.full((len(rays),), torch.inf, device=device).scatter_reduce(
        0, samples.ray_indices[weighted], samples.t_start[weighted], "amin"
    )
    hit = (median > 0) & torch.isfinite(first)
    index = hit.nonzero()[:, 0]
    origins, directions, reach = rays.origins[index], rays.directions[index], step.max().item()
    start = first[index] - reach  # the offset rays may meet the surface a little earlier
    # The crossing tau = ln 2 on the ray, between the first weighted sample and a little past the median.
    far = median[index] + 2.0 * reach
    fractions = (torch.arange(_SEGMENT_SAMPLES + 1, dtype=origins.dtype, device=device)) / _SEGMENT_SAMPLES
    t = first[index, None] + (far - first[index])[:, None] * fractions
    mid = 0.5 * (t[:, 1:] + t[:, :-1])
    density = field_.density((origins[:, None] + directions[:, None] * mid[..., None]).reshape(-1, 3))
    cumulative = torch.cumsum(density.reshape(len(index), _SEGMENT_SAMPLES) * (t[:, 1:] - t[:, :-1]), dim=-1)
    before = torch.cat([torch.zeros(len(index), 1, device=device), cumulative[:, :-1]], dim=-1)
    crossing = ((before < np.log(2.0)) & (cumulative >= np.log(2.0))).float().argmax(dim=-1, keepdim=True)
    low, high = before.gather(1, crossing)[:, 0], cumulative.gather(1, crossing)[:, 0]
    share = ((np.log(2.0) - low) / (high - low).clamp(min=1e-30)).clamp(0.0, 1.0)
    t_cross = t.gather(1, crossing)[:, 0] + share * (t[:, 1:] - t[:, :-1]).gather(1, crossing)[:, 0]
    x = origins + directions * t_cross[:, None]
    step = step.to(x)
    offsets = torch.cat([torch.zeros(1, 3).to(x), torch.diag(step), -torch.diag(step)])
    ends = (x[None] + offsets[:, None]).reshape(-1, 3)  # (7 m, 3)
    tau = _optical_depth(field_, origins.repeat(7, 1), ends, start.repeat(7)).reshape(7, -1)
    forward = (tau[1:4] - tau[0]) / step.to(x)[:, None]
    backward = (tau[0] - tau[4:7]) / step.to(x)[:, None]
    gradient = torch.where(forward.abs() >= backward.abs(), forward, backward).T
    return torch.zeros(len(rays), 3, device=device).index_copy(0, index, -gradient)


@torch.no_grad()
def render_field_normals(
    field_: Field,
    camera: Camera,
    mode: NormalMode,
    options: RenderOptions = RenderOptions(),  # frozen: a shared default is safe
    occupancy: OccupancyGrid | None = None,
    cells: float | None = None,
) -> Float[Tensor, "h w 3"]:
    """Normals of every pixel of ``camera`` that query the field at the view's samples (``FIELD_PASS_MODES``).

    A render pass of its own keeps each chunk's samples (memory holds one chunk's at a time). The
    step is ``cells`` cells of the field's finest hash-grid level (:func:`hash_cell`). A field without
    a hash grid has no cell to smooth over: ``smooth-gradient`` takes its exact density gradient, and
    ``transmittance`` steps ``cells`` 1/1024ths of the box diagonal.

    Args:
        field_: The radiance field.
        camera: The view.
        mode: ``smooth-gradient`` or ``transmittance``.
        options: The render options of the view (step, near, far, chunk size).
        occupancy: The field's occupancy grid.
        cells: The step in cells; default :data:`DEFAULT_CELLS` of the mode.

    Returns:
        World-frame unit normals; 0 where no surface normal was formed.
    """
    if mode not in FIELD_PASS_MODES:
        raise ValueError(f"mode {mode!r} does not query the field; one of {FIELD_PASS_MODES}")
    cells = DEFAULT_CELLS[mode] if cells is None else cells
    cell = hash_cell(field_)
    step = None if cell is None else cells * cell
    parts = []
    for chunk, out in render_camera_samples(field_, camera, options, occupancy):
        assert out.samples is not None
        if mode == "smooth-gradient":
            total = _smooth_gradient(field_, chunk, out.samples, step)
        else:
            fallback = torch.full((3,), cells * field_.extent / 1024.0, device=field_.aabb.device)
            reach = fallback if step is None else step
            total = _transmittance_gradient(field_, chunk, out.samples, out.range_median, reach)
        length = total.norm(dim=-1, keepdim=True)
        parts.append(torch.where(length > 1e-30, total / length.clamp(min=1e-30), torch.zeros_like(total)))
    return torch.cat(parts).reshape(camera.intrinsics.height, camera.intrinsics.width, 3)
