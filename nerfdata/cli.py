"""The ``nerfdata`` command: parse, validate, call a job. No maths lives here.

Each command is a typed dataclass; its flags are generated from the dataclass by tyro, so every
config key is also a flag (``--orbit.count 8``). ``render`` first reads ``--config X.yaml`` and
uses it as the defaults that flags override. Bad input ends with one line on stderr, exit status 2.
"""

import argparse
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

import tyro

from nerfdata.config import from_dict, load_yaml
from nerfdata.errors import ConfigError, NerfDataError

__all__ = ["entrypoint", "main"]

T = TypeVar("T")

USAGE = """usage: nerfdata COMMAND [options]   (nerfdata COMMAND --help for a command's options)

commands:
  render    render views of a trained field into a labelled dataset (--config configs/X.yaml)
  train     fit an NGPField to a transforms.json dataset: nerfdata train DATA_DIR --out CKPT_DIR
  scene     write a ground-truth scene's dataset: nerfdata scene scenes/NAME --out DATA_DIR
  correspond  dense correspondences between views of a rendered dataset: nerfdata correspond --field CKPT --dataset DIR
  mesh      extract a coloured mesh by marching cubes: nerfdata mesh --field CKPT --out mesh.ply [--resolution R]
  inerf     pose inversion: nerfdata inerf targets --field CKPT --out DIR | nerfdata inerf solve --field CKPT --targets DIR
  bench     print speed ratios measured side by side; writes benchmarks/results.json
"""


@dataclass(frozen=True)
class BenchCommand:
    """Run the benchmarks and print ratios measured side by side in one run."""

    quick: bool = False
    """Fewer and smaller measurements (a smoke run; figures are noisier)."""
    out: Path | None = None
    """Where the figures are written as JSON (default: benchmarks/results.json of the package's checkout)."""
    scenes: Path | None = None
    """Folder of the scenes to measure (default: scenes/ of the package's checkout, from any folder)."""


def _yaml_then_flags(cls: type[T], argv: Sequence[str], prog: str, poses_flag: bool = False) -> T:
    """``cls`` from ``--config X.yaml`` as defaults, ``--field``/``--out`` and every other flag over it.

    With ``poses_flag``, ``--poses transforms.json`` sets the views to exactly that file's poses.
    """
    pre = argparse.ArgumentParser(add_help=False)
    for flag in ("--config", "--field", "--out", *(("--poses",) if poses_flag else ())):
        pre.add_argument(flag, type=Path)
    known, rest = pre.parse_known_args(argv)
    data = load_yaml(known.config) if known.config else {}
    for key in ("field", "out"):
        if getattr(known, key) is not None:
            data[key] = str(getattr(known, key))
    if getattr(known, "poses", None) is not None:  # render exactly those poses, with their intrinsics
        data["views"] = [{"file": {"path": str(known.poses)}}]
    if "--help" in rest or "-h" in rest or not data:
        return tyro.cli(cls, args=rest, prog=prog)
    where = str(known.config) if known.config else f"{prog} flags"
    return tyro.cli(cls, default=from_dict(cls, data, where), args=rest, prog=prog)


def _render(argv: Sequence[str]) -> None:
    from nerfdata.jobs.render import RenderJobConfig, run_render

    config = _yaml_then_flags(RenderJobConfig, argv, "nerfdata render", poses_flag=True)
    out = run_render(config, show_progress=sys.stderr.isatty())
    print(f"dataset written to {out}")


def _positional(argv: Sequence[str], name: str, flags: tuple[str, ...]) -> tuple[argparse.Namespace, list[str]]:
    """Split off one positional argument and the given path flags; the rest goes to tyro."""
    pre = argparse.ArgumentParser(add_help=False)
    pre.add_argument(name, type=Path, nargs="?")
    for flag in flags:
        pre.add_argument(flag, type=Path)
    return pre.parse_known_args(argv)


def _train(argv: Sequence[str]) -> None:
    from nerfdata.jobs.train import TrainJobConfig, run_train

    known, rest = _positional(argv, "data", ("--out",))
    if "--help" in rest or "-h" in rest or known.data is None or known.out is None:
        if not ("--help" in rest or "-h" in rest):
            raise ConfigError("usage: nerfdata train DATA_DIR --out CKPT_DIR [--iters N] [--resume] (--help for all options)")
        tyro.cli(TrainJobConfig, args=rest, prog="nerfdata train DATA_DIR")
        return
    config = tyro.cli(TrainJobConfig, default=TrainJobConfig(data=known.data, out=known.out), args=rest, prog="nerfdata train")
    result = run_train(config, show_progress=sys.stderr.isatty())
    test = f", test PSNR {result.test_psnr:.2f} dB" if result.test_psnr is not None else ""
    print(f"trained {result.iterations} iterations in {result.seconds:.0f} s{test}; checkpoint: {result.checkpoint}")


@dataclass(frozen=True)
class SceneCommand:
    """Write a ground-truth scene's dataset (train/test views with exact labels, and its mesh)."""

    scene: Path
    """A scene folder holding scene.yaml (e.g. scenes/tabletop), or the YAML itself."""
    out: Path
    """Dataset folder to write."""
    overwrite: bool = False


def _scene(argv: Sequence[str]) -> None:
    from nerfdata.scenes import load_recipe, write_scene_dataset

    known, rest = _positional(argv, "scene", ("--out",))
    if known.scene is None or known.out is None:
        command = tyro.cli(SceneCommand, args=rest, prog="nerfdata scene")
    else:
        command = tyro.cli(SceneCommand, default=SceneCommand(known.scene, known.out), args=rest, prog="nerfdata scene")
    out = write_scene_dataset(load_recipe(command.scene), command.out, command.overwrite, show_progress=sys.stderr.isatty())
    print(f"dataset written to {out}")


def _mesh(argv: Sequence[str]) -> None:
    from nerfdata.jobs.mesh import MeshJobConfig, describe, run_mesh

    # Extraction and clean-up options are flags of their own (--resolution, not --extraction.resolution).
    config = tyro.cli(tyro.conf.OmitArgPrefixes[MeshJobConfig], args=list(argv), prog="nerfdata mesh")
    for line in describe(run_mesh(config)):
        print(line)


def _correspond(argv: Sequence[str]) -> None:
    from nerfdata.jobs.correspond import CorrespondJobConfig, run_correspond

    config = tyro.cli(CorrespondJobConfig, args=list(argv), prog="nerfdata correspond")
    print(run_correspond(config, show_progress=sys.stderr.isatty()).describe())


INERF_USAGE = (
    "usage: nerfdata inerf targets --field CKPT --out DIR [--num N] [--seed S] [--preset inerf|pinerf|custom] "
    "[--rot-deg R] [--trans T] | nerfdata inerf solve --field CKPT --targets DIR [--iters 300] [--rays 2048] "
    "[--sampling random|interest-points|interest-regions] [--hypotheses K] [--out results.json]"
)


def _inerf(argv: Sequence[str]) -> None:
    from nerfdata.jobs.inerf import (
        InerfSolveConfig,
        InerfTargetsConfig,
        describe_results,
        run_inerf_solve,
        run_inerf_targets,
    )

    if not argv or argv[0] not in ("targets", "solve"):
        if argv and argv[0] in ("-h", "--help"):
            print(INERF_USAGE)
            return
        raise ConfigError(INERF_USAGE)
    action, rest = argv[0], list(argv[1:])
    if action == "targets":
        # views: render samplers, from a --config YAML of target keys.
        config = _yaml_then_flags(InerfTargetsConfig, rest, "nerfdata inerf targets")
        print(f"targets written to {run_inerf_targets(config, show_progress=sys.stderr.isatty())}")
        return
    # Solver options are flags of their own (--iters, not --solver.iters).
    solve = tyro.cli(tyro.conf.OmitArgPrefixes[InerfSolveConfig], args=rest, prog="nerfdata inerf solve")
    for line in describe_results(run_inerf_solve(solve, show_progress=sys.stderr.isatty())):
        print(line)


def _bench(argv: Sequence[str]) -> None:
    from nerfdata.bench import run_benchmarks
    from nerfdata.bench.shipped import RESULTS, SCENES

    command = tyro.cli(BenchCommand, args=list(argv), prog="nerfdata bench")
    run_benchmarks(command.quick, command.out or RESULTS, command.scenes or SCENES)


COMMANDS: dict[str, Callable[[Sequence[str]], None]] = {
    "render": _render,
    "train": _train,
    "scene": _scene,
    "mesh": _mesh,
    "correspond": _correspond,
    "inerf": _inerf,
    "bench": _bench,
}


def main(argv: Sequence[str] | None = None) -> int:
    """Run the CLI on ``argv`` (default: ``sys.argv[1:]``); returns the exit status."""
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] in ("-h", "--help"):
        print(USAGE, end="")
        return 0 if argv else 2
    command, rest = argv[0], argv[1:]
    if command not in COMMANDS:
        print(f"nerfdata: error: unknown command {command!r}\n{USAGE}", end="", file=sys.stderr)
        return 2
    try:
        COMMANDS[command](rest)
    except NerfDataError as error:
        print(f"nerfdata {command}: error: {error}", file=sys.stderr)
        return 2
    return 0


def entrypoint() -> None:
    sys.exit(main())
