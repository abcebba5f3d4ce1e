"""Sweeps: every combination of the values given to train's flags, each an ordinary run folder inside
<directory>/<sweep-name>, trained by worker processes on this machine or by Ray tasks on a cluster; and
the summary table of the runs' final evals.

A sweep runs the same train() a user runs, and running the same command again continues it: finished
runs are kept, unfinished ones resume from their checkpoints, missing ones start. Its parts: the grid
and its manifest (grid.py), one run as a worker trains it (task.py), the local workers (local.py), the
Ray backend (on_ray.py) and the summary (summary.py).
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator
from pathlib import Path

from soft_actor_critic import console
from soft_actor_critic.config import SweepConfig, TrainConfig
from soft_actor_critic.runs import checkpoint_step
from soft_actor_critic.signals import stop_requests
from soft_actor_critic.sweep.grid import expand, read_manifest, write_manifest
from soft_actor_critic.sweep.summary import summarize
from soft_actor_critic.sweep.task import packed_groups, raise_unless_finished, record_outcome


def sweep(config: SweepConfig, grid: dict, command: str) -> None:
    """Train every run of the grid that has not finished, then print and write the summary. `command`
    is the command line that continues the sweep, for the messages that say so."""
    sweep_dir = Path(grid["directory"]) / config.sweep_name
    if config.summary:  # of the grid the sweep was run with, whatever the other flags say
        summarize(sweep_dir, expand(read_manifest(sweep_dir), sweep_dir))
        return
    runs = expand(grid, sweep_dir)
    check_before_writing([run.env_name for run in runs], config.ray_address)
    write_manifest(sweep_dir, grid)
    steps = {run: checkpoint_step(Path(run.directory) / run.run_name) for run in runs}  # each read once, cheaply
    todo = {run: step for run, step in steps.items() if (step or 0) < run.num_steps}
    console.say(f"sweep {sweep_dir}: {console.count(len(runs), 'run')}, {len(runs) - len(todo)} finished already")
    if todo:
        start = time.perf_counter()
        done = sum(min(step or 0, run.num_steps) for run, step in steps.items())
        groups = packed_groups(todo, config.seeds_per_process)
        with workers(config, groups) as pool:
            train_groups(pool, groups, sweep_dir, total=sum(run.num_steps for run in runs), done=done, command=command)
        console.say(f"sweep {sweep_dir}: trained in {(time.perf_counter() - start) / 60:.1f} min")
    summarize(sweep_dir, runs)


def check_before_writing(env_names: list[str], ray_address: str | None) -> None:
    """Refuse, before anything is written, an env SAC cannot drive and a Ray address that does not answer:
    bad input leaves no sweep or study folder behind."""
    from soft_actor_critic.environment import make_env

    for env_name in dict.fromkeys(env_names):
        make_env(env_name).close()
    if ray_address:
        from soft_actor_critic.sweep.on_ray import check_ray

        check_ray(ray_address)


@contextlib.contextmanager
def workers(config: SweepConfig, groups: list[list[TrainConfig]]) -> Iterator:
    """Where the groups of runs train, as config says: LocalWorkers (local.py) or RayTasks (on_ray.py), both
    with free(), start(group), stop(names), wait() and steps()."""
    if config.ray_address:
        from soft_actor_critic.sweep.on_ray import ray_tasks

        with ray_tasks(config.ray_address, groups) as tasks:
            yield tasks
    else:
        from soft_actor_critic.sweep.local import LocalWorkers

        yield LocalWorkers(config.workers, len(groups))


def train_groups(
    pool, groups: list[list[TrainConfig]], sweep_dir: Path, *, total: int, done: int, command: str
) -> None:
    """Train the groups of runs (task.packed_groups) on the pool, under one progress bar that counts the
    sweep's `total` steps from the `done` of earlier commands. Ctrl-C (or SIGTERM) asks each running run
    to checkpoint and stop, once, and starts no other; `command` continues the sweep."""
    num_runs = sum(map(len, groups))
    packing = f", packed up to {max(map(len, groups))} to a process" if len(groups) < num_runs else ""
    console.say(f"{console.count(num_runs, 'run')} to train{packing}, {pool.describe()}")
    queue, outcomes = list(groups), {}
    with stop_requests(second_interrupt_aborts=False) as stop, console.ProgressBar(total, done) as bar:
        in_flight = 0
        while in_flight or (queue and stop.signum is None):
            while queue and pool.free() > 0 and stop.signum is None:
                pool.start(queue.pop(0))
            if stop.signum is not None:
                pool.stop()
            for names, seconds, outcome in pool.wait():
                for name in names:
                    record_outcome(sweep_dir, outcomes, name, seconds, outcome, log=names[0])
            in_queue = sum(map(len, queue))
            in_flight = num_runs - in_queue - len(outcomes)
            bar.update(pool.steps() + done - bar.n)
            bar.set_postfix(runs=f"{len(outcomes)} done, {in_flight} running, {in_queue} queued", refresh=False)
    raise_unless_finished(outcomes, num_runs, stop, command)
