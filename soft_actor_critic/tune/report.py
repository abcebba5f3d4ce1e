"""A study's report: its best trials, the best setting as a train command, trials.csv, and the PNGs of its
optimization history and of its parameters' importances (Optuna's matplotlib plots)."""

from __future__ import annotations

import csv
import dataclasses
import io
import shlex
import warnings
from pathlib import Path

from soft_actor_critic import console
from soft_actor_critic.config import NOT_SETTINGS, TrainConfig, flag_name, show
from soft_actor_critic.runs import write_atomically
from soft_actor_critic.tune.space import widths

TRIALS_FILE = "trials.csv"
SHOWN = 10  # trials in the printed table


def report(optuna, study, study_dir: Path, train_args: dict, program: str) -> None:
    base = TrainConfig(**train_args)
    trials = sorted((trial for trial in study.trials if trial.value is not None), key=lambda trial: -trial.value)
    names = sorted({name for trial in study.trials for name in trial.params})
    pruned = [trial for trial in study.trials if trial.state == optuna.trial.TrialState.PRUNED]
    saved = sum(trial.user_attrs.get("saved_steps", 0) for trial in pruned)
    seeds = study.user_attrs["setup"]["--seeds"]
    console.say(
        f"study {study.study_name}: {console.count(len(study.trials), 'trial')}, {len(pruned)} pruned "
        f"(sparing {saved:,} of {len(study.trials) * len(seeds) * base.num_steps:,} env steps); "
        f"value: mean of each seed's last evals over seeds {' '.join(map(str, seeds))}"
    )
    header = ["trial", "value", "state", *(flag_name(name).removeprefix("--") for name in names)]
    rows = [
        [trial.number, f"{trial.value:.1f}", state(trial), *(shown(trial.params.get(name, "")) for name in names)]
        for trial in trials
    ]
    widths = [max(len(str(cell)) for cell in column) for column in zip(header, *rows[:SHOWN])]
    for row in [header, *rows[:SHOWN]]:
        console.say("  ".join(str(cell).rjust(width) for cell, width in zip(row, widths)))
    write_trials(study_dir / TRIALS_FILE, study, names)
    complete = [trial for trial in trials if trial.state == optuna.trial.TrialState.COMPLETE]
    if complete:
        console.say(f"best, trial {complete[0].number}: {train_command(program, train_args, complete[0].params)}")
    draw(optuna, study, study_dir, len(complete))
    console.say(f"report: {study_dir / TRIALS_FILE}, {study_dir / 'history.png'}, {study_dir / 'importances.png'}")


def state(trial) -> str:
    return trial.state.name.lower() + (f" at {trial.last_step}" if trial.state.name == "PRUNED" else "")


def train_command(program: str, train_args: dict, params: dict) -> str:
    """The train command of a setting: the study's flags that differ from train's defaults, and the trial's."""
    defaults = {field.name: field.default for field in dataclasses.fields(TrainConfig)}
    fixed = {name: value for name, value in train_args.items() if value != defaults[name] and name not in NOT_SETTINGS}
    words = ["train"]
    for name, value in (
        fixed | {name: widths(value) if isinstance(value, str) else value for name, value in params.items()}
    ).items():
        words += [flag_name(name), *show(value).split()]
    return f"{program} {shlex.join(words)}"


def write_trials(path: Path, study, names: list[str]) -> None:
    """trials.csv: each trial's number, state, value, the env steps each seed trained, and its setting."""
    text = io.StringIO()
    writer = csv.writer(text, lineterminator="\n")
    writer.writerow(["trial", "state", "value", "steps", *names])
    for trial in study.trials:
        steps = max(trial.intermediate_values, default=0)
        writer.writerow([trial.number, trial.state.name.lower(), trial.value, steps, *map(trial.params.get, names)])
    write_atomically(path, lambda file: file.write(text.getvalue().encode()))


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
            axes = plot()
            axes.figure.savefig(study_dir / name, bbox_inches="tight")
            plt.close(axes.figure)


def shown(value) -> str:
    return f"{value:.3g}" if isinstance(value, float) else str(value)
