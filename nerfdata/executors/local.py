"""The local executor: every shard in this process, one after another, with the driver's field.

A shard runs once: re-running it in the same process would meet the same state. A shard that fails
on bad input (a :class:`~nerfdata.errors.NerfDataError`) is reported after the others ran; any other
error (a bug, a full disk, Ctrl-C) stops the job at once, as a plain loop would.
"""

from collections.abc import Callable, Sequence
from typing import Any

from nerfdata.errors import NerfDataError
from nerfdata.executors import ExecutorConfig, Work
from nerfdata.executors.hooks import Hooks
from nerfdata.executors.shards import Shard, ShardFailure, ShardResult

__all__ = ["LocalExecutor"]


class LocalExecutor:
    """Runs shards in order in the calling process."""

    kind = "local"
    workers = 1

    def __init__(self, config: ExecutorConfig) -> None:
        self.config = config
        self.shard_size = config.shard_size

    def describe(self) -> dict[str, Any]:
        return {"kind": self.kind, "workers": self.workers, "shard_size": self.shard_size}

    def run(
        self,
        work: Work,
        shards: Sequence[Shard],
        on_result: Callable[[ShardResult], None],
        on_retry: Callable[[Shard, int, BaseException], None] | None = None,
    ) -> list[ShardFailure]:
        hooks = Hooks.from_environment()
        failures, done = [], 0
        for shard in shards:
            try:
                hooks.before_shard(shard.indices, 0)
                items = work.local(shard.indices)
            except NerfDataError as error:
                failures.append(ShardFailure(shard, 1, error))
                continue
            on_result(ShardResult(shard, 0, items))
            done += 1
            hooks.after_shard(done)
        return failures
