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
from pathlib import Path

from soft_actor_critic import console
from soft_actor_critic.config import SweepConfig, TrainConfig
from soft_actor_critic.signals import stop_requests
from soft_actor_critic.sweep.task import raise_unless_finished, record_outcome, train_in_sweep

EXIT_CODES = {"finished": 0, "interrupted": 3}  # a worker's; 1 for a run stopped by an error
OUTCOMES = {code: outcome for outcome, code in EXIT_CODES.items()}
THREAD_VARIABLES = ("OMP_NUM_THREADS", "MKL_NUM_THREADS")  # the size of OpenMP's and MKL's thread pools


def worker(group: list[TrainConfig], threads: int, count) -> None:
    """A worker process, one per run (or group of packed runs): its steps go to `count`, the workers' total
    in shared memory, and torch gets its share of the cores. Ctrl-C is left to the sweep, which asks each
    run to stop with one SIGTERM: the worker started with SIGINT blocked (start_worker), and a Ctrl-C that
    came while it imported this module and torch is dropped here, ignored before it is unblocked."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGINT})
    import torch

    torch.set_num_threads(threads)  # torch is loaded by now: its pool is sized here, not by the variables

    def count_steps(n: int) -> None:
        with count.get_lock():
            count.value += n

    outcome = train_in_sweep(group, count_steps)[0][2]  # a group ends as one
    sys.exit(EXIT_CODES.get(outcome, 1))


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


def train_locally(
    groups: list[list[TrainConfig]], config: SweepConfig, sweep_dir: Path, *, total: int, done: int, command: str
) -> None:
    """Train the groups of runs (task.packed_groups) in worker processes, each a fresh interpreter (no
    threads or CUDA state inherited): one that dies (killed, out of memory) costs only its own runs, back
    to their last checkpoint. The bar counts the sweep's `total` steps from the `done` of earlier
    commands; `command` continues it."""
    num_runs = sum(map(len, groups))
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    workers = min(config.workers or cores, len(groups))
    threads = max(1, cores // workers)
    packing = f", packed up to {config.seeds_per_process} to a process" if len(groups) < num_runs else ""
    console.say(
        f"{console.count(num_runs, 'run')} to train{packing}, {workers} at a time, "
        f"each with {console.count(threads, 'thread')}"
    )
    context = multiprocessing.get_context("spawn")
    count, queue, running, outcomes = context.Value("q", 0), list(groups), {}, {}
    variables = dict.fromkeys(THREAD_VARIABLES, str(threads))
    stopped = False  # whether the running runs were asked to stop
    with stop_requests(second_interrupt_aborts=False) as stop, console.progress_bar(total, done) as bar:
        while running or (queue and stop.signum is None):  # once asked to stop, no run starts
            while queue and len(running) < workers and stop.signum is None:
                group = queue.pop(0)
                process = context.Process(target=worker, args=(group, threads, count))
                start_worker(process, variables)
                running[tuple(run.run_name for run in group)] = (process, time.time())
            if stop.signum is not None and not stopped:  # each running run checkpoints and stops, asked once
                for process, _ in running.values():
                    with contextlib.suppress(ProcessLookupError):
                        os.kill(process.pid, signal.SIGTERM)
                stopped = True
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
    raise_unless_finished(outcomes, num_runs, stop, command)


def outcome_of(exitcode: int, stopping: bool) -> str:
    """How a worker's run ended. The sweep's own SIGTERM, when asked to stop, can reach a worker before its
    run has set up its handler: that run is interrupted (with no checkpoint, it starts over next time)."""
    if stopping and exitcode == -signal.SIGTERM:
        return "interrupted"
    if exitcode < 0:
        return f"error: killed by {signal.Signals(-exitcode).name}"
    return OUTCOMES.get(exitcode, "error")
