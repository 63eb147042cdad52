"""The device rule: where a job computes (``--device auto|cpu|cuda``, ``device:`` in a job's YAML).

``auto`` is CUDA when torch sees a CUDA device, else the CPU; ``cuda`` without one is refused with
one line. On the resolved device live the field, its occupancy grid, rays, render buffers and the
labels derived from them; poses, cameras and random generators stay on the CPU (small, and so the
same seed draws the same numbers on every device), and writers alone move data to the CPU.

The device is where a job runs, not what it writes: like the executor it is recorded in the
manifest and left out of every job's identity hash (a dataset started on a GPU resumes on a CPU).
A Ray worker resolves the job's ``device`` itself, so ``auto`` takes the GPU the worker reserved
(``executor.num_gpus_per_worker``), if any.
"""

from typing import TYPE_CHECKING, Literal, get_args

from nerfdata.errors import ConfigError

if TYPE_CHECKING:  # torch is imported when a device is resolved: configs (and the CLI's help) name DeviceName only
    import torch

__all__ = ["DeviceName", "resolve_device"]

DeviceName = Literal["auto", "cpu", "cuda"]
"""What a config may ask for."""


def resolve_device(name: DeviceName = "auto") -> "torch.device":
    """The device that ``name`` stands for here: ``cpu``, or the current CUDA device (``cuda:0``).

    Raises:
        ConfigError: ``cuda`` where torch sees no CUDA device, or an unknown name (one line).

    Example:
        >>> resolve_device("cpu")
        device(type='cpu')
    """
    import torch

    if name not in get_args(DeviceName):
        raise ConfigError(f"device: {name!r} is not one of {', '.join(map(repr, get_args(DeviceName)))}")
    if name == "cpu":
        return torch.device("cpu")
    if not torch.cuda.is_available():
        if name == "cuda":
            raise ConfigError("device: cuda asked for, but torch sees no CUDA device here; use --device cpu or auto")
        return torch.device("cpu")
    # An explicit index: tensors report "cuda:0", and torch.device("cuda") compares unequal to it.
    return torch.device("cuda", torch.cuda.current_device())
