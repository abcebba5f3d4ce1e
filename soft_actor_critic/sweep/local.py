"""A sweep's or a study's runs on this machine: at most --workers at once, each in a fresh process of its
own with its share of the cores (or the threads OMP_NUM_THREADS sets)."""

from __future__ import annotations

import contextlib
import ctypes
import multiprocessing
import multiprocessing.connection
import os
import signal
import sys
import time

from soft_actor_critic import console
from soft_actor_critic.config import TrainConfig
from soft_actor_critic.sweep.task import train_in_sweep

PR_SET_PDEATHSIG = 1  # prctl(2): the signal this process gets when its parent dies
THREAD_VARIABLES = ("OMP_NUM_THREADS", "MKL_NUM_THREADS")  # the size of OpenMP's and MKL's thread pools


def worker(group: list[TrainConfig], threads: int, count, outcome) -> None:
    """A worker process, one per run (or group of packed runs): its steps go to `count`, the workers' total
    in shared memory, how it ended to the pipe `outcome` (the error's own words, for the sweep's or the study's
    message), and torch gets its share of the cores. Ctrl-C is left to the sweep, which asks each
    run to stop with one SIGTERM: the worker started with SIGINT blocked (start_worker), and a Ctrl-C that
    came while it imported this module and torch is dropped here, ignored before it is unblocked."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGINT})
    if sys.platform == "linux":  # the sweep or study killed (kill -9): its runs checkpoint and stop, as on SIGTERM
        ctypes.CDLL(None).prctl(PR_SET_PDEATHSIG, signal.SIGTERM)
    import torch

    torch.set_num_threads(threads)  # torch is loaded by now: its pool is sized here, not by the variables

    def count_steps(n: int) -> None:
        with count.get_lock():
            count.value += n

    outcome.send(train_in_sweep(group, count_steps)[0][2])  # a group ends as one


def start_worker(process: multiprocessing.Process, variables: dict[str, str]) -> None:
    """Start a worker with what it must have from its first instruction on. `variables` in its environment:
    a library reads them once, as it loads (torch's and numpy's BLAS, the thread variables).
    And SIGINT blocked, a mask it inherits (as CPython's resource tracker starts its process): a terminal's
    Ctrl-C reaches the worker too, and would stop it with a KeyboardInterrupt in its imports, before
    worker() could ignore it; here, a Ctrl-C meanwhile waits until this process unblocks it."""
    saved, blocked = dict(os.environ), signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT})
    os.environ.update(variables)
    try:
        process.start()
    finally:
        os.environ.clear()
        os.environ.update(saved)
        signal.pthread_sigmask(signal.SIG_SETMASK, blocked)


class LocalWorkers:
    """Worker processes on this machine, at most `size` at once, each a fresh interpreter (no threads or
    CUDA state inherited) with its share of the cores: one that dies (killed, out of memory) costs only its
    own runs, back to their last checkpoint. A sweep and a tune study start groups of runs on them."""

    def __init__(self, workers: int | None, groups: int) -> None:
        cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
        self.size = min(workers or cores, groups)
        self.threads = threads_set_by_user() or max(1, cores // self.size)
        self.context = multiprocessing.get_context("spawn")
        self.count = self.context.Value("q", 0)  # the steps of every run, as the workers count them
        self.running: dict[tuple[str, ...], tuple] = {}  # run names: (process, start time, its outcome pipe)
        self.stopping: set[tuple[str, ...]] = set()  # the groups asked to stop

    def describe(self) -> str:
        return f"{self.size} at a time, each with {console.count(self.threads, 'thread')}"

    def free(self) -> int:
        return self.size - len(self.running)

    def start(self, group: list[TrainConfig]) -> None:
        receiver, sender = self.context.Pipe(duplex=False)
        process = self.context.Process(target=worker, args=(group, self.threads, self.count, sender))
        start_worker(process, dict.fromkeys(THREAD_VARIABLES, str(self.threads)))
        sender.close()  # the worker's end: here, it would keep the pipe open after the worker is gone
        self.running[tuple(run.run_name for run in group)] = (process, time.time(), receiver)

    def stop(self, names: set[str] | None = None) -> None:
        """Ask each running group (or each with a run in `names`) to checkpoint and stop, with one SIGTERM each."""
        for key, (process, *_) in self.running.items():
            if key not in self.stopping and (names is None or not names.isdisjoint(key)):
                with contextlib.suppress(ProcessLookupError):
                    os.kill(process.pid, signal.SIGTERM)
                self.stopping.add(key)

    def wait(self) -> list[tuple[tuple[str, ...], float, str]]:
        """The groups that ended within a second: their run names, seconds and outcome."""
        multiprocessing.connection.wait([process.sentinel for process, *_ in self.running.values()], timeout=1.0)
        ended = []
        for names, (process, started, receiver) in list(self.running.items()):
            if process.exitcode is not None:
                del self.running[names]
                outcome = said(receiver) or outcome_of(process.exitcode, stopping=names in self.stopping)
                ended.append((names, time.time() - started, outcome))
        return ended

    def steps(self) -> int:
        return self.count.value


def threads_set_by_user() -> int | None:
    """The thread count OMP_NUM_THREADS sets, if the user set one (a whole number above 0): it wins over a
    worker's share of the cores, as it does for train."""
    text = os.environ.get("OMP_NUM_THREADS", "")
    return int(text) if text.isdigit() and int(text) > 0 else None


def said(receiver: multiprocessing.connection.Connection) -> str | None:
    """What an ended worker sent of its outcome; None from one that was killed before it could."""
    try:
        return receiver.recv()
    except EOFError:
        return None
    finally:
        receiver.close()


def outcome_of(exitcode: int, stopping: bool) -> str:
    """How a worker's run ended. Our own SIGTERM, when it asked the run to stop, can reach a worker before
    its run has set up its handler: that run is interrupted (with no checkpoint, it starts over next time)."""
    if stopping and exitcode == -signal.SIGTERM:
        return "interrupted"
    if exitcode < 0:
        return f"error: killed by {signal.Signals(-exitcode).name}"
    return f"error: the worker exited with code {exitcode} (its log says why)"
