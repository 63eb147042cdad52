"""The CLI: commands end to end at a small size, and bad input as one line with exit status 2."""

import json

import pytest

from nerfdata.cli import main

SMALL_JOB = """
field: scenes/analytic_demo
views:
  - orbit: {count: 2, radius: 3.2, elevation_deg: 30.0, target: [0.0, -0.2, 0.0]}
camera: {width: 24, height: 20, fov_deg: 45.0}
render: {num_steps: 256}
"""


def run(capsys, *args):
    status = main(list(args))
    return status, capsys.readouterr()


@pytest.fixture
def job(tmp_path):
    path = tmp_path / "job.yaml"
    path.write_text(SMALL_JOB)
    return path


def test_render_writes_a_complete_dataset(tmp_path, capsys, job):
    out = tmp_path / "demo"
    status, captured = run(capsys, "render", "--config", str(job), "--out", str(out))
    assert status == 0 and str(out) in captured.out
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["complete"] and len(manifest["views"]) == 2
    assert (out / "preview.png").exists() and (out / "transforms.json").exists()


def test_flags_override_the_yaml(tmp_path, capsys, job):
    out = tmp_path / "o"
    status, _ = run(capsys, "render", "--config", str(job), "--out", str(out), "--seed", "7", "--camera.width", "16")
    manifest = json.loads((out / "manifest.json").read_text())
    assert status == 0 and manifest["seed"] == 7 and manifest["config"]["camera"]["width"] == 16


def test_a_different_job_is_refused_unless_overwrite(tmp_path, capsys, job):
    out = tmp_path / "demo"
    assert run(capsys, "render", "--config", str(job), "--out", str(out))[0] == 0
    status, captured = run(capsys, "render", "--config", str(job), "--out", str(out), "--seed", "3")
    assert status == 2 and "holds a different nerfdata job" in captured.err
    assert len(captured.err.strip().splitlines()) == 1
    status, _ = run(capsys, "render", "--config", str(job), "--out", str(out), "--seed", "3", "--overwrite")
    assert status == 0 and json.loads((out / "manifest.json").read_text())["seed"] == 3


@pytest.mark.parametrize(
    "yaml_text, message",
    [
        ("field: scenes/analytic_demo\nouptuts: [rgb]\n", "unknown key 'ouptuts'; did you mean 'outputs'?"),
        ("field: scenes/analytic_demo\nviews: [{orbitt: {count: 2}}]\n", "views[0]: unknown key 'orbitt'; did you mean 'orbit'?"),
        ("field: scenes/analytic_demo\noutputs: [rgb, dpeth]\n", "'dpeth' is not one of"),
        ("field: scenes/analytic_demo\nviews: [{orbit: {count: 0}}]\n", "orbit count must be >= 1"),
        ("field: scenes/analytic_demo\nviews: [{shell: {radius: [-1.0, 2.0]}}]\n", "shell radius must be positive"),
        ("field: scenes/analytic_demo\nviews: []\n", "views: no pose sampler"),
        ("field: scenes/analytic_demo\ncamera: {width: 0}\n", "image width and height must be positive"),
        ("field: scenes/nowhere\n", "scenes/nowhere: no such file or folder"),
        ("field: scenes/analytic_demo\nlabels: {depth: mean}\n", "'mean' is not one of 'median', 'expected'"),
    ],
)
def test_bad_input_is_one_line_and_status_2(tmp_path, capsys, yaml_text, message):
    config = tmp_path / "job.yaml"
    config.write_text(yaml_text)
    out = tmp_path / "out"
    status, captured = run(capsys, "render", "--config", str(config), "--out", str(out))
    assert status == 2
    lines = captured.err.strip().splitlines()
    assert len(lines) == 1 and message in lines[0], lines
    assert not (out / "manifest.json").exists()


def test_non_rigid_poses_file_is_refused(tmp_path, capsys, job):
    poses = tmp_path / "transforms.json"
    matrix = [[2.0, 0.0, 0.0, 0.0], [0.0, 1.0, 0.0, 0.0], [0.0, 0.0, 1.0, 3.0], [0.0, 0.0, 0.0, 1.0]]
    import imageio.v3 as iio
    import numpy as np

    iio.imwrite(tmp_path / "a.png", np.zeros((8, 8, 3), np.uint8))
    poses.write_text(json.dumps({"fl_x": 8.0, "fl_y": 8.0, "frames": [{"file_path": "a.png", "transform_matrix": matrix}]}))
    status, captured = run(capsys, "render", "--config", str(job), "--poses", str(poses), "--out", str(tmp_path / "o"))
    assert status == 2 and "frame 0: camera pose: rotation is not orthonormal" in captured.err
    assert not (tmp_path / "o" / "manifest.json").exists()


def test_corrupt_field_is_refused(tmp_path, capsys, job):
    import shutil

    field = tmp_path / "field"
    shutil.copytree("scenes/analytic_demo", field)
    (field / "field.safetensors").write_bytes(b"garbage")
    status, captured = run(capsys, "render", "--config", str(job), "--field", str(field), "--out", str(tmp_path / "o"))
    assert status == 2 and "truncated or corrupt" in captured.err


def test_train_usage_and_unknown_command(capsys):
    status, captured = run(capsys, "train")
    assert status == 2 and "usage: nerfdata train DATA_DIR --out CKPT_DIR" in captured.err
    assert run(capsys, "paint")[0] == 2
    status, captured = run(capsys, "--help")
    assert status == 0 and "render" in captured.out and "train" in captured.out


def test_inerf_targets_then_solve(tmp_path, capsys):
    out = tmp_path / "targets"
    views = tmp_path / "views.yaml"  # target views from render samplers, in a --config YAML
    views.write_text("views:\n  - orbit: {count: 2, radius: 3.2, elevation_deg: 30.0, target: [0.0, -0.2, 0.0]}\n")
    common = ("--field", "scenes/analytic_demo")
    status, captured = run(
        capsys, "inerf", "targets", "--config", str(views), *common, "--out", str(out), "--num", "2",
        "--width", "16", "--height", "12", "--num-steps", "128", "--no-mesh", "--preset", "pinerf",
    )
    assert status == 0 and "targets.json" in captured.out, captured.err
    document = json.loads((out / "inerf/targets.json").read_text())
    assert [t["view"] for t in document["targets"]] == ["orbit[0]", "orbit[1]"]
    assert document["perturbation"]["preset"] == "pinerf"
    status, captured = run(capsys, "inerf", "solve", *common, "--targets", str(out), "--iters", "2", "--rays", "16", "--num-steps", "64")
    assert status == 0 and captured.out.startswith("success rate "), captured.err
    assert json.loads((out / "inerf/results.json").read_text())["config"]["solver"]["iters"] == 2


def test_inerf_bad_input_is_one_line(tmp_path, capsys):
    status, captured = run(capsys, "inerf", "fly")
    assert status == 2 and captured.err.count("\n") == 1 and "usage: nerfdata inerf targets" in captured.err
    status, captured = run(capsys, "inerf", "solve", "--field", "scenes/analytic_demo", "--targets", str(tmp_path / "nowhere"))
    assert status == 2 and "no inerf targets" in captured.err and captured.err.count("\n") == 1


def test_bench_takes_its_scenes_folder_and_checks_it_first(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)  # away from the checkout: the default scenes are found from the package
    missing, out = tmp_path / "missing", tmp_path / "r.json"
    status, captured = run(capsys, "bench", "--scenes", str(missing), "--out", str(out))
    assert status == 2 and captured.err.strip().count("\n") == 0
    assert "missing: no scenes folder here" in captured.err and not out.exists()
