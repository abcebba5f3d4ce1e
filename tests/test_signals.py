"""signals.py on its own: SIGINT and SIGTERM as a request to stop, for the training loop and the sweep."""

import signal
import threading

import pytest

from soft_actor_critic.signals import stop_requests


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
def test_the_first_signal_is_a_request_noted_once(signum):
    calls = []
    with stop_requests(lambda: calls.append("stop")) as request:
        assert request.signum is None
        signal.raise_signal(signum)
        signal.raise_signal(signal.SIGTERM)
    assert request.signum == signum and calls == ["stop"]


def test_a_second_ctrl_c_stops_at_once_unless_told_otherwise():
    with pytest.raises(KeyboardInterrupt), stop_requests() as request:
        signal.raise_signal(signal.SIGINT)
        signal.raise_signal(signal.SIGINT)
    with stop_requests(second_interrupt_aborts=False) as request:
        signal.raise_signal(signal.SIGINT)
        signal.raise_signal(signal.SIGINT)
    assert request.signum == signal.SIGINT


def test_the_handlers_before_are_put_back():
    before = signal.getsignal(signal.SIGINT), signal.getsignal(signal.SIGTERM)
    with stop_requests():
        assert signal.getsignal(signal.SIGTERM) is not before[1]
    assert (signal.getsignal(signal.SIGINT), signal.getsignal(signal.SIGTERM)) == before


def test_an_ignored_ctrl_c_stays_ignored(monkeypatch):
    monkeypatch.setattr(signal, "getsignal", lambda signum: signal.SIG_IGN if signum == signal.SIGINT else None)
    installed = {}
    monkeypatch.setattr(signal, "signal", lambda signum, handler: installed.setdefault(signum, handler))
    with stop_requests():
        pass
    assert installed[signal.SIGINT] is signal.SIG_IGN  # only put back as it was, never handled
    assert installed[signal.SIGTERM] is not signal.SIG_IGN


def test_off_the_main_thread_nothing_is_installed():
    before, seen = signal.getsignal(signal.SIGTERM), []

    def in_thread() -> None:
        with stop_requests() as request:
            seen.append((signal.getsignal(signal.SIGTERM), request.signum))

    thread = threading.Thread(target=in_thread)
    thread.start()
    thread.join()
    assert seen == [(before, None)]
