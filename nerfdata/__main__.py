"""``python -m nerfdata ARGS``: the same CLI as the ``nerfdata`` script."""

from nerfdata.cli import entrypoint

entrypoint()
