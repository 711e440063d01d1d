"""Progress by tokens: one bar per phase (thinking, answers, scoring), tokens/s and ETA.

Records are a poor unit of progress in this harness: one engine call can hold a whole sweep's
thinking (minutes, one "record" at the end) and a record's cost varies by its budget. Tokens are
what the engines spend time on, and engines report them from inside a call: the transformers
engine after every decode step, vLLM after every finished request.

    progress = Progress(disable=not opts.progress)
    with progress.phase("thinking", total_tokens=estimate) as tick:
        engine.generate(requests, progress=tick)

`tick(n)` adds n tokens. A phase's total is an estimate (budgets are upper bounds: most
generations stop early); the bar's total grows if the count passes it. Disabled bars still
count (`bar.done`), they only never write.
"""

from __future__ import annotations

import inspect
import os
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any, TextIO

from evalharness.types import Completion

Tick = Callable[[int], None]


def quiet_environment(stream: TextIO) -> bool:
    """True where a bar would only litter: CI logs, pipes, files."""
    if os.environ.get("CI", "").lower() not in ("", "0", "false", "no"):
        return True
    isatty = getattr(stream, "isatty", None)
    return not (isatty and isatty())


class PhaseBar:
    """One phase's bar; calling it adds tokens. Redraws at most every `interval` seconds."""

    def __init__(self, name: str, total: int | None, *, stream: TextIO, enabled: bool,
                 clock: Callable[[], float], interval: float) -> None:
        self.name, self.total, self.done = name, total, 0
        self._stream, self._enabled, self._clock, self._interval = stream, enabled, clock, interval
        self.start = clock()
        self._drawn = float("-inf")

    def __call__(self, n: int) -> None:
        self.done += n
        if self.total is not None and self.done > self.total:
            self.total = self.done  # the estimate was low: never show more than 100 %
        if self._enabled and self._clock() - self._drawn >= self._interval:
            self._draw()

    def line(self) -> str:
        """The bar as text, e.g. `thinking  41% 12,345/30,000 tok 812 tok/s ETA 0:21`."""
        elapsed = max(self._clock() - self.start, 1e-9)
        rate = self.done / elapsed
        if self.total:
            frac = self.done / self.total
            eta = (self.total - self.done) / rate if rate > 0 else None
            return (f"{self.name} {frac:4.0%} {self.done:,}/{self.total:,} tok "
                    f"{rate:,.0f} tok/s ETA {_clock_text(eta)}")
        return f"{self.name} {self.done:,} tok {rate:,.0f} tok/s"

    def _draw(self, end: str = "") -> None:
        self._drawn = self._clock()
        self._stream.write("\r\x1b[K" + self.line() + end)
        self._stream.flush()

    def close(self) -> None:
        if self._enabled:
            self._draw(end="\n")


class Progress:
    """Token bars for a run. `disable=True` (the CLI's `--no-progress`), a non-terminal stream
    or a set `CI` variable make every bar silent."""

    def __init__(self, disable: bool = False, stream: TextIO | None = None,
                 clock: Callable[[], float] = time.monotonic, interval: float = 0.2) -> None:
        self.stream = stream if stream is not None else sys.stderr
        self.enabled = not disable and not quiet_environment(self.stream)
        self.clock, self.interval = clock, interval

    @contextmanager
    def phase(self, name: str, total_tokens: int | None = None) -> Iterator[PhaseBar]:
        bar = PhaseBar(name, total_tokens, stream=self.stream, enabled=self.enabled,
                       clock=self.clock, interval=self.interval)
        try:
            yield bar
        finally:
            bar.close()


def generated_tokens(results: Sequence[Sequence[Completion]]) -> int:
    """Tokens an engine decoded for these completions: kept tokens plus each final stop token
    (what the engines' progress callbacks count)."""
    return sum(len(c.token_ids) + (c.stop_id is not None) for cs in results for c in cs)


def call_with_progress(method: Callable[..., Any], items: Sequence[Any], tick: Tick | None,
                       count: Callable[[Any], int]) -> Any:
    """`method(items, progress=tick)` where the engine takes a progress callback; otherwise
    `method(items)` and one tick of `count(result)` at the end (engines without the hook,
    such as Ray replicas, still move the bar, call by call)."""
    if tick is None:
        return method(items)
    try:
        takes = "progress" in inspect.signature(method).parameters
    except (TypeError, ValueError):
        takes = False
    if takes:
        return method(items, progress=tick)
    result = method(items)
    tick(count(result))
    return result


def scored_tokens(pairs: Sequence[tuple[list[int], list[int]]]) -> int:
    """Continuation tokens of score pairs (what `score`'s progress callbacks count)."""
    return sum(len(cont) for _, cont in pairs)


def _clock_text(seconds: float | None) -> str:
    if seconds is None:
        return "?"
    s = int(seconds + 0.5)
    h, rem = divmod(s, 3600)
    return f"{h}:{rem // 60:02d}:{rem % 60:02d}" if h else f"{rem // 60}:{rem % 60:02d}"
