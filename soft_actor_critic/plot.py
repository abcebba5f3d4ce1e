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
from matplotlib.figure import Figure, SubFigure
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from soft_actor_critic import console
from soft_actor_critic.config import PlotConfig, RunError, TrainConfig, reported, setting_key
from soft_actor_critic.runs import CONFIG_FILE, load_train_config, read_eval_rows
from soft_actor_critic.sweep.summary import setting_names

LABEL_WIDTH = 40  # characters on a line of the legend


@dataclasses.dataclass
class RunCurves:
    """What plot draws of one run: its config and its two curves."""

    path: Path
    config: TrainConfig
    returns: tuple[np.ndarray, np.ndarray]  # (env steps, mean return of the last episodes) at each episode's end
    evals: tuple[np.ndarray, np.ndarray]  # (env steps, mean eval return)


def find_runs(paths: tuple[str, ...]) -> list[Path]:
    """Each path is a run folder, or a folder of runs and of sweeps' folders of runs (two levels down);
    a run named twice counts once."""
    runs = []
    for name in paths:
        path = Path(name).resolve()
        if not path.exists():
            raise RunError(f"{name} does not exist")
        found = sorted(config.parent for pattern in ("", "*/", "*/*/") for config in path.glob(pattern + CONFIG_FILE))
        if not found:
            raise RunError(f"{name} holds no run folder (none with a {CONFIG_FILE}, nor a folder of them)")
        runs.extend(run for run in found if run not in runs)
    return runs


def scalars(path: Path, tag: str) -> tuple[np.ndarray, np.ndarray]:
    """(steps, values) of one of a run's TensorBoard scalars, every point; empty where it logged none."""
    # A resumed run's purge of what came after its checkpoint is expected: tensorboard need not warn of it.
    logging.getLogger("tensorboard").setLevel(logging.ERROR)
    events = EventAccumulator(str(path), size_guidance={"scalars": 0})  # 0: keep every point
    with reported(f"cannot read the TensorBoard events in {path}", Exception):  # of many types, if damaged
        events.Reload()
        points = events.Scalars(tag) if tag in events.Tags()["scalars"] else []
    return np.array([point.step for point in points]), np.array([point.value for point in points])


def load_run(path: Path, window: int) -> RunCurves | None:
    """A run's curves: episode returns from its TensorBoard events, each the mean of the last `window`, and
    evals from its eval.csv; None if it has logged neither yet."""
    steps, returns = scalars(path, "episode/return")
    rows = read_eval_rows(path)
    if not len(steps) and not rows:
        return None
    evals = (np.array([row["step"] for row in rows]), np.array([row["return_mean"] for row in rows]))
    return RunCurves(path, load_train_config(path), (steps, smooth(returns, window)), evals)


def smooth(values: np.ndarray, window: int) -> np.ndarray:
    """Trailing moving average; the first points average what there is so far."""
    sums = np.cumsum(np.insert(values, 0, 0.0))  # sums[i]: the sum of the first i values
    ends = np.arange(1, len(values) + 1)
    starts = np.maximum(ends - window, 0)
    return (sums[ends] - sums[starts]) / (ends - starts)


def group_by_setting(runs: list[RunCurves]) -> dict[str, dict[str, list[RunCurves]]]:
    """{env name: {setting's name: its runs}}: runs of one setting (config.setting_key) are seeds of one curve,
    named by what tells it apart from the env's other curves."""
    grouped = defaultdict(lambda: defaultdict(list))
    for env_name in dict.fromkeys(run.config.env_name for run in runs):
        members = [run for run in runs if run.config.env_name == env_name]
        names = setting_names([run.config for run in members], separator=", ")
        for run in members:
            grouped[env_name][names[setting_key(run.config)]].append(run)
    return grouped


def label(setting: str, runs: list[RunCurves]) -> str:
    """A curve's legend: the run's folder name, or its setting's name and how many seeds it averages (and
    runs, where a seed ran twice)."""
    if len(runs) == 1:
        return runs[0].path.name
    seeds = len({run.config.seed for run in runs})
    count = console.count(seeds, "seed") + (f" ({len(runs)} runs)" if len(runs) > seeds else "")
    return textwrap.fill(f"{setting}, {count}", LABEL_WIDTH, break_on_hyphens=False)  # a wide legend squeezes the panel


def draw(axes, curves: list[tuple[np.ndarray, np.ndarray]], name: str, color: str | None = None) -> None:
    """One curve, or the mean and the spread (population std) of several over the steps they share: each
    (of one point or more) is interpolated at every step where any of them has a point. Like rl-zoo's plots,
    the mean stops where the shortest seed stops."""
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


def draw_env(row: SubFigure, env_name: str, groups: dict[str, list[RunCurves]], window: int) -> None:
    """One env's row: a panel each for the training and the eval returns, where any of its runs logged them,
    with a curve per setting labelled by the runs that panel has data of."""
    panels = {
        f"episode return (mean of the last {window} episodes)": lambda run: run.returns,
        "eval return (deterministic)": lambda run: run.evals,
    }
    runs = [run for members in groups.values() for run in members]
    logged = {title: curve for title, curve in panels.items() if any(len(curve(run)[0]) for run in runs)}
    for axes, (title, curve) in zip(row.subplots(1, len(logged), squeeze=False)[0], logged.items()):
        axes.set(title=f"{env_name}: {title}", xlabel="env steps", ylabel="return")
        for index, (setting, members) in enumerate(groups.items()):
            with_data = [run for run in members if len(curve(run)[0])]
            color = f"C{index % 10}"  # one color per setting in both panels, even where one has no data
            draw(axes, [curve(run) for run in with_data], label(setting, with_data), color)
        axes.grid(alpha=0.3)
        if axes.has_data():
            axes.legend(loc="best", fontsize="small")


def default_output(first: Path) -> Path:
    """plot.png in the first folder named, or beside it if that is a run folder."""
    return (first.parent if (first / CONFIG_FILE).is_file() else first) / "plot.png"


def plot(config: PlotConfig) -> Path:
    """Draw the runs into config.output (default_output if None); returns its path."""
    paths = find_runs(config.runs)
    runs = [run for run in (load_run(path, config.smooth) for path in paths) if run is not None]
    if not runs:
        if len(paths) == 1:
            raise RunError(f"{paths[0]} has logged no episode returns or evals yet: nothing to plot")
        raise RunError(f"none of the {len(paths)} runs has logged an episode return or an eval yet: nothing to plot")
    for path in sorted(set(paths) - {run.path for run in runs}):
        print(f"note: {path} has logged no episode returns or evals yet: left out", file=sys.stderr)
    grouped = group_by_setting(runs)
    figure = Figure(figsize=(12, 4 * len(grouped)), layout="constrained")
    for row, (env_name, groups) in zip(figure.subfigures(len(grouped), 1, squeeze=False).flat, grouped.items()):
        draw_env(row, env_name, groups, config.smooth)
    output = Path(config.output) if config.output else default_output(Path(config.runs[0]))
    with reported(f"cannot write {output}", OSError):
        figure.savefig(output, dpi=100)
    print(f"wrote {output} ({console.count(len(runs), 'run')})")
    return output
