"""A sweep's runs on this machine: at most --workers at once, each in a fresh process of its own with
its share of the cores, under one progress bar."""

from __future__ import annotations

import contextlib
import multiprocessing
import multiprocessing.connection
import os
import signal
import sys
import time
from collections.abc import Iterator
from pathlib import Path

from soft_actor_critic import console
from soft_actor_critic.config import SweepConfig, TrainConfig
from soft_actor_critic.signals import stop_requests
from soft_actor_critic.sweep.task import packed_groups, raise_unless_finished, record_outcome, train_in_sweep

EXIT_CODES = {"finished": 0, "interrupted": 3}  # a worker's; 1 for a run stopped by an error
OUTCOMES = {code: outcome for outcome, code in EXIT_CODES.items()}
THREAD_VARIABLES = ("OMP_NUM_THREADS", "MKL_NUM_THREADS")  # the size of OpenMP's and MKL's thread pools


class SharedCount:
    """Steps counted across the workers, in shared memory."""

    def __init__(self, value) -> None:
        self.value = value

    def add(self, n: int) -> None:
        with self.value.get_lock():
            self.value.value += n


def worker(group: list[TrainConfig], threads: int, count) -> None:
    """A worker process, one per run (or group of packed runs): torch gets its share of the cores, and
    Ctrl-C is left to the sweep, which asks each run to stop with one SIGTERM (a second signal would stop
    it before its checkpoint)."""
    import torch

    torch.set_num_threads(threads)  # torch is loaded by now: its pool is sized here, not by the variables
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    outcome = train_in_sweep(group, SharedCount(count).add)[0][2]  # a group ends as one
    sys.exit(EXIT_CODES.get(outcome, 1))


@contextlib.contextmanager
def thread_variables(threads: int) -> Iterator[None]:
    """THREAD_VARIABLES set to `threads` for the processes started inside: a library reads them once, as
    it loads, so they must be in a worker's environment from its start (numpy's BLAS reads them too)."""
    saved = {name: os.environ.get(name) for name in THREAD_VARIABLES}
    os.environ.update(dict.fromkeys(THREAD_VARIABLES, str(threads)))
    try:
        yield
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name)
            else:
                os.environ[name] = value


def train_locally(
    runs: list[TrainConfig], config: SweepConfig, sweep_dir: Path, *, total: int, done: int, command: str
) -> None:
    """Train the runs in worker processes, each a fresh interpreter (no threads or CUDA state inherited):
    one that dies (killed, out of memory) costs only its own run (its group's, packed), back to the last
    checkpoint. The bar counts the sweep's `total` steps from the `done` of earlier commands; `command`
    continues it."""
    groups = packed_groups(runs, config.seeds_per_process)
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    workers = min(config.workers or cores, len(groups))
    threads = max(1, cores // workers)
    packing = f", packed up to {config.seeds_per_process} to a process" if len(groups) < len(runs) else ""
    console.say(
        f"{console.count(len(runs), 'run')} to train{packing}, {workers} at a time, "
        f"each with {console.count(threads, 'thread')}"
    )
    context = multiprocessing.get_context("spawn")
    count, queue, running, outcomes = context.Value("q", 0), groups, {}, {}

    def stop_workers() -> None:  # each running run checkpoints and stops
        for process, _ in running.values():
            with contextlib.suppress(ProcessLookupError):
                os.kill(process.pid, signal.SIGTERM)

    with (
        stop_requests(stop_workers, second_interrupt_aborts=False) as stop,
        console.progress_bar(total, done) as bar,
        thread_variables(threads),
    ):
        while running or (queue and stop.signum is None):  # once asked to stop, no run starts
            while queue and len(running) < workers and stop.signum is None:
                group = queue.pop(0)
                process = context.Process(target=worker, args=(group, threads, count))
                running[tuple(run.run_name for run in group)] = (process, time.time())
                process.start()
            multiprocessing.connection.wait([process.sentinel for process, _ in running.values()], timeout=1.0)
            for names, (process, started) in list(running.items()):
                if process.exitcode is not None:
                    del running[names]
                    outcome = outcome_of(process.exitcode, stopping=stop.signum is not None)
                    for name in names:
                        record_outcome(sweep_dir, outcomes, name, time.time() - started, outcome, log=names[0])
            bar.update(count.value + done - bar.n)
            in_queue = sum(map(len, queue))
            in_flight = sum(map(len, running))
            bar.set_postfix(runs=f"{len(outcomes)} done, {in_flight} running, {in_queue} queued", refresh=False)
    raise_unless_finished(outcomes, len(runs), stop, command)


def outcome_of(exitcode: int, stopping: bool) -> str:
    """How a worker's run ended. The sweep's own SIGTERM, when asked to stop, can reach a worker before its
    run has set up its handler: that run is interrupted (with no checkpoint, it starts over next time)."""
    if stopping and exitcode == -signal.SIGTERM:
        return "interrupted"
    if exitcode < 0:
        return f"error: killed by {signal.Signals(-exitcode).name}"
    return OUTCOMES.get(exitcode, "error")
