"""Damaged input: non-finite values, sizes beyond reason, wrong types, paths that escape their folder, strict JSON.

Every case ends in one :class:`NerfDataError` line (exit status 2 at the CLI) before anything is
written, never a traceback and never a dataset that looks right.
"""

import errno
import json
import math
import shutil
from dataclasses import replace
from pathlib import Path

import imageio.v3 as iio
import numpy as np
import pytest
import torch

import nerfdata.jobs.render as render_module
import nerfdata.strict_json as strict_json
from nerfdata.atomic import sha256_file, write_bytes_atomic, write_json_atomic
from nerfdata.cli import main
from nerfdata.config import from_dict, load_yaml
from nerfdata.errors import CheckpointError, ConfigError, NerfDataError, OutputError
from nerfdata.fields.base import LoadedField
from nerfdata.fields.checkpoint import load_checkpoint, save_field
from nerfdata.fields.ngp import NGPField
from nerfdata.fields.occupancy import occupancy_grid_from_density
from nerfdata.jobs.inerf import read_targets
from nerfdata.jobs.render import CameraConfig, CoverageConfig, RenderJobConfig, run_render
from nerfdata.jobs.train import TrainJobConfig, run_train
from nerfdata.poses import OrbitConfig, SamplerConfig
from nerfdata.render.renderer import RenderOptions
from nerfdata.scenes import write_scene_dataset
from nerfdata.scenes.recipe import ObjectConfig, RigConfig, SceneRecipe
from nerfdata.writers.transforms import read_transforms
from tests.test_ngp import make_field
from tests.test_train import TINY_FIELD

SMALL_JOB = """
field: scenes/analytic_demo
views:
  - orbit: {count: 2, radius: 3.2, elevation_deg: 30.0, target: [0.0, -0.2, 0.0]}
camera: {width: 24, height: 20, fov_deg: 45.0}
render: {num_steps: 256}
"""


def run(capsys, *args):
    status = main([str(a) for a in args])
    captured = capsys.readouterr()
    return status, captured.err.strip().splitlines()


def one_line(lines: list[str], *fragments: str) -> bool:
    return len(lines) == 1 and all(fragment in lines[0] for fragment in fragments)


@pytest.fixture
def job(tmp_path) -> Path:
    path = tmp_path / "job.yaml"
    path.write_text(SMALL_JOB)
    return path


@pytest.fixture
def ngp_checkpoint(tmp_path) -> Path:
    field = make_field()
    occupancy = occupancy_grid_from_density(field.density, field.aabb, resolution=8, opacity_threshold=0.0)
    return save_field(field, tmp_path / "ckpt", occupancy, metadata={"meters_per_unit": 1.0})


def edit_description(json_path: Path, edit) -> None:
    description = json.loads(json_path.read_text())
    edit(description)
    json_path.write_text(json.dumps(description))  # Python's json: NaN and Infinity as it writes them


def replace_tensors(json_path: Path, tensors: dict[str, torch.Tensor]) -> None:
    """New tensors with a matching checksum: the file is consistent, its content is what is wrong."""
    from safetensors.torch import save_file

    tensors_path = json_path.with_suffix(".safetensors")
    save_file({k: v.contiguous() for k, v in tensors.items()}, str(tensors_path))
    edit_description(json_path, lambda d: d.update(sha256=sha256_file(tensors_path)))


# ------------------------------------------------------------------------------ 4. non-finite values


def test_nan_weights_with_a_matching_checksum_are_refused(ngp_checkpoint, tmp_path, capsys, job):
    state = make_field().state_dict()
    state["density_mlp.0.weight"][3, 5] = float("nan")
    replace_tensors(ngp_checkpoint, state)
    with pytest.raises(CheckpointError, match=r"field\.safetensors: tensor 'density_mlp.0.weight' holds 1 NaN"):
        load_checkpoint(ngp_checkpoint)
    status, lines = run(capsys, "render", "--config", job, "--field", ngp_checkpoint.parent, "--out", tmp_path / "o")
    assert status == 2 and one_line(lines, "holds 1 NaN or infinite values") and not (tmp_path / "o").exists()


@pytest.mark.parametrize(
    "edit, message",
    [
        (lambda d: d["config"].update(density_bias=float("nan")), "NaN is not a number nerfdata reads"),
        (lambda d: d["config"].update(density_bias=float("inf")), "config.density_bias: inf is not a finite number"),
        (lambda d: d["occupancy"].update(aabb=[[-1, -1, -1], [-1, 1, 1]]), "occupancy aabb must be [[min x, y, z]"),
        (lambda d: d["occupancy"].update(aabb=[[-1, -1, -1], [1e400, 1, 1]]), "occupancy aabb must be [[min x, y, z]"),
        (lambda d: d["occupancy"].update(resolution="8"), "occupancy grid does not match its resolution '8'"),
        (lambda d: d["config"].update(aabb=[[0, 0, 0], [1e400, 1, 1]]), "config.aabb[1][0]: inf is not a finite"),
        (lambda d: d["config"].update(aabb="abc"), "aabb: expected a list, got 'abc'"),
        (lambda d: d["config"].update(density_hidden_dim="64"), "density_hidden_dim: expected an integer, got '64'"),
        (lambda d: d["config"]["hash_grid"].update(num_levels=1.5), "hash_grid.num_levels: expected an integer"),
        (lambda d: d["config"].update(sh_degree=True), "sh_degree: expected an integer, got True"),
        (lambda d: d.update(metadata="abc"), "metadata must be an object or null, got 'abc'"),
        (lambda d: d.update(field_type=["ngp"]), "unknown field type ['ngp']"),
        (lambda d: d.update(config=[]), "config must be an object"),
    ],
)
def test_bad_numbers_and_types_in_field_json_are_one_line(ngp_checkpoint, edit, message):
    edit_description(ngp_checkpoint, edit)
    with pytest.raises(CheckpointError) as error:
        load_checkpoint(ngp_checkpoint)
    assert message in str(error.value) and "field.json" in str(error.value) and "\n" not in str(error.value)


def test_the_field_checksum_covers_field_json(ngp_checkpoint):
    before = load_checkpoint(ngp_checkpoint).sha256
    description = json.loads(ngp_checkpoint.read_text())
    ngp_checkpoint.write_text(json.dumps(description, indent=7))  # the same content, laid out differently
    assert load_checkpoint(ngp_checkpoint).sha256 == before
    edit_description(ngp_checkpoint, lambda d: d["config"].update(density_bias=-2.0))  # weights untouched
    assert load_checkpoint(ngp_checkpoint).sha256 != before
    edit_description(ngp_checkpoint, lambda d: d["config"].update(density_bias=-1.0))
    assert load_checkpoint(ngp_checkpoint).sha256 == before
    edit_description(ngp_checkpoint, lambda d: d["metadata"].update(meters_per_unit=0.001))
    assert load_checkpoint(ngp_checkpoint).sha256 != before


def test_a_view_whose_outputs_are_not_finite_fails_with_its_index(tmp_path, monkeypatch):
    field = make_field(scale=1.5)
    with torch.no_grad():
        field.color_mlp[0].weight[0, 0] = float("nan")  # loading refuses this; the render must refuse it too
    (tmp_path / "field.json").write_text("{}")  # the job hash reads the description's bytes
    loaded = LoadedField(field.eval().requires_grad_(False), None, tmp_path / "field.json", "0" * 64)
    monkeypatch.setattr(render_module, "load_field", lambda path, device="cpu": loaded)  # the job passes its device
    config = RenderJobConfig(
        field=tmp_path, out=tmp_path / "out", views=(SamplerConfig(orbit=OrbitConfig(count=2, radius=4.0)),),
        camera=CameraConfig(width=16, height=12), outputs=("rgb", "depth"), render=RenderOptions(num_steps=64),
    )
    with pytest.raises(NerfDataError, match=r"layer rgb \(.*images/00000\.png\): \d+ NaN or infinite values"):
        run_render(config, show_progress=False)
    manifest = json.loads((tmp_path / "out" / "manifest.json").read_text())
    assert manifest["complete"] is False and manifest["views"] == []
    assert not (tmp_path / "out" / "images").exists()


@pytest.fixture(scope="module")
def tiny_dataset(tmp_path_factory) -> Path:
    scene = SceneRecipe(
        name="tiny", objects=(ObjectConfig("sphere", radius=0.45),),
        rig=RigConfig(train_views=4, test_views=1, width=16, height=16, radius=2.5, fov_deg=45.0),
    )
    return write_scene_dataset(scene, tmp_path_factory.mktemp("data") / "tiny")


def test_training_stops_on_a_non_finite_loss_without_saving(tiny_dataset, tmp_path, capsys):
    config = TrainJobConfig(
        data=tiny_dataset, out=tmp_path / "ckpt", iters=40, rays_per_batch=128, num_steps=64, field=TINY_FIELD,
        occupancy_resolution=8, checkpoint_every=1000, eval_views=0, warmup_iters=1, learning_rate=1e30,
    )
    with pytest.raises(NerfDataError, match=r"train: the loss is (nan|inf) at step \d+; the run diverged"):
        run_train(config, show_progress=False)
    assert not (tmp_path / "ckpt" / "field.json").exists()
    args = ["train", tiny_dataset, "--out", tmp_path / "cli", "--iters", 40, "--rays-per-batch", 128,
            "--num-steps", 64, "--field.hash-grid.log2-hashmap-size", 12, "--eval-views", 0,
            "--warmup-iters", 1, "--learning-rate", 1e30]
    status, lines = run(capsys, *args)
    assert status == 2 and one_line(lines, "the run diverged", "without saving a checkpoint")
    assert not (tmp_path / "cli" / "field.json").exists()


def test_weights_that_are_not_finite_are_never_saved(tmp_path):
    field = make_field()
    with torch.no_grad():
        field.encoder.params[7] = 1e5  # finite in float32, infinite in the float16 it would be stored as
    save_field(field, tmp_path / "f32")
    with pytest.raises(CheckpointError, match=r"not saved: tensor 'encoder\.params' holds 1 NaN or infinite"):
        save_field(field, tmp_path / "f16", storage_dtype=torch.float16)
    assert not (tmp_path / "f16" / "field.json").exists() and not list((tmp_path / "f16").iterdir())


# ------------------------------------------------------------------------------ 7. sizes


def test_a_huge_camera_is_refused_before_anything_is_made(tmp_path, capsys, job):
    out = tmp_path / "o"
    status, lines = run(capsys, "render", "--config", job, "--out", out, "--camera.width", 100000,
                        "--camera.height", 100000)
    assert status == 2 and one_line(lines, "a 100000x100000 view: about 4768.4 GB, more than max_memory_gb = 8")
    assert not out.exists()
    status, _ = run(capsys, "render", "--config", job, "--out", out, "--max-memory-gb", 0.0001)
    assert status == 2 and not out.exists()  # 24x20: 240 KB, above 0.1 MB
    assert run(capsys, "render", "--config", job, "--out", out, "--max-memory-gb", 0.001)[0] == 0


def test_huge_inerf_targets_are_refused_before_the_field_is_read(tmp_path, capsys):
    out = tmp_path / "t"
    missing = tmp_path / "no-field"  # the size is refused first, so the missing field is never reached
    status, lines = run(capsys, "inerf", "targets", "--field", missing, "--out", out, "--width", 100000, "--height",
                        100000)
    assert status == 2 and one_line(lines, "a 100000x100000 view: about 4768.4 GB, more than max_memory_gb = 8")
    assert not out.exists()


def test_field_json_asking_for_a_huge_table_is_refused_without_allocating(ngp_checkpoint, monkeypatch):
    """The header is compared with the description before the field is built: nothing of 2^30 entries exists."""
    edit_description(ngp_checkpoint, lambda d: d["config"]["hash_grid"].update(
        log2_hashmap_size=30, num_levels=32, features_per_level=8, per_level_scale=2.0))
    built_for_real = []
    real_init = NGPField.__init__

    def spy(self, config, *args, **kwargs):
        if torch.get_default_device().type != "meta":
            built_for_real.append(config.hash_grid.num_params)
            if config.hash_grid.num_params > 2**26:
                raise AssertionError(f"allocating {config.hash_grid.num_params * 4 / 2**30:.0f} GB")
        real_init(self, config, *args, **kwargs)

    monkeypatch.setattr(NGPField, "__init__", spy)
    with pytest.raises(CheckpointError, match=r"tensor 'encoder.params' has shape \(\d+,\), the field described"):
        load_checkpoint(ngp_checkpoint)
    assert built_for_real == []


def test_a_yaml_config_over_the_size_cap_is_refused_unparsed(tmp_path, capsys):
    path = tmp_path / "big.yaml"
    path.write_text("field: scenes/analytic_demo\nviews:\n" + "  - orbit: {count: 1, radius: 3.0}\n" * 10000)
    with pytest.raises(ConfigError, match=r"big\.yaml: \d+ KiB, larger than the 256 KiB a config file may be"):
        load_yaml(path)
    status, lines = run(capsys, "render", "--config", path, "--out", tmp_path / "o")
    assert status == 2 and one_line(lines, "larger than the 256 KiB") and not (tmp_path / "o").exists()


def test_a_json_file_over_the_size_cap_is_refused_unread(tiny_dataset, tmp_path, monkeypatch):
    monkeypatch.setattr(strict_json, "MAX_JSON_BYTES", 1024)
    with pytest.raises(NerfDataError, match=r"transforms\.json: \d+ MiB, larger than the 0 MiB a JSON file may be"):
        read_transforms(tiny_dataset)


# ------------------------------------------------------------------------------ 8. one line, exit 2


def test_write_failures_are_one_line_and_leave_nothing(tmp_path, monkeypatch):
    target = tmp_path / "a" / "b.json"
    write_json_atomic(target, {"old": 1})
    for code in (errno.ENOSPC, errno.EROFS, errno.EACCES):
        def failing_replace(src, dst, code=code):
            raise OSError(code, {errno.ENOSPC: "No space left on device", errno.EROFS: "Read-only file system",
                                 errno.EACCES: "Permission denied"}[code])

        monkeypatch.setattr("nerfdata.atomic.os.replace", failing_replace)
        with pytest.raises(OutputError) as error:
            write_json_atomic(target, {"new": 1})
        assert str(error.value).startswith(f"{target}: cannot write: ") and "\n" not in str(error.value)
        assert sorted(p.name for p in target.parent.iterdir()) == ["b.json"]  # no temporary file left
        assert json.loads(target.read_text()) == {"old": 1}
    monkeypatch.undo()
    (tmp_path / "file").write_text("a user's file")
    with pytest.raises(OutputError, match=r"file/x\.png: cannot write: Not a directory"):
        write_bytes_atomic(tmp_path / "file" / "x.png", b"")


def test_out_under_a_file_is_one_line(tmp_path, capsys, job):
    (tmp_path / "thesis.pdf").write_text("a user's file")
    status, lines = run(capsys, "render", "--config", job, "--out", tmp_path / "thesis.pdf" / "renders")
    assert status == 2 and one_line(lines, "thesis.pdf", "which is a file, not a folder")
    assert (tmp_path / "thesis.pdf").read_text() == "a user's file"


def poses_file(folder: Path, **frame_values) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    iio.imwrite(folder / "a.png", np.zeros((8, 8, 3), np.uint8))
    pose = [[1.0, 0.0, 0.0, 0.0], [0.0, 1.0, 0.0, 0.0], [0.0, 0.0, 1.0, 3.0], [0.0, 0.0, 0.0, 1.0]]
    frame = {"file_path": "a.png", "transform_matrix": pose, "fl_x": 8.0, "fl_y": 8.0, "w": 8, "h": 8, **frame_values}
    path = folder / "transforms.json"
    path.write_text(json.dumps({"frames": [frame]}))
    return path


@pytest.mark.parametrize(
    "frame_values, message",
    [
        ({"w": "abc"}, "frame 0: w must be a whole number of pixels, got 'abc'"),
        ({"fl_x": "8"}, "frame 0: fl_x must be a finite number, got '8'"),
        ({"k1": [1]}, "frame 0: k1 must be a finite number"),
        ({"file_path": "notes.png"}, "frame 0: notes.png is not an image nerfdata can read"),
        ({"file_path": "broken.png"}, "frame 0: broken.png is not an image nerfdata can read"),
        ({"file_path": 7}, "frame 0: file_path must be a path (a string), got 7"),
    ],
)
def test_bad_poses_files_are_one_line(tmp_path, capsys, job, frame_values, message):
    (tmp_path / "poses").mkdir()
    (tmp_path / "poses" / "notes.png").write_text("not an image")
    (tmp_path / "poses" / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(20))
    poses = poses_file(tmp_path / "poses", **frame_values)
    status, lines = run(capsys, "render", "--config", job, "--poses", poses, "--out", tmp_path / "o")
    assert status == 2 and one_line(lines, message) and not (tmp_path / "o").exists()


@pytest.mark.parametrize("seed", [2**63, 2**64 + 5, -1])
def test_seeds_outside_what_a_generator_takes_are_one_line(tmp_path, capsys, job, seed):
    status, lines = run(capsys, "render", "--config", job, "--out", tmp_path / "o", "--seed", seed)
    assert status == 2 and one_line(lines, "seed: expected a seed in [0, 2^63)") and not (tmp_path / "o").exists()


def test_the_largest_seed_renders(tmp_path, capsys, job):
    assert run(capsys, "render", "--config", job, "--out", tmp_path / "o", "--seed", 2**63 - 1)[0] == 0


def test_deeply_nested_json_is_one_line(ngp_checkpoint, tiny_dataset, tmp_path):
    ngp_checkpoint.write_text('{"format": ' + "[" * 200_000 + "]" * 200_000 + "}")
    with pytest.raises(CheckpointError, match=r"field\.json: checkpoint description nested too deeply to read"):
        load_checkpoint(ngp_checkpoint)
    copy = tmp_path / "data"
    shutil.copytree(tiny_dataset, copy)
    (copy / "transforms.json").write_text("[" * 200_000 + "]" * 200_000)
    with pytest.raises(NerfDataError, match=r"transforms\.json: JSON nested too deeply to read"):
        read_transforms(copy)


def test_duplicate_yaml_keys_are_one_line(tmp_path, capsys):
    path = tmp_path / "job.yaml"
    path.write_text(SMALL_JOB + "camera: {width: 64, height: 64}\n")
    status, lines = run(capsys, "render", "--config", path, "--out", tmp_path / "o")
    assert status == 2 and one_line(lines, "job.yaml: key 'camera' is given twice (lines 5 and 7)")
    nested = tmp_path / "nested.yaml"
    nested.write_text("field: x\nrender:\n  num_steps: 8\n  num_steps: 9\n")
    with pytest.raises(ConfigError, match=r"nested\.yaml: key 'num_steps' is given twice \(lines 3 and 4\)"):
        load_yaml(nested)


# ------------------------------------------------------------------------------ 9. paths


def test_tensors_file_must_be_a_plain_name_in_its_folder(ngp_checkpoint, tmp_path):
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    shutil.copy(ngp_checkpoint.with_suffix(".safetensors"), elsewhere / "weights.safetensors")  # a valid file
    ngp_checkpoint.with_suffix(".safetensors").unlink()
    for name in ("../elsewhere/weights.safetensors", str(elsewhere / "weights.safetensors"), "sub/w.safetensors", ".."):
        edit_description(ngp_checkpoint, lambda d, name=name: d.update(tensors_file=name))
        with pytest.raises(CheckpointError, match="must be a file name in the checkpoint's folder"):
            load_checkpoint(ngp_checkpoint)
    edit_description(ngp_checkpoint, lambda d: d.update(tensors_file=5))
    with pytest.raises(CheckpointError, match="tensors_file must be a string"):
        load_checkpoint(ngp_checkpoint)


def test_image_paths_of_a_dataset_stay_inside_it(tiny_dataset, tmp_path):
    copy = tmp_path / "data"
    shutil.copytree(tiny_dataset, copy)
    shutil.copy(copy / "images" / "00000.png", tmp_path / "outside.png")  # a real image, outside the dataset
    content = json.loads((copy / "transforms.json").read_text())
    for escape in ("../outside.png", str(tmp_path / "outside.png"), "images/../../outside.png"):
        content["frames"][0]["file_path"] = escape
        (copy / "transforms.json").write_text(json.dumps(content))
        with pytest.raises(NerfDataError, match=r"frame 0: file_path .* must be a path inside the dataset folder"):
            read_transforms(copy)
    content["frames"][0]["file_path"] = "./images/../images/00000.png"  # inside, however written
    (copy / "transforms.json").write_text(json.dumps(content))
    assert read_transforms(copy).frames[0].image_path == (copy / "images" / "00000.png").resolve()
    poses = tmp_path / "user" / "poses.json"  # a path the user gives on the command line is theirs
    poses.parent.mkdir()
    content["frames"][0]["file_path"] = "../data/images/00000.png"
    poses.write_text(json.dumps(content))
    with pytest.raises(NerfDataError, match="must be a path inside the dataset folder"):
        read_transforms(poses)


def targets_document(root: Path, images: list[str], ids: list[int]) -> Path:
    (root / "inerf").mkdir(parents=True, exist_ok=True)
    pose = [[1.0, 0.0, 0.0, 0.0], [0.0, 1.0, 0.0, 0.0], [0.0, 0.0, 1.0, 3.0], [0.0, 0.0, 0.0, 1.0]]
    entries = [{"id": i, "image": image, "K": [[8.0, 0, 4.0], [0, 8.0, 4.0], [0, 0, 1]], "width": 8, "height": 8,
                "gt_c2w": pose, "init_c2w": pose, "seed": 0} for i, image in zip(ids, images, strict=True)]
    path = root / "inerf" / "targets.json"
    path.write_text(json.dumps({"format": "nerfdata-inerf-targets", "targets": entries}))
    return path


def test_targets_json_images_stay_inside_and_targets_are_a_non_empty_unique_list(tmp_path):
    root = tmp_path / "targets"
    iio.imwrite(tmp_path / "outside.png", np.zeros((8, 8, 3), np.uint8))
    (root / "rgb").mkdir(parents=True)
    iio.imwrite(root / "rgb" / "0.png", np.zeros((8, 8, 3), np.uint8))
    targets_document(root, ["rgb/0.png"], [0])
    assert [t.id for t in read_targets(root)[1]] == [0]
    targets_document(root, ["../outside.png"], [0])
    with pytest.raises(NerfDataError, match=r"target 0: image '\.\./outside\.png' must be a path inside"):
        read_targets(root)
    targets_document(root, ["rgb/0.png", "rgb/0.png"], [3, 3])
    with pytest.raises(NerfDataError, match="target id 3 is given twice"):
        read_targets(root)
    targets_document(root, [], [])
    with pytest.raises(NerfDataError, match="no list of targets"):
        read_targets(root)


# ------------------------------------------------------------------------------ 10. strict JSON, config checks


def strict_load(path: Path):
    def refuse(name):
        raise ValueError(f"{path}: {name} is not JSON")

    return json.loads(path.read_text(), parse_constant=refuse)


def test_every_json_file_is_strict_with_infinity_as_inf(tmp_path, capsys, job):
    out = tmp_path / "o"
    assert run(capsys, "render", "--config", job, "--out", out)[0] == 0
    manifest = strict_load(out / "manifest.json")
    assert manifest["config"]["render"]["far"] == "inf" and "json_numbers" in manifest["conventions"]
    status, _ = run(capsys, "correspond", "--field", "scenes/analytic_demo", "--dataset", out, "--pairs", 1,
                    "--per-pair", 64)
    assert status == 0
    pairs = strict_load(out / "correspondences" / "pairs.json")
    assert pairs["render"]["far"] == "inf" and pairs["config"]
    for path in out.rglob("*.json"):
        strict_load(path)
    # Readers take "inf" for a number (correspond just read the manifest's render options).
    assert from_dict(RenderOptions, {"far": "inf"}) == RenderOptions(far=math.inf)
    assert from_dict(OrbitConfig, {"start_azimuth_deg": "-inf"}).start_azimuth_deg == -math.inf
    with pytest.raises(ConfigError, match="expected a number, got nan"):
        from_dict(RenderOptions, {"far": float("nan")})


def test_a_nan_is_never_written(tmp_path):
    with pytest.raises(ValueError, match=r"\$\.a\[1\]: NaN cannot be written as JSON"):
        write_json_atomic(tmp_path / "x.json", {"a": [1.0, float("nan")]})
    assert not list(tmp_path.iterdir())


def test_coverage_probe_size_zero_is_refused_before_any_folder(tmp_path, capsys, job):
    with pytest.raises(ConfigError, match="probe_size must be >= 1"):
        CoverageConfig(probe_size=0)
    status, lines = run(capsys, "render", "--config", job, "--out", tmp_path / "o", "--coverage.probe-size", 0)
    assert status == 2 and one_line(lines, "coverage: probe_size must be >= 1") and not (tmp_path / "o").exists()
    with pytest.raises(ConfigError, match="min_fraction must be in"):
        replace(CoverageConfig(), min_fraction=1.5)
