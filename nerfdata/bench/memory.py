"""Peak memory of one large all-label render: a fresh ``nerfdata render`` reporting its own peak RSS.

The job is the README's demo (``configs/demo.yaml``) cut to one view of the given size, with every
layer (``depth_modes`` included, which renders a pass of its own). The figure is the process's peak
resident set, interpreter and torch included, so it is what a user's machine must hold: Linux's
``VmHWM``, the high-water mark of the process's own memory. ``getrusage``'s ``ru_maxrss`` (the fallback
elsewhere) is not that on Linux: ``exec`` carries the forking parent's size over into it, so from inside
a large process (``nerfdata bench`` after its other measurements) it read 1.63 GiB for a render of 0.87.
"""

import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, get_args

from nerfdata.bench.shipped import CHECKOUT, CONFIGS
from nerfdata.labels.view_labels import OutputName

__all__ = ["bench_peak_memory"]

_CHILD = """
import json, resource, sys
from nerfdata.cli import main
status = main(sys.argv[1:])
try:
    with open("/proc/self/status") as f:
        peak_kib = next(int(line.split()[1]) for line in f if line.startswith("VmHWM:"))
except (OSError, StopIteration):
    peak_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB on Linux, bytes on macOS
print(json.dumps({"status": status, "peak_bytes": peak_kib * 1024}))
"""


def bench_peak_memory(field: Path, width: int = 1920, height: int = 1080) -> dict[str, Any]:
    """Peak RSS (bytes) and wall seconds of rendering one ``width x height`` view of ``field`` with every layer.

    Raises:
        subprocess.CalledProcessError: the render failed (its stderr is in the error).
    """
    outputs = list(get_args(OutputName))
    with tempfile.TemporaryDirectory() as tmp:
        args = ["render", "--config", str(CONFIGS / "demo.yaml"), "--field", str(field), "--out", str(Path(tmp) / "o"),
                "--num-views", "1", "--camera.width", str(width), "--camera.height", str(height),
                "--outputs", *outputs]
        start = time.perf_counter()
        result = subprocess.run(
            [sys.executable, "-c", _CHILD, *args], cwd=CHECKOUT, capture_output=True, text=True, check=True
        )
        seconds = time.perf_counter() - start
    report = json.loads(result.stdout.strip().splitlines()[-1])
    if report["status"] != 0:
        raise subprocess.CalledProcessError(report["status"], args, result.stdout, result.stderr)
    return {"width": width, "height": height, "outputs": outputs, "peak_bytes": report["peak_bytes"],
            "seconds": seconds}
