"""The ``nerfdata`` command: parse, validate, call a job. No maths lives here.

Each command is a typed dataclass config; its flags are generated from it (:mod:`nerfdata.flags`),
so every config key is also a flag (``--camera.width 64``, ``--views.0.orbit.count 8``), and
``--config X.yaml`` gives the values that flags override. Bad input ends with one line on stderr,
exit status 2: a :class:`~nerfdata.errors.NerfDataError`'s message, or the path and reason of an
``OSError`` the file system raised (an ``--out`` under a file, a forbidden folder, a full disk).
"""

import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from nerfdata.device import DeviceName
from nerfdata.errors import ConfigError, NerfDataError
from nerfdata.flags import Command, Shortcut, parse_command

__all__ = ["command", "entrypoint", "main"]

USAGE = """usage: nerfdata COMMAND [options]   (nerfdata COMMAND --help for a command's options)

commands:
  render    render views of a trained field into a labelled dataset (--config configs/X.yaml)
  train     fit an NGPField to a transforms.json dataset: nerfdata train DATA_DIR --out CKPT_DIR
  scene     write a ground-truth scene's dataset: nerfdata scene scenes/NAME --out DATA_DIR
  correspond  dense correspondences between views of a rendered dataset:
            nerfdata correspond --dataset DIR [--field CKPT]
  mesh      extract a coloured mesh by marching cubes:
            nerfdata mesh --field CKPT --out mesh.ply [--resolution R] [--overwrite]
  inerf     pose inversion: nerfdata inerf targets --field CKPT --out DIR
            | nerfdata inerf solve --field CKPT --targets DIR
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
    device: DeviceName = "auto"
    """GPU rows beside the CPU ones: auto (where CUDA is present), cpu (none) or cuda (required)."""


@dataclass(frozen=True)
class SceneCommand:
    """Write a ground-truth scene's dataset (train/test views with exact labels, and its mesh)."""

    scene: Path
    """A scene folder holding scene.yaml (e.g. scenes/tabletop), or the YAML itself."""
    out: Path
    """Dataset folder to write."""
    overwrite: bool = False
    """Replace a dataset already in --out."""


def _parse(command: Command, argv: Sequence[str]) -> Any:
    """The command's config, or None when its help was printed."""
    parsed = parse_command(command, argv)
    if parsed.help is not None:
        print(parsed.help, end="")
        return None
    return parsed.config


def _poses(data: dict[str, Any], path: str) -> None:
    data["views"] = [{"file": {"path": path}}]  # render exactly those poses, with their intrinsics


def _num_views(data: dict[str, Any], count: int) -> None:
    views = data["views"]
    if len(views) != 1:
        count_flags = "--views.N.SAMPLER.count"
        raise ConfigError(f"--num-views: the job has {len(views)} view samplers; set their {count_flags}")
    ((name, sampler),) = views[0].items()
    if name in ("perturb", "file"):
        raise ConfigError(f"--num-views: a {name} sampler renders its file's poses; see --views.0.{name}.*")
    views[0] = {name: {**(sampler or {}), "count": count}}


def _views_count(data: dict[str, Any]) -> Any:
    views = data.get("views") or []
    if len(views) != 1:
        return None
    ((_, sampler),) = views[0].items()
    return (sampler or {}).get("count")


def _executor_kind(data: dict[str, Any], kind: str) -> None:
    data["executor"]["kind"] = kind


def _ray_address(data: dict[str, Any], address: str) -> None:
    data["executor"].update(kind="ray", address=address)


EXECUTOR_SHORTCUTS = (
    Shortcut("executor", Literal["local", "ray"], "Where the work runs: local (this process) or ray (Ray workers, "
             "the [distributed] extra); also executor.kind in the YAML.", _executor_kind, section="executor",
             show=lambda data: (data.get("executor") or {}).get("kind")),
    Shortcut("ray-address", str, "Ray cluster to join (ray start --head prints it; implies --executor ray); "
             "default: the local Ray instance, started if none runs.", _ray_address, section="executor",
             show=lambda data: (data.get("executor") or {}).get("address")),
)
"""``--executor local|ray`` and ``--ray-address ADDR`` of the jobs that run in shards."""


INERF_USAGE = (
    "usage: nerfdata inerf targets --field CKPT --out DIR [--num N] [--seed S] [--preset inerf|pinerf|custom] "
    "[--rot-deg R] [--trans T] | nerfdata inerf solve --field CKPT --targets DIR [--iters 300] [--rays 2048] "
    "[--sampling random|interest-points|interest-regions] [--hypotheses K] [--out results.json]"
)


def command(name: str) -> Command:
    """The flags of subcommand ``name`` (``render``, ..., ``inerf targets``, ``inerf solve``, ``bench``).

    Raises:
        KeyError: no such subcommand.
    """
    if name == "render":
        from nerfdata.jobs.render import RenderJobConfig

        poses = "Render exactly the poses of this transforms.json, with its intrinsics (replaces views)."
        return Command(
            "nerfdata render", RenderJobConfig,
            "nerfdata render --config configs/X.yaml [--field PATH] [--out DIR] [--poses transforms.json] "
            "[--executor local|ray] [--ray-address ADDR] [flags]",
            shortcuts=(
                Shortcut("poses", Path, poses, _poses, section="views"),
                Shortcut("num-views", int, "Views of the job's one sampler (its count).", _num_views,
                         section="views", show=_views_count),
                *EXECUTOR_SHORTCUTS,
            ),
        )
    if name == "train":
        from nerfdata.jobs.train import TrainJobConfig

        usage = "nerfdata train DATA_DIR --out CKPT_DIR [--iters N] [--resume] [flags]"
        return Command("nerfdata train", TrainJobConfig, usage, positional=(("data", "DATA_DIR"),))
    if name == "scene":
        usage = "nerfdata scene scenes/NAME --out DATA_DIR [--overwrite]"
        positional = (("scene", "SCENE"),)
        return Command("nerfdata scene", SceneCommand, usage, positional=positional, config_flag=False)
    if name == "mesh":
        from nerfdata.jobs.mesh import MeshJobConfig

        # Extraction and clean-up options are flags of their own (--resolution, not --extraction.resolution).
        usage = ("nerfdata mesh --field PATH --out mesh.ply [--resolution 256] [--threshold T|auto] "
                 "[--bounds x0 y0 z0 x1 y1 z1] [--overwrite] [flags]")
        return Command("nerfdata mesh", MeshJobConfig, usage, flat=("extraction", "cleanup"))
    if name == "correspond":
        from nerfdata.jobs.correspond import CorrespondJobConfig

        # --field defaults to the field the dataset's manifest names (and must match its checksum).
        usage = ("nerfdata correspond --dataset DIR [--field PATH] [--pairs 20] [--per-pair 4096] [--out DIR] "
                 "[--overwrite] [flags]")
        return Command("nerfdata correspond", CorrespondJobConfig, usage, shortcuts=EXECUTOR_SHORTCUTS)
    if name == "inerf targets":
        from nerfdata.jobs.inerf import InerfTargetsConfig

        # views: render samplers, from a --config YAML of target keys or --views.N.SAMPLER.KEY flags.
        usage = ("nerfdata inerf targets --field PATH --out DIR [--config X.yaml] [--num 10] [--seed 0] "
                 "[--preset inerf|pinerf|custom] [flags]")
        return Command("nerfdata inerf targets", InerfTargetsConfig, usage, shortcuts=EXECUTOR_SHORTCUTS)
    if name == "inerf solve":
        from nerfdata.jobs.inerf import InerfSolveConfig

        # Solver options are flags of their own (--iters, not --solver.iters).
        usage = ("nerfdata inerf solve --field PATH --targets DIR [--iters 300] [--rays 2048] "
                 "[--hypotheses K] [--out results.json] [flags]")
        return Command("nerfdata inerf solve", InerfSolveConfig, usage, flat=("solver",), shortcuts=EXECUTOR_SHORTCUTS)
    if name == "bench":
        usage = "nerfdata bench [--quick] [--scenes DIR] [--out FILE] [--device auto|cpu|cuda]"
        return Command("nerfdata bench", BenchCommand, usage, config_flag=False)
    raise KeyError(name)


def _render(argv: Sequence[str]) -> None:
    from nerfdata.jobs.render import run_render

    config = _parse(command("render"), argv)
    if config is not None:
        print(f"dataset written to {run_render(config)}")


def _train(argv: Sequence[str]) -> None:
    from nerfdata.jobs.train import run_train

    config = _parse(command("train"), argv)
    if config is not None:
        result = run_train(config)
        test = f", test PSNR {result.test_psnr:.2f} dB" if result.test_psnr is not None else ""
        seconds = f"{result.seconds:.0f} s"
        print(f"trained {result.iterations} iterations in {seconds}{test}; checkpoint: {result.checkpoint}")


def _scene(argv: Sequence[str]) -> None:
    from nerfdata.scenes import load_recipe, write_scene_dataset

    config = _parse(command("scene"), argv)
    if config is not None:
        recipe = load_recipe(config.scene)
        out = write_scene_dataset(recipe, config.out, config.overwrite, show_progress=sys.stderr.isatty())
        print(f"dataset written to {out}")


def _mesh(argv: Sequence[str]) -> None:
    from nerfdata.jobs.mesh import describe, run_mesh

    config = _parse(command("mesh"), argv)
    if config is not None:
        for line in describe(run_mesh(config)):
            print(line)


def _correspond(argv: Sequence[str]) -> None:
    from nerfdata.jobs.correspond import run_correspond

    config = _parse(command("correspond"), argv)
    if config is not None:
        print(run_correspond(config).describe())


def _inerf(argv: Sequence[str]) -> None:
    from nerfdata.jobs.inerf import describe_results, run_inerf_solve, run_inerf_targets

    if not argv or argv[0] not in ("targets", "solve"):
        if argv and argv[0] in ("-h", "--help"):
            print(INERF_USAGE)
            return
        raise ConfigError(INERF_USAGE)
    config = _parse(command(f"inerf {argv[0]}"), argv[1:])
    if config is None:
        return
    if argv[0] == "targets":
        print(f"targets written to {run_inerf_targets(config)}")
    else:
        for line in describe_results(run_inerf_solve(config)):
            print(line)


def _bench(argv: Sequence[str]) -> None:
    from nerfdata.bench.runner import run_benchmarks
    from nerfdata.bench.shipped import RESULTS, SCENES

    config = _parse(command("bench"), argv)
    if config is not None:
        run_benchmarks(config.quick, config.out or RESULTS, config.scenes or SCENES, config.device)


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
    except OSError as error:  # the file system refused (a path under a file, no permission, no space): one line too
        print(f"nerfdata {command}: error: {_os_error(error)}", file=sys.stderr)
        return 2
    return 0


def _os_error(error: OSError) -> str:
    """``PATH: reason`` of an ``OSError`` (``PATH -> PATH2: reason`` for a rename)."""
    reason = error.strerror or str(error)
    if error.filename is None:
        return reason
    target = f" -> {error.filename2}" if error.filename2 is not None else ""
    return f"{error.filename}{target}: {reason}"


def entrypoint() -> None:
    sys.exit(main())
