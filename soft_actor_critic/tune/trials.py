"""A study's trials as the sweep's scheduler runs them (sweep/schedule.py): what is a study's own, asking for
trials, reporting their evals, pruning, telling, and nothing of starting, waiting or Ctrl-C.

A trial's value is the mean over its seeds of each seed's last LAST_EVALS periodic evals. While it trains,
the mean of its seeds' evals at each eval step goes to the pruner, and a trial pruned is stopped at once,
its runs checkpointed. A trial that fails is told so and does not count: another is asked in its place, and
FAILURES_IN_A_ROW of them stop the study with the first one's error."""

from __future__ import annotations

import dataclasses
import statistics
from pathlib import Path

from soft_actor_critic import console
from soft_actor_critic.config import Interrupted, RunError, TrainConfig
from soft_actor_critic.runs import checkpoint_step, read_eval_rows
from soft_actor_critic.signals import signal_name
from soft_actor_critic.study_config import TuneConfig
from soft_actor_critic.sweep.schedule import schedule, workers
from soft_actor_critic.sweep.task import packed_groups, record_outcome
from soft_actor_critic.tune.space import drawn_setting

LAST_EVALS = 3  # a trial's value: the mean of each seed's last evals, so that one lucky eval does not win
FAILURES_IN_A_ROW = 3  # trials failed one after another that stop the study: its runs cannot train at all


@dataclasses.dataclass
class Trial:
    """A trial while its runs train: Optuna's trial, its runs, the eval steps reported, how each run ended."""

    trial: object  # optuna.Trial
    runs: list[TrainConfig]
    reported: set[int]
    ended: dict[str, str] = dataclasses.field(default_factory=dict)
    pruned_at: int | None = None


def run_trials(
    optuna, study, storage, config: TuneConfig, shared: dict, space: dict, study_dir: Path, command: str
) -> None:
    """Train the study's trials to config.trials complete or pruned ones, those left running by an earlier
    command first; Ctrl-C checkpoints every running run and raises Interrupted with `command`."""
    base = TrainConfig(**shared)
    plan = StudyPlan(optuna, study, config, shared, space, study_dir)
    plan.resume_running(storage)
    if not plan.running and plan.counted() >= config.trials:
        return
    done = sum(min(checkpoint_step(path) or 0, base.num_steps) for path in study_dir.glob("trial=*"))
    with workers(config, config.trials * len(config.seeds), on_gpu=base.device != "cpu") as pool:
        told = plan.counted() - len(plan.running)
        console.say(f"study {study_dir}: {config.trials} trials, {told} told already; runs {pool.describe()}")
        stop = schedule(pool, plan, done=done)
    if stop.signum is not None:
        name = signal_name(stop.signum)
        raise Interrupted(f"{name}: the running trials' runs checkpointed; continue with: {command}", stop.signum)
    if len(plan.failures) >= FAILURES_IN_A_ROW:
        raise RunError(
            f"{len(plan.failures)} trials in a row failed, the first with {plan.failures[0]}: the study stops "
            f"(the failed trials do not count; the same command continues it)"
        )


class StudyPlan:
    """The scheduler's plan for a study: the groups of runs of the trials it asked for, in order."""

    def __init__(self, optuna, study, config: TuneConfig, shared: dict, space: dict, study_dir: Path) -> None:
        self.optuna = optuna
        self.study = study
        self.config = config
        self.shared = shared  # the train flags every trial shares
        self.distributions = {name: dimension.distribution for name, dimension in space.items()}
        self.study_dir = study_dir
        self.folder = str(study_dir.resolve())  # marks the trials this folder's commands run
        self.base = TrainConfig(**shared)
        self.running: dict[int, Trial] = {}  # by trial number
        self.queue: list[list[TrainConfig]] = []
        self.owner: dict[str, int] = {}  # run name: its trial's number
        self.failures: list[str] = []  # the errors of the trials failed in a row, up to FAILURES_IN_A_ROW
        self.outcomes: dict[str, str] = {}
        self.saved = sum(trial.user_attrs.get("saved_steps", 0) for trial in study.trials)

    def counted(self) -> int:
        """The trials that count towards --trials: complete, pruned or running (here or elsewhere)."""
        states = self.optuna.trial.TrialState
        return len(self.study.get_trials(deepcopy=False, states=(states.COMPLETE, states.PRUNED, states.RUNNING)))

    def resume_running(self, storage) -> None:
        """Take up the trials an earlier command of this folder left running, and those one asked for but was
        killed before it could mark them as its own (found through the storage's public lookups)."""
        study_id = storage.get_study_id_from_name(self.study.study_name)
        for frozen in self.study.get_trials(deepcopy=False, states=(self.optuna.trial.TrialState.RUNNING,)):
            if frozen.user_attrs.get("folder", self.folder) == self.folder:
                trial_id = storage.get_trial_id_from_study_id_trial_number(study_id, frozen.number)
                trial = self.optuna.trial.Trial(self.study, trial_id)
                trial.set_user_attr("folder", self.folder)
                self.start(trial, set(frozen.intermediate_values))
                if frozen.last_step is not None and frozen.last_step < self.base.num_steps and trial.should_prune():
                    self.running[frozen.number].pruned_at = frozen.last_step  # pruned as Ctrl-C came: not trained on
                    self.unqueue(frozen.number)

    def next_group(self) -> list[TrainConfig] | None:
        if not self.queue and len(self.failures) < FAILURES_IN_A_ROW and self.counted() < self.config.trials:
            trial = self.study.ask(self.distributions)
            trial.set_user_attr("folder", self.folder)
            self.start(trial, set())
        return self.queue.pop(0) if self.queue else None

    def start(self, trial, reported: set[int]) -> None:
        """Queue the runs of a trial that have not finished, each seed from its checkpoint if it has one."""
        settings = drawn_setting(trial.params)
        runs = [
            TrainConfig(**self.shared, **settings, seed=seed, run_name=f"trial={trial.number}_seed={seed}")
            for seed in self.config.seeds
        ]
        steps = {run: checkpoint_step(run_dir(run)) for run in runs}
        finished = {run.run_name: "finished" for run, step in steps.items() if (step or 0) >= run.num_steps}
        self.running[trial.number] = Trial(trial, runs, reported, ended=finished)
        todo = {run: step for run, step in steps.items() if run.run_name not in finished}
        self.queue.extend(packed_groups(todo, self.config.seeds_per_process))
        self.owner.update(dict.fromkeys((run.run_name for run in runs), trial.number))

    def ended(self, names: tuple[str, ...], seconds: float, outcome: str) -> None:
        for name in names:
            record_outcome(self.study_dir, self.outcomes, name, seconds, outcome, log=names[0])
            self.running[self.owner[name]].ended[name] = outcome

    def check(self, pool) -> None:
        """Report each running trial's new evals, prune those that fall behind, tell those whose runs have all
        ended; once FAILURES_IN_A_ROW trials have failed, stop every run (each checkpoints) and ask no more."""
        for number, trial in list(self.running.items()):
            failed = any(outcome.startswith("error") for outcome in trial.ended.values())
            if failed or judge(trial, self.base):  # its other seeds would train for nothing
                pool.stop({run.run_name for run in trial.runs})
                self.unqueue(number)
            if len(trial.ended) == len(trial.runs):
                del self.running[number]
                self.tell(trial)
        if len(self.failures) >= FAILURES_IN_A_ROW:
            pool.stop()
            self.queue.clear()

    def unqueue(self, number: int) -> None:
        """Take the runs of a pruned (or failed) trial that have not started out of the queue: they never will."""
        unstarted = [group for group in self.queue if self.owner[group[0].run_name] == number]
        self.queue = [group for group in self.queue if group not in unstarted]
        for group in unstarted:
            self.running[number].ended |= dict.fromkeys((run.run_name for run in group), "not started")

    def tell(self, trial: Trial) -> None:
        """Tell the study how a trial whose runs have all ended went, and say it. A trial whose runs were
        stopped (or found busy) without an error stays running, for the next command."""
        number = trial.trial.number
        outcomes = trial.ended.values()
        errors = [outcome for outcome in outcomes if outcome.startswith("error")]
        if errors:
            self.study.tell(trial.trial, state=self.optuna.trial.TrialState.FAIL)
            self.failures.append(f"trial {number}: {errors[0]}")
            console.say(f"trial {number}: failed ({errors[0]}); it does not count, another takes its place")
            return
        if trial.pruned_at is not None:
            saved = sum(self.base.num_steps - (checkpoint_step(run_dir(run)) or 0) for run in trial.runs)
            trial.trial.set_user_attr("saved_steps", saved)
            self.saved += saved
            self.study.tell(trial.trial, state=self.optuna.trial.TrialState.PRUNED)
            console.say(f"trial {number}: pruned at step {trial.pruned_at}")
        elif set(outcomes) == {"finished"}:
            value = statistics.fmean(
                statistics.fmean(row["return_mean"] for row in read_eval_rows(run_dir(run))[-LAST_EVALS:])
                for run in trial.runs
            )
            self.study.tell(trial.trial, value)
            console.say(
                f"trial {number}: {value:.1f} (best: trial {self.study.best_trial.number}, {self.study.best_value:.1f})"
            )
        else:
            console.say(f"trial {number}: its runs were stopped; the same command continues it")
            return
        self.failures.clear()

    def status(self) -> str:
        return f"trials: {self.counted() - len(self.running)} told, {len(self.running)} running"

    def total(self) -> int:
        return self.config.trials * len(self.config.seeds) * self.base.num_steps - self.saved


def judge(trial: Trial, base: TrainConfig) -> bool:
    """Report the eval steps all the trial's seeds have reached, as the mean of their returns, up to one
    that gets the trial pruned; True when it is pruned now."""
    if trial.pruned_at is not None:
        return False
    evals = [{row["step"]: row["return_mean"] for row in read_eval_rows(run_dir(run))} for run in trial.runs]
    for step in sorted(set.intersection(*(set(each) for each in evals)) - trial.reported):
        trial.trial.report(statistics.fmean(each[step] for each in evals), step)
        trial.reported.add(step)
        if step < base.num_steps and trial.trial.should_prune():
            trial.pruned_at = step
            return True
    return False


def run_dir(run: TrainConfig) -> Path:
    return Path(run.directory, run.run_name)
