"""`tune`: a search over train's flags with Optuna (TPE, and a median pruner). Each trial trains its setting on
every seed of --seeds, each an ordinary run folder in <directory>/<study-name> (trial=N_seed=S), through the
sweep's scheduler (sweep/schedule.py) on its workers or on Ray; the driver alone asks the study for trials and
tells it their values (trials.py), so the workers need no access to its storage.

The study stores its setup (the fixed flags, the seeds, the space): the same command, or its study name alone,
continues it; trials told stay told, those left running (by Ctrl-C or a killed driver) resume from their runs'
checkpoints, and the search goes on to --trials complete or pruned ones. With --confirm-seeds, the best setting
and the defaults then train on seeds the study never saw."""

from __future__ import annotations

import dataclasses
from pathlib import Path

from soft_actor_critic import console
from soft_actor_critic.config import ConfigError, RunError, TrainConfig, reported, setting_key
from soft_actor_critic.flags import flag_name
from soft_actor_critic.runs import locked
from soft_actor_critic.study_config import Execution, SweepConfig, TuneConfig, grouped
from soft_actor_critic.sweep import check_before_writing, sweep
from soft_actor_critic.sweep.grid import as_json
from soft_actor_critic.tune.space import drawn_setting, search_space

STORAGE_FILE = "study.db"  # the default storage: SQLite in the study folder
STORED_TUNE_FLAGS = ("trials", "seeds", "space")  # what a study keeps of tune's own flags, besides train's


def tune(config: TuneConfig, train_args: dict, given: set[str], *, command: str, program: str) -> None:
    """Run the study to config.trials trials (or, with --report, only report it), then confirm its best setting
    on config.confirm_seeds; `given` are the flags on the command line: the train flags given are fixed rather
    than searched, and every flag not given takes the stored study's value; `command` continues the study."""
    try:
        import optuna
    except ImportError:
        raise RunError("tune needs Optuna: pip install -r requirements-tune.txt") from None
    from soft_actor_critic.tune.report import report
    from soft_actor_critic.tune.trials import run_trials

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study_dir = Path(train_args["directory"]) / config.study_name
    storage, saved = stored_study(optuna, config, study_dir)
    fixed = saved_fixed(saved)
    config, train_args = with_stored_setup(config, train_args, given, saved, fixed)
    train_args = grouped(train_args, config.study_name)  # its confirmation sweeps' too
    base = TrainConfig(**train_args)
    if not base.eval_every:
        raise ConfigError("--eval-every must be positive: tune judges trials by their periodic evals")
    space = search_space(config, base, given | set(fixed))  # the study's fixed flags stay fixed
    setup = setup_of(config, base, space)
    if differing := [key for key in setup if key in saved and saved[key] != setup[key] and key != "--trials"]:
        key = differing[0]
        raise RunError(
            f"study {config.study_name} was run with {key} {saved[key]}, not {setup[key]}: continue it with its "
            "own flags or its name alone, or choose another --study-name"
        )
    if not saved and any(study_dir.glob("trial=*")):  # not found where it was looked for
        raise RunError(f"{study_dir} holds another study's runs: give its --storage, or choose another --study-name")
    if not config.report:
        check_before_writing([base], config.ray_address)  # all checked: now the study may be written
    with reported(f"cannot create the study folder {study_dir}", OSError):  # its runs, lock and report
        study_dir.mkdir(parents=True, exist_ok=True)
    with reported(f"cannot open the study {config.study_name}", Exception):
        storage = storage or optuna.storages.RDBStorage(storage_url(config, study_dir))
    study = open_study(optuna, config, storage, setup, base)
    # The train flags every trial shares: all but the searched ones; their runs go into the study's folder.
    shared = {name: value for name, value in train_args.items() if name not in space} | {"directory": str(study_dir)}
    with locked(study_dir):  # one driver per study folder
        if not config.report:
            run_trials(optuna, study, storage, config, shared, space, study_dir, command)
        best = report(optuna, study, study_dir, shared, program)
    if config.confirm_seeds and best is not None and not config.report:
        confirm(config, train_args, drawn_setting(best.params), best.number, study_dir, command)


def storage_url(config: TuneConfig, study_dir: Path) -> str:
    return config.storage or f"sqlite:///{study_dir.resolve() / STORAGE_FILE}"


def stored_study(optuna, config: TuneConfig, study_dir: Path) -> tuple[object | None, dict]:
    """The study's storage and its stored setup, if the study exists ({} if not); nothing is written for a study
    that does not exist in the default storage, so that bad input leaves no study behind."""
    if config.storage is None and not (study_dir / STORAGE_FILE).is_file():
        if config.report:
            raise RunError(f"{study_dir} holds no study to report: run it first")
        return None, {}
    url = storage_url(config, study_dir)
    with reported(f"cannot open the study {config.study_name} in {url}", Exception):  # SQLAlchemy's, drivers'...
        storage = optuna.storages.RDBStorage(url)
        names = [summary.study_name for summary in optuna.get_all_study_summaries(storage)]
    if config.study_name not in names:
        if config.report:
            raise RunError(f"{url} holds no study {config.study_name} to report: run it first")
        return storage, {}
    return storage, optuna.load_study(study_name=config.study_name, storage=storage).user_attrs.get("setup", {})


def saved_fixed(saved: dict) -> dict:
    """The stored setup's fixed train flags, as TrainConfig takes them: {field: value}."""
    fields = {flag_name(field.name): field.name for field in dataclasses.fields(TrainConfig)}
    return {
        fields[key]: tuple(value) if isinstance(value, list) else value for key, value in saved.items() if key in fields
    }


def with_stored_setup(
    config: TuneConfig, train_args: dict, given: set[str], saved: dict, fixed: dict
) -> tuple[TuneConfig, dict]:
    """The flags not given on the command line take the stored study's values (`fixed`: its train flags, as
    saved_fixed reads them), so that its name alone continues or reports it; the flags given are compared with
    the stored ones afterwards."""
    train_args = train_args | {name: value for name, value in fixed.items() if name not in given}
    stored = {name: saved.get(flag_name(name)) for name in STORED_TUNE_FLAGS if name not in given}
    stored["space"] = tuple(stored["space"].split()) if stored.get("space") is not None else None
    return dataclasses.replace(
        config, **{name: value for name, value in stored.items() if value is not None}
    ), train_args


def setup_of(config: TuneConfig, base: TrainConfig, space: dict) -> dict:
    """What the study stores of its setup, as JSON: the fixed train flags, --trials, --seeds and the space."""
    fixed = {flag_name(name): value for name, value in setting_key(base) if name not in space}
    searched = " ".join(f"{flag_name(name).removeprefix('--')}={dimension.spec}" for name, dimension in space.items())
    setup = fixed | {"--trials": config.trials, "--seeds": config.seeds, "--space": searched}
    return {key: as_json(value) for key, value in setup.items()}


def open_study(optuna, config: TuneConfig, storage, setup: dict, base: TrainConfig):
    """The study, created now if new, with its setup stored, its sampler and its pruner."""
    with reported(f"cannot open the study {config.study_name}", Exception):
        study = optuna.create_study(
            study_name=config.study_name, storage=storage, direction="maximize", load_if_exists=True
        )
        if not config.report:
            study.set_user_attr("setup", setup)
    # TPE, after 10 random trials; seeded by the trials so far, so that a continued study does not draw its
    # first trials' settings again.
    study.sampler = optuna.samplers.TPESampler(
        n_startup_trials=10, multivariate=True, constant_liar=True, seed=len(study.trials)
    )
    # A trial whose best mean eval so far falls below the median of the earlier trials' at the same step is
    # pruned, from the 6th trial on and past the first quarter of the steps.
    study.pruner = optuna.pruners.MedianPruner(n_startup_trials=5, n_warmup_steps=base.num_steps // 4)
    return study


def confirm(config: TuneConfig, train_args: dict, best: dict, number: int, study_dir: Path, command: str) -> None:
    """Train the best setting and the defaults on config.confirm_seeds, two sweeps in the study's folder, and
    print their IQMs side by side: a tuned result reported on the seeds it was tuned on overstates it."""
    execution = {field.name: getattr(config, field.name) for field in dataclasses.fields(Execution)}
    # one value each (a sweep reads a list as several), but the seeds
    fixed = {name: tuple(value) if isinstance(value, list) else value for name, value in train_args.items()}
    grid = fixed | {"directory": str(study_dir), "seed": list(config.confirm_seeds)}
    best_row, default_row = (  # each sweep's summary has one row: its one setting
        sweep(SweepConfig(sweep_name=name, **execution), grid | setting, command)[0]
        for name, setting in ((f"confirm-trial={number}", best), ("confirm-defaults", {}))
    )
    seeds = " ".join(map(str, config.confirm_seeds))
    console.say(
        f"on seeds {seeds}, which the study never saw: trial {number}'s setting {interval(best_row)}, "
        f"the defaults {interval(default_row)} (IQM [95% CI] of the final evals)"
    )


def interval(row: dict) -> str:
    return f"{row['iqm']:.1f} [{row['iqm_low']:.1f}, {row['iqm_high']:.1f}]" if row["seeds"] else "not finished"
