"""``python -m nerfdata ARGS``: the same CLI as the ``nerfdata`` script."""

from nerfdata.cli import entrypoint

if __name__ == "__main__":
    entrypoint()
