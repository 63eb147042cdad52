"""nerfstudio checkpoint in nerfdata: ``python benchmarks/nerfstudio.py [CONFIG] [--views N] [--mesh-resolution R]``.

Renders the same test views of the scene a nerfstudio run was trained on with nerfstudio's own
renderer and with nerfdata's, on this CPU, side by side, and prints rays/s and their ratio, the
two renders' agreement and their quality against exact ground truth; then the Chamfer distance of
nerfdata's mesh of the field to the scene's true mesh, in the scene's units. Default run: the
shipped ``scenes/mug/nerfacto/config.yml``. Needs the ``[nerfstudio]`` extra (its own virtual
environment, see README).
"""

import argparse
import sys
from pathlib import Path

# This script is named like the package it benchmarks: keep its own folder off the import path, or
# "import nerfstudio" would import this file.
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != Path(__file__).resolve().parent]

from rich.console import Console  # noqa: E402

from nerfdata.atomic import write_json_atomic  # noqa: E402
from nerfdata.bench.nerfstudio import DEFAULT_RUN, nerfstudio_benchmark, nerfstudio_table  # noqa: E402
from nerfdata.render.renderer import RenderOptions  # noqa: E402

if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("config", nargs="?", type=Path, default=DEFAULT_RUN, help="the run's config.yml")
    parser.add_argument("--scene", type=Path, default=None, help="scene folder (default: the run folder's parent)")
    parser.add_argument("--views", type=int, default=3)
    parser.add_argument("--scale", type=float, default=1.0, help="intrinsics scale of the test cameras")
    parser.add_argument("--mesh-resolution", type=int, default=128, help="0: no mesh")
    parser.add_argument(
        "--num-steps", type=int, default=RenderOptions().num_steps, help="nerfdata steps along the box diagonal"
    )
    parser.add_argument("--json", type=Path, default=None, help="also write the figures as JSON here")
    args = parser.parse_args()
    result = nerfstudio_benchmark(
        args.config, args.scene, views=args.views, scale=args.scale, mesh_resolution=args.mesh_resolution,
        num_steps=args.num_steps,
    )
    Console().print(nerfstudio_table(result))
    if args.json is not None:
        write_json_atomic(args.json, result)
