"""Small C kernels, compiled on first use with the system C compiler and loaded with ctypes.

nerfdata's CPU fast paths (the fused hash grid, the ray marcher) are plain C files beside the
Python modules that call them: no dependency beyond libm and OpenMP, no build step at install. Each
is compiled once per machine into ``$XDG_CACHE_HOME/nerfdata/kernels`` (``~/.cache`` by default),
named by the source's hash, and the rename into place is atomic, so concurrent first uses are safe.
Without a compiler, :func:`load_library` returns ``None`` with the reason, and callers use their
PyTorch twins.
"""

import ctypes
import hashlib
import os
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


def _compile(source: Path) -> ctypes.CDLL:
    code = source.read_bytes()
    library = _cache_dir() / f"{source.stem}_{hashlib.sha256(code).hexdigest()[:16]}.so"
    if not library.exists():
        compiler = os.environ.get("CC") or shutil.which("cc") or shutil.which("gcc")
        if compiler is None:
            raise OSError("no C compiler found (set CC or install gcc)")
        library.parent.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(dir=library.parent) as tmp:
            built = Path(tmp) / library.name
            command = [
                compiler, "-O3", "-std=c99", "-fPIC", "-shared", "-fopenmp", str(source), "-o", str(built), "-lm"
            ]
            result = subprocess.run(command, capture_output=True, text=True)
            if result.returncode != 0:
                raise OSError(f"compiling {source.name} failed: {result.stderr.strip()[:500]}")
            os.replace(built, library)
    return ctypes.CDLL(str(library))


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
