"""The labels of one rendered view: from a render (and optionally mesh hits) to the arrays a dataset holds.

:func:`view_labels` turns a view's :class:`~nerfdata.render.renderer.ImageOutputs` into the requested
layers, as :class:`LabelsConfig` says: depth and range (median or expected termination), normals
(density gradient, or from the depth map), the foreground mask (accumulation above a threshold),
confidence with its ``valid`` flag (:func:`~nerfdata.labels.pixel_labels.confidence`). With mesh hits,
geometry comes from the mesh instead. :func:`label_sources` states in words where each layer came
from, for the manifest. Writing the arrays is :mod:`nerfdata.writers.layers`' job.

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
from nerfdata.labels.pixel_labels import confidence, normals_from_points
from nerfdata.render.renderer import ImageOutputs

if TYPE_CHECKING:  # the ray caster needs open3d; the labels only read its hits
    from nerfdata.scenes.groundtruth import MeshHits

__all__ = ["LabelsConfig", "OutputName", "label_arrays", "label_sources", "view_labels"]

OutputName = Literal["rgb", "depth", "range", "normals", "mask", "confidence", "depth_modes"]
"""A layer a render job can write (``confidence`` comes with ``valid``)."""


@dataclass(frozen=True)
class LabelsConfig:
    """How the layers are derived from the renders."""

    depth: Literal["median", "expected"] = "median"
    """Which depth of the ray-termination distribution the depth and range layers hold."""
    normals: Literal["gradient", "depth"] = "gradient"
    """Normals from the density gradient (exact on analytic fields, noisy on hash grids) or from the depth map."""
    mask_threshold: float = 0.5
    """A pixel is foreground when its accumulation exceeds this."""
    spread_tolerance: float = 0.01
    """Termination spread (relative to distance) at which confidence falls to exp(-1/2)."""
    confidence_threshold: float = 0.5
    """Pixels with lower confidence are marked invalid in valid/NNNNN.png."""
    rgb_format: Literal["png", "exr"] = "png"
    """8-bit PNG as the field renders it, or linear-light float EXR."""
    geometry: Literal["volume", "mesh"] = "volume"
    """Depth, range, normals and mask from volume rendering, or by ray casting a mesh of the field (crisp edges)."""
    mesh: Path | None = None
    """With geometry mesh: the mesh to ray cast (world frame); None extracts one (nerfdata mesh defaults) to OUT/mesh.ply."""

    def __post_init__(self) -> None:
        for name in ("mask_threshold", "confidence_threshold"):
            if not 0.0 < getattr(self, name) < 1.0:
                raise ConfigError(f"labels.{name} must be in (0, 1), got {getattr(self, name)}")
        if self.mesh is not None and self.geometry != "mesh":
            raise ConfigError("labels.mesh is only used with labels.geometry: mesh")
        if not self.spread_tolerance > 0:
            raise ConfigError(f"labels.spread_tolerance must be positive, got {self.spread_tolerance}")


def label_arrays(outputs: Collection[str]) -> list[str]:
    """The arrays :func:`view_labels` gives for ``outputs``, in order: ``confidence`` comes with ``valid``.

    Example:
        >>> label_arrays(["rgb", "confidence", "depth"])
        ['rgb', 'confidence', 'valid', 'depth']
    """
    return [
        array for output in outputs for array in ((output, "valid") if output == "confidence" else (output,))
    ]


def view_labels(
    camera: Camera,
    image: ImageOutputs,
    labels: LabelsConfig,
    outputs: Collection[str],
    hits: "MeshHits | None" = None,
) -> dict[str, np.ndarray]:
    """Every requested layer of one rendered view, as arrays ready to write.

    ``depth_modes`` is not derived here (it needs a render pass of its own). With ``hits`` (the
    view's rays cast against a mesh), geometry comes from the mesh: mask where a ray hits it, range
    and depth of the first hit, and the mesh's normal there.

    Args:
        camera: The view's camera (its rays back-project depth for normals from depth).
        image: The view rendered with normals when ``labels.normals`` is ``gradient``.
        labels: How layers are derived.
        outputs: The layers wanted.
        hits: The view's pixel rays cast against a mesh, row-major.

    Returns:
        ``rgb (h, w, 3)``, ``depth``, ``range (h, w)``, ``normals (h, w, 3)``, ``mask (h, w)`` bool,
        ``confidence (h, w)`` float32 with ``valid (h, w)`` bool, those of them in ``outputs``.
    """
    wanted = set(outputs)
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
    if "normals" in wanted:
        if hits is not None:
            layers["normals"] = hits.normal.reshape(*mask.shape, 3)
        elif labels.normals == "gradient":
            layers["normals"] = np.where(mask[..., None], image.normal.numpy(), 0.0)
        else:
            rays = camera.rays()
            h, w = mask.shape
            directions = rays.directions.numpy().reshape(h, w, 3)
            points = rays.origins.numpy().reshape(h, w, 3) + directions * ranges[..., None]
            layers["normals"] = normals_from_points(points, directions, mask & (ranges > 0))
    if "mask" in wanted:
        layers["mask"] = mask
    if "confidence" in wanted:
        score = confidence(image.accumulation.numpy(), image.depth_spread.numpy(), np.where(mask, ranges, 0.0), labels.spread_tolerance)
        layers["confidence"] = score.astype(np.float32)
        layers["valid"] = mask & (score >= labels.confidence_threshold)
    return layers


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
        normal = {
            "source": f"normal of the mesh {mesh} at the first hit, interpolated from its vertex normals"
        }
        hits = {"source": f"the ray hits the mesh {mesh}", "encoding": "PNG; 255 where the ray hits the mesh"}
        return {
            "depth": first_hit, "depth_png": first_hit, "range": first_hit,
            "normals": normal, "normals_png": normal, "mask": hits,
        }
    normals = {"gradient": "negative normalised density gradient, weighted along the ray",
               "depth": "cross product of the back-projected depth map's neighbours"}[labels.normals]
    depth = {"source": f"{labels.depth} of the ray-termination distribution"}
    return {"normals": {"source": normals}, "depth": depth, "range": depth}
