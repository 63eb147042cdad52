"""Meshes from fields: exact checks against analytic surfaces, units, colours, limits, formats, and
mesh-based render labels against exact ground truth."""

import json
from pathlib import Path

import imageio.v3 as iio
import numpy as np
import pytest
import torch
import trimesh

from nerfdata.cli import main
from nerfdata.errors import ConfigError, NerfDataError
from nerfdata.fields.analytic import AnalyticField, Box, Material, Sphere
from nerfdata.fields.loading import load_field
from nerfdata.fields.occupancy import occupancy_grid_from_density
from nerfdata.jobs.mesh import MeshJobConfig, run_mesh
from nerfdata.jobs.render import CameraConfig, RenderJobConfig, run_render
from nerfdata.labels.mesh import (
    CleanupConfig,
    MeshConfig,
    auto_threshold,
    clean_mesh,
    extract_mesh,
    mesh_stats,
)
from nerfdata.labels.view_labels import LabelsConfig
from nerfdata.poses import OrbitConfig, SamplerConfig
from nerfdata.render.renderer import RenderOptions
from nerfdata.writers.mesh import write_mesh

# A box that is neither the unit cube nor centred at the origin, with unequal sides.
AABB = [[-0.8, -0.6, -0.7], [0.9, 0.6, 0.7]]
CELL = 1.7 / 64  # the longest side over the resolution used below
SHAPES = {
    "sphere": Sphere((0.1, -0.05, 0.0), 0.45, Material((0.9, 0.3, 0.2), "noise", 2.0)),
    "box": Box((0.05, 0.0, -0.1), (0.4, 0.25, 0.3), Material((0.2, 0.4, 0.9), "stripes", 1.5)),
}
CRISP = MeshConfig(resolution=64, smoothing=0.0, refine_steps=8)
"""Settings for crisp fields: vertices placed on the field's own level set."""


def field_of(name: str, aabb=AABB) -> AnalyticField:
    return AnalyticField([SHAPES[name]], aabb=aabb)


def sdf_at(field: AnalyticField, points: np.ndarray) -> np.ndarray:
    return field.sdf(torch.tensor(points, dtype=torch.float64)).numpy()


@pytest.mark.parametrize("name", ["sphere", "box"])
def test_mesh_of_an_analytic_shape_lies_on_its_surface(name):
    field = field_of(name)
    default = extract_mesh(field, MeshConfig(resolution=64))
    crisp = extract_mesh(field, CRISP)
    assert np.abs(sdf_at(field, default.mesh.vertices)).max() < CELL  # within a grid cell
    # On the field's own level set: the threshold lies ln(k / level) / k outside the zero level set.
    offset = np.log(1.0 / field.surface_width / crisp.threshold) * field.surface_width
    np.testing.assert_allclose(sdf_at(field, crisp.mesh.vertices), offset, atol=0.01 * CELL)
    for result in (default, crisp):
        assert result.mesh.is_watertight and mesh_stats(result.mesh).components == 1


@pytest.mark.parametrize("name", ["sphere", "box"])
def test_faces_point_outward(name):
    field = field_of(name)
    mesh = extract_mesh(field, MeshConfig(resolution=48)).mesh
    outward = field.surface_normals(torch.tensor(mesh.triangles_center, dtype=torch.float64)).numpy()
    assert mesh.volume > 0 and (np.sum(mesh.face_normals * outward, axis=-1) > 0.0).all()


def test_vertices_are_in_world_units_for_a_box_far_from_the_unit_cube():
    aabb = [[10.0, -3.0, 100.0], [12.5, -1.8, 101.5]]
    ball = AnalyticField([Sphere((11.0, -2.4, 100.7), 0.5)], aabb=aabb)
    result = extract_mesh(ball, CRISP)
    cell = 2.5 / 64
    assert result.grid_shape == (65, 32, 39)  # cubic cells: 1.2 / cell and 1.5 / cell, rounded
    np.testing.assert_allclose(result.mesh.bounds, [[10.5, -2.9, 100.2], [11.5, -1.9, 101.2]], atol=0.2 * cell)
    assert result.mesh.volume == pytest.approx(4 / 3 * np.pi * 0.5**3, rel=0.01)
    assert result.mesh.area == pytest.approx(4 * np.pi * 0.5**2, rel=0.01)


def test_bounds_select_a_region_in_world_coordinates():
    field = AnalyticField([SHAPES["sphere"], Sphere((-0.55, 0.3, 0.4), 0.15)], aabb=AABB)
    result = extract_mesh(field, MeshConfig(resolution=32, bounds=((-0.8, 0.05, 0.15), (-0.38, 0.6, 0.7))))
    assert result.mesh.is_watertight and len(result.mesh.split()) == 1  # only the small sphere
    np.testing.assert_allclose(result.mesh.centroid, [-0.55, 0.3, 0.4], atol=0.01)


@pytest.mark.parametrize("name", ["sphere", "box"])
def test_vertex_colours_are_the_analytic_colours(name):
    field = field_of(name)
    mesh = extract_mesh(field, CRISP).mesh
    colours = mesh.visual.vertex_colors[:, :3].astype(np.float64) / 255.0
    points = torch.tensor(mesh.vertices, dtype=torch.float64)
    on_surface = points - field.sdf(points)[:, None] * field.surface_normals(points)  # project onto sdf = 0
    truth = field.albedo(on_surface).numpy()
    error = np.abs(colours - truth).max(axis=-1)
    # 8-bit rounding; the stripes of the box change colour quickly, so a few vertices sit on a steep ramp.
    assert np.median(error) < 0.01 and np.quantile(error, 0.95) < 0.05


def test_auto_threshold_is_the_half_opacity_density():
    field = field_of("sphere")
    occupancy = occupancy_grid_from_density(field.density, field.aabb, resolution=32)
    level = auto_threshold(field, occupancy, views=4, size=24, options=RenderOptions(num_steps=256))
    k = 1.0 / field.surface_width
    # A crisp surface: rays become half opaque in the first sample inside it, whose density is in [k/2, k].
    assert 0.5 * k <= level <= k
    result = extract_mesh(field, MeshConfig(resolution=48, threshold=level), occupancy)
    assert np.abs(sdf_at(field, result.mesh.vertices)).max() < 1.7 / 48


def test_a_grid_too_large_for_memory_is_refused_before_any_work():
    field = field_of("sphere")
    with pytest.raises(ConfigError, match=r"resolution 4096 .* GB, more than max_memory_gb = 8"):
        extract_mesh(field, MeshConfig(resolution=4096))
    with pytest.raises(ConfigError, match="max_memory_gb"):
        extract_mesh(field, MeshConfig(resolution=64, max_memory_gb=0.0001))


def test_no_surface_at_the_threshold_is_a_clear_error():
    with pytest.raises(NerfDataError, match="never crosses the threshold"):
        extract_mesh(field_of("sphere"), MeshConfig(resolution=16, threshold=1e9))


@pytest.mark.parametrize(
    "values, message",
    [
        ({"resolution": 1}, "resolution"),
        ({"threshold": -1.0}, "threshold"),
        ({"smoothing": 1.0, "refine_steps": 4}, "refine_steps needs smoothing = 0"),
        ({"bounds": ((0.0, 0.0, 0.0), (1.0, -1.0, 1.0))}, "bounds"),
    ],
)
def test_bad_settings_name_the_key(values, message):
    with pytest.raises(ConfigError, match=message):
        MeshConfig(**values)


@pytest.mark.parametrize("suffix", [".ply", ".obj", ".glb"])
def test_formats_round_trip(tmp_path, suffix):
    mesh = extract_mesh(field_of("sphere"), MeshConfig(resolution=24)).mesh
    path = write_mesh(mesh, tmp_path / f"mesh{suffix}")
    assert sorted(p.name for p in tmp_path.iterdir()) == [path.name]  # no temporary left behind
    read = trimesh.load(path, force="mesh", process=False)
    np.testing.assert_allclose(read.vertices, mesh.vertices, atol=1e-5)  # float32 in GLB
    np.testing.assert_array_equal(read.faces, mesh.faces)
    np.testing.assert_array_equal(read.visual.vertex_colors[:, :3], mesh.visual.vertex_colors[:, :3])


def test_unknown_format_is_refused(tmp_path):
    with pytest.raises(ConfigError, match=r"unknown .*'\.stl'"):
        write_mesh(trimesh.creation.box(), tmp_path / "mesh.stl")
    with pytest.raises(ConfigError, match="unknown mesh format"):
        MeshJobConfig(field=Path("scenes/analytic_demo"), out=tmp_path / "mesh.stl")
    assert not list(tmp_path.iterdir())


def test_cleanup_drops_floaters_fills_holes_and_decimates():
    body = trimesh.creation.icosphere(4, 1.0)
    floater = trimesh.creation.icosphere(1, 0.05).apply_translation([3.0, 0.0, 0.0])
    cleaned = clean_mesh(trimesh.util.concatenate([body, floater]), CleanupConfig(min_component_fraction=0.01))
    assert len(cleaned.faces) == len(body.faces) and cleaned.is_watertight
    open_box = trimesh.creation.box()
    open_box.update_faces(np.arange(len(open_box.faces)) >= 2)  # one side missing
    assert not open_box.is_watertight
    filled = clean_mesh(open_box, CleanupConfig(fill_holes=1.0))
    assert filled.is_watertight and filled.volume == pytest.approx(1.0)
    decimated = clean_mesh(body, CleanupConfig(target_faces=1000))
    assert 900 <= len(decimated.faces) <= 1000 and decimated.volume > 0.95 * body.volume


def test_mesh_job_and_cli(tmp_path, capsys):
    status = main(
        ["mesh", "--field", "scenes/analytic_demo", "--out", str(tmp_path / "demo.obj"), "--resolution", "40"]
    )
    out = capsys.readouterr().out
    assert status == 0 and "threshold: density" in out and "watertight" in out
    assert trimesh.load(tmp_path / "demo.obj", force="mesh").is_watertight
    status = main(
        ["mesh", "--field", "scenes/analytic_demo", "--out", str(tmp_path / "big.ply"), "--resolution", "4096"]
    )
    err = capsys.readouterr().err.strip()
    assert status == 2 and len(err.splitlines()) == 1 and "max_memory_gb" in err
    assert not (tmp_path / "big.ply").exists()
    result = run_mesh(MeshJobConfig(field=Path("scenes/analytic_demo"), out=tmp_path / "m.glb",
                                    extraction=MeshConfig(resolution=32, threshold="auto")))
    assert result.extracted.threshold_source == "auto"
    assert result.stats.faces == len(trimesh.load(result.path, force="mesh").faces)


def test_mesh_labels_match_exact_ground_truth(tmp_path):
    field = load_field("scenes/analytic_demo").field
    # At the auto threshold (about half the density of the solid) the iso-surface is the zero level set.
    crisp = MeshConfig(resolution=96, threshold="auto", smoothing=0.0, refine_steps=8)
    mesh_job = MeshJobConfig(field=Path("scenes/analytic_demo"), out=tmp_path / "demo.ply", extraction=crisp)
    mesh_path = run_mesh(mesh_job).path
    orbit = SamplerConfig(orbit=OrbitConfig(count=2, radius=3.2, elevation_deg=30.0, target=(0.0, -0.2, 0.0)))
    config = RenderJobConfig(
        field=Path("scenes/analytic_demo"),
        out=tmp_path / "out",
        views=(orbit,),
        camera=CameraConfig(width=40, height=32),
        outputs=("rgb", "depth", "normals", "mask"),
        render=RenderOptions(num_steps=256),
        preview_views=0,
        labels=LabelsConfig(geometry="mesh", mesh=mesh_path),
    )
    out = run_render(config, show_progress=False)
    manifest = json.loads((out / "manifest.json").read_text())
    assert "mesh" in manifest["layers"]["depth"]["source"] and "mesh" in manifest["layers"]["normals"]["source"]
    assert manifest["mesh"]["sha256"] and manifest["mesh"]["source"] == "given"
    from nerfdata.writers.transforms import read_transforms

    cell = 2.6 / 96
    for index, frame in enumerate(read_transforms(out).frames):
        rays = frame.camera.rays()
        truth = field.trace(rays.origins, rays.directions)
        hit = truth.hit.numpy().reshape(32, 40)
        mask = iio.imread(out / f"masks/{index:05d}.png") > 127
        assert (mask == hit).mean() >= 0.99
        both = mask & hit
        depth = np.load(out / f"depth/{index:05d}.npy")
        depth_truth = (truth.range * rays.z_per_range).numpy().reshape(32, 40)
        error = np.abs(depth - depth_truth)[both]
        # Flat facets against curved surfaces; silhouettes within a cell.
        assert np.median(error) < 0.1 * cell and np.quantile(error, 0.99) < cell and (depth[~mask] == 0).all()
        normals = np.load(out / f"normals/{index:05d}.npy")
        cosine = np.clip((normals * truth.normal.numpy().reshape(32, 40, 3)).sum(-1)[both], -1, 1)
        assert np.degrees(np.arccos(cosine)).mean() < 3.0


def test_mesh_labels_extract_a_mesh_into_the_dataset(tmp_path, monkeypatch):
    import nerfdata.jobs.render as render_module

    # The job extracts with MeshConfig's defaults; a coarser grid keeps the test fast.
    monkeypatch.setattr(render_module, "MeshConfig", lambda: MeshConfig(resolution=48))
    orbit = SamplerConfig(orbit=OrbitConfig(count=1, radius=3.2, elevation_deg=30.0, target=(0.0, -0.2, 0.0)))
    config = RenderJobConfig(
        field=Path("scenes/analytic_demo"),
        out=tmp_path / "out",
        views=(orbit,),
        camera=CameraConfig(width=24, height=20),
        outputs=("depth", "mask"),
        render=RenderOptions(num_steps=256),
        preview_views=0,
        labels=LabelsConfig(geometry="mesh"),
    )
    out = run_render(config, show_progress=False)
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["mesh"]["path"] == "mesh.ply" and manifest["mesh"]["source"] == "extracted"
    from nerfdata.atomic import sha256_file

    assert sha256_file(out / "mesh.ply") == manifest["mesh"]["sha256"]
    with pytest.raises(ConfigError, match=r"labels\.mesh is only used with labels\.geometry: mesh"):
        LabelsConfig(mesh=out / "mesh.ply")


@pytest.mark.cuda
def test_mesh_extracted_on_cuda_matches_the_cpu():
    field, on_cuda = field_of("sphere"), field_of("sphere").to("cuda")
    occupancy = occupancy_grid_from_density(field.density, field.aabb, 32)
    config = MeshConfig(resolution=64)
    cpu = extract_mesh(field, config, occupancy)
    gpu = extract_mesh(on_cuda, config, occupancy.to("cuda"))
    assert abs(len(gpu.mesh.vertices) - len(cpu.mesh.vertices)) <= 0.01 * len(cpu.mesh.vertices)
    assert np.abs(sdf_at(field, gpu.mesh.vertices)).max() < CELL and gpu.mesh.is_watertight
    assert gpu.threshold == cpu.threshold
