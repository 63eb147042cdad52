"""Correspondence quality against exact ground truth, per depth mode, and pairs per second.

For a scene with a trained field: its test cameras (``scene_cameras(recipe)["test"]``; for the
analytic demo, a ring of cameras) are rendered from the field into a dataset (``nerfdata render``),
``nerfdata correspond`` matches view pairs of it in each mode, and every match is checked against
ground truth: the ray through ``uv_a`` is cast against the scene's meshes (or traced through the
analytic field) to its exact first hit, which is projected into B (``uv`` truth), and cast from B's
centre towards the hit to decide whether B sees it.

* EPE: end-point error ``|uv_b - truth|`` in pixels over valid matches whose A ray hits the scene;
* PCK@1/3/5: share of valid matches within 1, 3, 5 pixels (an A ray that misses counts as wrong);
* occluded-but-valid: share of valid matches whose point B does not see (1 - precision of ``valid``):
  A's ray misses the scene, or the point is outside B's image or behind it, or B's first hit towards
  it lies in front of it by more than one B pixel footprint (``distance / focal``: nearer surfaces
  are indistinguishable at B's resolution, e.g. the far side of a limb); "strict" uses 0.1% of the
  distance instead; "A misses" is the part where A's ray misses the exact surface (silhouettes);
* recall: share of truly visible matches marked valid.
"""

import tempfile
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from rich.table import Table

from nerfdata.cameras import Camera, Intrinsics, look_at_c2w_opengl
from nerfdata.fields.analytic import AnalyticField
from nerfdata.fields.loading import load_field
from nerfdata.jobs.correspond import CorrespondJobConfig, run_correspond
from nerfdata.jobs.render import RenderJobConfig, run_render
from nerfdata.labels.correspondences import read_pair, read_pairs_json
from nerfdata.labels.matching import MatchMode, project_points
from nerfdata.poses import FileConfig, SamplerConfig
from nerfdata.scenes.dataset import scene_cameras
from nerfdata.scenes.recipe import load_recipe
from nerfdata.writers.transforms import FrameRecord, read_transforms, write_transforms

__all__ = ["MODES", "correspondence_quality", "correspondence_table", "true_matches"]

MODES: tuple[MatchMode, ...] = ("distribution", "median", "expected")
FirstHit = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]
"""``(origins (n, 3), unit directions (n, 3)) -> range (n,)`` of the first surface hit, ``inf`` on a miss."""

# A ray from B that reaches the hit point stops there; anything nearer by more than this share of the
# distance is an occluder (float32 mesh casting reproduces the hit to about 1e-6).
_VISIBLE_TOLERANCE = 1e-3


def _ground_truth(scene: Path, views: int | None) -> tuple[list[Camera], FirstHit]:
    """The scene's cameras and exact first-hit function (meshes, or the analytic field itself)."""
    if (scene / "scene.yaml").exists():
        from nerfdata.scenes.groundtruth import MeshRaycaster  # open3d: imported only here
        from nerfdata.scenes.meshes import build_meshes

        recipe = load_recipe(scene)
        caster = MeshRaycaster(build_meshes(recipe))

        def first_hit(origins: torch.Tensor, directions: torch.Tensor) -> torch.Tensor:
            return torch.from_numpy(caster.cast(origins.numpy(), directions.numpy()).range).float()

        return scene_cameras(recipe)["test"][:views], first_hit
    field_ = load_field(scene).field
    if not isinstance(field_, AnalyticField):
        raise ValueError(f"{scene}: no scene.yaml and not an analytic field: no ground truth")
    count = views or 12
    angles = torch.arange(count, dtype=torch.float64) * (2 * torch.pi / count)
    elevation = torch.where(torch.arange(count) % 2 == 0, 0.6, 1.4).double()
    eyes = torch.stack([3.0 * torch.cos(angles), elevation, 3.0 * torch.sin(angles)], dim=-1)
    c2w = look_at_c2w_opengl(eyes, torch.tensor([0.0, -0.2, 0.0], dtype=torch.float64).expand_as(eyes),
                             torch.tensor([0.0, 1.0, 0.0], dtype=torch.float64).expand_as(eyes))
    intrinsics = Intrinsics.from_fov(128, 96, 45.0)
    return [Camera(m.float(), intrinsics) for m in c2w], lambda o, d: field_.trace(o, d).range


def true_matches(
    first_hit: FirstHit, camera_a: Camera, camera_b: Camera, uv_a: torch.Tensor
) -> dict[str, torch.Tensor]:
    """Exact matches of pixels ``uv_a`` of A in B.

    Returns ``uv`` (the exact hit projected into B), ``hit`` (A's ray meets the scene), ``visible``
    (B sees the hit: inside B's image, in front, and B's first hit towards it lies within one B pixel
    footprint of it, ``distance / focal``; nearer surfaces are indistinguishable at B's resolution)
    and ``visible_strict`` (the same with a tolerance of ``_VISIBLE_TOLERANCE`` of the distance).
    """
    rays = camera_a.rays(uv_a)
    ranges = first_hit(rays.origins, rays.directions)
    hit = torch.isfinite(ranges)
    points = rays.origins + rays.directions * torch.where(hit, ranges, torch.zeros_like(ranges))[:, None]
    uv, z = project_points(camera_b, points)
    k = camera_b.intrinsics
    inside = hit & (z > 0) & (uv[:, 0] >= 0) & (uv[:, 0] < k.width) & (uv[:, 1] >= 0) & (uv[:, 1] < k.height)
    origin_b = camera_b.c2w_opengl[:3, 3].expand_as(points)
    toward = points - origin_b
    distance = toward.norm(dim=-1).clamp(min=1e-12)
    gap = distance - first_hit(origin_b.contiguous(), toward / distance[:, None])  # > 0: something in front
    footprint = distance / min(k.fl_x, k.fl_y)
    return {
        "uv": uv,
        "hit": hit,
        "visible": inside & (gap <= torch.maximum(footprint, _VISIBLE_TOLERANCE * distance)),
        "visible_strict": inside & (gap <= _VISIBLE_TOLERANCE * distance),
    }


def _render_dataset(scene: Path, cameras: list[Camera], folder: Path) -> Path:
    poses = folder / "poses" / "transforms.json"
    write_transforms(poses, [FrameRecord(c, f"images/{i:05d}.png") for i, c in enumerate(cameras)])
    job = RenderJobConfig(field=scene, out=folder / "dataset", views=(SamplerConfig(file=FileConfig(path=poses)),),
                          outputs=("rgb", "depth"), preview_views=0, overwrite=True)
    return run_render(job, show_progress=False)


def correspondence_quality(
    scene: Path,
    pairs: int = 8,
    per_pair: int = 2048,
    modes: Sequence[MatchMode] = MODES,
    views: int | None = None,
    seed: int = 0,
    workdir: Path | None = None,
) -> list[dict[str, Any]]:
    """One row of figures per mode for ``scene`` (a folder with a trained field; see the module doc)."""
    with tempfile.TemporaryDirectory() as scratch:
        folder = workdir or Path(scratch)
        cameras, first_hit = _ground_truth(scene, views)
        dataset = _render_dataset(scene, cameras, folder)
        frames = read_transforms(dataset, require_images=False).frames
        rows = []
        for mode in modes:
            config = CorrespondJobConfig(field=scene, dataset=dataset, out=folder / mode, pairs=pairs,
                                         per_pair=per_pair, mode=mode, seed=seed, preview_pairs=0)
            result = run_correspond(config, show_progress=False)
            keys = ("error", "valid", "visible", "visible_strict", "hit")
            totals: dict[str, list[np.ndarray]] = {k: [] for k in keys}
            for index in range(len(read_pairs_json(result.folder)["pairs"])):
                record, matches = read_pair(result.folder, index)
                truth = true_matches(first_hit, frames[record["a"]].camera, frames[record["b"]].camera, matches.uv_a)
                error = (matches.uv_b - truth["uv"]).norm(dim=-1)
                totals["error"].append(torch.where(truth["hit"], error, torch.full_like(error, np.inf)).numpy())
                totals["valid"].append(matches.valid.numpy())
                totals["visible"].append(truth["visible"].numpy())
                totals["visible_strict"].append(truth["visible_strict"].numpy())
                totals["hit"].append(truth["hit"].numpy())
            error, valid, visible, strict, hit = (np.concatenate(v) for v in totals.values())
            measured = error[valid & hit]
            rows.append({
                "scene": scene.name, "mode": mode, "pairs": result.pairs, "matches": len(valid),
                "valid_share": float(valid.mean()),
                "epe_mean": float(measured.mean()) if measured.size else float("nan"),
                "epe_median": float(np.median(measured)) if measured.size else float("nan"),
                **{f"pck{p}": float((error[valid] <= p).mean()) if valid.any() else float("nan") for p in (1, 3, 5)},
                "occluded_valid": float((valid & ~visible).sum() / max(valid.sum(), 1)),
                "occluded_valid_strict": float((valid & ~strict).sum() / max(valid.sum(), 1)),
                "missed_in_a": float((valid & ~hit).sum() / max(valid.sum(), 1)),
                "recall": float((valid & visible).sum() / max(visible.sum(), 1)),
                "pairs_per_s": result.pairs / result.seconds,
            })
        return rows


def correspondence_table(rows: list[dict[str, Any]]) -> Table:
    table = Table(title="correspondences against exact ground truth (valid matches; EPE in pixels)")
    columns = ("scene", "mode", "pairs", "matches", "valid", "EPE mean", "EPE median", "PCK@1", "PCK@3", "PCK@5",
               "occluded but valid", "(strict)", "A misses", "recall", "pairs/s")
    for column in columns:
        table.add_column(column, justify="left" if column in ("scene", "mode") else "right")
    for r in rows:
        table.add_row(
            r["scene"], r["mode"], str(r["pairs"]), f"{r['matches']:,}", f"{100 * r['valid_share']:.1f}%",
            f"{r['epe_mean']:.3f}", f"{r['epe_median']:.3f}", *(f"{r[f'pck{p}']:.4f}" for p in (1, 3, 5)),
            *(f"{100 * r[key]:.2f}%" for key in ("occluded_valid", "occluded_valid_strict", "missed_in_a")),
            f"{r['recall']:.4f}", f"{r['pairs_per_s']:.2f}",
        )
    return table
