"""Progress and end-of-job summaries: a bar on a terminal, log lines anywhere else.

A :class:`Reporter` follows one job over a known number of items (views, pairs, targets, steps).
On a terminal it draws a rich progress bar. Elsewhere (a log file, a cluster job) it writes a line
every ``every`` items and, from a timer, at least every ``seconds`` while the job runs (a slow item
still shows signs of life), each with counts, rates and the time left. :meth:`Reporter.steps`
follows the steps inside one item (the solver's steps on one target): a second bar, or its state in
the log lines. :meth:`Reporter.attempt_failed` counts failed attempts (a shard re-run on another
worker), shown beside the rates. :meth:`Reporter.summary` prints what the job did: items per outcome (rendered, kept
from an earlier run, rejected and why), elapsed time and rates. Jobs report; they never print.
"""

import sys
import threading
import time
from collections import Counter
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)

__all__ = ["Reporter", "Steps", "format_rate", "format_seconds"]


def format_rate(per_second: float | int, unit: str) -> str:
    """``35.2k rays/s``: a rate with a thousands prefix.

    Example:
        >>> format_rate(35210.0, "rays"), format_rate(0.25, "views")
        ('35.2k rays/s', '0.25 views/s')
    """
    for scale, prefix in ((1e9, "G"), (1e6, "M"), (1e3, "k")):
        if per_second >= scale:
            return f"{per_second / scale:.1f}{prefix} {unit}/s"
    return f"{per_second:.3g} {unit}/s"


def format_seconds(seconds: float | int) -> str:
    """``4.2 s``, ``3 min 05 s``, ``2 h 01 min``.

    Example:
        >>> format_seconds(4.21), format_seconds(185.0), format_seconds(7260.0)
        ('4.2 s', '3 min 05 s', '2 h 01 min')
    """
    if seconds < 60:
        return f"{seconds:.1f} s"
    minutes, secs = divmod(round(seconds), 60)
    if minutes < 60:
        return f"{minutes} min {secs:02d} s"
    return f"{minutes // 60} h {minutes % 60:02d} min"


class Steps:
    """The steps inside one item (see :meth:`Reporter.steps`); :meth:`update` is a solver's callback."""

    def __init__(self, reporter: "Reporter", label: str, total: int, unit: str) -> None:
        self._reporter, self.label, self.total, self.unit = reporter, label, total, unit
        self.done, self.status = 0, ""

    def update(self, done: int, **values: float | int) -> None:
        """``done`` steps of ``total`` so far; ``values`` (e.g. ``loss=0.01``) are shown beside them."""
        self.done = done
        self.status = ", ".join(f"{k} {v:.4g}" for k, v in values.items())
        self._reporter._step_changed(self)

    def describe(self) -> str:
        return f"{self.label}: {self.done}/{self.total} {self.unit}" + (
            f", {self.status}" if self.status else ""
        )


class Reporter:
    """Progress of one job over ``total`` items of ``unit`` (a context manager), and its summary.

    Args:
        action: The job's name in lines and the summary (``render``).
        total: Items the job has, including those already ``done``.
        unit: What an item is, plural (``views``).
        enabled: False: silent (library calls, tests).
        outcomes: The outcomes :meth:`advance` reports, in the summary's order (each shown, 0 too).
        done: Items done before this run, by outcome (``{"kept from an earlier run": 4}``): counted
            in the position, not in the rates.
        work_unit: What ``advance(work=...)`` counts (``rays``), for a second rate.
        every: Without a terminal, a line every this many items (default: a tenth of ``total``).
        seconds: Without a terminal, a line at least this often while the job runs.
        stream: A text stream for the progress (default: stderr); the summary goes to stdout.
        terminal: Draw a bar (default: whether ``stream`` is a terminal).

    Example:
        >>> import io
        >>> log = io.StringIO()
        >>> with Reporter("render", 2, "views", outcomes=("rendered",), stream=log, every=1) as progress:
        ...     progress.advance("rendered", work=100)
        ...     progress.advance("rendered", work=100)
        >>> log.getvalue().splitlines()[-1].startswith("render: 2/2 views (100%)")
        True
    """

    def __init__(
        self,
        action: str,
        total: int,
        unit: str,
        *,
        enabled: bool = True,
        outcomes: Sequence[str] = ("done",),
        done: Mapping[str, int] | None = None,
        work_unit: str = "",
        every: int | None = None,
        seconds: float | int = 10.0,
        stream: Any = None,
        terminal: bool | None = None,
    ) -> None:
        self.action, self.total, self.unit, self.enabled = action, total, unit, enabled
        self.outcomes = list(outcomes)
        self.earlier = Counter(done or {})
        self.counts: Counter[str] = Counter()
        self.reasons: dict[str, Counter[str]] = {}
        self.work_unit, self.work = work_unit, 0.0
        self.every = every if every is not None else max(1, total // 10)
        self.seconds = seconds
        self.stream = stream if stream is not None else sys.stderr
        self.terminal = (
            terminal if terminal is not None else bool(getattr(self.stream, "isatty", lambda: False)())
        )
        self.status = ""
        self.failures: list[str] = []
        self.start = time.perf_counter()
        self._steps: Steps | None = None
        self._lock = threading.Lock()
        self._last_line = time.monotonic()
        self._since_line = 0
        self._stop = threading.Event()
        self._timer: threading.Thread | None = None
        self._bar: Progress | None = None
        self._task = self._step_task = None

    # ----------------------------------------------------------------------------- lifecycle

    def __enter__(self) -> "Reporter":
        self.start = time.perf_counter()
        if not self.enabled:
            return self
        if self.terminal:
            columns = (
                TextColumn("{task.description}"),
                BarColumn(),
                MofNCompleteColumn(),
                TextColumn("{task.fields[status]}"),
                TimeElapsedColumn(),
                TimeRemainingColumn(),
            )
            self._bar = Progress(*columns, console=Console(file=self.stream), transient=False)
            self._bar.start()
            self._task = self._bar.add_task(self.action, total=self.total, completed=self.position, status="")
        else:
            self._timer = threading.Thread(target=self._beat, name=f"{self.action} progress", daemon=True)
            self._timer.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        if self._timer is not None:
            self._timer.join()
        if self._bar is not None:
            self._bar.stop()

    # ----------------------------------------------------------------------------- reporting

    @property
    def position(self) -> int:
        return sum(self.earlier.values()) + sum(self.counts.values())

    def advance(
        self,
        outcome: str | None = None,
        *,
        work: float | int = 0,
        reason: str | None = None,
        status: str | None = None,
    ) -> None:
        """One more item done: its outcome (default: the first), work (rays) and, for a rejection, why."""
        outcome = outcome or self.outcomes[0]
        with self._lock:
            self.counts[outcome] += 1
            self.work += work
            if reason is not None:
                self.reasons.setdefault(outcome, Counter())[reason] += 1
            if status is not None:
                self.status = status
            self._since_line += 1
            due = self._since_line >= self.every or self.position == self.total
        if self._bar is not None:
            self._bar.update(self._task, completed=self.position, status=self._rates(short=True))
        elif self.enabled and due:
            self._log()

    def attempt_failed(self, description: str) -> None:
        """A failed attempt (``description``: what failed and why): counted in the bar and the log
        lines, listed in the summary."""
        with self._lock:
            self.failures.append(description)
        if self._bar is not None:
            self._bar.update(self._task, status=self._rates(short=True))
            self._bar.console.print(f"{self.action}: failed attempt: {description}")
        elif self.enabled:
            print(f"{self.action}: failed attempt: {description}", file=self.stream, flush=True)
            self._log()

    @contextmanager
    def steps(self, label: str, total: int, unit: str = "steps") -> Iterator[Steps]:
        """Follow the steps of the item in progress (a second bar, or a part of the log lines)."""
        steps = Steps(self, label, total, unit)
        self._steps = steps
        if self._bar is not None:
            self._step_task = self._bar.add_task(f"  {label}", total=total, status="")
        try:
            yield steps
        finally:
            if self._bar is not None and self._step_task is not None:
                self._bar.remove_task(self._step_task)
                self._step_task = None
            self._steps = None

    def _step_changed(self, steps: Steps) -> None:
        if self._bar is not None and self._step_task is not None:
            self._bar.update(self._step_task, completed=steps.done, status=steps.status)

    # ----------------------------------------------------------------------------- lines

    def _rates(self, short: bool = False) -> str:
        elapsed = max(time.perf_counter() - self.start, 1e-9)
        done_here = sum(self.counts.values())
        parts = [self.status] if self.status else []
        if self.failures:
            parts.append(f"{len(self.failures)} failed attempt{'s' if len(self.failures) > 1 else ''}")
        if done_here:
            if not short:
                parts.append(format_rate(done_here / elapsed, self.unit))
            if self.work_unit:
                parts.append(format_rate(self.work / elapsed, self.work_unit))
        return ", ".join(parts)

    def line(self) -> str:
        """The progress line logged without a terminal."""
        elapsed = time.perf_counter() - self.start
        done_here = sum(self.counts.values())
        percent = 100.0 * self.position / max(self.total, 1)
        parts = [f"{self.action}: {self.position}/{self.total} {self.unit} ({percent:.0f}%)"]
        counts = {k: n for k, n in (self.earlier + self.counts).items() if n}
        if len(counts) > 1:  # one outcome only: the position says it all
            parts.append(", ".join(f"{n} {k}" for k, n in counts.items()))
        rates = self._rates()
        if rates:
            parts.append(rates)
        parts.append(f"{format_seconds(elapsed)} elapsed")
        if done_here and self.position < self.total:
            parts.append(f"about {format_seconds(elapsed / done_here * (self.total - self.position))} left")
        steps = self._steps
        text = ", ".join(parts)
        return text + (f"; {steps.describe()}" if steps is not None and steps.done else "")

    def _log(self) -> None:
        with self._lock:
            text = self.line()
            self._last_line, self._since_line = time.monotonic(), 0
            print(text, file=self.stream, flush=True)

    def _beat(self) -> None:
        while not self._stop.wait(min(self.seconds / 4, 1.0)):
            if time.monotonic() - self._last_line >= self.seconds:
                self._log()

    # ----------------------------------------------------------------------------- summary

    def summary(self, extra: Sequence[str] = ()) -> list[str]:
        """The end-of-job lines (printed to stdout when enabled): outcomes, why items were rejected,
        elapsed time and rates; then ``extra``."""
        elapsed = format_seconds(time.perf_counter() - self.start)
        done_here = sum(self.counts.values())
        if not done_here and self.earlier and sum(self.earlier.values()) == self.total:
            how = next(iter(self.earlier))  # one outcome ("kept from an earlier run"), else each count
            if len(self.earlier) > 1:
                how = ", ".join(f"{n} {k}" for k, n in self.earlier.items())
            head = f"{self.action}: all {self.total} {self.unit} {how}; nothing left to do ({elapsed})"
        else:
            counts = []
            for outcome in dict.fromkeys([*self.outcomes, *self.counts, *self.earlier]):
                n = self.counts[outcome] + self.earlier[outcome]
                why = self.reasons.get(outcome)
                detail = f" ({', '.join(f'{c} {r}' for r, c in why.most_common())})" if why else ""
                counts.append(f"{n} {outcome}{detail}")
            rates = self._rates()
            head = f"{self.action}: {self.total} {self.unit} in {elapsed}: {', '.join(counts)}" + (
                f"; {rates}" if rates else ""
            )
        lines = [head, *(f"failed attempt: {f}" for f in self.failures), *extra]
        if self.enabled:
            for text in lines:
                print(text, flush=True)
        return lines
