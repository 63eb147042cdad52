"""``load_field``: any trained field, by what its path is.

* a nerfdata checkpoint (a folder holding ``field.json`` + ``field.safetensors``, or either
  file): :func:`nerfdata.fields.checkpoint.load_checkpoint`;
* a nerfstudio run's ``config.yml`` (or ``.yaml``):
  :func:`nerfdata.fields.nerfstudio.load_nerfstudio_loaded_field`, imported only then (it needs
  the ``[nerfstudio]`` extra, so nerfdata imports without it).

Both give the :class:`~nerfdata.fields.base.LoadedField` every job takes.
"""

from pathlib import Path

import torch

from nerfdata.fields.base import LoadedField
from nerfdata.fields.checkpoint import load_checkpoint

__all__ = ["NERFSTUDIO_SUFFIXES", "load_field"]

NERFSTUDIO_SUFFIXES = (".yml", ".yaml")
"""A path ending so is a nerfstudio run config; anything else is a nerfdata checkpoint."""


def load_field(path: str | Path, device: str | torch.device = "cpu") -> LoadedField:
    """Load a trained field, frozen, from a nerfdata checkpoint or a nerfstudio ``config.yml``.

    Example:
        >>> import tempfile
        >>> from nerfdata.fields.analytic import AnalyticField, Sphere
        >>> from nerfdata.fields.checkpoint import save_field
        >>> folder = tempfile.mkdtemp()
        >>> sphere = AnalyticField([Sphere((0.0, 0.0, 0.0), 0.5)], aabb=[[-1, -1, -1], [1, 1, 1]])
        >>> _ = save_field(sphere, folder)
        >>> loaded = load_field(folder)
        >>> loaded.field.field_type, loaded.json_path.name
        ('analytic', 'field.json')

    Raises:
        CheckpointError: the files are missing, corrupt, modified or do not match each other; a
            nerfstudio run without the ``[nerfstudio]`` extra installed, or of a method nerfdata
            does not load.
    """
    if Path(path).suffix in NERFSTUDIO_SUFFIXES:
        from nerfdata.fields.nerfstudio import load_nerfstudio_loaded_field

        return load_nerfstudio_loaded_field(path, device)
    return load_checkpoint(path, device)
