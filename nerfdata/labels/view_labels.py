"""The labels of one rendered view: from a render (and optionally mesh hits) to the arrays a dataset holds.

:func:`view_labels` turns a view's :class:`~nerfdata.render.renderer.ImageOutputs` into the requested
layers, as :class:`LabelsConfig` says: depth and range (median or expected termination), normals
(:mod:`nerfdata.labels.normals`: robust fits to the depth map by default), the foreground mask
(accumulation above a threshold), confidence (:func:`~nerfdata.labels.pixel_labels.confidence`) and,
with normals, the normals' own confidence (:func:`~nerfdata.labels.normals.normal_confidence`), with
their ``valid`` flag. With mesh hits, geometry comes from the mesh instead. :func:`label_sources`
states in words where each layer came from, for the manifest. Writing the arrays is :mod:`nerfdata.writers.layers`' job.

Conventions: depth is z-depth along the optical axis, range the distance along the ray, both in
scene units and 0 where there is no surface; normals are world-frame unit vectors, 0 where there is
no surface.
"""

from collections.abc import Collection
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Literal

import numpy as np

from nerfdata.cameras import Camera
from nerfdata.errors import ConfigError
from nerfdata.labels.normals import (
    AGREEMENT_DEG,
    FIELD_PASS_MODES,
    NORMAL_SOURCES,
    NormalFit,
    NormalMode,
    fit_normals,
    normal_confidence,
    normals_from_points,
)
from nerfdata.labels.pixel_labels import confidence
from nerfdata.render.renderer import ImageOutputs

if TYPE_CHECKING:  # the ray caster needs open3d; the labels only read its hits
    from nerfdata.scenes.groundtruth import MeshHits

__all__ = ["LabelsConfig", "OutputName", "label_arrays", "label_sources", "view_labels"]

OutputName = Literal["rgb", "depth", "range", "normals", "mask", "confidence", "depth_modes"]
"""A layer a render job can write (``confidence`` comes with ``valid``, and with ``normal_confidence`` when
normals are written too)."""


@dataclass(frozen=True)
class LabelsConfig:
    """How the layers are derived from the renders."""

    depth: Literal["median", "expected"] = "median"
    """Which depth of the ray-termination distribution the depth and range layers hold."""
    normals: NormalMode = "depth-fit"
    """depth-fit (robust local fits to the depth map: the most accurate on trained fields), gradient (of
    density: exact on analytic fields, noise on hash grids), smooth-gradient (density differences over
    hash-grid cells), transmittance (its gradient where it crosses 1/2) or depth (neighbours' cross product)."""
    mask_threshold: float = 0.5
    """A pixel is foreground when its accumulation exceeds this."""
    spread_tolerance: float = 0.01
    """Termination spread (relative to distance) at which confidence falls to exp(-1/2)."""
    confidence_threshold: float = 0.5
    """Pixels with lower confidence are marked invalid in valid/NNNNN.png."""
    normal_tolerance: float = 0.005
    """Residual of the local depth fit (relative to depth) at which normal confidence falls to exp(-1/2)."""
    normal_confidence_threshold: float = 0.25
    """With normals and confidence written: pixels with lower normal confidence are marked invalid too."""
    rgb_format: Literal["png", "exr"] = "png"
    """8-bit PNG as the field renders it, or linear-light float EXR."""
    geometry: Literal["volume", "mesh"] = "volume"
    """Depth, range, normals and mask from volume rendering, or by ray casting a mesh of the field (crisp edges)."""
    mesh: Path | None = None
    """With geometry mesh: the mesh to ray cast (world frame); None extracts one (nerfdata mesh defaults)
    to OUT/mesh.ply."""

    def __post_init__(self) -> None:
        for name in ("mask_threshold", "confidence_threshold", "normal_confidence_threshold"):
            if not 0.0 < getattr(self, name) < 1.0:
                raise ConfigError(f"labels.{name} must be in (0, 1), got {getattr(self, name)}")
        if self.mesh is not None and self.geometry != "mesh":
            raise ConfigError("labels.mesh is only used with labels.geometry: mesh")
        for name in ("spread_tolerance", "normal_tolerance"):
            if not getattr(self, name) > 0:
                raise ConfigError(f"labels.{name} must be positive, got {getattr(self, name)}")


def label_arrays(outputs: Collection[str]) -> list[str]:
    """The arrays :func:`view_labels` gives for ``outputs``, in order: ``confidence`` comes with ``valid``,
    and with ``normal_confidence`` when ``normals`` are among the outputs.

    Example:
        >>> label_arrays(["rgb", "confidence", "depth"])
        ['rgb', 'confidence', 'valid', 'depth']
        >>> label_arrays(["normals", "confidence"])
        ['normals', 'confidence', 'normal_confidence', 'valid']
    """
    companions = ("confidence", "normal_confidence", "valid") if "normals" in outputs else ("confidence", "valid")
    return [array for output in outputs for array in (companions if output == "confidence" else (output,))]


def view_labels(
    camera: Camera,
    image: ImageOutputs,
    labels: LabelsConfig,
    outputs: Collection[str],
    hits: "MeshHits | None" = None,
    field_normals: np.ndarray | None = None,
) -> dict[str, np.ndarray]:
    """Every requested layer of one rendered view, as arrays ready to write.

    ``depth_modes`` is not derived here (it needs a render pass of its own), nor are the normals of
    the modes that query the field again (``FIELD_PASS_MODES``: given as ``field_normals``). With
    ``hits`` (the view's rays cast against a mesh), geometry comes from the mesh: mask where a ray
    hits it, range and depth of the first hit, and the mesh's normal there.

    Args:
        camera: The view's camera (its rays back-project depth for normals from depth).
        image: The view rendered with normals when ``labels.normals`` is ``gradient``.
        labels: How layers are derived.
        outputs: The layers wanted.
        hits: The view's pixel rays cast against a mesh, row-major.
        field_normals: With ``labels.normals`` in ``FIELD_PASS_MODES``: the view's normals ``(h, w, 3)``
            from :func:`~nerfdata.labels.normals.render_field_normals`.

    Returns:
        ``rgb (h, w, 3)``, ``depth``, ``range (h, w)``, ``normals (h, w, 3)``, ``mask (h, w)`` bool,
        ``confidence (h, w)`` float32 with ``valid (h, w)`` bool (and ``normal_confidence (h, w)``
        float32 with normals), those of them in ``outputs``.
    """
    wanted = set(outputs)
    image = image.cpu()  # the layers are NumPy arrays for the writers: the rendered view leaves its device here
    mask = image.accumulation.numpy() > labels.mask_threshold
    ranges = (image.range_median if labels.depth == "median" else image.range_expected).numpy()
    depths = (image.depth_median if labels.depth == "median" else image.depth_expected).numpy()
    if hits is not None:
        h, w = mask.shape
        mask = hits.hit.reshape(h, w)
        ranges = np.where(hits.hit, hits.range, 0.0).reshape(h, w)
        depths = camera.rays().depth_z(ranges)
    layers: dict[str, np.ndarray] = {}
    if "rgb" in wanted:
        layers["rgb"] = image.rgb.numpy()
    if "depth" in wanted:
        layers["depth"] = np.where(mask, depths, 0.0)
    if "range" in wanted:
        layers["range"] = np.where(mask, ranges, 0.0)
    surface = mask & (ranges > 0)
    fit = None
    if "normals" in wanted:
        from_fit = hits is None and labels.normals == "depth-fit"
        if from_fit or "confidence" in wanted:  # the fit also says how far any normal can be trusted
            fit = fit_normals(np.where(surface, depths, 0.0), surface, camera)
        normals = _normals(camera, image, labels, mask, ranges, hits, field_normals, fit)
        layers["normals"] = normals
    if "mask" in wanted:
        layers["mask"] = mask
    if "confidence" in wanted:
        score = confidence(
            image.accumulation.numpy(), image.depth_spread.numpy(), np.where(mask, ranges, 0.0), labels.spread_tolerance
        )
        layers["confidence"] = score.astype(np.float32)
        valid = mask & (score >= labels.confidence_threshold)
        if fit is not None:
            trust = normal_confidence(fit, None if from_fit else normals, labels.normal_tolerance)
            layers["normal_confidence"] = trust
            valid &= trust >= labels.normal_confidence_threshold
        layers["valid"] = valid
    return layers


def _normals(
    camera: Camera,
    image: ImageOutputs,
    labels: LabelsConfig,
    mask: np.ndarray,
    ranges: np.ndarray,
    hits: "MeshHits | None",
    field_normals: np.ndarray | None,
    fit: NormalFit | None,
) -> np.ndarray:
    """The view's normals ``(h, w, 3)`` by ``labels.normals`` (or the mesh's, with ``hits``), 0 off the mask."""
    if hits is not None:
        return hits.normal.reshape(*mask.shape, 3)
    if labels.normals == "depth-fit":
        assert fit is not None
        return fit.normals
    if labels.normals in FIELD_PASS_MODES:
        if field_normals is None:
            raise ValueError(f"labels.normals {labels.normals!r} needs the view's field_normals")
        return np.where(mask[..., None], field_normals, 0.0).astype(np.float32)
    if labels.normals == "gradient":
        return np.where(mask[..., None], image.normal.numpy(), 0.0)
    rays = camera.rays()
    h, w = mask.shape
    directions = rays.directions.numpy().reshape(h, w, 3)
    points = rays.origins.numpy().reshape(h, w, 3) + directions * ranges[..., None]
    return normals_from_points(points, directions, mask & (ranges > 0))


def label_sources(labels: LabelsConfig, mesh: str) -> dict[str, dict[str, str]]:
    """Per layer, what the manifest adds to its description: where the values came from.

    Args:
        labels: How the layers were derived.
        mesh: With mesh geometry, how to name the mesh (its path, or that it was extracted).

    Example:
        >>> label_sources(LabelsConfig(depth="expected"), "")["depth"]
        {'source': 'expected of the ray-termination distribution'}
    """
    if labels.geometry == "mesh":
        first_hit = {"source": f"first hit of the ray with the mesh {mesh} (ray casting)"}
        trust = _trust_source(labels)
        normal = {
            "source": f"normal of the mesh {mesh} at the first hit, interpolated from its vertex normals"
        }
        hits = {"source": f"the ray hits the mesh {mesh}", "encoding": "PNG; 255 where the ray hits the mesh"}
        return {
            "depth": first_hit, "depth_png": first_hit, "range": first_hit,
            "normals": normal, "normals_png": normal, "mask": hits, "normal_confidence": trust,
        }
    depth = {"source": f"{labels.depth} of the ray-termination distribution"}
    return {
        "normals": {"source": NORMAL_SOURCES[labels.normals]}, "depth": depth, "range": depth,
        "normal_confidence": _trust_source(labels),
    }


def _trust_source(labels: LabelsConfig) -> dict[str, str]:
    """Where the normal confidence comes from: the depth fit alone, or also the normals' agreement with it."""
    tolerance = f"{labels.normal_tolerance:g}"
    fit = f"the {labels.depth} depth map's local fit: support^2 * exp(-(residual / {tolerance})^2 / 2)"
    if labels.geometry == "volume" and labels.normals == "depth-fit":
        return {"source": fit}
    return {"source": f"{fit}, times exp(-(angle to the fit's normal / {AGREEMENT_DEG:g} deg)^2 / 2)"}
