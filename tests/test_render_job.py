"""``nerfdata render`` as a library call: labels against exact ground truth, the dataset's files,
resume, determinism, coverage rules."""

import json
from dataclasses import replace
from pathlib import Path

import imageio.v3 as iio
import numpy as np
import pytest
import torch

import nerfdata.jobs.render as render_module
from nerfdata.errors import NerfDataError
from nerfdata.fields.loading import load_field
from nerfdata.jobs.render import CameraConfig, CoverageConfig, RenderJobConfig, run_render
from nerfdata.labels.view_labels import LabelsConfig
from nerfdata.poses import FileConfig, Keyframe, OrbitConfig, PathConfig, PerturbConfig, SamplerConfig
from nerfdata.render.renderer import RenderOptions
from nerfdata.writers.images import read_depth_png, srgb_to_linear
from nerfdata.writers.transforms import FrameRecord, read_transforms, write_transforms
from tests.conftest import files_of

FIELD = Path("scenes/analytic_demo")
ORBIT = SamplerConfig(orbit=OrbitConfig(count=3, radius=3.2, elevation_deg=30.0, target=(0.0, -0.2, 0.0)))
EVERY_OUTPUT = ("rgb", "depth", "range", "normals", "mask", "confidence", "depth_modes")


def job(out: Path, **kwargs) -> RenderJobConfig:
    base = RenderJobConfig(
        field=FIELD, out=out, views=(ORBIT,), camera=CameraConfig(width=40, height=32, fov_deg=45.0),
        outputs=EVERY_OUTPUT, render=RenderOptions(num_steps=768), preview_views=2,
    )
    return replace(base, **kwargs)


@pytest.fixture(scope="module")
def dataset(tmp_path_factory) -> Path:
    return run_render(job(tmp_path_factory.mktemp("render") / "out"), show_progress=False)


def test_labels_match_exact_ground_truth(dataset):
    field = load_field(FIELD).field
    frames = read_transforms(dataset).frames
    assert len(frames) == 3
    for index, frame in enumerate(frames):
        rays = frame.camera.rays()
        truth = field.trace(rays.origins, rays.directions)
        hit = truth.hit.numpy().reshape(32, 40)
        mask = iio.imread(dataset / f"masks/{index:05d}.png") > 127
        assert (mask == hit).mean() >= 0.99
        both = mask & hit
        depth = np.load(dataset / f"depth/{index:05d}.npy")
        depth_truth = (truth.range * rays.z_per_range).numpy().reshape(32, 40)
        error = np.abs(depth - depth_truth)[both]
        assert np.quantile(error, 0.99) < 0.01 * field.extent and np.median(error) < 0.001 * field.extent
        assert (depth[~mask] == 0).all() and depth.dtype == np.float32
        ranges = np.load(dataset / f"range/{index:05d}.npy")
        np.testing.assert_allclose(depth, ranges * rays.z_per_range.numpy().reshape(32, 40), rtol=1e-5, atol=1e-6)
        millimetres = read_depth_png(dataset / f"depth/{index:05d}.png")
        assert np.abs(millimetres - depth).max() <= 0.0005 + 1e-6  # uint16 millimetres, rounded
        normals = np.load(dataset / f"normals/{index:05d}.npy")
        trust = np.load(dataset / f"normal_confidence/{index:05d}.npy")
        cosine = np.clip((normals * truth.normal.numpy().reshape(32, 40, 3)).sum(-1), -1, 1)
        angle = np.degrees(np.arccos(cosine))
        labels = LabelsConfig()
        trusted = both & (trust >= labels.normal_confidence_threshold)
        # Depth-fit normals at 40x32: exact on faces; a 11x11 window spans much of an object at this size.
        assert np.median(angle[both]) < 1.0 and angle[trusted].mean() < 7.0
        length = np.linalg.norm(normals[mask], axis=-1)
        np.testing.assert_allclose(length[length > 0], 1.0, atol=1e-4)
        assert (length == 0).mean() < 0.01 and (trust[mask][length == 0] == 0).all()  # specks too small to fit
        score = np.load(dataset / f"confidence/{index:05d}.npy")
        valid = iio.imread(dataset / f"valid/{index:05d}.png") > 127
        assert score.min() >= 0 and score.max() <= 1 and not (valid & ~mask).any()
        assert trust.min() >= 0 and trust.max() <= 1 and (trust[~mask] == 0).all()
        assert (score[both] >= labels.confidence_threshold).mean() > 0.9  # a sharp analytic surface's depth is trusted
        trusted_normal = trust >= labels.normal_confidence_threshold
        np.testing.assert_array_equal(valid, mask & (score >= labels.confidence_threshold) & trusted_normal)
        assert valid[both].mean() > 0.6  # its normals but near edges and creases, at this size


def test_depth_modes_hold_the_surface_as_the_heaviest_mode(dataset):
    modes = np.load(dataset / "depth_modes/00000.npy")
    depth = np.load(dataset / "depth/00000.npy")
    mask = iio.imread(dataset / "masks/00000.png") > 127
    assert modes.shape == (32, 40, 4, 2) and modes.dtype == np.float16
    extent = load_field(FIELD).field.extent
    heaviest = modes[..., 0, 0].astype(np.float32)
    assert np.quantile(np.abs(heaviest - depth)[mask], 0.99) < 0.01 * extent
    assert (modes[..., 1].astype(np.float32).sum(-1) <= 1.0 + 1e-2).all()
    assert (modes[~mask][:, 0, 1] < 0.5).all()  # background pixels have no heavy mode


def test_transforms_json_round_trips_cameras_and_files(dataset):
    content = json.loads((dataset / "transforms.json").read_text())
    assert content["camera_model"] == "OPENCV" and content["depth_unit_scale_factor"] == 0.001
    read = read_transforms(dataset)
    views = json.loads((dataset / "manifest.json").read_text())["views"]
    for frame, view in zip(read.frames, views, strict=True):
        assert frame.image_path == dataset / view["files"]["rgb"]["path"]
        assert frame.depth_path == dataset / view["files"]["depth_png"]["path"]
        assert frame.camera.intrinsics.width == 40 and frame.camera.intrinsics.height == 32
        assert iio.imread(frame.image_path).shape == (32, 40, 3)
    for frame in read.frames:
        eye = frame.camera.c2w_opengl[:3, 3]
        assert float((eye - torch.tensor([0.0, -0.2, 0.0])).norm()) == pytest.approx(3.2, rel=1e-5)


def test_manifest_describes_every_layer_and_the_field(dataset):
    manifest = json.loads((dataset / "manifest.json").read_text())
    assert manifest["complete"] and manifest["seed"] == 0 and manifest["config"]["camera"]["width"] == 40
    assert manifest["field"]["sha256"] == load_field(FIELD).sha256
    layers = manifest["layers"]
    assert set(layers) == {
        "rgb", "depth", "depth_png", "range", "normals", "normals_png", "mask", "confidence", "normal_confidence",
        "valid", "depth_modes",
    }
    assert "depth map" in layers["normals"]["source"] and layers["normal_confidence"]["unit"] == "0..1"
    assert layers["depth"]["dtype"] == "float32" and layers["depth"]["frame"] == "camera z-depth"
    assert layers["normals"]["frame"] == "world" and "median" in layers["depth"]["source"]
    for view in manifest["views"]:
        assert view["status"] == "complete" and set(view["files"]) == set(layers)
    preview = iio.imread(dataset / "preview.png")
    assert preview.ndim == 3 and preview.shape[0] >= 2 * 32 and preview.shape[1] >= 4 * 40  # 2 views x 4 panels


def test_same_config_and_seed_give_byte_identical_files(dataset, tmp_path):
    again = run_render(job(tmp_path / "again"), show_progress=False)
    first, second = files_of(dataset), files_of(again)
    assert first.keys() == second.keys()
    differing = [name for name in first if first[name] != second[name]]
    assert differing == ["manifest.json"]  # it records its own output path; every view's checksums agree
    views = [json.loads((d / "manifest.json").read_text())["views"] for d in (dataset, again)]
    assert views[0] == views[1]


def test_resume_after_deleting_and_damaging_views_gives_identical_files(dataset, tmp_path):
    import shutil

    out = tmp_path / "resumed"
    shutil.copytree(dataset, out)
    manifest = json.loads((dataset / "manifest.json").read_text())
    (out / "depth/00001.npy").unlink()
    (out / "images/00002.png").write_bytes(b"not a png")
    rendered = []
    original = render_module.render_image

    def counting(field, camera, options, occupancy=None):
        rendered.append(camera.intrinsics.width)
        return original(field, camera, options, occupancy)

    render_module.render_image = counting
    try:
        run_render(job(out), show_progress=False)
    finally:
        render_module.render_image = original
    full_size = [w for w in rendered if w == 40]
    assert len(full_size) == 2  # only the two damaged views were rendered again
    assert files_of(out).keys() == files_of(dataset).keys()
    for name, data in files_of(out).items():
        if name != "manifest.json":
            assert data == (dataset / name).read_bytes(), name
    assert json.loads((out / "manifest.json").read_text())["views"] == manifest["views"]


def test_a_killed_run_resumes_to_the_uninterrupted_result(dataset, tmp_path, monkeypatch):
    out = tmp_path / "killed"
    failing = _disk_full_on_the_second_view(render_module.write_view_layers)
    monkeypatch.setattr(render_module, "write_view_layers", failing)
    with pytest.raises(OSError, match="No space left"):
        run_render(job(out), show_progress=False)
    manifest = json.loads((out / "manifest.json").read_text())
    assert not manifest["complete"] and not (out / "transforms.json").exists()
    monkeypatch.undo()
    run_render(job(out), show_progress=False)
    for name, data in files_of(dataset).items():
        if name != "manifest.json":
            assert (out / name).read_bytes() == data, name


def _disk_full_on_the_second_view(write_view_layers):
    calls = []

    def failing(*args, **kwargs):
        calls.append(args[1])
        if len(calls) == 2:
            raise OSError(28, "No space left on device")
        return write_view_layers(*args, **kwargs)

    return failing


def test_expected_depth_exr_rgb_and_depth_normals(tmp_path, dataset):
    labels = LabelsConfig(depth="expected", normals="depth", rgb_format="exr")
    outputs = ("rgb", "depth", "normals", "mask")
    out = run_render(job(tmp_path / "exr", labels=labels, outputs=outputs), show_progress=False)
    import OpenEXR

    with OpenEXR.File(str(out / "images/00000.exr")) as exr:
        linear = exr.channels()["RGB"].pixels
    png = iio.imread(dataset / "images/00000.png").astype(np.float64) / 255.0
    assert linear.dtype == np.float32 and linear.shape == (32, 40, 3)
    assert np.abs(linear - srgb_to_linear(png)).max() < 0.01  # the PNG is the same colour, quantised to 8 bits
    expected, median = np.load(out / "depth/00000.npy"), np.load(dataset / "depth/00000.npy")
    mask = iio.imread(out / "masks/00000.png") > 127
    assert not np.array_equal(expected, median) and np.median(np.abs(expected - median)[mask]) < 0.005
    normals = np.load(out / "normals/00000.npy")
    fitted = np.load(dataset / "normals/00000.npy")  # the default, depth-fit
    agree = (normals * fitted).sum(-1)[mask & (np.linalg.norm(normals, axis=-1) > 0)]
    assert np.median(agree) > np.cos(np.radians(5.0))  # the two agree away from silhouettes
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["layers"]["rgb"]["files"].endswith(".exr")
    assert "depth map" in manifest["layers"]["normals"]["source"]


def test_poses_file_is_rendered_in_order_with_its_intrinsics(tmp_path, dataset):
    source = read_transforms(dataset).frames
    # A poses-only file: its images need not exist when it gives the image size.
    reordered = [FrameRecord(f.camera, f"nowhere/{i}.png") for i, f in enumerate(reversed(source))]
    reordered[0] = FrameRecord(replace_size(source[-1].camera, 20, 16), "nowhere/0.png")
    write_transforms(tmp_path / "poses.json", reordered)
    from_file = SamplerConfig(file=FileConfig(tmp_path / "poses.json"))
    out = run_render(job(tmp_path / "out", views=(from_file,)), show_progress=False)
    frames = read_transforms(out).frames
    assert [f.camera.intrinsics for f in frames] == [r.camera.intrinsics for r in reordered]
    for frame, record in zip(frames, reordered, strict=True):
        torch.testing.assert_close(frame.camera.c2w_opengl, record.camera.c2w_opengl)
    assert iio.imread(out / "images/00000.png").shape == (16, 20, 3)
    # The same pose at the same size renders the same image as the orbit job did.
    assert (out / "images/00001.png").read_bytes() == (dataset / "images/00001.png").read_bytes()


def replace_size(camera, width, height):
    from nerfdata.cameras import Camera, Intrinsics

    return Camera(camera.c2w_opengl, Intrinsics.from_fov(width, height, 45.0))


def test_coverage_rejects_views_that_see_nothing_or_start_inside_geometry(tmp_path):
    away = Keyframe(eye=(0.0, 0.3, 3.0), target=(0.0, 0.3, 6.0))  # looks out of the scene
    inside = Keyframe(eye=(-0.35, -0.15, 0.1), target=(1.0, -0.15, 0.1))  # the sphere's centre
    good = Keyframe(eye=(0.0, 1.5, 3.0), target=(0.0, -0.2, 0.0))
    views = tuple(SamplerConfig(path=PathConfig(count=1, keyframes=(k,))) for k in (away, inside, good))
    coverage = CoverageConfig(min_fraction=0.05)
    out = run_render(job(tmp_path / "cov", views=views, coverage=coverage), show_progress=False)
    manifest = json.loads((out / "manifest.json").read_text())
    statuses = [(v["status"], v.get("reason", "")) for v in manifest["views"]]
    assert statuses[0][0] == "rejected" and "covers 0.0%" in statuses[0][1]
    assert statuses[1] == ("rejected", "camera inside geometry")
    assert statuses[2][0] == "complete"
    assert len(read_transforms(out).frames) == 1 and not (out / "images/00000.png").exists()


def test_random_focal_length_stays_in_range_and_perturbed_views_keep_source_intrinsics(tmp_path, dataset):
    camera = CameraConfig(width=24, height=24, fov_range_deg=(30.0, 60.0), keep_source=False)
    views = (ORBIT, SamplerConfig(perturb=PerturbConfig(poses=dataset, rotation_deg=2.0, translation=0.02)))
    out = run_render(job(tmp_path / "fov", camera=camera, views=views, outputs=("rgb",)), show_progress=False)
    frames = read_transforms(out).frames
    fovs = [np.degrees(2 * np.arctan(12.0 / f.camera.intrinsics.fl_x)) for f in frames]
    assert len(frames) == 6 and all(30.0 <= f <= 60.0 for f in fovs) and len(set(np.round(fovs, 6))) == 6
    keep = replace(camera, keep_source=True)
    kept = run_render(job(tmp_path / "keep", camera=keep, views=views[1:], outputs=("rgb",)), show_progress=False)
    source = [f.camera.intrinsics for f in read_transforms(dataset).frames]
    assert [f.camera.intrinsics for f in read_transforms(kept).frames] == source


def test_zero_views_and_unreadable_poses_are_refused(tmp_path):
    with pytest.raises(NerfDataError, match=r"missing\.json: not found"):
        missing = SamplerConfig(file=FileConfig(tmp_path / "missing.json"))
        run_render(job(tmp_path / "o", views=(missing,)), show_progress=False)
    assert not (tmp_path / "o" / "manifest.json").exists()


def test_a_rendered_dataset_trains_a_field(tmp_path):
    from nerfdata.encoders.hashgrid import HashGridConfig
    from nerfdata.fields.ngp import NGPArchitecture
    from nerfdata.jobs.train import TrainJobConfig, run_train
    from nerfdata.poses import ShellConfig

    shell = SamplerConfig(shell=ShellConfig(count=16, radius=(3.0, 3.4), hemisphere=True, target=(0.0, -0.2, 0.0)))
    data_job = job(tmp_path / "data", views=(shell,), camera=CameraConfig(32, 32), outputs=("rgb", "depth"))
    data = run_render(data_job, show_progress=False)
    grid = HashGridConfig(num_levels=6, log2_hashmap_size=12, base_resolution=8, per_level_scale=1.6)
    train = TrainJobConfig(
        data=data, out=tmp_path / "ckpt", iters=1, rays_per_batch=256, num_steps=96,
        field=NGPArchitecture(hash_grid=grid, density_hidden_dim=16, color_hidden_dim=16), occupancy_resolution=16,
        warmup_iters=10,
    )
    first = run_train(train, show_progress=False)
    trained = run_train(replace(train, iters=80, overwrite=True), show_progress=False)
    assert trained.train_psnr > first.train_psnr + 3.0
    assert load_field(trained.checkpoint).field.field_type == "ngp"
