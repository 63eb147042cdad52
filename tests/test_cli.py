"""The CLI: commands end to end at a small size, and bad input as one line with exit status 2."""

import json
import re

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
        (
            "field: scenes/analytic_demo\nviews: [{orbitt: {count: 2}}]\n",
            "views[0]: unknown key 'orbitt'; did you mean 'orbit'?",
        ),
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
    frames = [{"file_path": "a.png", "transform_matrix": matrix}]
    poses.write_text(json.dumps({"fl_x": 8.0, "fl_y": 8.0, "frames": frames}))
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
    status, captured = run(
        capsys, "inerf", "solve", *common, "--targets", str(out), "--iters", "2", "--rays", "16", "--num-steps", "64"
    )
    assert status == 0 and captured.out.startswith("success rate "), captured.err
    assert json.loads((out / "inerf/results.json").read_text())["config"]["solver"]["iters"] == 2


def test_inerf_bad_input_is_one_line(tmp_path, capsys):
    status, captured = run(capsys, "inerf", "fly")
    assert status == 2 and captured.err.count("\n") == 1 and "usage: nerfdata inerf targets" in captured.err
    status, captured = run(
        capsys, "inerf", "solve", "--field", "scenes/analytic_demo", "--targets", str(tmp_path / "nowhere")
    )
    assert status == 2 and "no inerf targets" in captured.err and captured.err.count("\n") == 1


def test_bench_takes_its_scenes_folder_and_checks_it_first(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)  # away from the checkout: the default scenes are found from the package
    missing, out = tmp_path / "missing", tmp_path / "r.json"
    status, captured = run(capsys, "bench", "--scenes", str(missing), "--out", str(out))
    assert status == 2 and captured.err.strip().count("\n") == 0
    assert "missing: no scenes folder here" in captured.err and not out.exists()


def test_documented_sampler_flags_change_the_rendered_views(tmp_path, capsys, job):
    def render(name: str, *flags: str) -> list[dict]:
        status, captured = run(capsys, "render", "--config", str(job), "--out", str(tmp_path / name), *flags)
        assert status == 0, captured.err
        return json.loads((tmp_path / name / "manifest.json").read_text())

    manifest = render("flags", "--views.0.orbit.count", "3", "--views.1.spiral.count", "2", "--outputs", "rgb")
    labels = ["orbit[0]", "orbit[1]", "orbit[2]", "spiral[0]", "spiral[1]"]
    assert [v["label"] for v in manifest["views"]] == labels
    # With one sampler: --num-views and --SAMPLER.KEY.
    manifest = render("shortcuts", "--num-views", "3", "--orbit.elevation-deg", "10", "--outputs", "rgb")
    assert len(manifest["views"]) == 3 and manifest["config"]["views"][0]["orbit"]["elevation_deg"] == 10.0


@pytest.mark.parametrize(
    "argv, flags",
    [
        (
            ["render"],
            [
                "--config PATH",
                "--poses PATH",
                "--field PATH",
                "--camera.width INT",
                "--views.N.orbit.count INT",
            ],
        ),
        (["train"], ["DATA_DIR", "--config PATH", "--iters INT", "--field.sh-degree INT"]),
        (["scene"], ["SCENE", "--out PATH", "--[no-]overwrite"]),
        (
            ["mesh"],
            [
                "--config PATH",
                "--resolution INT",
                "--threshold FLOAT|{auto}|None",
                "--min-component-fraction",
            ],
        ),
        (["correspond"], ["--config PATH", "--dataset PATH", "--per-pair INT"]),
        (["inerf", "targets"], ["--config PATH", "--num INT", "--views.N.shell.count INT"]),
        (["inerf", "solve"], ["--config PATH", "--targets PATH", "--iters INT", "--hypotheses INT"]),
        (["bench"], ["--[no-]quick", "--scenes PATH|None"]),
    ],
)
def test_help_of_every_subcommand_lists_its_flags(capsys, argv, flags):
    status, captured = run(capsys, *argv, "--help")
    assert status == 0 and captured.out.startswith(f"usage: nerfdata {' '.join(argv)}")
    for flag in flags:
        assert flag in captured.out, flag
    assert ("--config" in captured.out) == (argv[0] not in ("scene", "bench"))


def test_help_shows_the_config_values(capsys):
    status, captured = run(capsys, "render", "--config", "configs/demo.yaml", "--help")
    text = " ".join(captured.out.split())
    assert (
        status == 0
        and "Checkpoint folder (field.json + field.safetensors), or its .safetensors / .json file. "
        "[scenes/tabletop]" in text
    )
    assert (
        "--render.num-steps INT Samples along the box diagonal" in text
        and "diagonal / num_steps. [512]" in text
    )
    status, captured = run(capsys, "inerf", "targets", "--config", "configs/inerf/room.yaml", "--help")
    assert status == 0 and "[scenes/room/cameras.json]" in captured.out and "[60.0]" in captured.out


@pytest.mark.parametrize(
    "argv, suggestion",
    [
        (["render", "--field", "scenes/analytic_demo", "--camera.widht", "64"], "--camera.width"),
        (
            ["render", "--field", "scenes/analytic_demo", "--views.0.orbit.cuont", "2"],
            "--views.0.orbit.count",
        ),
        (["train", "data", "--out", "ckpt", "--iter", "3"], "--iters"),
        (["scene", "scenes/mug", "--out", "d", "--overwirte"], "--overwrite"),
        (["mesh", "--field", "scenes/analytic_demo", "--resolutoin", "32"], "--resolution"),
        (["correspond", "--field", "f", "--dataset", "d", "--per-piar", "8"], "--per-pair"),
        (["inerf", "targets", "--field", "f", "--presett", "pinerf"], "--preset"),
        (["inerf", "solve", "--field", "f", "--targets", "t", "--hypothesis", "3"], "--hypotheses"),
        (["bench", "--quik"], "--quick"),
    ],
)
def test_a_flag_typo_is_one_line_with_the_closest_flag(capsys, argv, suggestion):
    status, captured = run(capsys, *argv)
    assert status == 2 and captured.out == ""
    (line,) = captured.err.splitlines()
    assert line.endswith(f"did you mean {suggestion}?") and line.startswith(
        f"nerfdata {argv[0]}: error: unknown flag"
    )


def test_a_run_without_a_terminal_logs_progress_and_a_summary(tmp_path, capsys, job):
    out = tmp_path / "logged"
    status, captured = run(capsys, "render", "--config", str(job), "--out", str(out), "--num-views", "4")
    assert status == 0
    progress = captured.err.splitlines()  # pytest's capture is not a terminal: a line every view (4 // 10 -> 1)
    assert [line.split(",")[0] for line in progress] == [
        f"render: {i}/4 views ({25 * i}%)" for i in range(1, 5)
    ]
    assert all("rays/s" in line for line in progress)
    summary = captured.out.splitlines()[0]
    assert summary.startswith("render: 4 views in ") and "4 rendered, 0 kept from an earlier run" in summary
    # A rate, whatever the machine's load.
    assert "0 rejected" in summary and re.search(r" views/s, [\d.]+k? rays/s$", summary)
    status, captured = run(capsys, "render", "--config", str(job), "--out", str(out), "--num-views", "4")
    assert status == 0 and captured.out.startswith("render: all 4 views kept from an earlier run")


def documented_commands() -> list[list[str]]:
    """Every ``nerfdata ...`` line of the READMEs and the configs, with its placeholders filled."""
    import re
    from pathlib import Path

    text = "\n".join(
        Path(p).read_text()
        for p in ("README.md", "benchmarks/README.md", *map(str, Path("configs").rglob("*.yaml")))
    )
    text = re.sub(r"\n\s+\[", " [", text)  # a synopsis continued on the next line
    found = re.findall(r"`(nerfdata [a-z][^`]*)`", text) + re.findall(
        r"(?:^\s*#?\s*|&& )(nerfdata [a-z][^`\n]*)", text, re.M
    )
    fill = {
        "configs/X.yaml": "configs/demo.yaml",
        "PATH": "scenes/analytic_demo",
        "CKPT": "scenes/analytic_demo",
        "DIR": "out",
        "DATA_DIR": "data",
        "CKPT_DIR": "ckpt",
        "FILE": "r.json",
        "scenes/NAME": "scenes/mug",
        "data/NAME": "data/mug",
        "N": "2",
        "S": "1",
        "R": "5",
        "T": "0.5",
        "K": "3",
        "T|auto": "auto",
    }
    commands = []
    for line in found:
        for part in line.split("&&"):
            words = part.replace("[", " ").replace("]", " ").split()
            if len(words) < 3 or words[1] not in (
                "render",
                "train",
                "scene",
                "mesh",
                "correspond",
                "inerf",
                "bench",
            ):
                continue  # a heading or prose, not a command line
            words = [
                fill.get(w, w.split("|")[0] if "|" in w and not w.startswith("-") else w) for w in words[1:]
            ]
            words = [w for w in words if w != "overrides"]
            words = [{"0": "-1", "1": "1"}[w[1]] if re.fullmatch(r"[xyz][01]", w) else w for w in words]
            commands.append(words)
    return commands


def test_every_documented_command_line_parses():
    from nerfdata.cli import command
    from nerfdata.flags import parse_command

    commands = documented_commands()
    assert len(commands) >= 15
    for words in commands:
        name = " ".join(words[:2]) if words[0] == "inerf" else words[0]
        rest = words[2:] if words[0] == "inerf" else words[1:]
        parsed = parse_command(command(name), rest)
        assert parsed.config is not None or parsed.help is not None, words
