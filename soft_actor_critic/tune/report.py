"""A study's report: its best trials, the best setting as a train command, trials.csv, and the PNGs of its
optimization history and of its parameters' importances (Optuna's matplotlib plots)."""

from __future__ import annotations

import dataclasses
import shlex
import warnings
from pathlib import Path

from soft_actor_critic import console
from soft_actor_critic.config import NOT_SETTINGS, TrainConfig, flag_name, show
from soft_actor_critic.runs import write_csv
from soft_actor_critic.tune.space import widths

TRIALS_FILE = "trials.csv"
SHOWN = 10  # trials in the printed table


def report(optuna, study, study_dir: Path, train_args: dict, program: str) -> None:
    """Print the study's summary, its best trials and the best setting's train command; write trials.csv
    (every trial: number, state, value, the env steps each seed trained, its setting) and the plots."""
    names = sorted({name for trial in study.trials for name in trial.params})
    rows = [
        [trial.number, trial.state.name.lower(), trial.value, max(trial.intermediate_values, default=0)]
        + [trial.params.get(name) for name in names]
        for trial in study.trials
    ]
    header = ["trial", "state", "value", "steps", *(flag_name(name).removeprefix("--") for name in names)]
    write_csv(study_dir / TRIALS_FILE, header, [dict(zip(header, row)) for row in rows])
    seeds, steps = study.user_attrs["setup"]["--seeds"], TrainConfig(**train_args).num_steps
    saved = sum(trial.user_attrs.get("saved_steps", 0) for trial in study.trials)
    console.say(
        f"study {study.study_name}: {console.count(len(rows), 'trial')}, {sum(row[1] == 'pruned' for row in rows)} "
        f"pruned (sparing {saved:,} of {len(rows) * len(seeds) * steps:,} env steps); value: the mean over seeds "
        f"{' '.join(map(str, seeds))} of each one's last evals; the best {SHOWN}:"
    )
    best = sorted((row for row in rows if row[2] is not None), key=lambda row: -row[2])[:SHOWN]
    for row in [header, ["---"] * len(header), *best]:  # a Markdown table, as a sweep's summary
        console.say("| " + " | ".join(f"{cell:.4g}" if isinstance(cell, float) else str(cell) for cell in row) + " |")
    complete = sum(row[1] == "complete" for row in rows)
    if complete:
        console.say(f"best, trial {study.best_trial.number}: {train_command(program, train_args, study.best_params)}")
    draw(optuna, study, study_dir, complete)
    console.say(f"report: {study_dir / TRIALS_FILE}, {study_dir / 'history.png'}, {study_dir / 'importances.png'}")


def train_command(program: str, train_args: dict, params: dict) -> str:
    """The train command of a setting: the study's flags that differ from train's defaults, and the trial's."""
    defaults = {field.name: field.default for field in dataclasses.fields(TrainConfig)}
    fixed = {name: value for name, value in train_args.items() if value != defaults[name] and name not in NOT_SETTINGS}
    params = {name: widths(value) if isinstance(value, str) else value for name, value in params.items()}
    words = ["train"]
    for name, value in (fixed | params).items():
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
