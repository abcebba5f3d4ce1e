"""Sweeps: every combination of the values given to train's flags, each an ordinary run folder inside
<directory>/<sweep-name>, trained by worker processes on this machine or by Ray tasks on a cluster; and
the summary table of the runs' final evals.

A sweep runs the same train() a user runs, and running the same command again continues it: finished
runs are kept, unfinished ones resume from their checkpoints, missing ones start. Its parts: the grid
and its manifest (grid.py), one run as a worker trains it (task.py), the local workers (local.py), the
Ray backend (on_ray.py) and the summary (summary.py).
"""

from __future__ import annotations

import time
from pathlib import Path

from soft_actor_critic import console
from soft_actor_critic.config import SweepConfig
from soft_actor_critic.runs import checkpoint_step
from soft_actor_critic.sweep.grid import expand, read_manifest, write_manifest
from soft_actor_critic.sweep.summary import summarize
from soft_actor_critic.sweep.task import packed_groups


def sweep(config: SweepConfig, grid: dict, command: str) -> None:
    """Train every run of the grid that has not finished, then print and write the summary. `command`
    is the command line that continues the sweep, for the messages that say so."""
    sweep_dir = Path(grid["directory"]) / config.sweep_name
    if config.summary:  # of the grid the sweep was run with, whatever the other flags say
        summarize(sweep_dir, expand(read_manifest(sweep_dir), sweep_dir))
        return
    runs = expand(grid, sweep_dir)
    from soft_actor_critic.environment import make_env

    for env_name in dict.fromkeys(run.env_name for run in runs):  # an env SAC cannot drive is refused now
        make_env(env_name).close()
    if config.ray_address:  # before anything is written: a wrong address leaves no sweep folder behind
        from soft_actor_critic.sweep.on_ray import check_ray

        check_ray(config.ray_address)
    write_manifest(sweep_dir, grid)
    steps = {run: checkpoint_step(Path(run.directory) / run.run_name) for run in runs}  # each read once, cheaply
    todo = {run: step for run, step in steps.items() if (step or 0) < run.num_steps}
    console.say(f"sweep {sweep_dir}: {console.count(len(runs), 'run')}, {len(runs) - len(todo)} finished already")
    if todo:
        start = time.perf_counter()
        if config.ray_address:
            from soft_actor_critic.sweep.on_ray import train_on_ray as train_runs
        else:
            from soft_actor_critic.sweep.local import train_locally as train_runs
        done = sum(min(step or 0, run.num_steps) for run, step in steps.items())
        groups = packed_groups(todo, config.seeds_per_process)
        train_runs(groups, config, sweep_dir, total=sum(run.num_steps for run in runs), done=done, command=command)
        console.say(f"sweep {sweep_dir}: trained in {(time.perf_counter() - start) / 60:.1f} min")
    summarize(sweep_dir, runs)
