"""Flags generated from typed configs: every key of every sampler, lists of entries, typos, help."""

import dataclasses
import typing
from pathlib import Path

import pytest

from nerfdata.cli import command
from nerfdata.errors import ConfigError
from nerfdata.flags import help_text, parse_command
from nerfdata.poses import SamplerConfig

RENDER = command("render")
BASE = ["--field", "scenes/analytic_demo"]


def tokens_for(annotation) -> tuple[list[str], object]:
    """Flag tokens for a key of this type, and the value the config should then hold."""
    if annotation is bool:
        return [], True
    if annotation is int:
        return ["3"], 3
    if annotation is float:
        return ["0.5"], 0.5
    if annotation is str:
        return ["train"], "train"
    if annotation is Path or annotation == Path | None:
        return ["poses.json"], Path("poses.json")
    args = typing.get_args(annotation)
    if typing.get_origin(annotation) is tuple and args and args[-1] is not Ellipsis:
        values = [0.5 + i for i in range(len(args))]
        return [str(v) for v in values], tuple(values)
    raise AssertionError(f"no test value for {annotation}")


# Keys a sampler needs whatever is being set (perturb and file read a poses file; path needs its keys).
REQUIRED = {
    "perturb": ["--views.0.perturb.poses", "p.json"],
    "file": ["--views.0.file.path", "p.json"],
    "path": ["--views.0.path.poses", "p.json"],
}


def sampler_keys():
    for member in dataclasses.fields(SamplerConfig):
        cls = typing.get_args(typing.get_type_hints(SamplerConfig)[member.name])[0]
        for key, annotation in typing.get_type_hints(cls).items():
            if key != "keyframes":
                yield member.name, key, annotation


@pytest.mark.parametrize("member, key, annotation", list(sampler_keys()))
def test_every_sampler_key_is_a_documented_flag(member, key, annotation):
    values, expected = tokens_for(annotation)
    flag = f"--views.0.{member}.{key.replace('_', '-')}"
    required = [] if key in ("poses", "path") else REQUIRED.get(member, [])
    config = parse_command(RENDER, [*BASE, *required, flag, *values]).config
    assert config.views[0].name == member and getattr(getattr(config.views[0], member), key) == expected
    # The underscore spelling of the YAML works too, and with a single sampler --MEMBER.KEY is short for it.
    assert parse_command(RENDER, [*BASE, *required, f"--views.0.{member}.{key}", *values]).config == config
    short = [f"--{t[len('--views.0.') :]}" if t.startswith("--views.0.") else t for t in [*required, flag]]
    assert parse_command(RENDER, [*BASE, *short, *values]).config == config


def test_keyframes_are_entries_of_a_path_entry():
    argv = [
        *BASE,
        "--views.0.path.keyframes.0.eye",
        "2",
        "1",
        "2",
        "--views.0.path.keyframes.1.eye",
        "-2",
        "1",
        "2",
        "--views.0.path.keyframes.1.target",
        "0",
        "0.1",
        "0",
        "--views.0.path.count",
        "5",
    ]
    path = parse_command(RENDER, argv).config.views[0].path
    assert path.count == 5 and [k.eye for k in path.keyframes] == [(2.0, 1.0, 2.0), (-2.0, 1.0, 2.0)]
    assert path.keyframes[1].target == (0.0, 0.1, 0.0)


def test_entries_are_changed_replaced_and_added(tmp_path):
    job = tmp_path / "job.yaml"
    job.write_text("field: scenes/analytic_demo\nviews:\n  - orbit: {count: 4, radius: 2.5}\n")
    views = parse_command(RENDER, ["--config", str(job), "--views.0.orbit.count", "2"]).config.views
    assert views[0].orbit.count == 2 and views[0].orbit.radius == 2.5  # the YAML's other keys stay
    views = parse_command(RENDER, ["--config", str(job), "--views.0.shell.count", "5"]).config.views
    assert [v.name for v in views] == ["shell"] and views[0].shell.count == 5  # another sampler replaces it
    views = parse_command(RENDER, ["--config", str(job), "--views.1.spiral.count", "3"]).config.views
    assert [v.name for v in views] == ["orbit", "spiral"]  # the next index adds one
    assert parse_command(RENDER, ["--config", str(job), "--num-views", "7"]).config.views[0].orbit.count == 7
    with pytest.raises(ConfigError, match=r"views has 1 entry; a flag can add entry 1, not 3"):
        parse_command(RENDER, ["--config", str(job), "--views.3.orbit.count", "2"])
    two = parse_command(RENDER, ["--config", str(job), "--views.1.spiral.count", "3"]).config
    assert len(two.views) == 2
    with pytest.raises(
        ConfigError, match=r"--orbit.count: the job has 2 views entries; name one: --views.N.orbit.count"
    ):
        parse_command(RENDER, ["--config", str(job), "--views.1.spiral.count", "3", "--orbit.count", "2"])
    with pytest.raises(ConfigError, match=r"--num-views: the job has 2 view samplers"):
        parse_command(RENDER, ["--config", str(job), "--views.1.spiral.count", "3", "--num-views", "2"])


def test_values_are_read_by_type():
    config = parse_command(
        RENDER,
        [
            *BASE,
            "--outputs",
            "rgb",
            "depth",
            "--camera.fov-range-deg",
            "40",
            "50",
            "--render.far=inf",
            "--coverage.no-reject-inside",
            "--labels.geometry",
            "mesh",
            "--labels.mesh",
            "m.ply",
            "--views.0.orbit.elevation-deg",  # a negative number is a value, not a flag (a seed may not be negative)
            "-3",
        ],
    ).config
    assert config.outputs == ("rgb", "depth") and config.camera.fov_range_deg == (40.0, 50.0)
    assert config.render.far == float("inf") and config.coverage.reject_inside is False
    assert config.labels.mesh == Path("m.ply") and config.views[0].orbit.elevation_deg == -3.0
    assert parse_command(RENDER, [*BASE, "--overwrite", "false"]).config.overwrite is False
    mesh = parse_command(
        command("mesh"), ["--field", "f", "--threshold", "auto", "--bounds", "-1", "-1", "-1", "1", "1", "1"]
    )
    assert mesh.config.extraction.threshold == "auto" and mesh.config.extraction.bounds == (
        (-1.0,) * 3,
        (1.0,) * 3,
    )
    assert (
        parse_command(command("mesh"), ["--field", "f", "--threshold", "2.5"]).config.extraction.threshold
        == 2.5
    )


@pytest.mark.parametrize(
    "argv, message",
    [
        ([*BASE, "--camera.width", "x"], "--camera.width: expected an integer, got 'x'"),
        (
            [*BASE, "--camera.width", "64", "32"],
            "unexpected argument '32' after --camera.width (it takes 1 value)",
        ),
        (
            [*BASE, "--views.0.orbit.target", "1", "2"],
            "--views.0.orbit.target: expected FLOAT FLOAT FLOAT, got 2 value(s)",
        ),
        (
            [*BASE, "--labels.normals", "dpeth"],
            "'dpeth' is not one of 'depth-fit', 'gradient', 'smooth-gradient', 'transmittance', 'depth'; "
            "did you mean 'depth'?",
        ),
        ([*BASE, "--camera"], "unknown flag --camera"),
        (["--camera.width", "64"], "missing --field; usage: nerfdata render"),
    ],
)
def test_bad_flags_are_one_message(argv, message):
    with pytest.raises(ConfigError) as error:
        parse_command(RENDER, argv)
    assert message in str(error.value) and "\n" not in str(error.value)


def entry(text: str, flag: str) -> str:
    """A flag's help entry: its line and the wrapped lines under it, joined."""
    lines = text.splitlines()
    start = next(i for i, x in enumerate(lines) if x.strip().startswith(flag + " ") or x.strip() == flag)
    rest = [x for x in lines[start + 1 :]]
    end = next(
        (i for i, x in enumerate(rest) if not x.startswith("    ") or x.strip().startswith("--")), len(rest)
    )
    return " ".join(x.strip() for x in [lines[start], *rest[:end]])


def test_help_shows_the_values_a_config_resolves():
    plain = help_text(RENDER)
    demo = help_text(RENDER, ["--config", "configs/demo.yaml"])
    assert entry(plain, "--field").endswith("[required (or give it in --config)]")
    assert entry(demo, "--field").endswith("[scenes/tabletop]")
    assert entry(plain, "--render.num-steps").endswith("[1024]") and entry(
        demo, "--render.num-steps"
    ).endswith("[512]")
    # (help text wraps at hyphens: "[depth-" may end a line)
    assert entry(plain, "--labels.normals").replace("- ", "-").endswith("[depth-fit]") and entry(
        demo, "--labels.normals"
    ).replace("- ", "-").endswith("[depth-fit]")
    # Flags given with --help count too; the views section lists the entries' keys in the documented form.
    given = help_text(RENDER, ["--config", "configs/demo.yaml", "--views.0.orbit.count", "2"])
    assert entry(given, "--views.0.orbit.count").endswith("[2]") and entry(given, "--num-views").endswith(
        "[2]"
    )
    for flag in (
        "--config PATH",
        "--poses PATH",
        "--num-views INT",
        "--views.N.shell.radius",
        "--views.N.file.path",
    ):
        assert flag in demo
    assert "orbit-config" not in demo and "views.0.orbit:" not in demo
