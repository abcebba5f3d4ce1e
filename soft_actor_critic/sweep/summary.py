"""The summary of a sweep: one row per setting, its seeds' final evals as mean ± std and as the
interquartile mean with a bootstrap confidence interval, printed and written to summary.csv."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from soft_actor_critic.config import TrainConfig, setting_key
from soft_actor_critic.runs import read_eval_rows, write_csv
from soft_actor_critic.sweep.grid import setting_part
from soft_actor_critic.sweep.task import WALL_TIMES_FILE, read_wall_times

SUMMARY_FILE = "summary.csv"
SUMMARY_COLUMNS = ("setting", "seeds", "of", "mean", "std", "iqm", "iqm_low", "iqm_high", "per_seed", "minutes_per_run")


def summarize(sweep_dir: Path, runs: list[TrainConfig]) -> list[dict]:
    """Print the summary table, one row a setting (its seeds together), write it to summary.csv and return it."""
    times = read_wall_times(sweep_dir / WALL_TIMES_FILE)
    rows = []
    for key, name in setting_names(runs).items():
        members = [run for run in runs if setting_key(run) == key]
        finals = np.array([value for value in map(final_eval, members) if value is not None])
        row = {"setting": name, "seeds": len(finals), "of": len(members), "evals": members[0].eval_every > 0}
        if len(finals):
            iqm, low, high = iqm_with_interval(finals)
            row |= {"mean": finals.mean(), "std": finals.std(), "iqm": iqm, "iqm_low": low, "iqm_high": high}
            row["per_seed"] = " / ".join(f"{value:.1f}" for value in finals)
        minutes = [times[run.run_name] / 60 for run in members if run.run_name in times]
        row["minutes_per_run"] = sum(minutes) / len(minutes) if minutes else float("nan")
        rows.append(row)
    write_csv(sweep_dir / SUMMARY_FILE, SUMMARY_COLUMNS, rows)
    print_summary(rows, sweep_dir / SUMMARY_FILE)
    return rows


def setting_names(runs: list[TrainConfig], separator: str = "_") -> dict[tuple, str]:
    """The name of each setting (config.setting_key) of the runs, as a sweep names its folders, less the seed:
    the settings that differ between them (Pendulum-v1_learning-rate=0.001, hidden-units=256,256), but not
    those that only follow from the algorithm and layer widths; the env's name where nothing differs."""
    settings = {setting_key(run): dict(setting_key(run)) for run in runs}
    defaults = {  # what each setting's --algorithm and --hidden-units make of the fields left at None
        key: dict(setting_key(TrainConfig(algorithm=setting["algorithm"], hidden_units=setting["hidden_units"])))
        for key, setting in settings.items()
    }
    # SAC's critic as wide as its policy, CrossQ's learning rate against SAC's: named only where not at that
    follow = set(differing(defaults)) - {"algorithm", "hidden_units"}
    named = differing(settings)
    return {
        key: separator.join(
            setting_part(name, setting[name]).removeprefix("env-name=")
            for name in named
            if name not in follow or setting[name] != defaults[key][name]
        )
        or setting["env_name"]
        for key, setting in settings.items()
    }


def differing(settings: dict[tuple, dict]) -> list[str]:
    """The fields whose values are not the same in all the settings."""
    return [name for name in next(iter(settings.values())) if len({setting[name] for setting in settings.values()}) > 1]


def final_eval(run: TrainConfig) -> float | None:
    """The mean return of the run's eval at its last step; None until it has one."""
    rows = read_eval_rows(Path(run.directory) / run.run_name)
    return rows[-1]["return_mean"] if rows and rows[-1]["step"] == run.num_steps else None


def iqm_with_interval(finals: np.ndarray) -> tuple[float, float, float]:
    """The interquartile mean over seeds and its 95% percentile-bootstrap confidence interval (rliable's
    recommendation, Agarwal et al. 2021), by scipy; the interval is NaN with fewer than two seeds."""
    from scipy import stats

    iqm = float(stats.trim_mean(finals, 0.25))
    if len(finals) < 2:
        return iqm, float("nan"), float("nan")
    if np.ptp(finals) == 0:  # all seeds equal: scipy's bootstrap would give NaN and a warning
        return iqm, iqm, iqm
    interval = stats.bootstrap(
        (finals,),
        lambda sample, axis: stats.trim_mean(sample, 0.25, axis=axis),
        confidence_level=0.95,
        method="percentile",
        n_resamples=10_000,
        random_state=0,
    ).confidence_interval
    return iqm, float(interval.low), float(interval.high)


def print_summary(rows: list[dict], path: Path) -> None:
    print("| setting | seeds | final eval, mean ± std | IQM [95% CI] | per seed | wall time per run |")
    print("|---|---:|---|---|---|---:|")
    for row in rows:
        if not row["seeds"]:
            missing = "not finished" if row["evals"] else "no evals (--eval-every 0)"
            print(f"| {row['setting']} | 0 of {row['of']} | {missing} | | | |")
            continue
        iqm = f"{row['iqm']:.1f} [{row['iqm_low']:.1f}, {row['iqm_high']:.1f}]"
        print(
            f"| {row['setting']} | {row['seeds']} of {row['of']} | {row['mean']:.1f} ± {row['std']:.1f} | {iqm} "
            f"| {row['per_seed']} | {row['minutes_per_run']:.1f} min |"
        )
    print(f"wrote {path}")
