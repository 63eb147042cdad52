"""Typed configs from YAML: strict, with the closest valid key suggested for a mistyped one.

Jobs are dataclasses; :func:`from_dict` builds one from plain data (a ``yaml.safe_load`` result),
checking every key and value type against the annotations and naming the offending key by its
dotted path. :func:`to_dict` turns a config back into plain data (for manifests).

What every config value must be, whatever its dataclass: integers fit in 64 bits, a key named
``seed`` is in ``[0, 2^63)`` (what every random generator takes), numbers are never NaN, and a
number may be written ``"inf"`` / ``"-inf"`` (how nerfdata's JSON files write infinity; YAML's
``.inf`` works too). :func:`load_yaml` reads at most :data:`MAX_YAML_BYTES` and refuses a key given
twice in one mapping (YAML would silently keep the last).
"""

import dataclasses
import difflib
import types
import typing
from pathlib import Path
from typing import Any, Literal, TypeVar, Union

import yaml

from nerfdata.errors import ConfigError
from nerfdata.strict_json import decode_infinity

__all__ = ["MAX_YAML_BYTES", "from_dict", "load_yaml", "to_dict"]

T = TypeVar("T")

MAX_YAML_BYTES = 256 * 2**10
"""Largest YAML file read (256 KiB; the largest shipped config is 3 KB). PyYAML parses some 30 KB a
second, so a larger file would keep a job parsing for minutes before it could say anything."""

_INT64 = 2**63
_MERGE_TAG = "tag:yaml.org,2002:merge"


class _DuplicateKey(yaml.YAMLError):
    def __init__(self, key: Any, first_line: int, line: int) -> None:
        super().__init__(f"key {key!r} is given twice (lines {first_line} and {line}); remove one")


class _StrictLoader(yaml.SafeLoader):
    """``yaml.SafeLoader`` that refuses a mapping giving the same key twice (``<<`` merges may be overridden)."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        if isinstance(node, yaml.MappingNode):
            lines: dict[Any, int] = {}
            for key_node, _ in node.value:
                if key_node.tag == _MERGE_TAG:
                    continue
                key, line = self.construct_object(key_node, deep=True), key_node.start_mark.line + 1
                try:
                    if key in lines:
                        raise _DuplicateKey(key, lines[key], line)
                    lines[key] = line
                except TypeError:  # an unhashable key: the base class refuses it, with its position
                    continue
        return super().construct_mapping(node, deep)


def load_yaml(path: str | Path) -> dict[str, Any]:
    """Read a YAML mapping with a safe loader (never constructs arbitrary objects).

    Raises:
        ConfigError: one line naming ``path``: missing, larger than :data:`MAX_YAML_BYTES`, not
            UTF-8, not YAML, a key given twice (naming it and both lines), not a mapping.
    """
    path = Path(path)
    try:
        size = path.stat().st_size
        if size > MAX_YAML_BYTES:
            raise ConfigError(
                f"{path}: {size / 2**10:.0f} KiB, larger than the {MAX_YAML_BYTES // 2**10} KiB a config file may be"
            )
        data = yaml.load(path.read_bytes().decode("utf-8"), Loader=_StrictLoader)  # a SafeLoader: builds no objects
    except FileNotFoundError:
        raise ConfigError(f"{path}: config file not found") from None
    except _DuplicateKey as error:
        raise ConfigError(f"{path}: {error}") from None
    except UnicodeDecodeError as error:
        raise ConfigError(f"{path}: not UTF-8 text ({error.reason} at byte {error.start})") from None
    except RecursionError:
        raise ConfigError(f"{path}: YAML nested too deeply to read") from None
    except (OSError, yaml.YAMLError) as error:
        raise ConfigError(f"{path}: cannot read YAML ({error})".replace("\n", " ")) from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: expected a mapping of keys to values at the top level")
    return data


def _suggest(key: str, valid: list[str]) -> str:
    close = difflib.get_close_matches(key, valid, n=1, cutoff=0.5)
    return f"; did you mean '{close[0]}'?" if close else f"; valid keys: {', '.join(sorted(valid))}"


def _convert(value: Any, annotation: Any, where: str) -> Any:
    origin = typing.get_origin(annotation)
    args = typing.get_args(annotation)
    if annotation is Any:
        return value
    if origin in (Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        errors = []
        for option in (a for a in args if a is not type(None)):
            try:
                return _convert(value, option, where)
            except ConfigError as error:
                errors.append(str(error))
        raise ConfigError(errors[0] if len(errors) == 1 else f"{where}: {value!r} matches none of the allowed types")
    if origin is Literal:
        if value not in args:
            close = difflib.get_close_matches(str(value), [str(a) for a in args], n=1, cutoff=0.5)
            hint = f"; did you mean {close[0]!r}?" if close else ""
            raise ConfigError(f"{where}: {value!r} is not one of {', '.join(repr(a) for a in args)}{hint}")
        return value
    if dataclasses.is_dataclass(annotation):
        return from_dict(annotation, value, where)
    if origin in (tuple, list):
        if not isinstance(value, (list, tuple)):
            raise ConfigError(f"{where}: expected a list, got {value!r}")
        if origin is tuple and args and args[-1] is not Ellipsis:
            if len(value) != len(args):
                raise ConfigError(f"{where}: expected {len(args)} values, got {len(value)}")
            items = [_convert(v, a, f"{where}[{i}]") for i, (v, a) in enumerate(zip(value, args, strict=True))]
        else:
            item_type = args[0] if args else Any
            items = [_convert(v, item_type, f"{where}[{i}]") for i, v in enumerate(value)]
        return tuple(items) if origin is tuple else items
    if origin is dict:
        if not isinstance(value, dict):
            raise ConfigError(f"{where}: expected a mapping, got {value!r}")
        return dict(value)
    if annotation is bool:
        if not isinstance(value, bool):
            raise ConfigError(f"{where}: expected true or false, got {value!r}")
        return value
    if annotation is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(f"{where}: expected an integer, got {value!r}")
        low = 0 if where.rsplit(".", 1)[-1] == "seed" else -_INT64
        if not low <= value < _INT64:
            what = "a seed" if low == 0 else "an integer"
            raise ConfigError(f"{where}: expected {what} in [{low}, 2^63), got {value}")
        return value
    if annotation is float:
        value = decode_infinity(value)
        if isinstance(value, bool) or not isinstance(value, (int, float)) or value != value:
            raise ConfigError(f"{where}: expected a number, got {value!r}")
        try:
            return float(value)
        except OverflowError:  # an integer beyond any float
            raise ConfigError(f"{where}: {value} is too large a number") from None
    if annotation is str:
        if not isinstance(value, str):
            raise ConfigError(f"{where}: expected a string, got {value!r}")
        return value
    if annotation is Path:
        if not isinstance(value, (str, Path)):
            raise ConfigError(f"{where}: expected a path, got {value!r}")
        return Path(value)
    raise TypeError(f"{where}: unsupported config annotation {annotation!r}")  # a bug in a config class


def from_dict(cls: type[T], data: Any, where: str = "config") -> T:
    """Build dataclass ``cls`` from plain data, rejecting unknown keys and ill-typed values.

    Raises:
        ConfigError: naming the dotted key path, e.g. ``config.views.count: expected an integer``,
            and for unknown keys the closest valid key.

    Example:
        >>> @dataclasses.dataclass
        ... class Job:
        ...     views: int = 1
        >>> from_dict(Job, {"views": 3})
        Job(views=3)
        >>> from_dict(Job, {"veiws": 3})
        Traceback (most recent call last):
        ...
        nerfdata.errors.ConfigError: config: unknown key 'veiws'; did you mean 'views'?
    """
    if not isinstance(data, dict):
        raise ConfigError(f"{where}: expected a mapping of keys to values, got {data!r}")
    hints = typing.get_type_hints(cls)
    known = {f.name: f for f in dataclasses.fields(cls) if f.init}
    for key in data:
        if key not in known:
            raise ConfigError(f"{where}: unknown key '{key}'{_suggest(str(key), list(known))}")
    values = {}
    for name, spec in known.items():
        if name in data:
            values[name] = _convert(data[name], hints[name], f"{where}.{name}")
        elif spec.default is dataclasses.MISSING and spec.default_factory is dataclasses.MISSING:
            raise ConfigError(f"{where}: missing required key '{name}'")
    try:
        return cls(**values)
    except ConfigError:
        raise
    except (TypeError, ValueError) as error:
        raise ConfigError(f"{where}: {error}") from None


def to_dict(config: Any) -> Any:
    """Plain data (dicts, lists, str, numbers) of a config, suitable for JSON or YAML."""
    if dataclasses.is_dataclass(config) and not isinstance(config, type):
        return {f.name: to_dict(getattr(config, f.name)) for f in dataclasses.fields(config)}
    if isinstance(config, (list, tuple)):
        return [to_dict(v) for v in config]
    if isinstance(config, dict):
        return {str(k): to_dict(v) for k, v in config.items()}
    if isinstance(config, Path):
        return str(config)
    return config
