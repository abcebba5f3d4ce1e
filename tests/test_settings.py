"""Runs that differ only in their seed are seeds of one setting (config.setting_key), to `plot` and to a
sweep's summary alike, and both name a setting as the sweep names its folders."""

import csv
from pathlib import Path

import pytest

from soft_actor_critic.config import TrainConfig
from soft_actor_critic.plot import find_runs, group_by_setting, load_run
from soft_actor_critic.runs import write_eval_rows, write_train_config
from soft_actor_critic.sweep.grid import expand
from soft_actor_critic.sweep.summary import summarize


def finished_sweep(sweep_dir: Path, **grid) -> list[TrainConfig]:
    """The run folders of a sweep of Pendulum-v1 over `grid`, as it leaves them (config.json, evals every 100
    steps up to the run's end), without training them."""
    runs = expand({"env_name": "Pendulum-v1", "eval_every": 100, **grid}, sweep_dir)
    for run in runs:
        run_dir = sweep_dir / run.run_name
        run_dir.mkdir(parents=True)
        write_train_config(run_dir, run)
        steps = range(100, run.num_steps + 1, 100)
        write_eval_rows(
            run_dir, [{"step": step, "return_mean": -step, "return_std": 0.0, "episodes": 1} for step in steps]
        )
    return runs


def settings_in(sweep_dir: Path, runs: list[TrainConfig]) -> tuple[list[str], list[str]]:
    """The names of the sweep's curves in `plot` and of the rows of its summary."""
    (curves,) = group_by_setting([load_run(path, window=1) for path in find_runs((str(sweep_dir),))]).values()
    summarize(sweep_dir, runs)
    with open(sweep_dir / "summary.csv", newline="") as file:
        return sorted(curves), [row["setting"] for row in csv.DictReader(file)]


@pytest.mark.parametrize(
    ("grid", "names"),
    [
        ({"num_steps": [200, 300]}, ["num-steps=200", "num-steps=300"]),  # a longer run is another setting
        ({"num_steps": 200, "checkpoint_every": [100, 200]}, ["Pendulum-v1"]),  # how a run is carried out is not
    ],
)
def test_plot_and_summary_see_the_same_settings(grid, names, tmp_path, capsys):
    runs = finished_sweep(tmp_path / "study", seed=[1, 2], **grid)
    assert settings_in(tmp_path / "study", runs) == (names, names)


def test_a_setting_is_named_as_the_sweep_names_its_folders(tmp_path, capsys):
    """Flags spelled without their dashes, layer widths as 256,256, and not the critic's widths that only
    follow from --hidden-units."""
    sweep_dir = tmp_path / "study"
    runs = finished_sweep(sweep_dir, num_steps=200, seed=[1, 2], hidden_units=[(16, 16), (32,)], learning_rate=[1e-3])
    curves, rows = settings_in(sweep_dir, runs)
    assert curves == rows == ["hidden-units=16,16", "hidden-units=32"]
    assert {f"{row}_seed={seed}" for row in rows for seed in (1, 2)} == {run.run_name for run in runs}
