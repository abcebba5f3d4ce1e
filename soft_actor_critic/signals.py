"""Ctrl-C and SIGTERM as a request to stop cleanly: the training loop checkpoints after the step in
progress and stops; a sweep passes the request on to its running runs and starts no other."""

from __future__ import annotations

import contextlib
import dataclasses
import signal
import threading
from collections.abc import Callable, Iterator

STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)


def signal_name(signum: int) -> str:
    """How a stop signal is named to the user: Ctrl-C for SIGINT, which a terminal sends on that key."""
    return "Ctrl-C" if signum == signal.SIGINT else signal.Signals(signum).name


@dataclasses.dataclass
class StopRequest:
    signum: int | None = None  # the signal that asked to stop, once one has


@contextlib.contextmanager
def stop_requests(
    on_request: Callable[[], None] | None = None, *, second_interrupt_aborts: bool = True
) -> Iterator[StopRequest]:
    """While inside, SIGINT and SIGTERM ask to stop instead of stopping the process: the first one is
    noted in the StopRequest and calls `on_request`. With `second_interrupt_aborts`, a second Ctrl-C
    stops at once (a KeyboardInterrupt); without, it changes nothing.

    A signal someone chose to ignore (a background job's SIGINT) stays ignored; off the main thread,
    where Python cannot handle signals, nothing is installed and the request never comes."""
    request = StopRequest()

    def handle(signum, frame):
        if request.signum is None:
            request.signum = signum
            if on_request is not None:
                on_request()
        elif signum == signal.SIGINT and second_interrupt_aborts:
            raise KeyboardInterrupt

    on_main_thread = threading.current_thread() is threading.main_thread()
    previous = {signum: signal.getsignal(signum) for signum in STOP_SIGNALS} if on_main_thread else {}
    for signum, handler in previous.items():
        if handler != signal.SIG_IGN:
            signal.signal(signum, handle)
    try:
        yield request
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, signal.SIG_DFL if handler is None else handler)
