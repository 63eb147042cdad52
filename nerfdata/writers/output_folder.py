"""Output folders and files a job writes: the lock, which files are ours, safe overwrite, temp-file clean-up.

A user's files are never removed or replaced. The rules, in one place:

* **Ours** are the files an output folder's ``manifest.json`` lists (:func:`owned_files`: its
  ``"files"`` and every view's ``"files"``), the manifest itself, the lock file and the atomic
  writer's temporary files (:func:`is_temp_file`). Anything else in the folder is the user's, and so
  is every file of a nested output (a subfolder with a manifest of its own): it belongs to that
  output, not to this folder's job.
* **Lock**: a job holds an exclusive ``fcntl.flock`` on ``OUT/.nerfdata.lock`` from before it
  looks at the folder until it is done (:func:`output_folder_lock`); a second job on the same folder
  stops at once. The lock file is ours: made empty on taking the lock, removed on giving it back.
* **Resume, overwrite**: :func:`claim_output_folder` takes the lock, removes our temporary files
  (a killed job leaves them; a later complete dataset must not hold them), and then resumes the same
  job, starts in an empty folder, or replaces a different job's files with ``overwrite``, removing
  only files its manifest lists. A folder holding anything that is not ours is refused, with or
  without ``overwrite``, naming one such file.
* **Output paths are checked before any work** (:func:`check_output_file`): a folder where a file
  goes, a path under a file, a place where nothing can be written.

A later job writing into an output (``inerf solve``'s results in a targets folder) lists its files
there first (:func:`add_owned_files`), under that folder's lock.

A kill between a file's write and the manifest record that lists it leaves that one file unlisted:
a resume of the same job rewrites it; a different job refuses the folder, naming it. Jobs list the
files they can name beforehand (transforms.json, meshes, models, targets) before writing them.
"""

import contextlib
import errno
import fcntl
import os
import re
import tempfile
from collections.abc import Iterable, Iterator
from pathlib import Path, PurePosixPath
from typing import Any, Literal

from nerfdata.errors import NerfDataError
from nerfdata.writers.manifest import MANIFEST_NAME, read_manifest, write_manifest

__all__ = [
    "LOCK_NAME",
    "add_owned_files",
    "check_output_file",
    "check_output_folder",
    "claim_output_folder",
    "foreign_files",
    "is_temp_file",
    "output_folder_lock",
    "owned_files",
    "remove_owned_files",
    "remove_temp_files",
]

LOCK_NAME = ".nerfdata.lock"
"""The lock file of an output folder (empty; present only while a job holds it, or after a kill)."""

_TEMP_NAME = re.compile(r"\..+\.[a-z0-9_]{8}\.tmp")
"""The atomic writer's temporary names (:func:`nerfdata.atomic.atomic_path`): ``tempfile.mkstemp``
with prefix ``.NAME.`` and suffix ``.tmp``, whose random part is 8 of ``[a-z0-9_]``."""


def is_temp_file(name: str) -> bool:
    """Whether a file name is one of the atomic writer's temporary files.

    Example:
        >>> is_temp_file(".00003.png.k2x_9q0a.tmp"), is_temp_file("notes.tmp"), is_temp_file(".a.tmp")
        (True, False, False)
    """
    return _TEMP_NAME.fullmatch(name) is not None


def _relative(path: str) -> str | None:
    """A manifest's listed path as a plain relative POSIX path inside its folder, or None if it leaves it."""
    if not isinstance(path, str) or not path or "\\" in path:
        return None
    pure = PurePosixPath(path)
    if pure.is_absolute() or ".." in pure.parts:
        return None
    return pure.as_posix()


def owned_files(manifest: dict[str, Any] | None) -> set[str]:
    """The files (relative POSIX paths) a folder's manifest lists as written by nerfdata.

    Listed are the manifest itself, its ``"files"`` (a list of paths: a job's own files) and each of its
    ``"views"``' ``"files"`` (``{name: path}`` or ``{name: {"path": ...}}``). Paths that would leave the
    folder (absolute, ``..``) are not ours, whatever the manifest says. A render or scene manifest
    written before ``"files"`` existed owns the job files its kind always wrote (transforms.json,
    preview.png, an extracted mesh.ply).

    Example:
        >>> sorted(owned_files({"files": ["transforms.json"], "views": [{"files": {"rgb": {"path": "images/0.png"}}}]}))
        ['images/0.png', 'manifest.json', 'transforms.json']
    """
    if manifest is None:
        return set()
    files = manifest.get("files") if "files" in manifest else _legacy_job_files(manifest)
    listed: list[Any] = [MANIFEST_NAME, *(files if isinstance(files, list) else [])]
    for view in manifest.get("views") or []:
        files = view.get("files") if isinstance(view, dict) else None
        for entry in (files or {}).values() if isinstance(files, dict) else ():
            listed.append(entry.get("path") if isinstance(entry, dict) else entry)
    return {relative for path in listed if (relative := _relative(path)) is not None}


def _legacy_job_files(manifest: dict[str, Any]) -> list[str]:
    """A job's own files as a render or scene manifest written before ``"files"`` existed implies them."""
    kind, mesh = manifest.get("kind"), manifest.get("mesh")
    extracted = isinstance(mesh, dict) and mesh.get("source") in ("extracted", None)
    files = {"render": ["transforms.json", "preview.png"], "scene": ["transforms.json"]}.get(kind, [])
    return [*files, "mesh.ply"] if files and extracted else files


def _is_nested_output(folder: Path) -> bool:
    """Whether a subfolder is an output of its own (it holds a nerfdata manifest)."""
    return (folder / MANIFEST_NAME).is_file()


def _walk(folder: Path) -> Iterator[tuple[str, bool]]:
    """Every entry under ``folder`` that is not a plain folder, as ``(relative path, is ours by name)``.

    Nested outputs are listed as their manifest (they are not ours); symbolic links are listed as
    themselves (nerfdata writes none), not followed.
    """
    for root, dirs, names in os.walk(folder):
        base = Path(root)
        relative_root = base.relative_to(folder)
        for name in sorted(dirs):
            if (base / name).is_symlink():
                names.append(name)
        dirs[:] = sorted(d for d in dirs if not (base / d).is_symlink())
        nested = [d for d in dirs if _is_nested_output(base / d)]
        for name in nested:
            dirs.remove(name)
            yield (relative_root / name / MANIFEST_NAME).as_posix(), False
        for name in sorted(names):
            top_lock = base == folder and name == LOCK_NAME
            yield (relative_root / name).as_posix(), top_lock or is_temp_file(name)


def foreign_files(folder: str | Path, owned: Iterable[str]) -> list[str]:
    """Files under ``folder`` that are not ours: not listed in ``owned``, not the lock, not a temp file."""
    owned = set(owned)
    return [path for path, ours in _walk(Path(folder)) if not ours and path not in owned]


def remove_temp_files(folder: str | Path) -> list[str]:
    """Remove the atomic writer's temporary files under ``folder`` (not inside nested outputs).

    Returns:
        The removed files, relative to ``folder``.
    """
    folder = Path(folder)
    removed = []
    for path, _ in _walk(folder):
        target = folder / path
        if is_temp_file(target.name) and not target.is_symlink() and target.is_file():
            target.unlink(missing_ok=True)
            removed.append(path)
    return removed


def remove_owned_files(folder: str | Path, owned: Iterable[str]) -> None:
    """Remove the listed files under ``folder`` that exist, then the folders they leave empty.

    Only plain files are removed (never a folder's content wholesale); a folder is removed only when
    one of our files was in it and nothing is left.
    """
    folder = Path(folder)
    parents: set[Path] = set()
    for path in sorted(owned):
        relative = _relative(path)
        if relative is None:
            continue
        target = folder / relative
        if target.is_file() and not target.is_symlink():
            target.unlink()
            parents.update(p for p in target.parents if p != folder and folder in p.parents)
    for parent in sorted(parents, key=lambda p: len(p.parts), reverse=True):
        with contextlib.suppress(OSError):  # not empty: something else lives there
            parent.rmdir()


def _existing_ancestor(path: Path) -> Path:
    """The nearest ancestor of ``path`` (itself excluded) that exists."""
    for parent in path.absolute().parents:
        if parent.exists():
            return parent
    return Path("/")


def _probe_writable(folder: Path, what: str) -> None:
    """Refuse ``folder`` unless a file can be created in it (a real probe: root ignores mode bits)."""
    try:
        fd, name = tempfile.mkstemp(prefix=".nerfdata-probe.", suffix=".tmp", dir=folder)
    except OSError as error:
        raise NerfDataError(f"{what}: cannot write in {folder} ({error.strerror or error})") from None
    os.close(fd)
    os.unlink(name)


def check_output_folder(path: str | Path, what: str = "--out") -> None:
    """Refuse an output folder path that cannot become a writable folder, before any work.

    Raises:
        NerfDataError: ``path`` is a file, lies under a file, or nothing can be written where it goes.
    """
    path = Path(path)
    if path.exists() and not path.is_dir():
        raise NerfDataError(f"{what}: {path} exists and is not a folder")
    where = path if path.is_dir() else _existing_ancestor(path)
    if not where.is_dir():
        raise NerfDataError(f"{what}: {path} lies under {where}, which is a file, not a folder")
    _probe_writable(where, what)


def check_output_file(path: str | Path, what: str = "--out") -> None:
    """Refuse an output file path that cannot be written, before any work (whether it exists is the caller's rule).

    Raises:
        NerfDataError: ``path`` is a folder, lies under a file, or its folder is not writable.
    """
    path = Path(path)
    if path.is_dir():
        raise NerfDataError(f"{what}: {path} is a folder; give a file path")
    if path.parent.exists() and not path.parent.is_dir():
        raise NerfDataError(f"{what}: {path} lies under {path.parent}, which is a file, not a folder")
    check_output_folder(path.parent, what)


@contextlib.contextmanager
def output_folder_lock(folder: str | Path) -> Iterator[Path]:
    """Hold the exclusive lock of an output folder (made if missing) for the ``with`` block.

    The lock is ``fcntl.flock`` on ``folder/.nerfdata.lock``, taken without waiting. On release the
    file is removed while still locked; a job that opened it just before then finds, after locking,
    that the path no longer names its file, and tries again (so two jobs never both hold the lock).
    Hand-written rather than with the ``filelock`` package because that one leaves the file behind,
    which would stay in every dataset.

    Raises:
        NerfDataError: another process holds the lock, or the folder cannot be made.
    """
    folder = Path(folder)
    check_output_folder(folder)
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise NerfDataError(f"--out: cannot make {folder} ({error.strerror or error})") from None
    path = folder / LOCK_NAME
    fd = _acquire(path)
    try:
        yield path
    finally:
        with contextlib.suppress(FileNotFoundError):
            path.unlink()
        os.close(fd)  # releases the lock


def _acquire(path: Path, attempts: int = 100) -> int:
    for _ in range(attempts):
        try:
            fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        except OSError as error:
            raise NerfDataError(f"{path}: cannot create the lock file ({error.strerror or error})") from None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as error:
            os.close(fd)
            if error.errno in (errno.EWOULDBLOCK, errno.EACCES, errno.EAGAIN):
                raise NerfDataError(
                    f"{path.parent}: another nerfdata job is writing this folder (it holds {path.name}); "
                    "wait for it to finish or choose another --out"
                ) from None
            raise NerfDataError(f"{path}: cannot lock ({error.strerror or error})") from None
        held = os.fstat(fd)
        try:
            current = os.stat(path)
        except FileNotFoundError:
            current = None
        if current is not None and (current.st_ino, current.st_dev) == (held.st_ino, held.st_dev):
            if held.st_size != 0:  # ours is always empty: a user's file of that name is not ours to lock
                os.close(fd)
                raise NerfDataError(f"{path}: not a nerfdata lock file (it is not empty); move it away")
            return fd
        os.close(fd)  # the holder removed it as we opened it: lock the new one
    raise NerfDataError(f"{path}: could not take the lock (the file keeps changing)")


def add_owned_files(folder: str | Path, paths: Iterable[str | Path]) -> None:
    """List more files as ours in ``folder``'s manifest (a later job writing into an output, before it writes).

    Call it holding the folder's lock. ``paths`` are paths (as any other: absolute, or from the
    current folder) of files inside ``folder``.

    Raises:
        NerfDataError: ``folder`` has no manifest, or a path lies outside it.
    """
    folder = Path(folder)
    manifest = read_manifest(folder)
    if manifest is None:
        raise NerfDataError(f"{folder}: no {MANIFEST_NAME} to list files in")
    listed = set(manifest.get("files") or [])
    for path in paths:
        name = _relative(Path(os.path.relpath(Path(path).absolute(), folder.absolute())).as_posix())
        if name is None:
            raise NerfDataError(f"{path}: not inside {folder}")
        listed.add(name)
    if listed != set(manifest.get("files") or []):
        write_manifest(folder, manifest | {"files": sorted(listed)})


def _refuse_foreign(folder: Path, foreign: list[str], manifest: dict[str, Any] | None) -> None:
    more = f" and {len(foreign) - 1} more" if len(foreign) > 1 else ""
    what = "files nerfdata did not write" if manifest is not None else "files that are not a nerfdata output"
    if PurePosixPath(foreign[0]).name == MANIFEST_NAME and PurePosixPath(foreign[0]).parent.parts:
        what = "another nerfdata output, or files of one"  # a nested export (correspondences/): its own job's
    raise NerfDataError(
        f"{folder}: output folder holds {what} ({foreign[0]}{more}); nerfdata never removes them: "
        "choose another --out"
    )


@contextlib.contextmanager
def claim_output_folder(
    folder: str | Path, job_hash: str, overwrite: bool = False, same_job: Literal["continue", "refuse"] = "continue"
) -> Iterator[dict[str, Any] | None]:
    """Lock ``folder`` for the job ``job_hash`` and make it ready; yields the manifest of the same job, if any.

    Under the lock, our temporary files are removed first. Then: a folder that is empty but for our
    files starts afresh; one holding the same job (its manifest's ``config_hash``) is the job's to
    continue (resume, or write again), or, with ``same_job="refuse"``, is treated as a different job;
    one holding a different job is refused unless ``overwrite``, which removes only the files its
    manifest lists. A folder holding anything else is refused either way.

    Raises:
        NerfDataError: another job holds the folder, it holds a different job (without ``overwrite``)
            or files that are not ours, its manifest is unreadable, or it cannot be written.
    """
    folder = Path(folder)
    with output_folder_lock(folder):
        remove_temp_files(folder)
        manifest = read_manifest(folder)
        same = manifest is not None and manifest.get("config_hash") == job_hash
        if same and same_job == "continue":
            yield manifest
            return
        foreign = foreign_files(folder, owned_files(manifest))
        if foreign:
            _refuse_foreign(folder, foreign, manifest)
        if manifest is not None:
            if not overwrite:
                what = "this job's output already" if same else f"a different nerfdata job ({_kind(manifest)})"
                raise NerfDataError(
                    f"{folder}: output folder is not empty: it holds {what}; choose another --out, "
                    "or pass --overwrite to replace the files nerfdata wrote there"
                )
            remove_owned_files(folder, owned_files(manifest))
        yield None


def _kind(manifest: dict[str, Any]) -> str:
    kind = manifest.get("kind")
    return f"a {kind} job made with another config, field or inputs" if isinstance(kind, str) else "another config"
