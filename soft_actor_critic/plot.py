"""Learning curves of one or many runs as a PNG: training episode return and periodic eval return.

Runs that share an env and every setting but the seed are one curve: the mean across seeds, with a
band of one standard deviation. Figures are drawn with matplotlib's object API and its Agg canvas,
so no display is ever needed.
"""

from __future__ import annotations

import dataclasses
import logging
import sys
import textwrap
from collections import defaultdict
from pathlib import Path

import numpy as np
from matplotlib.figure import Figure
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from soft_actor_critic.config import ALGORITHM_DEFAULTS, RESUME_FLAGS, PlotConfig, RunError, TrainConfig, first_line
from soft_actor_critic.runs import CONFIG_FILE, load_train_config, read_eval_rows
from soft_actor_critic.sweep.grid import MANIFEST_FILE
from soft_actor_critic.sweep.task import LOG_FOLDER

LABEL_WIDTH = 40  # characters on a line of the legend
# What does not split a curve: the seed, where the run is, and what `train --resume` may change (how long
# and how a run was carried out, not what it learned).
NOT_SETTINGS = {"seed", "run_name", "directory", *RESUME_FLAGS}


@dataclasses.dataclass
class RunCurves:
    """What plot draws of one run: its config and its two curves."""

    path: Path
    config: TrainConfig
    returns: tuple[np.ndarray, np.ndarray]  # (env steps, episode return) at each episode's end
    evals: tuple[np.ndarray, np.ndarray]  # (env steps, mean eval return)


def find_runs(paths: tuple[str, ...]) -> list[Path]:
    """Each path is a run folder, or a folder of runs and of sweeps' folders of runs (two levels down);
    a run named twice counts once. A folder down there that holds no run is skipped with a note."""
    runs = []
    for name in paths:
        path = Path(name).resolve()
        if not path.exists():
            raise RunError(f"{name} does not exist")
        found, skipped = runs_in(path, name, levels=2)
        if not found:
            raise RunError(f"{name} holds no run folder (none with a {CONFIG_FILE}, nor a folder of them)")
        for folder in skipped:
            print(f"note: {folder} holds no run: skipped", file=sys.stderr)
        runs.extend(run for run in found if run not in runs)
    return runs


def runs_in(path: Path, name: str, levels: int) -> tuple[list[Path], list[Path]]:
    """The run folders at `path` or up to `levels` below it, and the folders below it that hold none."""
    if (path / CONFIG_FILE).is_file():
        return [path], []
    if not levels or not path.is_dir():
        return [], []
    try:
        inside = sorted(child for child in path.iterdir() if child.is_dir() and not child.name.startswith("."))
    except OSError as error:
        raise RunError(f"cannot read {name}: {error.strerror or first_line(error)}") from None
    if (path / MANIFEST_FILE).is_file():  # a sweep: its logs are not runs
        inside = [child for child in inside if child.name != LOG_FOLDER]
    found, skipped = [], []
    for child in inside:
        runs, empty = runs_in(child, name, levels - 1)
        found += runs
        skipped += empty if runs else [child]
    return found, skipped


def scalars(path: Path, tag: str) -> tuple[np.ndarray, np.ndarray]:
    """(steps, values) of one of a run's TensorBoard scalars, every point; empty where it logged none."""
    # A resumed run's purge of what came after its checkpoint is expected: tensorboard need not warn of it.
    logging.getLogger("tensorboard").setLevel(logging.ERROR)
    events = EventAccumulator(str(path), size_guidance={"scalars": 0})  # 0: keep every point
    try:
        events.Reload()
        points = events.Scalars(tag) if tag in events.Tags()["scalars"] else []
    except Exception as error:  # tensorboard raises many types for a damaged event file
        raise RunError(f"cannot read the TensorBoard events in {path}: {first_line(error)}") from None
    return np.array([point.step for point in points]), np.array([point.value for point in points])


def load_run(path: Path) -> RunCurves | None:
    """A run's curves: episode returns from its TensorBoard events, evals from its eval.csv; None if it
    has logged neither yet."""
    returns = scalars(path, "episode/return")
    rows = read_eval_rows(path)
    if not len(returns[0]) and not rows:
        return None
    evals = (np.array([row["step"] for row in rows]), np.array([row["return_mean"] for row in rows]))
    return RunCurves(path, load_train_config(path), returns, evals)


def smooth(values: np.ndarray, window: int) -> np.ndarray:
    """Trailing moving average; the first points average what there is so far."""
    sums = np.cumsum(np.insert(values, 0, 0.0))  # sums[i]: the sum of the first i values
    ends = np.arange(1, len(values) + 1)
    starts = np.maximum(ends - window, 0)
    return (sums[ends] - sums[starts]) / (ends - starts)


def settings(config: TrainConfig) -> dict:
    return {key: value for key, value in dataclasses.asdict(config).items() if key not in NOT_SETTINGS}


def group_by_setting(runs: list[RunCurves]) -> dict[str, dict[str, list[RunCurves]]]:
    """{env name: {settings: runs}}; the settings name what differs from the env's other curves."""
    by_env = defaultdict(lambda: defaultdict(list))
    for run in runs:
        by_env[run.config.env_name][tuple(sorted(settings(run.config).items()))].append(run)
    labelled = {}
    for env_name, groups in by_env.items():
        differing = {key for key, _ in set().union(*groups) if len({dict(group)[key] for group in groups}) > 1}
        labelled[env_name] = {
            ", ".join(
                f"{key}={value}" for key, value in sorted(dict(group).items()) if key in shown(dict(group), differing)
            ): members
            for group, members in groups.items()
        }
    return labelled


def shown(setting: dict, differing: set[str]) -> set[str]:
    """The differing settings a curve's label names: not those that only follow from its --algorithm
    (CrossQ's learning rate, say, against SAC's), which `algorithm=` already says."""
    defaults = ALGORITHM_DEFAULTS[setting["algorithm"]]
    implied = {
        key
        for key, default in defaults.items()
        if setting[key] == (setting["hidden_units"] if default is None else default)
    }
    return differing - implied if "algorithm" in differing else differing


def label(setting: str, runs: list[RunCurves]) -> str:
    """A curve's legend: its settings and how many seeds it averages (and runs, where a seed ran twice)."""
    seeds = len({run.config.seed for run in runs})
    count = f"{seeds} seed{'s' * (seeds > 1)}" + (f" ({len(runs)} runs)" if len(runs) > seeds else "")
    return textwrap.fill(f"{setting}, {count}" if setting else count, LABEL_WIDTH)  # a wide legend squeezes the panel


def draw(axes, curves: list[tuple[np.ndarray, np.ndarray]], name: str, color: str | None = None) -> None:
    """One curve, or the mean and the spread (population std) of several over the steps they share: each
    is interpolated at every step where any of them has a point. Like rl-zoo's plots, the mean stops
    where the shortest seed stops."""
    curves = [(steps, values) for steps, values in curves if len(steps)]
    if not curves:
        return
    start, stop = max(steps[0] for steps, _ in curves), min(steps[-1] for steps, _ in curves)
    if start > stop:
        flat = name.replace("\n", " ")
        print(f"note: the runs of '{flat}' share no steps in '{axes.get_title()}': not drawn", file=sys.stderr)
        return
    grid = np.unique(np.concatenate([steps[(steps >= start) & (steps <= stop)] for steps, _ in curves]))
    values = np.stack([np.interp(grid, steps, curve) for steps, curve in curves])  # (seeds, steps)
    mean, std = values.mean(axis=0), values.std(axis=0)
    axes.plot(grid, mean, label=name, color=color, marker="o" if len(grid) == 1 else None)
    if len(curves) > 1:
        axes.fill_between(grid, mean - std, mean + std, color=color, alpha=0.2, linewidth=0)


def draw_env(train_axes, eval_axes, env_name: str, groups: dict[str, list[RunCurves]], window: int) -> None:
    """One env's row: a curve per setting in each panel, labelled with the seeds that panel has data of."""
    train_axes.set_title(f"{env_name}: episode return (mean of the last {window} episodes)")
    eval_axes.set_title(f"{env_name}: eval return (deterministic)")
    for index, (setting, members) in enumerate(groups.items()):
        color = f"C{index % 10}"  # one color per curve in both panels, even where one has no data
        with_returns = [run for run in members if len(run.returns[0])]
        steps_and_returns = [(run.returns[0], smooth(run.returns[1], window)) for run in with_returns]
        draw(train_axes, steps_and_returns, label(setting, with_returns), color)
        with_evals = [run for run in members if len(run.evals[0])]
        draw(eval_axes, [run.evals for run in with_evals], label(setting, with_evals), color)
    for axes in (train_axes, eval_axes):
        axes.set_xlabel("env steps")
        axes.set_ylabel("return")
        axes.grid(alpha=0.3)
        if axes.has_data():
            axes.legend(loc="best", fontsize="small")
        else:
            axes.text(0.5, 0.5, "nothing logged", ha="center", va="center", transform=axes.transAxes)


def default_output(first: Path) -> Path:
    """plot.png in the first folder named, or beside it if that is a run folder."""
    return (first.parent if (first / CONFIG_FILE).is_file() else first) / "plot.png"


def plot(config: PlotConfig) -> Path:
    """Draw the runs into config.output (default_output if None); returns its path."""
    paths = find_runs(config.runs)
    runs = [run for run in map(load_run, paths) if run is not None]
    if not runs:
        if len(paths) == 1:
            raise RunError(f"{paths[0]} has logged no episode returns or evals yet: nothing to plot")
        raise RunError(f"none of the {len(paths)} runs has logged an episode return or an eval yet: nothing to plot")
    for path in sorted(set(paths) - {run.path for run in runs}):
        print(f"note: {path} has logged no episode returns or evals yet: left out", file=sys.stderr)
    grouped = group_by_setting(runs)
    figure = Figure(figsize=(12, 4 * len(grouped)), layout="constrained")
    for (train_axes, eval_axes), (env_name, groups) in zip(
        figure.subplots(len(grouped), 2, squeeze=False), grouped.items()
    ):
        draw_env(train_axes, eval_axes, env_name, groups, config.smooth)
    output = Path(config.output) if config.output else default_output(Path(config.runs[0]))
    try:
        figure.savefig(output, dpi=100)
    except OSError as error:
        raise RunError(f"cannot write {output}: {error.strerror or first_line(error)}") from None
    print(f"wrote {output} ({len(runs)} run{'s' * (len(runs) > 1)})")
    return output
