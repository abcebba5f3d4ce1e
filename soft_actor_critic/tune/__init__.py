"""`tune`: a search over train's flags with Optuna (TPE, and a median pruner). Each trial trains its setting on
every seed of --seeds, each an ordinary run folder in <directory>/<study-name> (trial=N_seed=S), on the
sweep's workers (local processes or Ray tasks); the driver alone asks the study for trials and tells it
their values, so the workers need no access to its storage.

A trial's value is the mean over its seeds of each seed's last LAST_EVALS periodic evals. While it trains,
the mean of its seeds' evals at each eval step goes to the pruner, and a trial pruned is stopped at once,
its runs checkpointed. The same command continues a study: trials told stay told, those left running (by
Ctrl-C or a killed driver) resume from their runs' checkpoints, and the search goes on to --trials."""

from __future__ import annotations

import dataclasses
import json
import statistics
from pathlib import Path

from soft_actor_critic import console
from soft_actor_critic.config import ConfigError, Interrupted, RunError, TrainConfig, flag_name, reported, setting_key
from soft_actor_critic.runs import checkpoint_step, locked, read_eval_rows
from soft_actor_critic.signals import signal_name, stop_requests
from soft_actor_critic.sweep import check_before_writing, workers
from soft_actor_critic.sweep.task import packed_groups, record_outcome
from soft_actor_critic.tune.space import TuneConfig, search_space, widths

LAST_EVALS = 3  # a trial's value: the mean of each seed's last evals, so that one lucky eval does not win
STORAGE_FILE = "study.db"  # the default storage: SQLite in the study folder


@dataclasses.dataclass
class Trial:
    """A trial while its runs train: Optuna's trial, its runs, the eval steps reported, how each run ended."""

    trial: object  # optuna.Trial
    runs: list[TrainConfig]
    reported: set[int]
    ended: dict[str, str] = dataclasses.field(default_factory=dict)
    pruned_at: int | None = None


def tune(config: TuneConfig, train_args: dict, given: set[str], *, command: str, program: str) -> None:
    """Run the study to config.trials trials (or, with --report, only report it); `given` are the train
    flags on the command line, fixed rather than searched; `command` continues the study."""
    try:
        import optuna
    except ImportError:
        raise RunError("tune needs Optuna: pip install -r requirements-tune.txt") from None
    from soft_actor_critic.tune.report import report

    base = TrainConfig(**train_args)
    space = search_space(config, base, given)
    if not base.eval_every:
        raise ConfigError("--eval-every must be positive: tune judges trials by their periodic evals")
    check_before_writing([base.env_name], config.ray_address)
    study_dir = Path(base.directory) / config.study_name
    study = open_study(optuna, config, study_dir, base, space)
    # The train flags every trial shares: all but the searched ones; their runs go into the study's folder.
    train_args = {name: value for name, value in train_args.items() if name not in space}
    train_args["directory"] = str(study_dir)
    with locked(study_dir):  # one driver per study folder
        if not config.report:
            run_trials(optuna, study, config, train_args, space, study_dir, command)
        report(optuna, study, study_dir, train_args, program)


def open_study(optuna, config: TuneConfig, study_dir: Path, base: TrainConfig, space: dict):
    """The study in its storage, new or continued; one made with other settings, space or seeds is refused."""
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    url = config.storage or f"sqlite:///{study_dir.resolve() / STORAGE_FILE}"
    if config.report and config.storage is None and not (study_dir / STORAGE_FILE).is_file():
        raise RunError(f"{study_dir} holds no study to report: run it first")
    with reported(f"cannot open the study {config.study_name} in {url}", Exception):  # SQLAlchemy's, drivers'...
        if config.storage is None:
            study_dir.mkdir(parents=True, exist_ok=True)  # for the SQLite file
        create = optuna.load_study if config.report else optuna.create_study
        maximize = {} if config.report else {"direction": "maximize", "load_if_exists": True}
        study = create(study_name=config.study_name, storage=url, **maximize)
    fixed = {flag_name(name): value for name, value in setting_key(base) if name not in space}
    searched = " ".join(f"{flag_name(name).removeprefix('--')}={spec}" for name, (spec, *_) in space.items())
    setup = json.loads(json.dumps({**fixed, "--seeds": config.seeds, "--space": searched}))
    saved = study.user_attrs.get("setup", setup)
    if differing := [key for key in setup if saved.get(key) != setup[key]]:
        key = differing[0]
        raise RunError(
            f"study {config.study_name} was run with {key} {saved.get(key)}, not {setup[key]}: continue it with "
            "its own flags, or choose another --study-name"
        )
    study.set_user_attr("setup", setup)
    with reported(f"cannot create the study folder {study_dir}", OSError):  # its runs, lock and report
        study_dir.mkdir(parents=True, exist_ok=True)
    # TPE, after 10 random trials; seeded by the trials so far, so that a continued study does not draw its
    # first trials' settings again.
    study.sampler = optuna.samplers.TPESampler(
        n_startup_trials=10, multivariate=True, constant_liar=True, seed=len(study.trials)
    )
    # A trial whose mean eval at a step falls below the median of the completed trials' at that step stops,
    # from the 5th completed trial on and past the first quarter of the steps.
    study.pruner = optuna.pruners.MedianPruner(n_startup_trials=5, n_warmup_steps=base.num_steps // 4)
    return study


def run_trials(optuna, study, config: TuneConfig, train_args: dict, space: dict, study_dir: Path, command: str) -> None:
    """Ask for trials while the pool has room and the study has fewer than config.trials; report each
    running trial's evals, stop the pruned, tell each finished one. Ctrl-C checkpoints every running run."""
    folder, base = str(study_dir.resolve()), TrainConfig(**train_args)
    running, queue, owner, outcomes, size = {}, [], {}, {}, config.seeds_per_process

    def start(trial, reported: set[int]) -> None:
        running[trial.number] = new = Trial(trial, trial_runs(train_args, config, trial), reported)
        steps = {run: checkpoint_step(run_dir(run)) for run in new.runs}
        new.ended = {run.run_name: "finished" for run, step in steps.items() if (step or 0) >= run.num_steps}
        queue.extend(packed_groups({run: step for run, step in steps.items() if run.run_name not in new.ended}, size))
        owner.update(dict.fromkeys((run.run_name for run in new.runs), trial.number))

    for frozen in study.get_trials(states=(optuna.trial.TrialState.RUNNING,)):
        if frozen.user_attrs.get("folder") == folder:  # left running by an earlier command of this folder
            start(optuna.trial.Trial(study, frozen._trial_id), set(frozen.intermediate_values))
    if not running and len(study.trials) >= config.trials:
        return
    # The env steps of the whole study, less those that pruning spared, and those trained already.
    total = config.trials * len(config.seeds) * base.num_steps
    total -= sum(trial.user_attrs.get("saved_steps", 0) for trial in study.trials)
    done = sum(min(checkpoint_step(path) or 0, base.num_steps) for path in study_dir.glob("trial=*"))
    with (
        workers(config, [[base]] * config.trials * len(config.seeds)) as pool,
        stop_requests(second_interrupt_aborts=False) as stop,
        console.ProgressBar(total, done) as bar,
    ):
        while running or (len(study.trials) < config.trials and stop.signum is None):
            while pool.free() > 0 and stop.signum is None and (queue or len(study.trials) < config.trials):
                if queue:
                    pool.start(queue.pop(0))
                else:
                    trial = study.ask({name: distribution for name, (_, distribution) in space.items()})
                    trial.set_user_attr("folder", folder)
                    start(trial, set())
            if stop.signum is not None:
                pool.stop()
            for names, seconds, outcome in pool.wait():
                for name in names:
                    record_outcome(study_dir, outcomes, name, seconds, outcome, log=names[0])
                    running[owner[name]].ended[name] = outcome
            for number, trial in list(running.items()):
                judge(trial, pool, base)
                if len(trial.ended) == len(trial.runs):
                    del running[number]
                    bar.total -= tell(optuna, study, trial, base, interrupted=stop.signum is not None)
            bar.update(pool.steps() + done - bar.n)
    if stop.signum is not None:
        name = signal_name(stop.signum)
        raise Interrupted(f"{name}: the running trials' runs checkpointed; continue with: {command}", stop.signum)


def trial_runs(train_args: dict, config: TuneConfig, trial) -> list[TrainConfig]:
    """A trial's runs: its setting, on each seed (built from the flags as given: a critic left at None is as
    wide as the trial's --hidden-units)."""
    settings = {name: widths(value) if isinstance(value, str) else value for name, value in trial.params.items()}
    return [
        TrainConfig(**train_args, **settings, seed=seed, run_name=f"trial={trial.number}_seed={seed}")
        for seed in config.seeds
    ]


def judge(trial: Trial, pool, base: TrainConfig) -> None:
    """Report the eval steps all the trial's seeds have reached, as the mean of their returns, up to one
    that gets the trial pruned: then ask its runs to checkpoint and stop, and report no more."""
    if trial.pruned_at is not None:
        return
    evals = [{row["step"]: row["return_mean"] for row in read_eval_rows(run_dir(run))} for run in trial.runs]
    for step in sorted(set.intersection(*(set(each) for each in evals)) - trial.reported):
        trial.trial.report(statistics.fmean(each[step] for each in evals), step)
        trial.reported.add(step)
        if step < base.num_steps and trial.trial.should_prune():
            trial.pruned_at = step
            pool.stop({run.run_name for run in trial.runs})
            return


def tell(optuna, study, trial: Trial, base: TrainConfig, *, interrupted: bool) -> int:
    """Tell the study how a trial whose runs have all ended went, and say it; returns the env steps that
    pruning spared its runs. A trial stopped by Ctrl-C alone stays running, for the next command."""
    number, errors = trial.trial.number, [outcome for outcome in trial.ended.values() if outcome.startswith("error")]
    if trial.pruned_at is not None and not errors:
        saved = sum(base.num_steps - (checkpoint_step(run_dir(run)) or 0) for run in trial.runs)
        trial.trial.set_user_attr("saved_steps", saved)
        study.tell(trial.trial, state=optuna.trial.TrialState.PRUNED)
        console.say(f"trial {number}: pruned at step {trial.pruned_at}")
        return saved
    if errors:
        study.tell(trial.trial, state=optuna.trial.TrialState.FAIL)
        console.say(f"trial {number}: failed ({errors[0]})")
    elif set(trial.ended.values()) == {"finished"}:
        value = statistics.fmean(
            statistics.fmean(row["return_mean"] for row in read_eval_rows(run_dir(run))[-LAST_EVALS:])
            for run in trial.runs
        )
        study.tell(trial.trial, value)
        console.say(f"trial {number}: {value:.1f} (best: trial {study.best_trial.number}, {study.best_value:.1f})")
    elif not interrupted:
        console.say(f"trial {number}: its runs were stopped; the same command continues it")
    return 0


def run_dir(run: TrainConfig) -> Path:
    return Path(run.directory, run.run_name)
