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

from soft_actor_critic.config import RESUME_FLAGS, PlotConfig, RunError, TrainConfig, first_line
from soft_actor_critic.runs import CONFIG_FILE, load_train_config, read_eval_rows

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
    """Each path is a run folder or a folder of runs; a run named twice counts once."""
    runs = []
    for name in paths:
        path = Path(name).resolve()
        try:
            inside = [path] if (path / CONFIG_FILE).is_file() else sorted(path.iterdir()) if path.is_dir() else []
        except OSError as error:
            raise RunError(f"cannot read {name}: {error.strerror or first_line(error)}") from None
        inside = [run for run in inside if (run / CONFIG_FILE).is_file()]
        if not inside:
            raise RunError(f"{name} is neither a run folder nor a folder of runs (no {CONFIG_FILE} found)")
        runs.extend(run for run in inside if run not in runs)
    return runs


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
    """{env name: {curve label: runs}}; a label names what differs from the env's other curves."""
    by_env = defaultdict(lambda: defaultdict(list))
    for run in runs:
        by_env[run.config.env_name][tuple(sorted(settings(run.config).items()))].append(run)
    labelled = {}
    for env_name, groups in by_env.items():
        differing = {key for key, _ in set().union(*groups) if len({dict(group)[key] for group in groups}) > 1}
        labelled[env_name] = {label(dict(group), differing, len(members)): members for group, members in groups.items()}
    return labelled


def label(setting: dict, differing: set[str], seeds: int) -> str:
    text = ", ".join([*(f"{key}={setting[key]}" for key in sorted(differing)), f"{seeds} seed{'s' * (seeds > 1)}"])
    return textwrap.fill(text, LABEL_WIDTH)  # a legend wider than its panel would squeeze the panel


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


def plot(config: PlotConfig) -> Path:
    """Draw the runs into config.output (default: plot.png beside the first run); returns its path."""
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
    for row, (env_name, groups) in zip(figure.subplots(len(grouped), 2, squeeze=False), grouped.items()):
        train_axes, eval_axes = row
        train_axes.set_title(f"{env_name}: episode return (mean of the last {config.smooth} episodes)")
        eval_axes.set_title(f"{env_name}: eval return (deterministic)")
        for index, (name, members) in enumerate(groups.items()):
            color = f"C{index % 10}"  # one color per curve in both panels, even where one has no data
            steps_and_returns = [(run.returns[0], smooth(run.returns[1], config.smooth)) for run in members]
            draw(train_axes, steps_and_returns, name, color)
            draw(eval_axes, [run.evals for run in members], name, color)
        for axes in row:
            axes.set_xlabel("env steps")
            axes.set_ylabel("return")
            axes.grid(alpha=0.3)
            if axes.has_data():
                axes.legend(loc="best", fontsize="small")
            else:
                axes.text(0.5, 0.5, "nothing logged", ha="center", va="center", transform=axes.transAxes)
    output = Path(config.output) if config.output else runs[0].path.parent / "plot.png"  # paths are resolved
    try:
        figure.savefig(output, dpi=100)
    except OSError as error:
        raise RunError(f"cannot write {output}: {error.strerror or first_line(error)}") from None
    print(f"wrote {output} ({len(runs)} run{'s' * (len(runs) > 1)})")
    return output
