"""Strict JSON, read and written in one place: what every nerfdata file in JSON goes through.

Writing (:func:`dumps`): standard JSON only (``allow_nan=False``), so that any reader parses it
(JavaScript's ``JSON.parse`` rejects Python's ``Infinity``). JSON has no infinity, so nerfdata
writes an infinite number as the string ``"inf"`` (``"-inf"`` for minus infinity): e.g. a render
config's ``"far": "inf"``, no far limit. NaN has no meaning in any file nerfdata writes and is
refused, naming its key. Everything else is written exactly as ``json.dumps(value, indent=2)``.

Reading (:func:`read_json`): a file larger than :data:`MAX_JSON_BYTES` is refused before it is
read; bytes that are not UTF-8, syntax errors, nesting too deep for the parser and ``NaN`` are one
line naming the file. ``Infinity`` (what nerfdata wrote before it wrote ``"inf"``) still reads as
infinity; typed readers (:func:`nerfdata.config.from_dict`) take ``"inf"`` for a number.

Example:
    >>> print(dumps({"near": 0.0, "far": float("inf")}), end="")
    {
      "near": 0.0,
      "far": "inf"
    }
    >>> loads('{"far": Infinity}', "old.json")
    {'far': inf}
"""

import json
import math
from pathlib import Path
from typing import Any

from nerfdata.errors import NerfDataError

__all__ = ["INFINITY", "MAX_JSON_BYTES", "canonical", "decode_infinity", "dumps", "loads", "read_json"]

INFINITY = "inf"
"""How an infinite number is written (``"-inf"`` for minus infinity)."""

MAX_JSON_BYTES = 64 * 2**20
"""Largest JSON file read (64 MiB: a transforms.json of some 100 000 frames); larger ones are refused unread."""


def _encodable(value: Any, where: str) -> Any:
    """``value`` with infinite floats as ``"inf"`` / ``"-inf"``; containers are copied only where one changes."""
    if isinstance(value, float):
        if math.isnan(value):
            raise ValueError(f"{where}: NaN cannot be written as JSON")
        if math.isinf(value):
            return INFINITY if value > 0 else "-" + INFINITY
        return value
    if isinstance(value, dict):
        items = {key: _encodable(item, f"{where}.{key}") for key, item in value.items()}
        return items if any(items[k] is not value[k] for k in value) else value
    if isinstance(value, (list, tuple)):
        items = [_encodable(item, f"{where}[{i}]") for i, item in enumerate(value)]
        return items if any(a is not b for a, b in zip(items, value, strict=True)) else value
    return value


def dumps(value: Any) -> str:
    """Indented strict JSON of ``value`` with a trailing newline (keys in insertion order).

    Raises:
        ValueError: ``value`` holds a NaN (naming its key path): a bug in the writer, never user input.
    """
    return json.dumps(_encodable(value, "$"), indent=2, allow_nan=False) + "\n"


def canonical(value: Any) -> bytes:
    """The canonical strict JSON of ``value`` (sorted keys, no spaces, ASCII): what a checksum of content hashes.

    Example:
        >>> canonical({"b": 1, "a": [1.5, float("inf")]})
        b'{"a":[1.5,"inf"],"b":1}'
    """
    return json.dumps(_encodable(value, "$"), sort_keys=True, separators=(",", ":"), allow_nan=False).encode()


def _constant(name: str) -> float:
    if name == "NaN":
        raise ValueError("NaN is not a number nerfdata reads")
    return math.inf if name == "Infinity" else -math.inf


def loads(text: str, where: str | Path, error: type[NerfDataError] = NerfDataError, what: str = "JSON") -> Any:
    """Parse JSON ``text`` read from ``where``.

    Raises:
        NerfDataError: (or ``error``) one line naming ``where``: a syntax error, NaN, nesting too
            deep (``unreadable JSON (...)``; ``what`` names the file's kind instead of ``JSON``).
    """
    try:
        return json.loads(text, parse_constant=_constant)
    except RecursionError:
        raise error(f"{where}: {what} nested too deeply to read") from None
    except ValueError as problem:  # JSONDecodeError is a ValueError
        raise error(f"{where}: unreadable {what} ({problem})") from None


def read_json(path: str | Path, error: type[NerfDataError] = NerfDataError, what: str = "JSON") -> Any:
    """Read and parse the JSON file ``path`` (at most :data:`MAX_JSON_BYTES`).

    Raises:
        NerfDataError: (or ``error``) one line naming ``path``: missing, too large, not UTF-8, not
            JSON (``what`` names the file's kind in the message, e.g. ``checkpoint description``).
    """
    path = Path(path)
    try:
        size = path.stat().st_size
        if size > MAX_JSON_BYTES:
            limit = MAX_JSON_BYTES // 2**20
            raise error(f"{path}: {size / 2**20:.0f} MiB, larger than the {limit} MiB a JSON file may be")
        data = path.read_bytes()
    except FileNotFoundError:
        raise error(f"{path}: not found") from None
    except OSError as problem:
        raise error(f"{path}: cannot read ({problem.strerror or problem})") from None
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as problem:
        raise error(f"{path}: not UTF-8 text ({problem.reason} at byte {problem.start})") from None
    return loads(text, path, error, what)


def decode_infinity(value: Any) -> Any:
    """``value``, or the float it stands for when it is ``"inf"`` / ``"-inf"``.

    Example:
        >>> decode_infinity("inf"), decode_infinity("-inf"), decode_infinity("a")
        (inf, -inf, 'a')
    """
    if value == INFINITY:
        return math.inf
    if value == "-" + INFINITY:
        return -math.inf
    return value
