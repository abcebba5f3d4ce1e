"""One run of a sweep, as a local worker or a Ray task trains it: its output into its own log, how it
ended, and the record of how long each run has trained; and what the sweep says once its runs are done."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import sys
import time
import traceback
from collections.abc import Callable, Iterator
from pathlib import Path

from soft_actor_critic import console
from soft_actor_critic.config import (
    EXECUTION_SETTINGS,
    Interrupted,
    RunError,
    TrainConfig,
    first_line,
    reported,
    setting_key,
)
from soft_actor_critic.runs import RunInUse, checkpoint_step, locked, wait_until_free, write_atomically
from soft_actor_critic.signals import StopRequest, signal_name

WALL_TIMES_FILE = "wall_times.json"  # seconds each run has trained, over every command that ran it
LOG_FOLDER = "logs"  # <run name>.log: what each run printed
BUSY_SECONDS = 60  # how long a run waits for another process to let go of its folder before it gives up


def packed_groups(runs: dict[TrainConfig, int | None], size: int) -> list[list[TrainConfig]]:
    """The runs, each with the step of its checkpoint, in groups of at most `size` that differ in their
    seed alone (config.setting_key), are carried out alike (EXECUTION_SETTINGS) and stand at the same step
    (training.train_runs); with size 1, one run a group."""
    groups: dict[tuple, list[TrainConfig]] = {}
    for run, step in runs.items():
        key = (setting_key(run), *(getattr(run, name) for name in EXECUTION_SETTINGS), step)
        groups.setdefault(key, []).append(run)
    return [members[start : start + size] for members in groups.values() for start in range(0, len(members), size)]


def train_in_sweep(
    group: list[TrainConfig], count_steps: Callable[[int], None] | None = None
) -> list[tuple[str, float, str]]:
    """Train or continue runs of a sweep: one run, or a group of runs that differ in their seed alone
    and stand at the same step, packed into this process (--seeds-per-process). The output goes to
    <sweep>/logs/<first run>.log, the steps to `count_steps`; returns each run's name, how long it
    trained, and how it ended: "finished", "interrupted" or the error it stopped on."""
    from soft_actor_critic.training import train_runs  # gymnasium and the training code load in the worker only

    # read here, cheaply, rather than passed in: a retried Ray task goes on from the checkpoints of now
    steps = checkpoint_steps(group)
    if all(step is not None and step >= run.num_steps for run, step in zip(group, steps)):
        return [(run.run_name, 0.0, "finished") for run in group]
    start = time.perf_counter()
    with output_to(Path(group[0].directory) / LOG_FOLDER / f"{group[0].run_name}.log"):
        try:
            for run in group:  # a worker of a killed sweep may still be writing its last checkpoint
                wait_until_free(Path(run.directory) / run.run_name, BUSY_SECONDS)
            steps = checkpoint_steps(group)  # again: that checkpoint may be new
            for run, step in zip(group, steps):
                run_dir = Path(run.directory) / run.run_name
                if step is None and run_dir.exists():  # stopped before its first checkpoint: nothing to continue
                    with locked(run_dir):  # unless another process is training it now
                        shutil.rmtree(run_dir)
            if len(group) > 1:
                print(f"packed in one process: {', '.join(run.run_name for run in group)}", flush=True)
            train_runs(group, [step is not None for step in steps], count_steps)
            outcome = "finished"
        except Interrupted:
            outcome = "interrupted"
        except RunInUse as error:  # not a failure of its own: the next command trains it
            print(f"busy: {error}", file=sys.stderr)
            outcome = f"busy: {error}"
        except RunError as error:
            print(f"error: {error}", file=sys.stderr)  # into the run's log: a local worker reports only its exit code
            outcome = f"error: {error}"
        except Exception as error:  # a bug: its traceback goes to the run's log, the sweep goes on
            traceback.print_exc()
            outcome = f"error: {first_line(error)}"
    return [(run.run_name, time.perf_counter() - start, outcome) for run in group]


def checkpoint_steps(group: list[TrainConfig]) -> list[int | None]:
    """The step of each run's checkpoint, None for a run without one."""
    return [checkpoint_step(Path(run.directory) / run.run_name) for run in group]


@contextlib.contextmanager
def output_to(path: Path) -> Iterator[None]:
    """Send this process's stdout and stderr, file descriptors included, to the end of `path`, but for the
    progress bar's redraws (WithoutBar)."""
    path.parent.mkdir(exist_ok=True)
    sys.stdout.flush(), sys.stderr.flush()
    saved = [os.dup(1), os.dup(2)]
    with open(path, "a") as log:
        os.dup2(log.fileno(), 1), os.dup2(log.fileno(), 2)
        stderr, sys.stderr = sys.stderr, WithoutBar(sys.stderr)
        try:
            yield
        finally:
            sys.stdout.flush(), sys.stderr.flush()
            os.dup2(saved[0], 1), os.dup2(saved[1], 2)
            os.close(saved[0]), os.close(saved[1])
            sys.stderr = stderr


class WithoutBar(console.ReaderMayLeave):
    """A run's stderr in its log: each write that starts with a carriage return, a progress bar's redraw
    (about once a second, all on one line on a terminal, a line of its own each in a file), is left out.
    The sweep's own bar counts every run's steps."""

    def write(self, text: str) -> None:
        if not text.startswith("\r"):
            super().write(text)


def record_outcome(
    sweep_dir: Path, outcomes: dict, name: str, seconds: float, outcome: str, log: str | None = None
) -> None:
    """Note how a run ended, and add its time to the sweep's wall_times.json; `log` names the run whose
    log holds its output, where that is another's (packed runs share the first one's)."""
    outcomes[name] = outcome
    path = sweep_dir / WALL_TIMES_FILE
    times = read_wall_times(path)
    times[name] = times.get(name, 0.0) + seconds
    write_atomically(path, lambda file: file.write((json.dumps(times, indent=2) + "\n").encode()))
    if outcome.startswith("error"):
        console.say(f"{name}: stopped on an {outcome} (its log: {sweep_dir / LOG_FOLDER / (log or name)}.log)")
    elif outcome.startswith("busy"):
        console.say(f"{name}: not trained, {outcome.removeprefix('busy: ')} (after {BUSY_SECONDS} s)")


def read_wall_times(path: Path) -> dict[str, float]:
    """The seconds each run has trained ({} before the first has ended); a damaged file is a RunError."""
    if not path.is_file():
        return {}
    with reported(f"{path} is not a valid record of wall times", OSError, ValueError, TypeError, AttributeError):
        return {name: float(seconds) for name, seconds in json.loads(path.read_text()).items()}


def raise_unless_finished(outcomes: dict, num_runs: int, stop: StopRequest, command: str) -> None:
    """After the runs: a stopped sweep raises Interrupted with the command that continues it, and one
    with runs that failed or did not run a RunError."""
    if stop.signum is not None:
        name = signal_name(stop.signum)
        raise Interrupted(f"{name}: the running runs checkpointed; continue with: {command}", stop.signum)
    unfinished = num_runs - sum(outcome == "finished" for outcome in outcomes.values())
    if unfinished:
        raise RunError(f"{unfinished} of {num_runs} runs did not finish; the same command continues them: {command}")
