"""Which views to pair for correspondences: co-visibility from rendered depth, baselines mixed.

Co-visibility (:func:`covisibility`): a view's surface pixels (depth > 0, a regular subsample) are
lifted to 3D with its depth map and projected into every other view; a point counts as seen there
when it lands inside the image, in front of the camera, and agrees with that view's depth at the
pixel it lands on (within a tolerance relative to depth; otherwise it is hidden or off the surface).
The overlap of a pair is the smaller of the two directions' shares: the share of surface both see.

Selection (:func:`choose_pairs`): pairs with overlap >= ``min_overlap`` are sorted by baseline (the
angle of the relative rotation) and split into as many equal strata as pairs are wanted; one pair is
drawn from each (seeded). The chosen pairs therefore span the available baselines, from near
duplicates to wide ones, instead of clustering where most pairs happen to lie.
"""

from dataclasses import dataclass

import numpy as np
import torch
from jaxtyping import Float

from nerfdata.cameras import Camera
from nerfdata.errors import NerfDataError
from nerfdata.labels.matching import project_points
from nerfdata.rotations import rotation_angle_deg

__all__ = ["ViewPair", "choose_pairs", "covisibility", "relative_rotation_deg", "surface_points"]


@dataclass(frozen=True)
class ViewPair:
    """Two frames (indices into the dataset's frames, ``a < b``) and how they relate."""

    a: int
    b: int
    overlap: float
    """Smaller of the shares of A's surface seen by B and of B's surface seen by A."""
    rotation_deg: float
    """Angle of the relative rotation between the two cameras (degrees)."""
    baseline: float
    """Distance between the camera centres (scene units)."""


def surface_points(
    camera: Camera, depth: Float[np.ndarray, "h w"], max_points: int
) -> Float[torch.Tensor, "p 3"]:
    """World points of up to ``max_points`` surface pixels (depth > 0), evenly spread in row-major order.

    Example:
        >>> from nerfdata.cameras import Intrinsics
        >>> camera = Camera(torch.eye(4), Intrinsics(2.0, 2.0, 1.0, 1.0, 2, 2))
        >>> surface_points(camera, np.array([[0.0, 1.0], [0.0, 0.0]], dtype=np.float32), 8).round(decimals=4).tolist()
        [[0.25, 0.25, -1.0]]
    """
    rows, cols = np.nonzero(depth > 0)
    if len(rows) > max_points:
        keep = np.linspace(0, len(rows) - 1, max_points).round().astype(np.int64)
        rows, cols = rows[keep], cols[keep]
    pixels = torch.from_numpy(np.stack([cols, rows], axis=-1).astype(np.float32) + 0.5)
    rays = camera.rays(pixels)
    ranges = torch.from_numpy(depth[rows, cols].astype(np.float32)) / rays.z_per_range
    return rays.origins + rays.directions * ranges[:, None]


def _seen_share(points: torch.Tensor, camera: Camera, depth: np.ndarray, tolerance: float) -> float:
    """Share of ``points`` that ``camera`` sees (inside, in front, agreeing with its depth map)."""
    if len(points) == 0:
        return 0.0
    uv, z = project_points(camera, points)
    h, w = depth.shape
    col, row = torch.floor(uv[:, 0]).long(), torch.floor(uv[:, 1]).long()
    inside = (z > 0) & (col >= 0) & (col < w) & (row >= 0) & (row < h)
    seen = torch.zeros_like(inside)
    there = torch.from_numpy(depth)[row[inside], col[inside]]
    seen[inside] = (there > 0) & ((z[inside] - there).abs() <= tolerance * z[inside])
    return float(seen.float().mean())


def covisibility(
    cameras: list[Camera], depths: list[np.ndarray], points_per_view: int = 1024, depth_tolerance: float = 0.03
) -> np.ndarray:
    """``(V, V)`` matrix: entry ``[a, b]`` is the share of view a's surface pixels that view b sees.

    The tolerance is looser than the matcher's: depth maps are looked up at the nearest pixel, which
    on a slanted surface differs from the point's own depth by up to the slope over half a pixel.
    """
    shares = np.eye(len(cameras))
    for a, (camera, depth) in enumerate(zip(cameras, depths, strict=True)):
        points = surface_points(camera, depth, points_per_view)
        for b in range(len(cameras)):
            if b != a:
                shares[a, b] = _seen_share(points, cameras[b], depths[b], depth_tolerance)
    return shares


def relative_rotation_deg(camera_a: Camera, camera_b: Camera) -> float:
    """Angle (degrees) of the rotation taking camera a's orientation to camera b's.

    Example:
        >>> from nerfdata.cameras import Intrinsics, look_at_c2w_opengl
        >>> k = Intrinsics(2.0, 2.0, 1.0, 1.0, 2, 2)
        >>> up = torch.tensor([0.0, 1.0, 0.0])
        >>> a = Camera(look_at_c2w_opengl(torch.tensor([0.0, 0.0, 3.0]), torch.zeros(3), up), k)
        >>> b = Camera(look_at_c2w_opengl(torch.tensor([3.0, 0.0, 0.0]), torch.zeros(3), up), k)
        >>> round(relative_rotation_deg(a, b), 3)
        90.0
    """
    return float(rotation_angle_deg(camera_a.c2w_opengl[:3, :3].double(), camera_b.c2w_opengl[:3, :3].double()))


def choose_pairs(
    cameras: list[Camera],
    depths: list[np.ndarray],
    num_pairs: int,
    min_overlap: float,
    seed: int,
    points_per_view: int = 1024,
) -> list[ViewPair]:
    """Up to ``num_pairs`` view pairs sharing at least ``min_overlap`` of their surface, baselines mixed.

    Returns pairs sorted by ``(a, b)``; all qualifying pairs when there are no more than ``num_pairs``.

    Raises:
        NerfDataError: no pair overlaps enough.
    """
    shares = covisibility(cameras, depths, points_per_view)
    overlap = np.minimum(shares, shares.T)
    candidates = [
        ViewPair(
            a, b, float(overlap[a, b]), relative_rotation_deg(cameras[a], cameras[b]),
            float((cameras[a].c2w_opengl[:3, 3] - cameras[b].c2w_opengl[:3, 3]).norm()),
        )
        for a in range(len(cameras))
        for b in range(a + 1, len(cameras))
        if overlap[a, b] >= min_overlap
    ]
    if not candidates:
        best = float(overlap[~np.eye(len(cameras), dtype=bool)].max()) if len(cameras) > 1 else 0.0
        raise NerfDataError(
            f"no pair of the {len(cameras)} views shares {100 * min_overlap:.0f}% of its surface "
            f"(best: {100 * best:.0f}%); lower min_overlap or render views that overlap more"
        )
    candidates.sort(key=lambda p: (p.rotation_deg, p.a, p.b))
    if len(candidates) > num_pairs:
        rng = np.random.default_rng(seed)
        strata = np.array_split(np.arange(len(candidates)), num_pairs)
        candidates = [candidates[int(rng.choice(stratum))] for stratum in strata]
    return sorted(candidates, key=lambda p: (p.a, p.b))
