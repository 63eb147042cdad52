"""Executors: where a job's shards run, in this process (``local``) or on a Ray cluster (``ray``).

A job (render, correspond, inerf) prepares its output on the driver, splits its items into shards
(:mod:`nerfdata.executors.shards`) and hands an executor a :class:`Work`: a function of the job's
picklable state, the field and a shard's item indices, returning one record per item. The executor
runs every shard and calls the driver back as each comes in; the driver alone writes the job-level
files. A shard that fails is reported after the others ran (:func:`raise_failures`); Ray re-runs
failed attempts (a raised error, a worker process that died) up to ``max_attempts`` first. An
item's output depends only on the job's config, seed and index, so every executor writes the same
files.

Ray is imported only by :mod:`nerfdata.executors.ray`, only when a job asks for it (the
``[distributed]`` extra).
"""

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any, Literal, Protocol, runtime_checkable

from nerfdata.device import DeviceName, resolve_device
from nerfdata.errors import CheckpointError, ConfigError, NerfDataError
from nerfdata.executors.shards import Shard, ShardFailure, ShardResult, split_shards
from nerfdata.fields.base import LoadedField

__all__ = [
    "Executor",
    "ExecutorConfig",
    "FieldSetup",
    "ShardsFailed",
    "Work",
    "field_work",
    "make_executor",
    "raise_failures",
    "retry_reporter",
    "split_shards",
]

Runner = Callable[[tuple[int, ...]], list[Any]]
"""Runs the items of one shard; returns one record per item, in order."""


@dataclass(frozen=True)
class ExecutorConfig:
    """Where a job runs: ``executor: {kind: ray, address: ..., shard_size: ..., num_workers: ...}``.

    Not part of what a job is: left out of its config hash (a job resumes under any executor) and
    out of every file but the render manifest, which records the executor that ran it.
    """

    kind: Literal["local", "ray"] = "local"
    """local: this process; ray: Ray workers (the [distributed] extra)."""
    address: str | None = None
    """Ray cluster to join (ray start --head prints it; "auto": the one running here); None: join the
    local instance if one runs, else start one."""
    shard_size: int = 1
    """Items (views, pairs, targets) per shard: the unit of work a worker takes, of retries and of resume
    (1: the driver records each item as it comes in; more: fewer, larger Ray tasks)."""
    num_workers: int | None = None
    """Ray workers (each loads the field once); None: as many as the cluster's CPUs (and GPUs) hold,
    at most one per shard."""
    num_cpus_per_worker: float = 1.0
    """CPUs a Ray worker reserves (and the threads it computes with)."""
    num_gpus_per_worker: float = 0.0
    """GPUs a Ray worker reserves; with device auto a worker computes on the GPU it reserved (0: on its CPU)."""
    max_attempts: int = 3
    """Ray: attempts per shard (a raised error, a worker that died) before the job fails with its error."""

    def __post_init__(self) -> None:
        if self.shard_size < 1:
            raise ConfigError(f"executor.shard_size must be >= 1, got {self.shard_size}")
        if self.num_workers is not None and self.num_workers < 1:
            raise ConfigError(f"executor.num_workers must be >= 1, got {self.num_workers}")
        if self.num_cpus_per_worker < 0 or self.num_gpus_per_worker < 0:
            raise ConfigError("executor.num_cpus_per_worker and num_gpus_per_worker must be >= 0")
        if self.max_attempts < 1:
            raise ConfigError(f"executor.max_attempts must be >= 1, got {self.max_attempts}")
        if self.address is not None and self.kind != "ray":
            raise ConfigError("executor.address is a Ray cluster's; set executor.kind: ray (or --executor ray)")


@dataclass(frozen=True)
class Work:
    """A job's shards' work: ``setup`` (picklable) builds a runner on each Ray worker, once; the local
    executor uses ``local``, the driver's own runner (its field already loaded)."""

    setup: Callable[[], Runner]
    local: Runner


@dataclass(frozen=True)
class FieldSetup:
    """Builds ``partial(fn, state, loaded_field)`` on a worker, loading the field there.

    The checksum is the driver's: a worker that finds other weights at the path (another machine's
    copy) stops rather than write a dataset that mixes two fields. The device is the job's ``device``
    key, resolved by the worker (``auto``: the GPU it reserved, else its CPU).
    """

    fn: Callable[..., list[Any]]
    state: Any
    field_path: Path
    field_sha256: str
    device: DeviceName = "auto"

    def __call__(self) -> Runner:
        from nerfdata.fields.loading import load_field

        loaded = load_field(self.field_path, resolve_device(self.device))
        if loaded.sha256 != self.field_sha256:
            raise CheckpointError(
                f"{self.field_path}: this worker's copy of the field differs from the driver's (checksums differ)"
            )
        return partial(self.fn, self.state, loaded)


def field_work(
    fn: Callable[..., list[Any]], state: Any, loaded: LoadedField, path: Path, device: DeviceName = "auto"
) -> Work:
    """The :class:`Work` running ``fn(state, loaded, indices)``: the driver's field here, each worker's own
    there, on the device ``device`` resolves to on that worker.

    ``state`` travels to workers that may have no GPU: it holds CPU tensors only, and ``fn`` puts what
    it needs on its field's device."""
    return Work(FieldSetup(fn, state, Path(path), loaded.sha256, device), partial(fn, state, loaded))


@runtime_checkable
class Executor(Protocol):
    kind: str
    workers: int
    shard_size: int

    def run(
        self,
        work: Work,
        shards: Sequence[Shard],
        on_result: Callable[[ShardResult], None],
        on_retry: Callable[[Shard, int, BaseException], None] | None = None,
    ) -> list[ShardFailure]:
        """Run every shard; ``on_result`` on the driver as each comes in, ``on_retry`` after a failed
        attempt that will be re-run. Returns the shards that failed ``max_attempts`` times."""
        ...

    def describe(self) -> dict[str, Any]:
        """What the render manifest records: ``{"kind", "workers", "shard_size"}``."""
        ...


def make_executor(config: ExecutorConfig, shards: int) -> Executor:
    """The executor of ``config`` for a job of ``shards`` shards (Ray: joined or started here).

    Raises:
        NerfDataError: ``kind: ray`` without Ray installed, or a cluster that cannot be reached.
    """
    if config.kind == "local":
        from nerfdata.executors.local import LocalExecutor

        return LocalExecutor(config)
    from nerfdata.executors.ray import RayExecutor

    return RayExecutor(config, shards)


def retry_reporter(progress: Any, unit: str) -> Callable[[Shard, int, BaseException], None]:
    """An ``on_retry`` telling a :class:`~nerfdata.progress.Reporter` of each failed attempt."""

    def report(shard: Shard, attempt: int, error: BaseException) -> None:
        failure = ShardFailure(shard, attempt + 1, error)
        progress.attempt_failed(f"{failure.describe(unit)} (re-running)")

    return report


class ShardsFailed(NerfDataError):
    """Shards of a job failed every attempt (each failure's error is in ``failures``)."""

    def __init__(self, message: str, failures: list[ShardFailure]) -> None:
        super().__init__(message)
        self.failures = failures


def raise_failures(failures: list[ShardFailure], unit: str) -> None:
    """Fail the job after its other shards finished: with the first failure's error when it is a bug
    (a traceback), else with one line naming it (and how many more failed).

    Raises:
        ShardsFailed: some shard failed every attempt on bad input (a NerfDataError).
        BaseException: the first failure's error when it is not a NerfDataError.
    """
    if not failures:
        return
    for failure in failures:
        if not isinstance(failure.error, NerfDataError):
            raise failure.error
    others = f" (and {len(failures) - 1} more failed shards)" if len(failures) > 1 else ""
    more = f"{others}; rerun to resume"
    raise ShardsFailed(f"{failures[0].describe(unit)}{more}", failures) from failures[0].error
