"""Atomic file writes: a file either has its complete new contents or is untouched.

Every file nerfdata writes goes through :func:`atomic_path`: the data is written to a temporary file
in the same folder, flushed to disk, and renamed over the target (``os.replace`` is atomic on POSIX
and Windows within one file system). A crash leaves at most a stray ``.tmp`` file, never a truncated
target.

This is also where a failing write becomes one line: an ``OSError`` while writing (no space left on
the device, a read-only or forbidden folder, an output path under a file) is an
:class:`~nerfdata.errors.OutputError` naming the file and the reason, and the temporary file is
removed.
"""

import contextlib
import hashlib
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from nerfdata import strict_json
from nerfdata.errors import NerfDataError, OutputError

__all__ = ["atomic_path", "output_error", "sha256_file", "write_bytes_atomic", "write_json_atomic", "write_text_atomic"]


def _default_file_mode() -> int:
    """The mode a plain ``open(path, "w")`` would give (mkstemp's files are private, 0600)."""
    umask = os.umask(0)
    os.umask(umask)
    return 0o666 & ~umask


_FILE_MODE = _default_file_mode()


@contextlib.contextmanager
def atomic_path(path: str | Path) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; on success it replaces ``path``, on error it is removed.

    Example:
        >>> import tempfile, pathlib
        >>> target = pathlib.Path(tempfile.mkdtemp()) / "a.txt"
        >>> with atomic_path(target) as tmp:
        ...     _ = tmp.write_text("hello")
        >>> target.read_text()
        'hello'

    Raises:
        OutputError: the file cannot be written (an ``OSError`` of the folder or of the write), one
            line naming ``path``; nothing is left behind.
    """
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
        os.close(fd)
    except OSError as error:
        raise output_error(path, error) from None
    tmp = Path(tmp_name)
    try:
        yield tmp
        with open(tmp, "rb+") as handle:
            os.fsync(handle.fileno())
        os.chmod(tmp, _FILE_MODE)  # writers may have recreated the file, so set the mode last
        os.replace(tmp, path)
    except OSError as error:
        if isinstance(error, NerfDataError):
            raise
        raise output_error(path, error) from None
    finally:
        with contextlib.suppress(OSError):
            tmp.unlink(missing_ok=True)


def output_error(path: str | Path, error: OSError) -> OutputError:
    """The one-line :class:`OutputError` for ``error`` met while writing ``path``.

    Example:
        >>> import errno
        >>> str(output_error("out/a.png", OSError(errno.ENOSPC, "No space left on device")))
        'out/a.png: cannot write: No space left on device'
    """
    # mkdir(exist_ok=True) of a folder that is a file says "File exists": the problem is that it is no folder.
    reason = "Not a directory" if isinstance(error, FileExistsError) else error.strerror or str(error)
    where = f" ({error.filename})" if error.filename and Path(error.filename).name != Path(path).name else ""
    return OutputError(f"{path}: cannot write: {reason}{where}")


def write_bytes_atomic(path: str | Path, data: bytes) -> None:
    with atomic_path(path) as tmp:
        tmp.write_bytes(data)


def write_text_atomic(path: str | Path, text: str) -> None:
    write_bytes_atomic(path, text.encode("utf-8"))


def write_json_atomic(path: str | Path, value: Any) -> None:
    """Write ``value`` as indented strict JSON (:func:`nerfdata.strict_json.dumps`: infinity as ``"inf"``)."""
    write_text_atomic(path, strict_json.dumps(value))


def sha256_file(path: str | Path, block_size: int = 1 << 20) -> str:
    """Hex sha256 of a file's bytes, read in blocks."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while block := handle.read(block_size):
            digest.update(block)
    return digest.hexdigest()
