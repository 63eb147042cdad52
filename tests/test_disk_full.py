"""A render on a file system that fills up, and one that is read-only: one line, exit 2, nothing marked complete.

The file systems are small tmpfs mounts the test makes; where it cannot (not root, no ``mount``, a
container without the privilege) the tests are skipped with that reason.
"""

import json
import math
import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from nerfdata.cli import main
from tests.conftest import files_of

JOB = """
field: scenes/analytic_demo
views:
  - orbit: {count: 4, radius: 3.2, elevation_deg: 30.0, target: [0.0, -0.2, 0.0]}
camera: {width: 40, height: 32, fov_deg: 45.0}
outputs: [rgb, depth, range, normals, mask, confidence]
render: {num_steps: 256}
preview_views: 2
"""
PAGE = 4096


def _mount(path: Path, options: str) -> str | None:
    """Mount a tmpfs at ``path``; why it could not be mounted, or None."""
    if os.geteuid() != 0:
        return "mounting a small file system needs root"
    if shutil.which("mount") is None:
        return "no mount command"
    path.mkdir(parents=True, exist_ok=True)
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(path)], capture_output=True, text=True)
    return None if done.returncode == 0 else f"cannot mount a tmpfs here: {done.stderr.strip()}"


@pytest.fixture
def tmpfs(tmp_path) -> Iterator:
    """``mount(options) -> Path``: a tmpfs under ``tmp_path``, unmounted at the end."""
    mounted: list[Path] = []

    def mount(options: str) -> Path:
        path = tmp_path / f"fs{len(mounted)}"
        reason = _mount(path, options)
        if reason is not None:
            pytest.skip(reason)
        mounted.append(path)
        return path

    yield mount
    for path in mounted:
        subprocess.run(["umount", str(path)], check=False)


def render(capsys, config: Path, out: Path) -> tuple[int, list[str]]:
    """Exit status and error lines (progress is logged to stderr too: the lines after the last progress line)."""
    status = main(["render", "--config", str(config), "--out", str(out)])
    lines = capsys.readouterr().err.strip().splitlines()
    return status, [line for line in lines if not line.startswith("render:")]


def without_out(manifest: bytes) -> dict:
    content = json.loads(manifest)
    content["config"].pop("out")
    return content


def test_a_full_disk_is_one_line_then_a_resume_gives_the_clean_files(tmp_path, capsys, tmpfs):
    config = tmp_path / "job.yaml"
    config.write_text(JOB)
    clean_status, _ = render(capsys, config, tmp_path / "clean")
    clean = files_of(tmp_path / "clean")
    assert clean_status == 0
    pages = sum(math.ceil(len(data) / PAGE) for data in clean.values())
    mount = tmpfs(f"size={pages // 2 * PAGE}")  # room for about half of the dataset
    out = mount / "dataset"
    status, lines = render(capsys, config, out)
    assert status == 2 and len(lines) == 1 and "No space left on device" in lines[0], lines
    manifest = out / "manifest.json"
    assert not manifest.exists() or json.loads(manifest.read_text())["complete"] is False
    assert not [p for p in out.rglob("*") if p.name.endswith(".tmp")]  # no temporary file left behind
    remount = subprocess.run(["mount", "-o", f"remount,size={4 * pages * PAGE}", str(mount)], capture_output=True)
    assert remount.returncode == 0, remount.stderr
    assert render(capsys, config, out)[0] == 0
    resumed = files_of(out)
    assert sorted(resumed) == sorted(clean)
    assert {k: v for k, v in resumed.items() if k != "manifest.json"} == {
        k: v for k, v in clean.items() if k != "manifest.json"
    }
    assert without_out(resumed["manifest.json"]) == without_out(clean["manifest.json"])


def test_a_read_only_output_folder_is_one_line(tmp_path, capsys, tmpfs):
    config = tmp_path / "job.yaml"
    config.write_text(JOB)
    mount = tmpfs("size=1m,ro")
    status, lines = render(capsys, config, mount / "dataset")
    assert status == 2 and len(lines) == 1 and "Read-only file system" in lines[0], lines
    assert not any(mount.iterdir())
