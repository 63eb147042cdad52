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

import tyro

from nerfdata.config import from_dict, load_yaml
from nerfdata.errors import NerfDataError

__all__ = ["entrypoint", "main"]

USAGE = """usage: nerfdata COMMAND [options]   (nerfdata COMMAND --help for a command's options)

commands:
  render    render views of a trained field into a labelled dataset (--config configs/X.yaml)
  bench     print speed ratios measured side by side; writes benchmarks/results.json
"""


@dataclass(frozen=True)
class BenchCommand:
    """Run the benchmarks and print ratios measured side by side in one run."""

    quick: bool = False
    """Fewer and smaller measurements (a smoke run; figures are noisier)."""
    out: Path = Path("benchmarks/results.json")
    """Where the figures are written as JSON."""


def _render(argv: Sequence[str]) -> None:
    from nerfdata.jobs.render import RenderJobConfig, run_render

    pre = argparse.ArgumentParser(add_help=False)
    pre.add_argument("--config", type=Path)
    pre.add_argument("--field", type=Path)
    pre.add_argument("--out", type=Path)
    known, rest = pre.parse_known_args(argv)
    data = load_yaml(known.config) if known.config else {}
    for key in ("field", "out"):
        if getattr(known, key) is not None:
            data[key] = str(getattr(known, key))
    if "--help" in rest or "-h" in rest or not data:
        config = tyro.cli(RenderJobConfig, args=rest, prog="nerfdata render")
    else:
        where = str(known.config) if known.config else "render flags"
        defaults = from_dict(RenderJobConfig, data, where)
        config = tyro.cli(RenderJobConfig, default=defaults, args=rest, prog="nerfdata render")
    out = run_render(config, show_progress=sys.stderr.isatty())
    print(f"dataset written to {out}")


def _bench(argv: Sequence[str]) -> None:
    from nerfdata.bench import run_benchmarks

    command = tyro.cli(BenchCommand, args=list(argv), prog="nerfdata bench")
    run_benchmarks(quick=command.quick, out=command.out)


COMMANDS: dict[str, Callable[[Sequence[str]], None]] = {"render": _render, "bench": _bench}


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
