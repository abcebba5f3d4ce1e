"""Console output of a training run: progress lines on stdout, the progress bar on stderr, and neither
may stop training when its reader leaves (`train ... | head`)."""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Callable

from tqdm import tqdm


class ReaderMayLeave:
    """A text stream whose reader may leave: from then on what is written to it goes nowhere and
    training goes on, for a closed pipe must never cost a run."""

    def __init__(self, stream) -> None:
        self.stream = stream

    def write(self, text: str) -> None:
        self._guarded(self.stream.write, text)

    def flush(self) -> None:
        self._guarded(self.stream.flush)

    def _guarded(self, method, *args) -> None:
        try:
            method(*args)
        except BrokenPipeError:
            os.dup2(os.open(os.devnull, os.O_WRONLY), self.stream.fileno())

    def __eq__(self, other) -> bool:  # tqdm.write clears the progress bar of a stream equal to its own
        return other is self or other is self.stream

    __hash__ = object.__hash__

    def __getattr__(self, name: str):  # fileno, isatty, encoding... for tqdm
        return getattr(self.stream, name)


def count(number: int, noun: str) -> str:
    """'1 run', '2 runs': a number with its noun in the singular or the plural."""
    return f"{number} {noun}{'s' * (number != 1)}"


def say(text: str, stream=None) -> None:
    """A line of progress on stdout (or `stream`, such as stderr for a note), above the progress bar."""
    tqdm.write(text, file=ReaderMayLeave(stream or sys.stdout))


class ProgressBar(tqdm):
    """Steps done, steps/s and ETA on stderr, redrawn at most once a second; `on_update(n)` hears of each
    update (a sweep counts the steps of all its runs). Random warm-up actions run many times faster than the
    updates after them: no ETA before `warmup` steps, and from then on, the mean rate of the steps since."""

    WARMUP_FORMAT = "{l_bar}{bar}| {n_fmt}/{total_fmt} [{elapsed}, {rate_fmt}{postfix}]"  # tqdm's, but the ETA

    def __init__(self, total: int, initial: int, on_update: Callable[[int], None] | None = None, warmup: int = 0):
        self.on_update, self.warmup = on_update, warmup
        self.updates_began: tuple[float, int] | None = None  # the time and the step the rate counts from
        stderr = ReaderMayLeave(sys.stderr)
        note = "warm-up: random actions, ETA once the updates begin" if initial < warmup else None
        super().__init__(
            total=total, initial=initial, unit="step", dynamic_ncols=True, mininterval=1.0, file=stderr, postfix=note
        )

    def update(self, n: int = 1):
        if self.on_update is not None:
            self.on_update(n)
        if self.n < self.warmup <= self.n + n:
            self.updates_began = time.monotonic(), self.n + n
            self.set_postfix_str("", refresh=False)
        return super().update(n)

    @property
    def format_dict(self) -> dict:
        """What tqdm draws the bar from, extended as tqdm's README shows: without the ETA in the warm-up, and
        after it, with the rate of the steps since it ended, where tqdm's would count the warm-up's in."""
        fields = super().format_dict
        if self.n < self.warmup:
            fields["bar_format"] = self.WARMUP_FORMAT
        elif self.updates_began is not None:
            began, step = self.updates_began
            seconds = time.monotonic() - began
            fields["rate"] = (self.n - step) / seconds if seconds > 0 else None
        return fields
