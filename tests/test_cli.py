"""The CLI: the demo job end to end at a small size, and bad input as one line with exit status 2."""

import json

import numpy as np
import pytest

from nerfdata.cli import main
from nerfdata.writers.images import read_depth_png

SMALL = ["--orbit.count", "2", "--camera.width", "24", "--camera.height", "20", "--render.num-steps", "256"]


def run(capsys, *args):
    status = main(list(args))
    return status, capsys.readouterr()


def test_demo_render_writes_a_complete_dataset(tmp_path, capsys):
    out = tmp_path / "demo"
    status, _ = run(capsys, "render", "--config", "configs/demo.yaml", "--out", str(out), *SMALL)
    assert status == 0
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["complete"] and len(manifest["views"]) == 2 and manifest["config"]["orbit"]["count"] == 2
    assert set(manifest["layers"]) == {"rgb", "depth", "depth_png", "normals", "normals_png", "mask"}
    transforms = json.loads((out / "transforms.json").read_text())
    assert [f["file_path"] for f in transforms["frames"]] == ["images/00000.png", "images/00001.png"]
    depth = np.load(out / "depth/00000.npy")
    assert depth.dtype == np.float32 and depth.shape == (20, 24) and depth.max() > 0
    np.testing.assert_allclose(read_depth_png(out / "depth/00000.png"), depth, atol=5e-4)
    normals = np.load(out / "normals/00000.npy")
    norms = np.linalg.norm(normals, axis=-1)
    np.testing.assert_allclose(norms[depth > 0], 1.0, atol=1e-4)
    assert (norms[depth == 0] == 0).all()


def test_rerunning_the_same_job_is_allowed_and_a_different_one_refused(tmp_path, capsys):
    out = tmp_path / "demo"
    assert run(capsys, "render", "--config", "configs/demo.yaml", "--out", str(out), *SMALL)[0] == 0
    assert run(capsys, "render", "--config", "configs/demo.yaml", "--out", str(out), *SMALL)[0] == 0
    status, captured = run(capsys, "render", "--config", "configs/demo.yaml", "--out", str(out), *SMALL, "--seed", "3")
    assert status == 2 and "holds a different nerfdata job" in captured.err
    assert len(captured.err.strip().splitlines()) == 1
    status, _ = run(capsys, "render", "--config", "configs/demo.yaml", "--out", str(out), *SMALL, "--seed", "3", "--overwrite")
    assert status == 0 and json.loads((out / "manifest.json").read_text())["seed"] == 3


@pytest.mark.parametrize(
    "yaml_text, message",
    [
        ("field: scenes/analytic_demo\norbitt: {count: 2}\n", "unknown key 'orbitt'; did you mean 'orbit'?"),
        ("field: scenes/analytic_demo\noutputs: {rgb: maybe}\n", "outputs.rgb: expected true or false"),
        ("field: scenes/analytic_demo\norbit: {count: 0}\n", "orbit count must be >= 1"),
        ("field: scenes/analytic_demo\ncamera: {width: 0}\n", "image width must be a positive integer"),
        ("field: scenes/nowhere\n", "scenes/nowhere: no such file or folder"),
    ],
)
def test_bad_input_is_one_line_and_status_2(tmp_path, capsys, yaml_text, message):
    config = tmp_path / "job.yaml"
    config.write_text(yaml_text)
    out = tmp_path / "out"
    status, captured = run(capsys, "render", "--config", str(config), "--out", str(out))
    assert status == 2
    lines = captured.err.strip().splitlines()
    assert len(lines) == 1 and message in lines[0]
    assert not (out / "manifest.json").exists()


def test_corrupt_field_is_refused(tmp_path, capsys):
    import shutil

    field = tmp_path / "field"
    shutil.copytree("scenes/analytic_demo", field)
    (field / "field.safetensors").write_bytes(b"garbage")
    status, captured = run(capsys, "render", "--config", "configs/demo.yaml", "--field", str(field), "--out", str(tmp_path / "o"))
    assert status == 2 and "truncated or corrupt" in captured.err


def test_unknown_command_and_usage(capsys):
    assert run(capsys, "paint")[0] == 2
    status, captured = run(capsys, "--help")
    assert status == 0 and "render" in captured.out
