"""A nerfstudio run's ``config.yml``, read by a YAML loader that builds only harmless objects."""

from pathlib import Path
from typing import Any

from nerfdata.errors import CheckpointError

__all__ = ["read_nerfstudio_config"]

_SAFE_MODULES = ("nerfstudio.", "pathlib.", "torch.optim.", "torch.nn.")
"""Modules whose names config.yml may reference (nerfstudio's configs, paths, optimizer and layer classes)."""


def _config_loader() -> type:
    """A YAML loader for nerfstudio's ``config.yml`` that builds only harmless objects.

    nerfstudio writes its dataclass configs with ``!!python/object`` tags (instances filled field
    by field, no constructor runs), ``!!python/name`` references and ``!!python/object/apply``
    calls of paths and enums. Names from other modules, and calls of anything but a path, an enum
    or a tuple, are refused.
    """
    import enum
    import pathlib

    import yaml

    class Loader(yaml.UnsafeLoader):
        def find_python_name(self, name: str, mark: Any) -> Any:
            if not name.startswith(_SAFE_MODULES):
                raise yaml.constructor.ConstructorError(None, None, f"refusing to load python name {name!r}", mark)
            return super().find_python_name(name, mark)

        def find_python_module(self, name: str, mark: Any) -> Any:
            raise yaml.constructor.ConstructorError(None, None, f"refusing to load python module {name!r}", mark)

        def make_python_instance(
            self, suffix: str, node: Any, args: Any = None, kwds: Any = None, newobj: bool = False
        ) -> Any:
            cls = self.find_python_name(suffix, node.start_mark)
            # !!python/object: a bare __new__, then its fields are set; no constructor runs.
            instance_only = newobj and isinstance(cls, type) and not args and not kwds
            harmless = isinstance(cls, type) and issubclass(cls, (pathlib.PurePath, enum.Enum, tuple))
            if not (instance_only or harmless):
                raise yaml.constructor.ConstructorError(None, None, f"refusing to call {suffix!r}", node.start_mark)
            return super().make_python_instance(suffix, node, args, kwds, newobj)

    return Loader


def read_nerfstudio_config(config_path: str | Path) -> Any:
    """nerfstudio's ``TrainerConfig`` from a run's ``config.yml`` (restricted YAML loader)."""
    import yaml

    config_path = Path(config_path)
    if not config_path.is_file():
        raise CheckpointError(f"{config_path}: no such nerfstudio config file")
    try:
        config = yaml.load(config_path.read_text(), Loader=_config_loader())  # a restricted loader
    except (yaml.YAMLError, ImportError, AttributeError, UnicodeDecodeError) as error:
        detail = getattr(error, "problem", None) or str(error).strip().splitlines()[0] or type(error).__name__
        raise CheckpointError(f"{config_path}: not a readable nerfstudio config ({detail})") from None
    if not hasattr(config, "pipeline") or not hasattr(getattr(config.pipeline, "model", None), "_target"):
        raise CheckpointError(f"{config_path}: not a nerfstudio run config (no pipeline.model)")
    return config
