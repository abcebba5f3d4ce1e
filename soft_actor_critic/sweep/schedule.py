"""The one loop that trains groups of runs on a pool, for a sweep and for a study alike: it starts what a plan
gives it while the pool has room, hands back how each group ended, and on Ctrl-C or SIGTERM asks every running
run to checkpoint and stop, starts nothing more, and returns as soon as none runs (queued runs never started:
nothing waits for them). A study's own verbs (ask, report, prune, tell) live in its plan."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Protocol

from soft_actor_critic import console
from soft_actor_critic.config import TrainConfig
from soft_actor_critic.signals import StopRequest, stop_requests
from soft_actor_critic.study_config import Execution


class Plan(Protocol):
    """What a scheduler runs: a sweep's grid, or a study's trials."""

    def next_group(self) -> list[TrainConfig] | None:
        """The next group of runs to start (task.packed_groups), or None while there is none."""

    def ended(self, names: tuple[str, ...], seconds: float, outcome: str) -> None:
        """A group has ended: its run names, its seconds, and how ("finished", "interrupted", "busy: ..."
        or "error: ...")."""

    def check(self, pool) -> None:
        """Between two waits: a study reports its trials' new evals and stops the runs of those it prunes."""

    def status(self) -> str:
        """The progress bar's note, such as 'runs: 3 done, 2 running, 10 queued'."""

    def total(self) -> int:
        """The env steps of all its runs, earlier commands' included, less those it will not train (pruned)."""


def schedule(pool, plan: Plan, *, done: int) -> StopRequest:
    """Train the plan's groups on the pool under one progress bar of the plan's env steps, from the `done` of
    earlier commands; returns the stop request, whose signum is set if Ctrl-C or SIGTERM came."""
    with stop_requests(second_interrupt_aborts=False) as stop, console.ProgressBar(plan.total(), done) as bar:
        while True:
            if stop.signum is None:
                plan.check(pool)  # first: what ended may be due to be told, and what to start next follows from it
                while pool.free() > 0 and (group := plan.next_group()) is not None:
                    pool.start(group)
            else:
                pool.stop()  # each running group once; a second Ctrl-C changes nothing
            if not pool.running:  # nothing runs, and nothing more will start
                return stop
            for names, seconds, outcome in pool.wait():  # at most a second
                plan.ended(names, seconds, outcome)
            bar.total = plan.total()
            bar.update(pool.steps() + done - bar.n)
            bar.set_postfix_str(plan.status(), refresh=False)


@contextlib.contextmanager
def workers(config: Execution, groups: int, *, on_gpu: bool) -> Iterator:
    """Where the groups of runs train, as config says: LocalWorkers (local.py) or RayTasks (on_ray.py), both
    with running, free(), start(group), stop(names), wait() and steps(); `groups` is how many there will be
    at most, `on_gpu` whether they ask for a GPU."""
    if config.ray_address:
        from soft_actor_critic.sweep.on_ray import ray_tasks

        with ray_tasks(config.ray_address, groups, on_gpu=on_gpu) as tasks:
            yield tasks
    else:
        from soft_actor_critic.sweep.local import LocalWorkers

        yield LocalWorkers(config.workers, groups)
