"""The Ray executor: shards spread over Ray actors, each loading the job's field once.

The driver joins the cluster (``executor.address``; default: the local instance, started if none
runs), keeps a pool of actors (one worker process each, holding ``num_cpus_per_worker`` CPUs and
``num_gpus_per_worker`` GPUs) and hands each idle actor the next shard. The job's state travels
once through Ray's object store; an actor builds its runner from it (loading the field) the first
time it runs a shard of that job and keeps it for the job's other shards.

Faults: a shard whose attempt raised, or whose actor died (killed, out of memory, node lost), is
re-submitted by the driver with the next attempt number, up to ``max_attempts``; Ray restarts a
dead actor (``max_restarts=-1``), which loads the field again. A driver stopped mid-job takes its
actors down with it, as Ray does when a driver exits; a rerun resumes.

Paths in the job (field, output folder) are read on every worker as on the driver: the workers run
in the driver's working folder when it exists on their machine, so a cluster needs a file system
shared at the same path on every node, and nerfdata installed on each.
"""

import logging
import os
import time
import uuid
from collections import deque
from collections.abc import Callable, Sequence
from typing import Any

from nerfdata.errors import NerfDataError
from nerfdata.executors import ExecutorConfig, Work
from nerfdata.executors.hooks import Hooks
from nerfdata.executors.shards import Shard, ShardFailure, ShardResult

__all__ = ["DistributedUnavailable", "RayExecutor", "ShardWorker", "release_workers", "require_ray"]

_INSTALL = "pip install 'nerfdata[distributed]'"

_REST_SECONDS = 0.5
"""How long the driver leaves an actor that is restarting before probing it again."""

_NO_WORKER_SECONDS = 600
"""How long the driver waits with shards to run and no actor alive (all restarting) before it gives up."""

_POOL: dict[str, Any] = {"key": None, "actors": [], "remote": None}
"""The actors of this driver, kept across jobs (a many-field job starts its workers once)."""


class DistributedUnavailable(NerfDataError):
    """``--executor ray`` without Ray installed."""


def require_ray() -> Any:
    try:
        import ray
    except ImportError:
        raise DistributedUnavailable(f"--executor ray needs Ray, which is not installed: {_INSTALL}") from None
    return ray


class ShardWorker:
    """One Ray worker process: the runner of the job it last ran, its field loaded once."""

    def __init__(self) -> None:
        import ray
        import torch

        # As many compute threads as CPUs reserved (Ray's OMP_NUM_THREADS may be read too late).
        torch.set_num_threads(max(1, int(ray.get_runtime_context().get_assigned_resources().get("CPU", 1))))
        self._job: str | None = None
        self._runner: Callable[[tuple[int, ...]], list[Any]] | None = None

    def pid(self) -> int:
        return os.getpid()

    def run(
        self, job: str, state: list[Any], cwd: str, hooks: Hooks, indices: tuple[int, ...], attempt: int
    ) -> list[Any]:
        """The items of one shard of ``job`` (``state``: a list holding the reference to its setup,
        so that Ray hands the reference over, not the value, and it is fetched once per job)."""
        if job != self._job:
            import ray

            if os.path.isdir(cwd):
                os.chdir(cwd)
            self._job, self._runner = None, None
            runner = ray.get(state[0])()
            self._job, self._runner = job, runner
        hooks.before_shard(indices, attempt)
        assert self._runner is not None
        return self._runner(indices)


class RayExecutor:
    """Shards on Ray actors (see the module's docstring)."""

    kind = "ray"

    def __init__(self, config: ExecutorConfig, shards: int) -> None:
        ray = require_ray()
        self.config, self.shard_size = config, config.shard_size
        if not ray.is_initialized():
            try:
                ray.init(address=config.address, include_dashboard=False, logging_level=logging.WARNING)
            except (ConnectionError, ValueError, RuntimeError) as error:
                where = config.address or "the local Ray instance"
                raise NerfDataError(f"executor.address: cannot join {where} ({error})".replace("\n", " ")) from None
        self.workers = config.num_workers or self._fitting(ray.cluster_resources(), max(shards, 1))
        self._check_fits(ray.cluster_resources())

    def _fitting(self, resources: dict[str, float], shards: int) -> int:
        """Workers the cluster's CPUs and GPUs hold at once, at most one per shard."""
        counts = [shards]
        if self.config.num_cpus_per_worker > 0:
            counts.append(int(resources.get("CPU", 0) // self.config.num_cpus_per_worker))
        if self.config.num_gpus_per_worker > 0:
            counts.append(int(resources.get("GPU", 0) // self.config.num_gpus_per_worker))
        return max(1, min(counts))

    def _check_fits(self, resources: dict[str, float]) -> None:
        for name, wanted in (("CPU", self.config.num_cpus_per_worker), ("GPU", self.config.num_gpus_per_worker)):
            if wanted > resources.get(name, 0.0):
                raise NerfDataError(
                    f"executor: a worker asks for {wanted:g} {name}s, the Ray cluster has {resources.get(name, 0.0):g}"
                )

    def describe(self) -> dict[str, Any]:
        return {"kind": self.kind, "workers": self.workers, "shard_size": self.shard_size}

    def _actors(self, count: int) -> list[Any]:
        """``count`` actors of the pool (started when it has fewer)."""
        ray = require_ray()
        config = self.config
        key = (ray.get_runtime_context().get_job_id(), config.num_cpus_per_worker, config.num_gpus_per_worker)
        if _POOL["key"] != key:
            _POOL.update(key=key, actors=[])
        actors = _POOL["actors"]
        if _POOL.get("remote") is None:
            _POOL["remote"] = ray.remote(ShardWorker)
        remote = _POOL["remote"].options(
            num_cpus=config.num_cpus_per_worker, num_gpus=config.num_gpus_per_worker,
            max_restarts=-1, max_task_retries=0,  # the driver re-submits, counting attempts
        )
        while len(actors) < count:
            actors.append(remote.remote())
        return actors[:count]

    def run(
        self,
        work: Work,
        shards: Sequence[Shard],
        on_result: Callable[[ShardResult], None],
        on_retry: Callable[[Shard, int, BaseException], None] | None = None,
    ) -> list[ShardFailure]:
        ray = require_ray()
        if not shards:
            return []
        hooks = Hooks.from_environment()
        job, state, cwd = uuid.uuid4().hex, [ray.put(work.setup)], os.getcwd()
        # An actor whose process died is restarted by Ray; until it answers a probe it gets no shard,
        # so that only shards an actor really took count as attempts. Each starts with a probe: one
        # may still be restarting from an earlier job.
        idle: deque[Any] = deque()
        resting: list[tuple[float, Any]] = []  # (until when, actor)
        probing = {actor.pid.remote(): actor for actor in self._actors(min(self.workers, len(shards)))}
        queue = deque((shard, 0) for shard in shards)
        running: dict[Any, tuple[Any, Shard, int]] = {}
        failures: list[ShardFailure] = []
        done, last_worker = 0, time.monotonic()
        try:
            while queue or running:
                now = time.monotonic()
                for until, actor in [r for r in resting if r[0] <= now]:
                    resting.remove((until, actor))
                    probing[actor.pid.remote()] = actor
                while queue and idle:
                    (shard, attempt), actor = queue.popleft(), idle.popleft()
                    task = actor.run.remote(job, state, cwd, hooks, shard.indices, attempt)
                    running[task] = (actor, shard, attempt)
                if running or idle:
                    last_worker = now
                elif now - last_worker > _NO_WORKER_SECONDS:
                    raise NerfDataError(f"executor: no Ray worker has been available for {_NO_WORKER_SECONDS} s")
                waiting = [*running, *probing]
                if not waiting:
                    time.sleep(_REST_SECONDS / 5)
                    continue
                ready, _ = ray.wait(waiting, num_returns=1, timeout=_REST_SECONDS if resting else None)
                if not ready:
                    continue
                if ready[0] in probing:
                    actor = probing.pop(ready[0])
                    try:
                        ray.get(ready[0])
                    except ray.exceptions.RayActorError:
                        resting.append((time.monotonic() + _REST_SECONDS, actor))
                    else:
                        idle.append(actor)
                    continue
                actor, shard, attempt = running.pop(ready[0])
                try:
                    items = ray.get(ready[0])
                except ray.exceptions.RayTaskError as error:  # the shard raised
                    idle.append(actor)
                    failed = error.cause if isinstance(error.cause, NerfDataError) else error.as_instanceof_cause()
                except ray.exceptions.RayActorError as error:  # its worker died
                    resting.append((time.monotonic() + _REST_SECONDS, actor))
                    failed = error
                else:
                    idle.append(actor)
                    on_result(ShardResult(shard, attempt, items))
                    done += 1
                    hooks.after_shard(done)
                    continue
                if attempt + 1 < self.config.max_attempts:
                    if on_retry is not None:
                        on_retry(shard, attempt, failed)
                    queue.append((shard, attempt + 1))
                else:
                    failures.append(ShardFailure(shard, attempt + 1, failed))
        except BaseException:
            # The driver stops: its workers stop with it (as when a driver process exits), so
            # nothing keeps writing into the output folder behind a rerun.
            release_workers()
            raise
        return failures


def release_workers() -> None:
    """Stop this driver's Ray workers (the next job starts new ones)."""
    if _POOL["actors"]:
        ray = require_ray()
        for actor in _POOL["actors"]:
            ray.kill(actor, no_restart=True)
    _POOL.update(key=None, actors=[])
