"""A study's report: its complete trials ranked by value, its pruned ones apart, what each cost (env steps
trained and wall time), the best setting as a train command, trials.csv, and the PNGs of its optimization
history and of its parameters' importances (Optuna's matplotlib plots)."""

from __future__ import annotations

import dataclasses
import shlex
import warnings
from pathlib import Path

from soft_actor_critic import console
from soft_actor_critic.config import NOT_SETTINGS, TrainConfig
from soft_actor_critic.flags import flag_name, show
from soft_actor_critic.runs import checkpoint_step, write_csv
from soft_actor_critic.sweep.task import WALL_TIMES_FILE, read_wall_times
from soft_actor_critic.tune.space import drawn_setting

TRIALS_FILE = "trials.csv"
SHOWN = 10  # complete trials in the printed table


def report(optuna, study, study_dir: Path, shared: dict, program: str):
    """Print the study's summary, its best complete trials, its pruned ones and the best setting's train
    command; write trials.csv and the plots. Returns the best complete trial, or None if none is."""
    names = sorted({name for trial in study.trials for name in trial.params})
    params = [flag_name(name).removeprefix("--") for name in names]
    times = read_wall_times(study_dir / WALL_TIMES_FILE)
    rows = [row_of(trial, names, params, study_dir, times) for trial in study.trials]
    header = ["trial", "state", "value", "pruned at", "env steps", "minutes", *params]
    write_csv(study_dir / TRIALS_FILE, header, rows)
    states = [row["state"] for row in rows]
    seeds, steps = study.user_attrs["setup"]["--seeds"], TrainConfig(**shared).num_steps
    saved = sum(trial.user_attrs.get("saved_steps", 0) for trial in study.trials)
    counts = ", ".join(f"{states.count(state)} {state}" for state in ("complete", "pruned", "fail", "running"))
    console.say(
        f"study {study.study_name}: {console.count(len(rows), 'trial')} ({counts}); pruning spared {saved:,} of "
        f"{sum(state != 'fail' for state in states) * len(seeds) * steps:,} env steps; value: the mean over seeds "
        f"{' '.join(map(str, seeds))} of each one's last evals"
    )
    complete = sorted((row for row in rows if row["state"] == "complete"), key=lambda row: -row["value"])
    pruned = [row for row in rows if row["state"] == "pruned"]
    show_table(f"complete trials, the best {SHOWN} of {len(complete)}:", complete[:SHOWN], header, skip="pruned at")
    show_table("pruned trials (not ranked: judged by one early eval):", pruned, header, skip="value")
    best = study.best_trial if complete else None  # Optuna warns of a study with no complete trial
    if best is not None:
        console.say(f"best, trial {best.number}: {train_command(program, shared, best.params)}")
    draw(optuna, study, study_dir, len(complete))
    console.say(f"report: {study_dir / TRIALS_FILE}, {study_dir / 'history.png'}, {study_dir / 'importances.png'}")
    return best


def row_of(trial, names: list[str], params: list[str], study_dir: Path, times: dict[str, float]) -> dict:
    """A trial's row of trials.csv: how it ended, its value (complete) or the step it was pruned at, the env
    steps its seeds trained, their wall time in minutes (of `times`, the study's wall_times.json), its setting."""
    runs = sorted(study_dir.glob(f"trial={trial.number}_seed=*"))
    row = {"trial": trial.number, "state": trial.state.name.lower(), "value": trial.value}
    if trial.state.name == "PRUNED":
        row["pruned at"] = trial.last_step
    row["env steps"] = sum(checkpoint_step(run) or 0 for run in runs)
    row["minutes"] = sum(times.get(run.name, 0.0) for run in runs) / 60
    return row | {param: trial.params.get(name) for name, param in zip(names, params)}


def show_table(title: str, rows: list[dict], header: list[str], *, skip: str) -> None:
    """A Markdown table of trials, as a sweep's summary; nothing for none."""
    if not rows:
        return
    columns = [column for column in header if column not in (skip, "state")]
    console.say(title)
    for cells in [columns, ["---"] * len(columns), *([row.get(column) for column in columns] for row in rows)]:
        console.say("| " + " | ".join(f"{cell:.4g}" if isinstance(cell, float) else str(cell) for cell in cells) + " |")


def train_command(program: str, shared: dict, params: dict) -> str:
    """The train command of a setting: the study's flags that differ from train's defaults, and the trial's; not
    those that only repeat what the algorithm and the layer widths make of a flag left out (a stored study's)."""
    defaults = {field.name: field.default for field in dataclasses.fields(TrainConfig)}
    fixed = {name: value for name, value in shared.items() if value != defaults[name] and name not in NOT_SETTINGS}
    setting = fixed | drawn_setting(params)
    implied = TrainConfig(**{name: value for name, value in setting.items() if defaults[name] is not None})
    words = ["train"]
    for name, value in setting.items():
        if defaults[name] is None and value == getattr(implied, name):
            continue
        words += [flag_name(name), *show(value).split()]
    return f"{program} {shlex.join(words)}"


def draw(optuna, study, study_dir: Path, complete: int) -> None:
    """history.png and, once two trials have completed, importances.png (PED-ANOVA: no scikit-learn)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from optuna.visualization import matplotlib as plots

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # Optuna marks its matplotlib plots experimental
        figures = {"history.png": lambda: plots.plot_optimization_history(study)}
        if complete >= 2:
            evaluator = optuna.importance.PedAnovaImportanceEvaluator()
            figures["importances.png"] = lambda: plots.plot_param_importances(study, evaluator=evaluator)
        for name, plot in figures.items():
            figure = plot().figure
            figure.savefig(study_dir / name, bbox_inches="tight")
            plt.close(figure)
