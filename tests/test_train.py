"""Training: loss goes down, checkpoints round-trip, resume continues exactly, bad datasets are refused."""

import json
import shutil
from dataclasses import replace
from pathlib import Path

import imageio.v3 as iio
import numpy as np
import pytest
import torch

import nerfdata.jobs.train as train_module
from nerfdata.encoders.hashgrid import HashGridConfig
from nerfdata.errors import NerfDataError
from nerfdata.fields.checkpoint import load_checkpoint, load_training_state
from nerfdata.fields.ngp import NGPArchitecture
from nerfdata.jobs.train import TrainJobConfig, estimate_aabb, run_train
from nerfdata.render.renderer import RenderOptions, render_image, render_rays
from nerfdata.scenes import write_scene_dataset
from nerfdata.scenes.recipe import MaterialConfig, ObjectConfig, RigConfig, SceneRecipe
from nerfdata.writers.transforms import read_transforms

TINY_GRID = HashGridConfig(num_levels=6, log2_hashmap_size=12, base_resolution=8, per_level_scale=1.6)
TINY_FIELD = NGPArchitecture(hash_grid=TINY_GRID, density_hidden_dim=16, color_hidden_dim=16)
OLD_PERIODIC_CHECKPOINT = Path(__file__).parent / "data" / "periodic_checkpoint_flat_config"
"""Written by nerfdata's trainer before TrainJobConfig had ``field``: killed right after its checkpoint at
iteration 20 of 40 (tiny dataset of this file, 2-level 2^8 grid, 16-wide MLPs); ``training.config`` holds
``hash_grid``, ``density_hidden_dim`` and ``color_hidden_dim`` at its top level."""


@pytest.fixture(scope="module")
def tiny_dataset(tmp_path_factory) -> Path:
    scene = SceneRecipe(
        name="tiny",
        objects=(
            ObjectConfig("sphere", radius=0.45, material=MaterialConfig((0.9, 0.3, 0.2), "noise", 2.0)),
            ObjectConfig(
                "box",
                extents=(0.5, 0.3, 0.5),
                position=(0.0, -0.55, 0.0),
                material=MaterialConfig((0.2, 0.4, 0.9), "solid"),
            ),
        ),
        rig=RigConfig(train_views=16, test_views=3, width=32, height=32, radius=2.5, fov_deg=45.0),
    )
    return write_scene_dataset(scene, tmp_path_factory.mktemp("data") / "tiny")


def config(data: Path, out: Path, **kwargs) -> TrainJobConfig:
    base = TrainJobConfig(
        data=data, out=out, iters=60, rays_per_batch=256, num_steps=96, field=TINY_FIELD, occupancy_resolution=16,
        checkpoint_every=1000, eval_views=3, warmup_iters=10,
    )
    return replace(base, **kwargs)


def test_loss_decreases_and_the_checkpoint_renders_identically(tiny_dataset, tmp_path):
    first = run_train(config(tiny_dataset, tmp_path / "one", iters=1), show_progress=False)
    result = run_train(config(tiny_dataset, tmp_path / "ckpt"), show_progress=False)
    assert result.test_psnr is not None and first.test_psnr is not None
    assert result.test_psnr > first.test_psnr + 3.0  # held-out views, not the training rays
    loaded = load_checkpoint(result.checkpoint)
    description = json.loads(result.checkpoint.read_text())
    assert description["storage_dtype"] == "float16" and description["training"] is None
    assert description["metadata"]["training"]["complete"] and loaded.occupancy is not None
    assert load_training_state(result.checkpoint) is None  # a finished run keeps no optimizer state
    # Saved weights are float16: the loaded field renders exactly what float16 weights render.
    camera = read_transforms(tiny_dataset).split("test")[0].camera
    reloaded = load_checkpoint(result.checkpoint)
    options = RenderOptions(num_steps=128)
    a = render_image(loaded.field, camera, options, loaded.occupancy)
    b = render_image(reloaded.field, camera, options, reloaded.occupancy)
    assert torch.equal(a.rgb, b.rgb)


def test_the_final_grid_is_the_training_grid_refined_where_a_step_gains_opacity(tiny_dataset, tmp_path):
    """Same weights (same seed); the stored grid only clears cells, skips samples and keeps the image."""
    refined = run_train(config(tiny_dataset, tmp_path / "fine", iters=150), show_progress=False)
    plain = run_train(config(tiny_dataset, tmp_path / "plain", iters=150, grid_refine=1), show_progress=False)
    fine, coarse = load_checkpoint(refined.checkpoint), load_checkpoint(plain.checkpoint)
    assert fine.occupancy is not None and coarse.occupancy is not None
    assert (fine.occupancy.resolution, coarse.occupancy.resolution) == (64, 16)  # the default, 4 per axis
    inside = coarse.occupancy.to_mask().repeat_interleave(4, 0).repeat_interleave(4, 1).repeat_interleave(4, 2)
    assert not (fine.occupancy.to_mask() & ~inside).any()
    assert fine.occupancy.occupied_fraction < 0.8 * coarse.occupancy.occupied_fraction
    options = RenderOptions(num_steps=96, normals=False)
    for frame in read_transforms(tiny_dataset).split("test"):
        rays = frame.camera.rays()
        a = render_rays(fine.field, rays, options, fine.occupancy)
        b = render_rays(coarse.field, rays, options, coarse.occupancy)
        assert a.num_samples.sum() < 0.7 * b.num_samples.sum()  # measured: 0.55x on this still hazy field
        assert float(-10.0 * torch.log10(((a.rgb - b.rgb) ** 2).mean())) > 35.0  # measured: 38.5-38.9 dB
    assert refined.test_psnr == pytest.approx(plain.test_psnr, abs=0.3)  # measured: 0.18 dB apart
    with pytest.raises(NerfDataError, match="grid_refine must be >= 1"):
        config(tiny_dataset, tmp_path / "x", grid_refine=0)


def test_resume_continues_exactly_where_the_run_stopped(tiny_dataset, tmp_path, monkeypatch):
    uninterrupted = run_train(config(tiny_dataset, tmp_path / "a", iters=40), show_progress=False)
    real_save = train_module.save_field
    calls = []

    def crash_after_first_periodic_save(*args, **kwargs):
        real_save(*args, **kwargs)
        calls.append(kwargs.get("training"))
        if kwargs.get("training") is not None:
            raise KeyboardInterrupt  # killed right after the checkpoint at iteration 20

    monkeypatch.setattr(train_module, "save_field", crash_after_first_periodic_save)
    with pytest.raises(KeyboardInterrupt):
        run_train(config(tiny_dataset, tmp_path / "b", iters=40, checkpoint_every=20), show_progress=False)
    state = load_training_state(tmp_path / "b")
    assert state is not None and state[1]["iteration"] == 20
    interrupted = load_checkpoint(tmp_path / "b")  # loads, with the optimizer state beside the weights
    assert interrupted.json_path == tmp_path / "b" / "field.json" and interrupted.occupancy is not None
    monkeypatch.setattr(train_module, "save_field", real_save)
    resumed = run_train(config(tiny_dataset, tmp_path / "b", iters=40, resume=True), show_progress=False)
    a, b = load_checkpoint(uninterrupted.checkpoint).field, load_checkpoint(resumed.checkpoint).field
    for (name, x), (_, y) in zip(a.state_dict().items(), b.state_dict().items(), strict=True):
        assert torch.equal(x, y), name


def test_a_run_checkpointed_before_the_field_entry_resumes(tiny_dataset, tmp_path):
    """The flat field keys of an older periodic checkpoint's training config are read into ``field``."""
    out = tmp_path / "old"
    shutil.copytree(OLD_PERIODIC_CHECKPOINT, out)
    assert "hash_grid" in json.loads((out / "field.json").read_text())["training"]["config"]
    resumed = run_train(config(tiny_dataset, out, iters=40, resume=True), show_progress=False)
    assert resumed.iterations == 40
    saved = json.loads(resumed.checkpoint.read_text())["metadata"]["training"]["config"]
    assert "hash_grid" not in saved and saved["field"]["density_hidden_dim"] == 16
    # Settings added since resume as the run began: white background, no distortion loss, fixed batch.
    assert saved["background"] == "white" and saved["distortion_weight"] == 0.0
    assert saved["samples_per_batch"] == 0  # no budget: rays_per_batch rays every step
    assert saved["planarity_weight"] == 0.0  # no planarity prior
    assert saved["field"]["hash_grid"]["num_levels"] == 2 and saved["field"]["sh_degree"] == 4  # the old runs' default
    field = load_checkpoint(resumed.checkpoint).field
    assert field.config.hash_grid.log2_hashmap_size == 8 and field.config.color_hidden_dim == 16


def test_every_field_hyper_parameter_can_be_set_for_training(tiny_dataset, tmp_path):
    architecture = replace(TINY_FIELD, sh_degree=2, geo_feature_dim=7, color_hidden_layers=1)
    result = run_train(config(tiny_dataset, tmp_path / "sh2", iters=2, field=architecture), show_progress=False)
    field = load_checkpoint(result.checkpoint).field
    assert field.config.sh_degree == 2 and field.config.geo_feature_dim == 7
    # 1 hidden layer: linear, relu, linear.
    assert field.color_mlp[0].in_features == 2**2 + 7 and len(field.color_mlp) == 3


def test_the_cli_sets_field_hyper_parameters(tiny_dataset, tmp_path, capsys):
    from nerfdata.cli import main

    grid = ["--field.hash-grid.num-levels", "2", "--field.hash-grid.log2-hashmap-size", "8"]
    small = ["--iters", "1", "--rays-per-batch", "64", "--num-steps", "32", "--eval-views", "0", *grid]
    args = ["train", str(tiny_dataset), "--out", str(tmp_path / "cli"), "--field.sh-degree", "2", *small]
    assert main(args) == 0
    assert load_checkpoint(tmp_path / "cli").field.config.sh_degree == 2
    assert main(["train", "--help"]) == 0
    assert "--field.sh-degree" in capsys.readouterr().out


def test_refuses_to_overwrite_or_resume_without_state(tiny_dataset, tmp_path):
    run_train(config(tiny_dataset, tmp_path / "c", iters=2), show_progress=False)
    with pytest.raises(NerfDataError, match="already holds a checkpoint"):
        run_train(config(tiny_dataset, tmp_path / "c", iters=2), show_progress=False)
    with pytest.raises(NerfDataError, match="no training state to resume"):
        run_train(config(tiny_dataset, tmp_path / "c", iters=4, resume=True), show_progress=False)


def test_aabb_from_cameras_contains_what_they_look_at(tiny_dataset):
    dataset = read_transforms(tiny_dataset)
    box = estimate_aabb([f.camera for f in dataset.frames])
    assert (box[0] < -0.45).all() and (box[1] > 0.45).all() and (box[1] - box[0]).max() < 6.0


def copy_dataset(source: Path, target: Path) -> Path:
    shutil.copytree(source, target)
    return target


def edit_transforms(folder: Path, edit) -> None:
    path = folder / "transforms.json"
    content = json.loads(path.read_text())
    edit(content)
    path.write_text(json.dumps(content))


@pytest.mark.parametrize(
    "corrupt, message",
    [
        (lambda d: (d / "transforms.json").unlink(), "no transforms.json in this folder"),
        (lambda d: (d / "images/00003.png").unlink(), "frame 3: image 'images/00003.png' not found"),
        (
            lambda d: edit_transforms(d, lambda c: c["frames"][2].update(k1=0.1)),
            "frame 2: distortion parameter k1=0.1 is not modelled",
        ),
        (
            lambda d: edit_transforms(d, lambda c: c.update(camera_model="OPENCV_FISHEYE")),
            "camera_model 'OPENCV_FISHEYE' is not supported",
        ),
        (lambda d: edit_transforms(d, lambda c: c.update(test_filenames=[])), "the test split is empty"),
        (
            lambda d: edit_transforms(d, lambda c: c["frames"][1]["transform_matrix"][0].__setitem__(0, 2.0)),
            "frame 1: camera pose: rotation is not orthonormal",
        ),
        (lambda d: (d / "transforms.json").write_text("{"), "transforms.json: unreadable JSON"),
    ],
)
def test_bad_datasets_are_refused_in_one_line(tiny_dataset, tmp_path, corrupt, message):
    folder = copy_dataset(tiny_dataset, tmp_path / "bad")
    corrupt(folder)
    with pytest.raises(NerfDataError) as error:
        read_transforms(folder).split("test")
    assert message in str(error.value) and "\n" not in str(error.value)


def test_mixed_image_sizes_need_per_frame_intrinsics(tiny_dataset, tmp_path):
    folder = copy_dataset(tiny_dataset, tmp_path / "mixed")

    def shared_intrinsics(content):
        for frame in content["frames"]:
            for key in ("fl_x", "fl_y", "cx", "cy", "w", "h"):
                frame.pop(key)
        content.update(fl_x=30.0, fl_y=30.0)

    edit_transforms(folder, shared_intrinsics)
    for key in ("w", "h", "cx", "cy"):  # let the image sizes speak
        edit_transforms(folder, lambda c, key=key: c.pop(key, None))
    iio.imwrite(folder / "images/00004.png", np.zeros((40, 32, 3), np.uint8))
    expected = "frame 4: image is 32x40, others are 32x32; images of different sizes need per-frame intrinsics"
    with pytest.raises(NerfDataError, match=expected):
        read_transforms(folder)


def test_blender_format_with_camera_angle_x(tmp_path):
    folder = tmp_path / "blender"
    (folder / "train").mkdir(parents=True)
    iio.imwrite(folder / "train/r_0.png", np.zeros((20, 30, 4), np.uint8))
    pose = np.eye(4)
    pose[2, 3] = 3.0
    frames = [{"file_path": "./train/r_0", "transform_matrix": pose.tolist()}]
    (folder / "transforms_train.json").write_text(json.dumps({"camera_angle_x": 0.8, "frames": frames}))
    dataset = read_transforms(folder)
    frame = dataset.split("train")[0]
    assert frame.image_path.name == "r_0.png" and frame.split == "train"
    assert frame.camera.intrinsics.fl_x == pytest.approx(15.0 / np.tan(0.4)) and frame.camera.intrinsics.cx == 15.0


def test_the_device_is_not_saved_with_the_run(tiny_dataset, tmp_path):
    result = run_train(config(tiny_dataset, tmp_path / "cpu", iters=2, eval_views=0, device="cpu"), show_progress=False)
    saved = json.loads(result.checkpoint.read_text())["metadata"]["training"]["config"]
    assert "device" not in saved and saved["iters"] == 2  # a checkpoint is the same file whatever trained it


@pytest.mark.cuda
def test_training_on_cuda_learns_as_on_the_cpu(tiny_dataset, tmp_path):
    cpu = run_train(config(tiny_dataset, tmp_path / "cpu", device="cpu"), show_progress=False)
    gpu = run_train(config(tiny_dataset, tmp_path / "gpu", device="cuda"), show_progress=False)
    assert gpu.test_psnr is not None and cpu.test_psnr is not None
    assert abs(gpu.test_psnr - cpu.test_psnr) < 1.0  # the same draws; float rounding differs
    assert load_checkpoint(gpu.checkpoint).field.aabb.device.type == "cpu"  # checkpoints load anywhere
