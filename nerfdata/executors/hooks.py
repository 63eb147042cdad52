"""Fault-injection hooks for the executors' tests, set by environment variables on the driver.

They are read once per job on the driver (:meth:`Hooks.from_environment`) and travel with each shard
to the worker that runs it, so they act the same under every executor and on every machine. Unset
(always, outside tests), they do nothing.

* ``NERFDATA_TEST_FAIL_ONCE=INDEX``: the first attempt of the shard holding item INDEX raises.
* ``NERFDATA_TEST_FAIL=INDEX``: every attempt of that shard raises (a deterministic failure).
* ``NERFDATA_TEST_PAUSE=INDEX:FILE``: the first attempt of that shard writes its process id to FILE
  and waits (up to a minute) for the test to kill the process.
* ``NERFDATA_TEST_STOP_AFTER=N``: the driver stops (raises :class:`StoppedByHook`) once N shards are in.
"""

import os
import time
from collections.abc import Mapping
from dataclasses import dataclass

from nerfdata.atomic import write_text_atomic
from nerfdata.errors import NerfDataError

__all__ = ["Hooks", "InjectedFault", "StoppedByHook"]

_PREFIX = "NERFDATA_TEST_"


class InjectedFault(NerfDataError):
    """The failure a hook injects: stands for bad input one shard meets (a corrupt file, a bad pose)."""


class StoppedByHook(RuntimeError):
    """The driver stopped by ``NERFDATA_TEST_STOP_AFTER`` (a job interrupted after some shards)."""


@dataclass(frozen=True)
class Hooks:
    fail_once: int | None = None
    fail: int | None = None
    pause: tuple[int, str] | None = None
    stop_after: int | None = None

    @classmethod
    def from_environment(cls, environ: Mapping[str, str] | None = None) -> "Hooks":
        """The hooks set in ``environ`` (default: ``os.environ``)."""
        env = os.environ if environ is None else environ

        def number(name: str) -> int | None:
            value = env.get(_PREFIX + name)
            return None if value in (None, "") else int(value)

        pause = env.get(_PREFIX + "PAUSE")
        index, _, file = pause.partition(":") if pause else ("", "", "")
        return cls(number("FAIL_ONCE"), number("FAIL"), (int(index), file) if pause else None, number("STOP_AFTER"))

    def before_shard(self, indices: tuple[int, ...], attempt: int) -> None:
        """Run on the worker before a shard's items."""
        if self.fail is not None and self.fail in indices:
            raise InjectedFault(f"injected failure at item {self.fail} (attempt {attempt})")
        if attempt > 0:
            return
        if self.fail_once is not None and self.fail_once in indices:
            raise InjectedFault(f"injected failure at item {self.fail_once} (first attempt)")
        if self.pause is not None and self.pause[0] in indices:
            # Atomic, so the test polling for the file never reads it empty.
            write_text_atomic(self.pause[1], str(os.getpid()))
            time.sleep(60.0)  # the test kills this process meanwhile

    def after_shard(self, shards_done: int) -> None:
        """Run on the driver after each shard it has taken in."""
        if self.stop_after is not None and shards_done >= self.stop_after:
            raise StoppedByHook(f"stopped after {shards_done} shards (NERFDATA_TEST_STOP_AFTER)")
