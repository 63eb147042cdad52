"""Run every benchmark, print tables with ratios, write the figures as JSON."""

import math
import platform
from pathlib import Path
from typing import Any

import torch
from rich.console import Console
from rich.table import Table

from nerfdata.atomic import write_json_atomic
from nerfdata.bench.cold_start import bench_cold_start
from nerfdata.bench.core import bench_hash_grid, bench_render
from nerfdata.bench.correspondences import correspondence_quality, correspondence_table
from nerfdata.bench.inerf import inerf_benchmark, inerf_table
from nerfdata.bench.memory import bench_peak_memory
from nerfdata.bench.mesh import analytic_mesh_quality, mesh_quality
from nerfdata.bench.nerfstudio import (
    DEFAULT_RUN,
    nerfstudio_available,
    nerfstudio_benchmark,
    nerfstudio_table,
)
from nerfdata.bench.quality import scene_quality
from nerfdata.bench.samples import default_settings, samples_benchmark
from nerfdata.bench.shipped import RESULTS, SCENES, shipped_scenes
from nerfdata.device import DeviceName, resolve_device
from nerfdata.labels.view_labels import LabelsConfig
from nerfdata.version import __version__

__all__ = ["run_benchmarks"]


def _hash_grid_table(rows: list[dict[str, Any]]) -> Table:
    table = Table(title="hash grid (16 levels, 2^19 entries, 2 features): samples/s (ratio: against the reference)")
    for column in ("backend", "forward", "forward+backward", "forward ratio", "train ratio"):
        table.add_column(column, justify="right" if column != "backend" else "left")
    base = next(r for r in rows if r["backend"] == "reference loop")
    for row in rows:
        table.add_row(
            row["backend"],
            f"{row['forward_samples_per_s'] / 1e6:.2f} M",
            f"{row['train_samples_per_s'] / 1e6:.2f} M",
            f"{row['forward_samples_per_s'] / base['forward_samples_per_s']:.2f}x",
            f"{row['train_samples_per_s'] / base['train_samples_per_s']:.2f}x",
        )
    return table


def _render_table(rows: list[dict[str, Any]], resolution: int) -> Table:
    table = Table(title=f"render {resolution}x{resolution}: rays/s (ratio: against the same field without occupancy)")
    for column in ("field", "occupancy grid", "normals", "rays/s", "ratio"):
        table.add_column(column, justify="left" if column == "field" else "right")
    for row in rows:
        base = next(r for r in rows if r["field"] == row["field"] and not r["occupancy"])
        grid = f"yes ({100 * row['occupied_fraction']:.0f}% cells)" if row["occupancy"] else "no"
        table.add_row(
            row["field"], grid, "yes" if row["normals"] else "no",
            f"{row['rays_per_s'] / 1e3:.1f} k", f"{row['rays_per_s'] / base['rays_per_s']:.2f}x",
        )
    return table


def _cold_start_table(row: dict[str, Any]) -> Table:
    table = Table(title="cold start: fresh interpreter to the first ray of `nerfdata render` (median of "
                  f"{row['repeats']}; ratio: against `import torch` alone)")
    for column in ("scene", "import torch", "first ray", "ratio", "heavy libraries imported"):
        table.add_column(column, justify="left" if column in ("scene", "heavy libraries imported") else "right")
    table.add_row(
        row["scene"], f"{row['import_torch_s']:.2f} s", f"{row['first_ray_s']:.2f} s", f"{row['ratio']:.2f}x",
        ", ".join(row["heavy_modules"]) or "none",
    )
    return table


def quality_table(rows: list[dict[str, Any]]) -> Table:
    table = Table(title="shipped fields against exact ground truth (test views)")
    columns = (
        "scene", "views", "PSNR", "depth MAE", "depth rel.", "normals (default)", "mask IoU",
        "untrusted light / dark", "size",
    )
    for column in columns:
        table.add_column(column, justify="left" if column == "scene" else "right")
    for row in rows:
        metres = f" ({1000 * row['depth_mae_m']:.1f} mm)" if row["depth_mae_m"] is not None else ""
        mae = f"{row['depth_mae']:.4f}" + metres
        default = row["normals"].get(LabelsConfig().normals)
        untrusted = f"{100 * row['untrusted']['light']:.1f}% / {100 * row['untrusted']['dark']:.1f}%"
        normals = f"{default['mean_deg']:.1f} deg" if default else "-"
        table.add_row(
            row["scene"], str(row["views"]), f"{row['psnr']:.2f} dB", mae, f"{100 * row['depth_rel']:.2f}%",
            normals, f"{row['mask_iou']:.4f}", untrusted, f"{row['field_mb']:.1f} MB",
        )
    return table


def normals_table(rows: list[dict[str, Any]]) -> Table:
    """Per scene and normals mode: the angle to the true normal on surface pixels, and its cost."""
    table = Table(title="normals against exact ground truth (surface pixels of the test views; default first)")
    for column in ("scene", "normals", "mean", "median", "under 5 deg", "s / view"):
        table.add_column(column, justify="left" if column in ("scene", "normals") else "right")
    for row in rows:
        for mode, figures in row["normals"].items():
            label = mode
            if mode == "mesh":
                label = f"labels.geometry: mesh ({figures['extraction_seconds']:.0f} s to extract)"
            table.add_row(
                row["scene"], label, f"{figures['mean_deg']:.1f} deg", f"{figures['median_deg']:.1f} deg",
                f"{100 * figures['under_5_deg']:.0f}%", f"{figures['seconds_per_view']:.2f}",
            )
    return table


def mesh_table(rows: list[dict[str, Any]]) -> Table:
    table = Table(
        title="meshes of shipped fields against ground truth: Chamfer (100k samples each), normal consistency"
    )
    for column in ("scene", "grid", "Chamfer", "% diag.", "normals", "vertices", "faces", "closed", "time"):
        table.add_column(column, justify="left" if column == "scene" else "right")
    for row in rows:
        if "chamfer" in row:
            chamfer, percent = f"{row['chamfer']:.5f}", f"{row['chamfer_percent']:.2f}%"
            normals = f"{row['normal_consistency']:.3f}"
        else:  # an analytic field: distance to its exact surface instead
            chamfer, percent = f"{row['sdf_mean']:.5f} (|sdf|)", f"{100 * row['sdf_mean'] / row['diagonal']:.3f}%"
            normals = "-"
        table.add_row(
            row["scene"], f"{row['resolution']}^3", chamfer, percent, normals, f"{row['vertices']:,}",
            f"{row['faces']:,}", "yes" if row["watertight"] else "no", f"{row['seconds']:.1f} s",
        )
    return table


def samples_table(rows: list[dict]) -> Table:
    table = Table(title="samples per ray on the shipped fields (test views; hit: accumulation > 0.5 in the baseline)")
    columns = ("scene", "setting", "samples/ray", "samples/hit ray", "rays/s", "grid s", "PSNR vs before",
               "PSNR vs GT", "max 8-bit", "depth change med / p99", "mask flips")
    for column in columns:
        table.add_column(column, justify="left" if column in ("scene", "setting") else "right")
    for row in rows:
        vs_before = "-" if math.isinf(row["psnr_vs_baseline"]) else f"{row['psnr_vs_baseline']:.1f} dB"
        table.add_row(
            row["scene"], row["setting"], f"{row['samples_per_ray']:.2f}", f"{row['samples_per_hit_ray']:.2f}",
            f"{row['rays_per_s'] / 1e3:.1f} k", f"{row['grid_seconds']:.1f}", vs_before,
            f"{row['psnr_vs_truth']:.3f} dB",
            str(row["max_8bit_change"]),
            f"{100 * row['depth_change_median']:.4f}% / {100 * row['depth_change_p99']:.4f}%", str(row["mask_flips"]),
        )
    return table


def run_benchmarks(
    quick: bool = False, out: Path | None = RESULTS, scenes_root: Path = SCENES, device: DeviceName = "auto"
) -> dict[str, Any]:
    """Measure, print and (unless ``out`` is None) save every benchmark; returns the figures.

    Args:
        quick: Fewer and smaller measurements (a smoke run).
        out: Where the figures are written as JSON (default: the checkout's ``benchmarks/results.json``).
        scenes_root: The folder of the scenes measured (default: the checkout's ``scenes/``).
        device: Where the GPU rows run (:func:`nerfdata.device.resolve_device`; auto: where CUDA is
            present): on CUDA they are measured beside the CPU ones, which every run measures.

    Raises:
        NerfDataError: ``scenes_root`` is not a folder, or ``cuda`` where there is none (before anything
            is measured).
    """
    resolved = resolve_device(device)
    scenes = shipped_scenes(scenes_root)
    analytic_demo = scenes_root / "analytic_demo"
    nerfstudio_run = scenes_root / DEFAULT_RUN.relative_to(SCENES)
    console = Console()
    resolution = 64 if quick else 256
    repeats = 1 if quick else 3
    render_repeats = 1 if quick else 2
    console.print(f"nerfdata {__version__} benchmarks on {platform.processor() or platform.machine()}, "
                  f"{torch.get_num_threads()} threads, torch {torch.__version__}" + (" (quick)" if quick else ""))
    hash_rows = bench_hash_grid(num_points=1 << (15 if quick else 18), repeats=repeats)
    if resolved.type == "cuda":  # GPU kernels time larger batches: a GPU idles on 2^18 points
        hash_rows += bench_hash_grid(num_points=1 << (18 if quick else 22), repeats=repeats, device="cuda")
    console.print(_hash_grid_table(hash_rows))
    render_rows = bench_render(resolution, render_repeats, distill_steps=20 if quick else 300)
    console.print(_render_table(render_rows, resolution))
    cold_start = None
    if scenes:
        scene = next((s for s in scenes if s.name == "tabletop"), scenes[0])
        cold_start = {"scene": scene.name, **bench_cold_start(scene, scene / "cameras.json", repeats=2 if quick else 5)}
        console.print(_cold_start_table(cold_start))
    peak_memory = None
    if scenes:
        scene = next((s for s in scenes if s.name == "tabletop"), scenes[0])
        width, height = (320, 180) if quick else (1920, 1080)
        peak_memory = {"scene": scene.name, **bench_peak_memory(scene, width, height)}
        console.print(
            f"peak memory of one {width}x{height} render of {scene.name} with every layer: "
            f"{peak_memory['peak_bytes'] / 2**30:.2f} GiB (target: under 2 GiB), {peak_memory['seconds']:.0f} s"
        )
    # A slice of benchmarks/samples.py (which renders every test view, and at 512 steps too).
    samples_rows = [
        row
        for scene in scenes
        for row in samples_benchmark(scene, default_settings((1024,)), views=1 if quick else 4)
    ]
    if samples_rows:
        console.print(samples_table(samples_rows))
    quality_rows = [scene_quality(scene, views=3 if quick else None) for scene in scenes]
    if quality_rows:
        console.print(quality_table(quality_rows))
        console.print(normals_table(quality_rows))
    mesh_resolution = 128 if quick else 256
    mesh_rows = [mesh_quality(scene, mesh_resolution) for scene in scenes]
    if (analytic_demo / "field.json").exists():
        mesh_rows.append(analytic_mesh_quality(analytic_demo, mesh_resolution))
    console.print(mesh_table(mesh_rows))
    correspondence_rows = [
        row
        for scene in scenes
        for row in correspondence_quality(
            scene, pairs=2 if quick else 8, per_pair=512 if quick else 2048, views=6 if quick else None
        )
    ]
    if correspondence_rows:
        console.print(correspondence_table(correspondence_rows))
    # A slice of benchmarks/inerf.py (which runs 50 targets per scene and every sampling strategy).
    inerf_rows = [
        row
        for scene in scenes[:1 if quick else None]
        for row in inerf_benchmark(
            scene,
            num=2 if quick else 10,
            samplings=("interest-regions",),
            hypotheses=(1, 4),
            iters=30 if quick else 300,
        )
    ]
    if inerf_rows:
        console.print(inerf_table(inerf_rows))
    results = {
        "nerfdata_version": __version__,
        "quick": quick,
        "machine": {"processor": platform.processor(), "threads": torch.get_num_threads(), "torch": torch.__version__},
        "device": str(resolved),
        "hash_grid": hash_rows,
        "render": {"resolution": resolution, "rows": render_rows},
        "cold_start": cold_start,
        "peak_memory": peak_memory,
        "samples": samples_rows,
        "quality": quality_rows,
        "mesh": mesh_rows,
        "correspondences": correspondence_rows,
        "inerf": inerf_rows,
    }
    if nerfstudio_available(nerfstudio_run):  # the [nerfstudio] extra, in its own environment
        results["nerfstudio"] = nerfstudio_benchmark(
            nerfstudio_run, views=1 if quick else 3, mesh_resolution=64 if quick else 128
        )
        console.print(nerfstudio_table(results["nerfstudio"]))
    if out is not None:
        write_json_atomic(out, results)
        console.print(f"figures written to {out}")
    return results
