"""Compiling the C kernels: built for this CPU where the compiler can, for the baseline where it cannot,
cached by source, flags and CPU."""

import ctypes
import os
import shutil
import stat
from pathlib import Path

import pytest

import nerfdata.native as native

COMPILER = os.environ.get("CC") or shutil.which("cc") or shutil.which("gcc")
needs_compiler = pytest.mark.skipif(COMPILER is None, reason="needs a C compiler (cc or gcc) to build the kernels")

SOURCE = "int twice(int x) { return 2 * x; }\n"


def _load(tmp_path: Path, monkeypatch, compiler: str) -> ctypes.CDLL | None:
    source = tmp_path / "twice.c"
    source.write_text(SOURCE)
    monkeypatch.setenv("CC", compiler)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.setattr(native, "_LIBRARIES", {})
    monkeypatch.setattr(native, "_REASONS", {})
    return native.load_library(source)


def _wrapper(tmp_path: Path, body: str) -> str:
    script = tmp_path / "cc-wrapper"
    script.write_text(f"#!/bin/sh\n{body}\n")
    script.chmod(script.stat().st_mode | stat.S_IEXEC)
    return str(script)


@needs_compiler
def test_kernels_are_built_for_this_cpu_and_cached(tmp_path, monkeypatch):
    log = tmp_path / "calls"
    compiler = _wrapper(tmp_path, f'echo "$@" >> {log}\nexec {COMPILER} "$@"')
    lib = _load(tmp_path, monkeypatch, compiler)
    assert lib is not None and lib.twice(21) == 42
    calls = log.read_text().splitlines()
    assert len(calls) == 1 and "-march=native" in calls[0] and "-std=c99" in calls[0]
    assert len(list((tmp_path / "cache" / "nerfdata" / "kernels").glob("twice_*.so"))) == 1
    monkeypatch.setattr(native, "_LIBRARIES", {})
    assert native.load_library(tmp_path / "twice.c").twice(4) == 8
    assert len(log.read_text().splitlines()) == 1  # the second process loads the cached library


@needs_compiler
def test_a_compiler_that_refuses_native_builds_for_the_baseline(tmp_path, monkeypatch):
    refuse = f'case "$*" in *-march=native*) echo "unknown -march" >&2; exit 1;; esac\nexec {COMPILER} "$@"'
    lib = _load(tmp_path, monkeypatch, _wrapper(tmp_path, refuse))
    assert lib is not None and lib.twice(5) == 10


def test_no_compiler_gives_the_reason(tmp_path, monkeypatch):
    lib = _load(tmp_path, monkeypatch, _wrapper(tmp_path, 'echo "broken compiler" >&2; exit 1'))
    assert lib is None
    assert "broken compiler" in native.unavailable_reason(tmp_path / "twice.c")
