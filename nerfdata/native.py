"""Small C kernels, compiled on first use with the system C compiler and loaded with ctypes.

nerfdata's CPU fast paths (the fused hash grid, the ray marcher) are plain C files beside the
Python modules that call them: no dependency beyond libm and OpenMP, no build step at install. Each
is compiled once per machine into ``$XDG_CACHE_HOME/nerfdata/kernels`` (``~/.cache`` by default),
named by the hash of the source, the flags and the CPU, and the rename into place is atomic, so
concurrent first uses are safe. Without a compiler, :func:`load_library` returns ``None`` with the
reason, and callers use their PyTorch twins.

The kernels are built for the CPU they run on (``-march=native``: AVX-512 gathers where there are some)
with ``-fno-trapping-math``, which lets ``floorf`` vectorize and changes no value (floating-point
exceptions are never read). ISO C mode (``-std=c99``) keeps ``-ffp-contract=off``: no product is fused
into an addition the source did not write, so the results are the same bits on every CPU. A compiler
that refuses ``-march=native`` builds for the baseline instead.
"""

import ctypes
import hashlib
import os
import platform
import shutil
import subprocess
import tempfile
from pathlib import Path

__all__ = ["load_library", "unavailable_reason"]

_LIBRARIES: dict[Path, ctypes.CDLL | None] = {}
_REASONS: dict[Path, str] = {}


def _cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "nerfdata" / "kernels"


_FLAGS = ("-O3", "-std=c99", "-fPIC", "-shared", "-fopenmp", "-fno-trapping-math")
_NATIVE = ("-march=native",)


def _cpu_identity() -> str:
    """What ``-march=native`` builds for: the CPU's model and feature flags (a cache shared by several
    machines then holds one library per kind of CPU)."""
    try:
        lines = Path("/proc/cpuinfo").read_text().splitlines()
    except OSError:
        return platform.machine() + platform.processor()
    wanted = [line for line in lines if line.startswith(("model name", "flags", "Features", "CPU part"))]
    return platform.machine() + "\n".join(sorted(set(wanted)))


def _build(compiler: str, source: Path, flags: tuple[str, ...], library: Path) -> str | None:
    """Compile ``source`` into ``library`` (atomically); the compiler's complaint, or None."""
    library.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=library.parent) as tmp:
        built = Path(tmp) / library.name
        command = [compiler, *flags, str(source), "-o", str(built), "-lm"]
        result = subprocess.run(command, capture_output=True, text=True)
        if result.returncode != 0:
            return result.stderr.strip()[:500]
        os.replace(built, library)
    return None


def _compile(source: Path) -> ctypes.CDLL:
    code = source.read_bytes()
    compiler = os.environ.get("CC") or shutil.which("cc") or shutil.which("gcc")
    if compiler is None:
        raise OSError("no C compiler found (set CC or install gcc)")
    problem = None
    for flags in (_FLAGS + _NATIVE, _FLAGS):
        key = hashlib.sha256(code + " ".join(flags).encode() + _cpu_identity().encode()).hexdigest()[:16]
        library = _cache_dir() / f"{source.stem}_{key}.so"
        if not library.exists():
            problem = _build(compiler, source, flags, library)
            if problem is not None:
                continue
        return ctypes.CDLL(str(library))
    raise OSError(f"compiling {source.name} failed: {problem}")


def load_library(source: Path) -> ctypes.CDLL | None:
    """The compiled library of C file ``source`` (cached), or ``None`` if it cannot be built here."""
    if source not in _LIBRARIES:
        try:
            _LIBRARIES[source], _REASONS[source] = _compile(source), ""
        except OSError as error:
            _LIBRARIES[source], _REASONS[source] = None, str(error)
    return _LIBRARIES[source]


def unavailable_reason(source: Path) -> str:
    """Why :func:`load_library` gave ``None`` for ``source`` (empty when it loaded)."""
    load_library(source)
    return _REASONS[source]
