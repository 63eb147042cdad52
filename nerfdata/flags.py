"""Command-line flags generated from typed dataclass configs: every config key is a flag.

A command is the dataclass its YAML job file fills. Its flags are the dotted paths of the keys,
with ``-`` or ``_`` between words: ``--camera.width 64``, ``--labels.normals depth``, and for a list
of keys its entry's index, ``--views.0.orbit.count 2``. :func:`parse_command` reads ``--config
X.yaml`` as the base, applies the flags over it as plain data and builds the config with
:func:`nerfdata.config.from_dict`, so that a YAML file and flags are checked by one code path. A flag
that names no key stops with one line naming the closest flag. :func:`help_text` lists the flags
with the values this run would use, from the ``--config`` file, the other flags, else the defaults.

Hand-written rather than tyro: tyro turns ``views: tuple[SamplerConfig, ...]`` (entries whose
members are optional dataclasses) into positional subcommands, not ``--views.0.orbit.count``; its
errors are multi-line boxes; and its help cannot show values that a YAML file resolves.
"""

import dataclasses
import difflib
import shutil
import textwrap
import types
import typing
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any, Literal, TypeVar, Union

import docstring_parser

from nerfdata.config import from_dict, load_yaml, to_dict
from nerfdata.errors import ConfigError

__all__ = ["Command", "Parsed", "Shortcut", "help_text", "parse_command"]

T = TypeVar("T")
Key = str | int
"""One step of a key path: a field name, or an index into a list of entries."""

_TRUE, _FALSE = ("true", "yes", "on", "1"), ("false", "no", "off", "0")
_UNSHOWN = object()
"""A help line without a value in brackets."""


@dataclass(frozen=True)
class Shortcut:
    """A flag that is not a key: it sets keys (``--poses F`` sets ``views`` to that file's poses)."""

    flag: str
    """Name without the dashes, e.g. ``num-views``."""
    annotation: Any
    """Type of its value(s), read like a key's."""
    doc: str
    apply: Callable[[dict[str, Any], Any], None]
    """Sets keys of the plain data from the value."""
    section: str = ""
    """Top-level key whose help section lists it ("" : the first section); it is filled from the
    defaults before ``apply`` when neither the YAML nor an earlier flag gave it."""
    show: Callable[[dict[str, Any]], Any] | None = None
    """The value it stands for in the resolved data, for the help (None: not shown)."""


@dataclass(frozen=True)
class Command:
    """How one subcommand's flags map onto its config dataclass."""

    prog: str
    """e.g. ``nerfdata render``."""
    config: type
    usage: str
    """The usage line after ``usage:``."""
    positional: tuple[tuple[str, str], ...] = ()
    """Keys given as positional arguments, in order, with their metavar (``("data", "DATA_DIR")``)."""
    flat: tuple[str, ...] = ()
    """Top-level keys whose own keys are flags without their prefix (``--resolution``, not
    ``--extraction.resolution``; both are accepted)."""
    config_flag: bool = True
    """Whether ``--config X.yaml`` gives the keys' values."""
    shortcuts: tuple[Shortcut, ...] = ()


@dataclass(frozen=True)
class Parsed:
    """The result of :func:`parse_command`: the config, or the help text when asked for."""

    config: Any = None
    help: str | None = None


# ------------------------------------------------------------------------------------- types


def _members(annotation: Any) -> tuple[Any, ...]:
    if typing.get_origin(annotation) in (Union, types.UnionType):
        return typing.get_args(annotation)
    return (annotation,)


def _group(annotation: Any) -> type | None:
    """The dataclass a key holds (itself, or optional), else None."""
    found = [a for a in _members(annotation) if dataclasses.is_dataclass(a)]
    return found[0] if found else None


def _entries(annotation: Any) -> type | None:
    """The dataclass of a list of entries (``tuple[SamplerConfig, ...]``), else None."""
    if typing.get_origin(annotation) in (tuple, list):
        args = typing.get_args(annotation)
        if args and (len(args) == 1 or args[-1] is Ellipsis) and dataclasses.is_dataclass(args[0]):
            return args[0]
    return None


@cache
def _fields(cls: type) -> dict[str, Any]:
    hints = typing.get_type_hints(cls)
    return {f.name: hints[f.name] for f in dataclasses.fields(cls) if f.init}


@cache
def _docs(cls: type) -> dict[str, str]:
    """Field docstrings (the string literal under each field) and ``""``: the class's summary."""
    parsed = docstring_parser.parse_from_object(cls)
    docs = {p.arg_name: " ".join((p.description or "").split()) for p in parsed.params}
    docs[""] = " ".join((parsed.short_description or "").split())
    return {k: v.replace("``", "") for k, v in docs.items()}


def _one_of(cls: type) -> bool:
    """An entry naming exactly one of its members (``SamplerConfig``: orbit, shell, ...)."""
    return all(type(None) in _members(a) and _group(a) is not None for a in _fields(cls).values())


REQUIRED_UNLESS = "required_unless"
"""Field metadata naming another key: the field is required (in the flags and their help) unless
that key is given (``field`` of a render job, unless ``fields`` lists several)."""


def _field_default(cls: type, name: str) -> Any:
    spec = next(f for f in dataclasses.fields(cls) if f.name == name)
    if REQUIRED_UNLESS in spec.metadata:
        return dataclasses.MISSING
    if spec.default is not dataclasses.MISSING:
        return spec.default
    if spec.default_factory is not dataclasses.MISSING:
        return spec.default_factory()
    return dataclasses.MISSING


def _plain(value: Any) -> Any:
    """Plain data of a default value; entries of a one-of drop their unset members."""
    if dataclasses.is_dataclass(value) and _one_of(type(value)):
        return {k: v for k, v in to_dict(value).items() if v is not None}
    if isinstance(value, (tuple, list)):
        return [_plain(v) for v in value]
    return to_dict(value)


def _flag_name(path: Sequence[Key]) -> str:
    return ".".join(str(k).replace("_", "-") for k in path)


# ------------------------------------------------------------------------------------- values


def _arity(annotation: Any) -> tuple[int, int | None]:
    """How many tokens a key's flag takes: (fewest, most; None: any number)."""
    if annotation is bool:
        return 0, 1
    members = _members(annotation)
    if len(members) > 1:
        spans = [(1, 1) if m is type(None) else _arity(m) for m in members]
        most = [s[1] for s in spans]
        return min(s[0] for s in spans), None if None in most else max(m for m in most if m is not None)
    origin, args = typing.get_origin(annotation), typing.get_args(annotation)
    if origin in (tuple, list):
        if origin is tuple and args and args[-1] is not Ellipsis:
            total = sum(_arity(a)[0] for a in args)
            return total, total
        return 1, None
    return 1, 1


def _metavar(annotation: Any) -> str:
    if annotation is bool:
        return ""
    members = _members(annotation)
    if len(members) > 1:
        return "|".join("None" if m is type(None) else _metavar(m) for m in members)
    origin, args = typing.get_origin(annotation), typing.get_args(annotation)
    if origin is Literal:
        return "{" + ",".join(str(a) for a in args) + "}"
    if origin in (tuple, list):
        if origin is tuple and args and args[-1] is not Ellipsis:
            return " ".join(_metavar(a) for a in args)
        item = _metavar(args[0]) if args else "VALUE"
        return f"{item} [{item} ...]"
    return {int: "INT", float: "FLOAT", str: "TEXT", Path: "PATH"}.get(annotation, "VALUE")


def _read(annotation: Any, tokens: list[str]) -> Any:
    """Plain data of ``tokens`` for a key of type ``annotation``; ValueError says what was expected."""
    members = _members(annotation)
    if len(members) > 1:
        if type(None) in members and len(tokens) == 1 and tokens[0] in ("None", "null"):
            return None
        errors = []
        for member in (m for m in members if m is not type(None)):
            low, high = _arity(member)
            if low <= len(tokens) and (high is None or len(tokens) <= high):
                try:
                    return _read(member, tokens)
                except ValueError as error:
                    errors.append(str(error))
        raise ValueError(
            errors[0] if len(errors) == 1 else f"expected {_metavar(annotation)}, got {' '.join(tokens)!r}"
        )
    origin, args = typing.get_origin(annotation), typing.get_args(annotation)
    if annotation is bool:
        if not tokens or tokens[0].lower() in _TRUE:
            return True
        if tokens[0].lower() in _FALSE:
            return False
        raise ValueError(f"expected true or false, got {tokens[0]!r}")
    if origin in (tuple, list):
        if origin is tuple and args and args[-1] is not Ellipsis:
            values, start = [], 0
            for arg in args:
                size = _arity(arg)[0]
                values.append(_read(arg, tokens[start : start + size]))
                start += size
            return values
        return [_read(args[0] if args else str, [token]) for token in tokens]
    (token,) = tokens
    if origin is Literal:
        if token not in [str(a) for a in args]:
            close = difflib.get_close_matches(token, [str(a) for a in args], n=1, cutoff=0.5)
            hint = f"; did you mean {close[0]!r}?" if close else ""
            raise ValueError(f"{token!r} is not one of {', '.join(repr(a) for a in args)}{hint}")
        return next(a for a in args if str(a) == token)
    if annotation is int:
        try:
            return int(token)
        except ValueError:
            raise ValueError(f"expected an integer, got {token!r}") from None
    if annotation is float:
        try:
            return float(token)
        except ValueError:
            raise ValueError(f"expected a number, got {token!r}") from None
    return token  # str, Path: from_dict makes the Path


def _alternative(cls: type, name: str) -> str | None:
    """The key whose presence makes key ``name`` optional (field metadata ``required_unless``)."""
    return next(f for f in dataclasses.fields(cls) if f.name == name).metadata.get(REQUIRED_UNLESS)


def _shown(value: Any) -> str:
    if value is dataclasses.MISSING:
        return "required"
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, (list, tuple)):
        return " ".join(_shown(v) for v in value) if value else "none"
    return str(value)


# ------------------------------------------------------------------------------------- key paths


@dataclass(frozen=True)
class _Flag:
    path: tuple[Key, ...]
    annotation: Any
    negate: bool = False


def _walk(cls: type, segments: list[str]) -> tuple[tuple[Key, ...], Any] | None:
    """The key path and type that dotted ``segments`` name under ``cls``, or None."""
    path: list[Key] = []
    annotation: Any = cls
    for segment in segments:
        group, entries = _group(annotation), _entries(annotation)
        if entries is not None:
            if not segment.isdigit():
                return None
            path.append(int(segment))
            annotation = entries
        elif group is not None and segment in _fields(group):
            path.append(segment)
            annotation = _fields(group)[segment]
        else:
            return None
    if _group(annotation) is not None or _entries(annotation) is not None:
        return None  # a group, not a key
    return tuple(path), annotation


def _lookup(command: Command, name: str) -> _Flag | None:
    segments = [s.replace("-", "_") for s in name.split(".")]
    top = _fields(command.config)
    candidates = [segments]
    candidates += [[group, *segments] for group in command.flat if segments[0] not in top]
    for candidate in candidates:
        found = _walk(command.config, candidate)
        if found is not None:
            return _Flag(*found)
        if candidate[-1].startswith("no_"):
            found = _walk(command.config, [*candidate[:-1], candidate[-1][3:]])
            if found is not None and found[1] is bool:
                return _Flag(*found, negate=True)
    return None


def _single_entry(command: Command, name: str) -> tuple[str, str] | None:
    """``--orbit.count``: (list key, member) when ``orbit`` is a member of a one-of list's entries."""
    member = name.split(".")[0].replace("-", "_")
    for key, annotation in _fields(command.config).items():
        entries = _entries(annotation)
        if entries is not None and _one_of(entries) and member in _fields(entries):
            return key, member
    return None


def _materialize(data: dict[str, Any], cls: type, key: str) -> Any:
    """``data[key]``, filled from the key's default when absent (so that a flag can change one entry)."""
    if data.get(key) is None:
        default = _field_default(cls, key)
        data[key] = _plain(default) if default is not dataclasses.MISSING else {}
    return data[key]


def _assign(data: dict[str, Any], cls: type, path: tuple[Key, ...], value: Any, flag: str) -> None:
    """Set ``value`` at ``path`` in the plain data, creating what is missing."""
    node: Any = data
    annotation: Any = cls
    for depth, key in enumerate(path):
        last = depth == len(path) - 1
        if isinstance(key, int):
            if key > len(node):
                has = f"{len(node)} entr{'y' if len(node) == 1 else 'ies'}"
                raise ConfigError(
                    f"--{flag}: {_flag_name(path[:depth])} has {has}; a flag can add entry {len(node)}, "
                    f"not {key}"
                )
            if key == len(node):
                node.append({})
            if node[key] is None:
                node[key] = {}
            annotation = _entries(annotation)
            if last:
                node[key] = value
            node = node[key]
            continue
        group = _group(annotation)
        assert group is not None
        if not isinstance(node, dict):
            raise ConfigError(
                f"--{flag}: {_flag_name(path[:depth]) or 'the config'} is not a mapping of keys"
            )
        if _one_of(group):  # naming a member replaces the entry's other member (a shell instead of an orbit)
            for other in [k for k in node if k != key]:
                del node[other]
        annotation = _fields(group)[key]
        if last:
            node[key] = value
        elif _entries(annotation) is not None:
            node = _materialize(node, group, key)
        else:
            if node.get(key) is None:
                node[key] = {}
            node = node[key]


# ------------------------------------------------------------------------------------- parsing


def _all_flags(command: Command, data: dict[str, Any]) -> list[str]:
    """Every flag name (without dashes) valid for this data: for suggestions."""
    names = ["help", *(["config"] if command.config_flag else []), *(s.flag for s in command.shortcuts)]
    for row in _rows(command, data, concrete=True):
        names.extend(row.names)
    return names


def _unknown(command: Command, name: str, data: dict[str, Any]) -> ConfigError:
    valid = _all_flags(command, data)
    close = difflib.get_close_matches(name, valid, n=1, cutoff=0.6)
    if close:
        return ConfigError(f"unknown flag --{name}; did you mean --{close[0]}?")
    return ConfigError(f"unknown flag --{name} ({command.prog} --help lists the flags)")


def _config_path(argv: list[str]) -> tuple[Path | None, list[str]]:
    """``--config X.yaml`` (or ``--config=X.yaml``) taken out of ``argv``."""
    rest, path, index = [], None, 0
    while index < len(argv):
        token = argv[index]
        if token == "--config":
            if index + 1 >= len(argv) or argv[index + 1].startswith("--"):
                raise ConfigError("--config: expected a YAML file")
            path, index = Path(argv[index + 1]), index + 2
            continue
        if token.startswith("--config="):
            path = Path(token.split("=", 1)[1])
        else:
            rest.append(token)
        index += 1
    return path, rest


def _apply_flags(command: Command, data: dict[str, Any], argv: list[str]) -> None:
    """Apply every flag and positional argument of ``argv`` to the plain ``data``."""
    shortcuts = {s.flag: s for s in command.shortcuts}
    positional = list(command.positional)
    index, previous, previous_count = 0, "", ""
    while index < len(argv):
        token = argv[index]
        if not token.startswith("--"):
            if not positional:
                after = f" after --{previous} (it takes {previous_count})" if previous else ""
                raise ConfigError(f"unexpected argument {token!r}{after}; usage: {command.usage}")
            data[positional.pop(0)[0]] = token
            index += 1
            continue
        name, inline = token[2:], None
        if "=" in name:
            name, inline = name.split("=", 1)
        shortcut = shortcuts.get(name) or shortcuts.get(name.replace("_", "-"))
        flag = None if shortcut is not None else _lookup(command, name)
        single = None
        if shortcut is None and flag is None:
            single = _single_entry(command, name)
            flag = _lookup(command, f"{single[0]}.0.{name}") if single else None
            if flag is None:
                raise _unknown(command, name, data)
        annotation = shortcut.annotation if shortcut is not None else flag.annotation
        low, high = (0, 0) if flag is not None and flag.negate else _arity(annotation)
        values = [inline] if inline is not None else []
        index += 1
        while (
            inline is None
            and index < len(argv)
            and not argv[index].startswith("--")
            and (high is None or len(values) < high)
        ):
            if annotation is bool and argv[index].lower() not in (*_TRUE, *_FALSE):
                break
            values.append(argv[index])
            index += 1
        if len(values) < low:
            raise ConfigError(
                f"--{name}: expected {_metavar(annotation) or 'no value'}, got {len(values)} value(s)"
            )
        try:
            value = _read(annotation, values)
        except ValueError as error:
            raise ConfigError(f"--{name}: {error}") from None
        if shortcut is not None:
            if shortcut.section:
                _materialize(data, command.config, shortcut.section)
            shortcut.apply(data, value)
        else:
            if single is not None:
                entries = _materialize(data, command.config, single[0])
                if len(entries) > 1:
                    raise ConfigError(
                        f"--{name}: the job has {len(entries)} {single[0]} entries; "
                        f"name one: --{single[0]}.N.{name}"
                    )
            _assign(data, command.config, flag.path, (not value) if flag.negate else value, name)
        previous = name
        previous_count = "no value" if high == 0 else f"{high} value{'s' if high != 1 else ''}"


def _resolve(command: Command, argv: Sequence[str]) -> tuple[dict[str, Any], Path | None]:
    config_path, rest = _config_path(list(argv)) if command.config_flag else (None, list(argv))
    data = load_yaml(config_path) if config_path is not None else {}
    _apply_flags(command, data, rest)
    return data, config_path


def parse_command(command: Command, argv: Sequence[str]) -> Parsed:
    """Parse ``argv`` into ``command.config`` (or its help text, for ``-h`` / ``--help``).

    Raises:
        ConfigError: one line: an unknown flag with the closest valid one, a value of the wrong
            type, a missing required key, or whatever :func:`~nerfdata.config.from_dict` finds.

    Example:
        >>> @dataclass
        ... class Job:
        ...     width: int = 8
        >>> parse_command(Command("demo", Job, "demo [flags]"), ["--width", "3"]).config
        Job(width=3)
        >>> parse_command(Command("demo", Job, "demo [flags]"), ["--widht", "3"])
        Traceback (most recent call last):
        ...
        nerfdata.errors.ConfigError: unknown flag --widht; did you mean --width?
    """
    argv = list(argv)
    if "-h" in argv or "--help" in argv:
        return Parsed(help=help_text(command, [a for a in argv if a not in ("-h", "--help")]))
    data, config_path = _resolve(command, argv)
    missing = [
        k
        for k in _fields(command.config)
        if k not in data and _field_default(command.config, k) is dataclasses.MISSING
        and _alternative(command.config, k) not in data
    ]
    if missing:
        names = ", ".join(dict(command.positional).get(k) or f"--{_flag_name([k])}" for k in missing)
        raise ConfigError(f"missing {names}; usage: {command.usage} (--help lists every flag)")
    return Parsed(config=from_dict(command.config, data, str(config_path) if config_path else "flags"))


# ------------------------------------------------------------------------------------- help


@dataclass(frozen=True)
class _Row:
    names: tuple[str, ...]
    """Flag names without dashes; the first is shown (bools: also its ``no-`` form)."""
    metavar: str
    doc: str
    value: Any
    """The value this run would use (``MISSING``: none, the key is required)."""
    section: str


def _field_rows(
    cls: type, name: str, data: Any, shown: tuple[Key, ...], section: str, concrete: bool
) -> list[_Row]:
    """Rows of key ``name`` of dataclass ``cls`` (all its keys, for a group); ``data``: the resolved
    plain data of ``cls`` (None: its defaults). ``concrete``: every member of one-of entries, and an
    entry more, with real indices (the flags a user may type); else what the help lists."""
    annotation = _fields(cls)[name]
    value = data.get(name, dataclasses.MISSING) if isinstance(data, dict) else dataclasses.MISSING
    if value is dataclasses.MISSING:
        default = _field_default(cls, name)
        value = default if default is dataclasses.MISSING else _plain(default)
    label = (*shown, name)
    group, entries = _group(annotation), _entries(annotation)
    if entries is not None:
        return _entry_rows(entries, value if isinstance(value, list) else [], label, section, concrete)
    if group is not None:
        if type(None) in _members(annotation) and value in (None, dataclasses.MISSING) and not concrete:
            return []  # a member this entry does not use
        return _group_rows(group, value if isinstance(value, dict) else None, label, section, concrete)
    names = (_flag_name(label),) + ((_flag_name((*shown, f"no_{name}")),) if annotation is bool else ())
    return [_Row(names, _metavar(annotation), _docs(cls).get(name, ""), value, section)]


def _group_rows(cls: type, data: Any, shown: tuple[Key, ...], section: str, concrete: bool) -> list[_Row]:
    return [row for name in _fields(cls) for row in _field_rows(cls, name, data, shown, section, concrete)]


def _entry_rows(
    entries: type, values: list[Any], shown: tuple[Key, ...], section: str, concrete: bool
) -> list[_Row]:
    """Rows of a list of entries: each entry's keys, then those of an entry N of any kind."""
    rows = []
    for index, value in enumerate(values):
        rows += _group_rows(entries, value, (*shown, index), section, concrete)
    if concrete:  # a flag may add entry len(values), or turn an entry into another member
        for index in range(len(values) + 1):
            rows += _group_rows(entries, {}, (*shown, index), section, concrete)
        return rows
    any_entry = section if section.endswith(":any") else f"{section}:any"
    index = (
        "M" if "N" in shown else "N"
    )  # an entry's own list (a path's keyframes): --views.N.path.keyframes.M.eye
    if not _one_of(entries):
        return rows + _group_rows(entries, None, (*shown, index), any_entry, concrete)
    for member, annotation in _fields(entries).items():
        rows += _group_rows(_group(annotation), None, (*shown, index, member), any_entry, concrete)
    return rows


def _rows(command: Command, resolved: dict[str, Any], concrete: bool = False) -> list[_Row]:
    """Every key's row, each top-level group or list in a section of its own."""
    top = _fields(command.config)
    rows = []
    for name, annotation in top.items():
        nested = _group(annotation) is not None or _entries(annotation) is not None
        if name in command.flat:
            value = resolved.get(name) or _plain(_field_default(command.config, name))
            rows += _group_rows(_group(annotation), value, (), name, concrete)
            if concrete:  # the prefixed forms are accepted too
                rows += _group_rows(_group(annotation), value, (name,), name, concrete)
        else:
            rows += _field_rows(command.config, name, resolved, (), name if nested else "", concrete)
        entries = _entries(annotation)
        if concrete and entries is not None and _one_of(entries):  # --orbit.count: the single entry's
            for member, member_type in _fields(entries).items():
                rows += _group_rows(_group(member_type), None, (member,), name, concrete)
    return rows


def _format(rows: list[tuple[str, str]], left: int, width: int) -> list[str]:
    lines = []
    for flag, doc in rows:
        wrapped = textwrap.wrap(doc, max(width - left - 4, 30)) or [""]
        if len(flag) > left:
            lines.append(f"  {flag}")
            lines += [f"  {'':{left}}  {line}" for line in wrapped]
        else:
            lines.append(f"  {flag:{left}}  {wrapped[0]}")
            lines += [f"  {'':{left}}  {line}" for line in wrapped[1:]]
    return lines


def help_text(command: Command, argv: Sequence[str] = ()) -> str:
    """The help of ``command``: every flag a user types, with the value this run would use.

    Values come from the ``--config`` file and the other flags in ``argv`` when given (so ``nerfdata
    render --config configs/demo.yaml --help`` shows the demo's values), else from the defaults.
    """
    try:
        resolved, config_path = _resolve(command, list(argv))
    except ConfigError as error:  # still show the help, from the defaults, with what went wrong
        resolved, config_path, problem = {}, None, str(error)
    else:
        problem = None
    width = min(shutil.get_terminal_size((100, 24)).columns, 120)
    source = (
        f"{config_path}, the flags given, else the defaults"
        if config_path
        else "the flags given, else the defaults"
    )
    lines = [f"usage: {command.usage}", "", _docs(command.config)[""], ""]
    if problem:
        lines += [f"(not applied: {problem})", ""]
    lines += textwrap.wrap(
        f"Values in [brackets] are the ones this run would use: from {source}. "
        + (
            "Every key of the --config YAML is a flag: `key: {sub: 64}` is --key.sub 64, and entry N of a "
            "list --key.N.sub (N from 0); "
            if command.config_flag
            else ""
        )
        + "a true/false key is --key or --no-key.",
        width,
    )
    required = "required" + (" (or give it in --config)" if command.config_flag else "")
    rows = _rows(command, resolved)
    sections: dict[str, list[tuple[str, str]]] = {}

    def add(section: str, flag: str, doc: str, value: Any) -> None:
        shown = (
            "" if value is _UNSHOWN else f" [{required if value is dataclasses.MISSING else _shown(value)}]"
        )
        sections.setdefault(section, []).append((flag, f"{doc}{shown}".strip()))

    if command.config_flag:
        doc = "YAML file whose keys give every flag's value (flags override it)."
        add("", "--config PATH", doc, str(config_path) if config_path else _UNSHOWN)
    for shortcut in command.shortcuts:
        if shortcut.section:
            _materialize(resolved, command.config, shortcut.section)
        value = shortcut.show(resolved) if shortcut.show is not None else None
        add(
            shortcut.section,
            f"--{shortcut.flag} {_metavar(shortcut.annotation)}",
            shortcut.doc,
            _UNSHOWN if value is None else value,
        )
    positional = dict(command.positional)
    for row in rows:
        if row.names[0] in positional:
            continue  # listed as the positional argument
        if len(row.names) == 2:  # --x and --no-x
            head, _, last = row.names[0].rpartition(".")
            add(row.section, f"--{head}{'.' if head else ''}[no-]{last}", row.doc, row.value)
        else:
            add(row.section, f"--{row.names[0]} {row.metavar}".rstrip(), row.doc, row.value)
    for name, positional in command.positional:
        sections.setdefault("", []).insert(
            0,
            (
                positional,
                f"{_docs(command.config).get(name, '')} [{_shown(resolved.get(name, dataclasses.MISSING))}]",
            ),
        )
    top = _fields(command.config)
    left = min(max(len(flag) for rows_ in sections.values() for flag, _ in rows_), 44)
    for section, section_rows in sections.items():
        name = section.split(":")[0]
        if not section:
            title = "options:"
        elif section.endswith(":any"):
            entries = _entries(top[name])
            members = ", ".join(_fields(entries)) if entries is not None and _one_of(entries) else "KEY"
            title = (
                f"  any {name} entry: --{_flag_name([name])}.N.MEMBER.KEY, N an entry to change (another "
                f"member replaces it) or the next index to add one; MEMBER one of {members}"
            )
            if entries is not None and _one_of(entries):
                title += f"; with one entry, --MEMBER.KEY is short for --{_flag_name([name])}.0.MEMBER.KEY"
        else:
            doc = (
                _docs(command.config).get(name)
                or _docs(_group(top[name]) or _entries(top[name]) or command.config)[""]
            )
            title = (
                f"{_flag_name([name])}: {doc}"
                if name not in command.flat
                else f"{name.replace('_', ' ')}: {doc}"
            )
        lines += [
            "",
            *textwrap.wrap(title, width, subsequent_indent="    "),
            *_format(section_rows, left, width),
        ]
    return "\n".join(lines) + "\n"
