"""Output folders: the lock, which files are ours, overwrite that removes only those, temp-file clean-up,
output paths checked before any work (nerfdata/writers/output_folder.py)."""

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from nerfdata.atomic import atomic_path
from nerfdata.errors import NerfDataError
from nerfdata.writers.output_folder import (
    LOCK_NAME,
    add_owned_files,
    check_output_file,
    check_output_folder,
    claim_output_folder,
    foreign_files,
    is_temp_file,
    output_folder_lock,
    owned_files,
)

ROOT = Path(__file__).resolve().parents[1]

HOLD_LOCK = """
import fcntl, sys
handle = open(sys.argv[1], "a")
fcntl.flock(handle, fcntl.LOCK_EX)
print("locked", flush=True)
sys.stdin.read()
"""


def hold_lock(folder: Path) -> subprocess.Popen:
    """Another process holding ``folder``'s lock (plain fcntl, as the documented contract says) until stdin closes."""
    folder.mkdir(parents=True, exist_ok=True)
    process = subprocess.Popen([sys.executable, "-c", HOLD_LOCK, str(folder / LOCK_NAME)], stdin=subprocess.PIPE,
                               stdout=subprocess.PIPE, text=True, cwd=ROOT)
    assert process.stdout is not None and process.stdout.readline().strip() == "locked"
    return process


def release(process: subprocess.Popen) -> None:
    assert process.stdin is not None
    process.stdin.close()
    process.wait(timeout=30)


def dataset_folder(folder: Path, job_hash: str = "a") -> Path:
    """A folder as a render job leaves it: manifest, its files, a view's file."""
    (folder / "images").mkdir(parents=True)
    (folder / "images/00000.png").write_bytes(b"png")
    (folder / "transforms.json").write_text("{}")
    manifest = {"nerfdata_version": "x", "kind": "render", "complete": True, "config_hash": job_hash,
                "views": [{"index": 0, "files": {"rgb": {"path": "images/00000.png", "sha256": "0"}}}],
                "files": ["transforms.json"]}
    (folder / "manifest.json").write_text(json.dumps(manifest))
    return folder


def test_temp_names_are_exactly_the_atomic_writers(tmp_path):
    with atomic_path(tmp_path / "images" / "00003.png") as tmp:
        assert is_temp_file(tmp.name)
    for name in ("notes.tmp", ".notes.tmp", "00003.png.tmp", ".00003.png.abc.tmp", ".00003.png.ABCDEFGH.tmp"):
        assert not is_temp_file(name), name


def test_owned_files_are_what_the_manifest_lists_inside_the_folder():
    manifest = {"files": ["transforms.json", "../outside.txt", "/etc/passwd", "a/../../b"],
                "views": [{"files": {"rgb": {"path": "images/0.png"}, "depth": "depth/0.npy"}}]}
    assert owned_files(manifest) == {"manifest.json", "transforms.json", "images/0.png", "depth/0.npy"}
    assert owned_files(None) == set()


def test_manifests_from_before_the_files_list_still_own_their_job_files():
    assert owned_files({"kind": "render"}) == {"manifest.json", "transforms.json", "preview.png"}
    extracted = {"kind": "render", "mesh": {"path": "mesh.ply", "source": "extracted"}}
    assert "mesh.ply" in owned_files(extracted)
    assert "mesh.ply" not in owned_files({"kind": "render", "mesh": {"path": "/data/scan.ply", "source": "given"}})
    assert owned_files({"kind": "scene", "mesh": {"file": "mesh.ply"}}) == {"manifest.json", "transforms.json",
                                                                           "mesh.ply"}
    assert owned_files({"kind": "something else"}) == {"manifest.json"}
    assert owned_files({"kind": "render", "files": []}) == {"manifest.json"}  # an explicit list is the list


def test_a_second_holder_of_the_lock_is_refused_at_once(tmp_path):
    folder = tmp_path / "out"
    process = hold_lock(folder)
    try:
        start = time.perf_counter()
        with pytest.raises(NerfDataError, match="another nerfdata job is writing this folder"), \
                output_folder_lock(folder):
            pass
        assert time.perf_counter() - start < 5.0
    finally:
        release(process)
    with output_folder_lock(folder) as lock:  # free again: taken, and removed when given back
        assert lock.is_file()
        with pytest.raises(NerfDataError, match="another nerfdata job"), output_folder_lock(folder):
            pass  # a second open file description in the same process is refused too
    assert not (folder / LOCK_NAME).exists()


def test_a_users_file_named_like_the_lock_is_not_taken(tmp_path):
    (tmp_path / LOCK_NAME).write_text("my notes")
    with pytest.raises(NerfDataError, match="not a nerfdata lock file"), output_folder_lock(tmp_path):
        pass
    assert (tmp_path / LOCK_NAME).read_text() == "my notes"


def test_overwrite_removes_only_listed_files_and_refuses_a_folder_with_anything_else(tmp_path):
    folder = dataset_folder(tmp_path / "out")
    (folder / "images/mine.png").write_bytes(b"a user's image")
    for overwrite in (False, True):
        with pytest.raises(NerfDataError, match=r"did not write \(images/mine.png\)"), \
                claim_output_folder(folder, "b", overwrite):
            pass
    assert sorted(p.name for p in folder.rglob("*")) == ["00000.png", "images", "manifest.json", "mine.png",
                                                         "transforms.json"]
    (folder / "images/mine.png").unlink()
    with pytest.raises(NerfDataError, match="holds a different nerfdata job"), claim_output_folder(folder, "b"):
        pass
    with claim_output_folder(folder, "b", overwrite=True) as previous:
        assert previous is None and sorted(folder.iterdir()) == [folder / LOCK_NAME]
    assert folder.is_dir() and not any(folder.iterdir())


def test_the_same_job_is_handed_its_manifest_and_foreign_files_stay(tmp_path):
    folder = dataset_folder(tmp_path / "out")
    (folder / "notes.txt").write_text("mine")
    with claim_output_folder(folder, "a") as previous:
        assert previous is not None and previous["config_hash"] == "a"
    assert (folder / "notes.txt").read_text() == "mine" and (folder / "images/00000.png").is_file()
    (folder / "notes.txt").unlink()
    with pytest.raises(NerfDataError, match="this job's output already"), \
            claim_output_folder(folder, "a", same_job="refuse"):
        pass


def test_folders_without_a_manifest_are_refused_with_or_without_overwrite(tmp_path):
    checkpoint = tmp_path / "ckpt"
    checkpoint.mkdir()
    (checkpoint / "field.json").write_text("{}")
    for overwrite in (False, True):
        with pytest.raises(NerfDataError, match=r"not a nerfdata output \(field.json\)"), \
                claim_output_folder(checkpoint, "a", overwrite):
            pass
    assert (checkpoint / "field.json").read_text() == "{}"


def test_our_temp_files_are_removed_under_the_lock_and_nothing_else(tmp_path):
    folder = dataset_folder(tmp_path / "out")
    stale = [folder / "images/.00001.png.k2x_9q0a.tmp", folder / ".manifest.json.abcdefgh.tmp"]
    for path in stale:
        path.write_bytes(b"half a file")
    kept = [folder / "images/notes.tmp", folder / "images/.keep.tmp"]
    for path in kept:
        path.write_text("mine")
    nested = folder / "correspondences"  # another output's folder: its own job cleans it
    nested.mkdir()
    (nested / "manifest.json").write_text("{}")
    (nested / ".00000_00001.npz.abcdefgh.tmp").write_bytes(b"being written")
    with claim_output_folder(folder, "a"):
        assert not any(path.exists() for path in stale)
    assert all(path.read_text() == "mine" for path in kept)
    assert (nested / ".00000_00001.npz.abcdefgh.tmp").exists()
    assert foreign_files(folder, owned_files(json.loads((folder / "manifest.json").read_text()))) == [
        "correspondences/manifest.json", "images/.keep.tmp", "images/notes.tmp"]


def test_a_later_job_can_list_its_files_in_an_output(tmp_path):
    folder = dataset_folder(tmp_path / "out")
    add_owned_files(folder, [folder / "inerf/results.json"])
    assert "inerf/results.json" in owned_files(json.loads((folder / "manifest.json").read_text()))
    with pytest.raises(NerfDataError, match="not inside"):
        add_owned_files(folder, [tmp_path / "elsewhere.json"])


def test_output_paths_are_checked(tmp_path):
    a_file = tmp_path / "file.txt"
    a_file.write_text("x")
    with pytest.raises(NerfDataError, match="is a folder"):
        check_output_file(tmp_path)
    with pytest.raises(NerfDataError, match=r"lies under .*file\.txt, which is a file"):
        check_output_file(a_file / "mesh.ply")
    with pytest.raises(NerfDataError, match=r"lies under .*file\.txt, which is a file"):
        check_output_file(a_file / "deeper/mesh.ply")
    with pytest.raises(NerfDataError, match="exists and is not a folder"):
        check_output_folder(a_file)
    check_output_file(tmp_path / "new/deeper/mesh.ply")  # made when written
    assert sorted(p.name for p in tmp_path.iterdir()) == ["file.txt"]  # the probe leaves nothing


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes into read-only folders; the probe is right to allow it")
def test_a_read_only_place_is_refused(tmp_path):
    tmp_path.chmod(0o555)
    try:
        with pytest.raises(NerfDataError, match="cannot write in"):
            check_output_file(tmp_path / "mesh.ply")
    finally:
        tmp_path.chmod(0o755)


@pytest.mark.parametrize("text", ['{"complete": NaN, "files": []}', "[" * 100_000 + "]" * 100_000, "{"])
def test_a_manifest_that_is_not_strict_json_is_one_clear_error(tmp_path, text):
    from nerfdata.writers.manifest import read_manifest

    (tmp_path / "manifest.json").write_text(text)
    with pytest.raises(NerfDataError, match=r"manifest\.json: .*manifest") as error:
        read_manifest(tmp_path)
    assert "\n" not in str(error.value)
