"""The local executor: every shard in this process, one after another, with the driver's field."""

from collections.abc import Callable, Sequence
from typing import Any

from nerfdata.executors import ExecutorConfig, Work
from nerfdata.executors.hooks import Hooks, StoppedByHook
from nerfdata.executors.shards import Shard, ShardFailure, ShardResult

__all__ = ["LocalExecutor"]


class LocalExecutor:
    """Runs shards in order in the calling process; a failed attempt is re-run at once."""

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
            for attempt in range(self.config.max_attempts):
                try:
                    hooks.before_shard(shard.indices, attempt)
                    items = work.local(shard.indices)
                except (KeyboardInterrupt, StoppedByHook):
                    raise
                except Exception as error:  # noqa: BLE001  any failure of a shard is retried, then reported
                    if attempt + 1 == self.config.max_attempts:
                        failures.append(ShardFailure(shard, attempt + 1, error))
                    elif on_retry is not None:
                        on_retry(shard, attempt, error)
                    continue
                on_result(ShardResult(shard, attempt, items))
                done += 1
                hooks.after_shard(done)
                break
        return failures
