"""Sweeps: every combination of the values given to train's flags, each an ordinary run folder inside
<directory>/<sweep-name>, trained by worker processes on this machine or by Ray tasks on a cluster; and
the summary table of the runs' final evals.

A sweep runs the same train() a user runs, and running the same command again continues it: finished
runs are kept, unfinished ones resume from their checkpoints, missing ones start. Its parts: the grid
and its manifest (grid.py), one run as a worker trains it (task.py), the local workers (local.py), the
Ray backend (on_ray.py), the loop that schedules runs on either, for a sweep and a study alike
(schedule.py), and the summary (summary.py).
"""

from __future__ import annotations

import time
from pathlib import Path

from soft_actor_critic import console
from soft_actor_critic.config import TrainConfig
from soft_actor_critic.runs import checkpoint_step
from soft_actor_critic.study_config import Execution, SweepConfig, grouped
from soft_actor_critic.sweep.grid import expand, read_manifest, write_manifest
from soft_actor_critic.sweep.schedule import schedule, workers
from soft_actor_critic.sweep.summary import summarize
from soft_actor_critic.sweep.task import packed_groups, raise_unless_finished, record_outcome


def sweep(config: SweepConfig, grid: dict, command: str) -> list[dict]:
    """Train every run of the grid that has not finished, then print and write the summary, and return its
    rows (summary.summarize). `command` is the command line that continues the sweep, for the messages that
    say so."""
    sweep_dir = Path(grid["directory"]) / config.sweep_name
    if config.summary:  # of the grid the sweep was run with, whatever the other flags say
        return summarize(sweep_dir, expand(read_manifest(sweep_dir), sweep_dir))
    runs = expand(grouped(grid, config.sweep_name), sweep_dir)
    check_before_writing(runs, config.ray_address)
    write_manifest(sweep_dir, grid)
    train_sweep(config, sweep_dir, runs, command)
    return summarize(sweep_dir, runs)


def train_sweep(config: Execution, sweep_dir: Path, runs: list[TrainConfig], command: str) -> None:
    """Train the runs that have not finished, on the workers or on Ray as `config` says; Ctrl-C (or SIGTERM)
    checkpoints the running ones and raises Interrupted with `command`, which continues the sweep."""
    steps = {run: checkpoint_step(Path(run.directory) / run.run_name) for run in runs}  # each read once, cheaply
    todo = {run: step for run, step in steps.items() if (step or 0) < run.num_steps}
    console.say(f"sweep {sweep_dir}: {console.count(len(runs), 'run')}, {len(runs) - len(todo)} finished already")
    if not todo:
        return
    start = time.perf_counter()
    plan = SweepPlan(sweep_dir, packed_groups(todo, config.seeds_per_process), sum(run.num_steps for run in runs))
    packing = f", packed up to {max(map(len, plan.queue))} to a process" if len(plan.queue) < len(todo) else ""
    with workers(config, len(plan.queue), on_gpu=runs[0].device != "cpu") as pool:
        console.say(f"{console.count(len(todo), 'run')} to train{packing}, {pool.describe()}")
        done = sum(min(step or 0, run.num_steps) for run, step in steps.items())
        stop = schedule(pool, plan, done=done)
    raise_unless_finished(plan.outcomes, len(todo), stop, command)
    console.say(f"sweep {sweep_dir}: trained in {(time.perf_counter() - start) / 60:.1f} min")


def check_before_writing(runs: list[TrainConfig], ray_address: str | None) -> None:
    """Refuse, before anything is written, an env SAC cannot drive (each env of the runs, made as they make
    it), --track without W&B and a Ray address that does not answer: bad input leaves no sweep or study folder
    behind."""
    from soft_actor_critic.environment import make_env
    from soft_actor_critic.tracking import writer_class

    writer_class(runs[0])  # --track without wandb
    envs = {(run.env_name, run.env_kwargs, run.max_episode_steps): run for run in runs}
    for run in envs.values():
        make_env(run).close()
    if ray_address:
        from soft_actor_critic.sweep.on_ray import check_ray

        check_ray(ray_address)


class SweepPlan:
    """A sweep's runs for the scheduler: its groups in order, and how each run ended."""

    def __init__(self, sweep_dir: Path, groups: list[list[TrainConfig]], total: int) -> None:
        self.sweep_dir = sweep_dir
        self.queue = list(groups)
        self.steps = total
        self.running = 0  # runs
        self.outcomes: dict[str, str] = {}

    def next_group(self) -> list[TrainConfig] | None:
        if not self.queue:
            return None
        self.running += len(self.queue[0])
        return self.queue.pop(0)

    def ended(self, names: tuple[str, ...], seconds: float, outcome: str) -> None:
        self.running -= len(names)
        for name in names:
            record_outcome(self.sweep_dir, self.outcomes, name, seconds, outcome, log=names[0])

    def check(self, pool) -> None:
        pass  # a sweep judges nothing while it runs

    def status(self) -> str:
        return f"runs: {len(self.outcomes)} done, {self.running} running, {sum(map(len, self.queue))} queued"

    def total(self) -> int:
        return self.steps
