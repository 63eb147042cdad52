"""Typed configs from YAML: unknown keys with suggestions, type errors with dotted paths."""

from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import pytest

from nerfdata.config import from_dict, load_yaml, to_dict
from nerfdata.errors import ConfigError
from nerfdata.jobs.render import RenderJobConfig


@dataclass(frozen=True)
class Inner:
    count: int = 3
    scale: float = 1.0
    mode: Literal["a", "b"] = "a"


@dataclass(frozen=True)
class Outer:
    path: Path
    inner: Inner = field(default_factory=Inner)
    target: tuple[float, float, float] = (0.0, 0.0, 0.0)
    note: str | None = None


def test_builds_nested_dataclasses():
    config = from_dict(Outer, {"path": "a/b", "inner": {"count": 5, "scale": 2}, "target": [1, 2, 3]})
    assert config == Outer(Path("a/b"), Inner(5, 2.0), (1.0, 2.0, 3.0))
    assert to_dict(config) == {
        "path": "a/b",
        "inner": {"count": 5, "scale": 2.0, "mode": "a"},
        "target": [1.0, 2.0, 3.0],
        "note": None,
    }


@pytest.mark.parametrize(
    "data, message",
    [
        ({"path": "x", "inner": {"cuont": 1}}, "config.inner: unknown key 'cuont'; did you mean 'count'?"),
        ({"path": "x", "zzz": 1}, "config: unknown key 'zzz'; valid keys: inner, note, path, target"),
        ({"path": "x", "inner": {"count": 1.5}}, "config.inner.count: expected an integer"),
        ({"path": "x", "inner": {"count": True}}, "config.inner.count: expected an integer"),
        ({"path": "x", "inner": {"mode": "c"}}, "config.inner.mode: 'c' is not one of 'a', 'b'"),
        ({"path": "x", "target": [1, 2]}, "config.target: expected 3 values, got 2"),
        ({"inner": {}}, "config: missing required key 'path'"),
        ({"path": "x", "inner": 3}, "config.inner: expected a mapping"),
    ],
)
def test_errors_name_the_key(data, message):
    with pytest.raises(ConfigError) as error:
        from_dict(Outer, data)
    assert str(error.value).startswith(message)


def test_validation_inside_configs_is_reported_as_config_error():
    with pytest.raises(ConfigError, match="orbit radius must be positive"):
        from_dict(RenderJobConfig, {"field": "x", "views": [{"orbit": {"radius": -1.0}}]})


def test_load_yaml_errors(tmp_path):
    with pytest.raises(ConfigError, match="config file not found"):
        load_yaml(tmp_path / "missing.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("a: [1, 2\n")
    with pytest.raises(ConfigError, match="cannot read YAML"):
        load_yaml(bad)
    bad.write_text("- 1\n- 2\n")
    with pytest.raises(ConfigError, match="expected a mapping"):
        load_yaml(bad)
    bad.write_text("!!python/object/apply:os.system ['true']\n")
    with pytest.raises(ConfigError, match="cannot read YAML"):  # safe_load never constructs objects
        load_yaml(bad)


def test_every_shipped_config_parses():
    from nerfdata.jobs.inerf import InerfTargetsConfig

    renders, targets = sorted(Path("configs").glob("*.yaml")), sorted(Path("configs/inerf").glob("*.yaml"))
    renders += sorted(Path("configs/bop").glob("*.yaml"))  # render jobs writing BOP too
    assert renders and targets
    for path in renders:
        from_dict(RenderJobConfig, load_yaml(path), str(path))
    for path in targets:  # nerfdata inerf targets --config configs/inerf/NAME.yaml
        assert from_dict(InerfTargetsConfig, load_yaml(path), str(path)).views
