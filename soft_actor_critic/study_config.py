"""The flags of the commands that train many runs, `sweep` and `tune`, beside config.py's of one run: where
the runs train (Execution), and each command's own. Free of torch and gymnasium, as config.py is."""

from __future__ import annotations

from dataclasses import dataclass

from soft_actor_critic.algorithms import ALGORITHMS
from soft_actor_critic.config import ConfigError, check_run_name, check_seed
from soft_actor_critic.flags import flag, flag_name, show


def grouped(train_args: dict, name: str) -> dict:
    """A sweep's or a study's train flags, its `name` the W&B group of their runs where --track has none."""
    if train_args["track"] and train_args["wandb_group"] is None:
        return train_args | {"wandb_group": name}
    return train_args


@dataclass(frozen=True, kw_only=True)
class Execution:
    """Where a sweep's or a study's runs train: on this machine's workers or on Ray, and how many seeds a process."""

    workers: int | None = flag(
        None,
        "runs at once on this machine, each with cores/workers threads (or OMP_NUM_THREADS, if set); None: one "
        "per core",
    )
    ray_address: str | None = flag(
        None,
        "run the runs as Ray tasks: auto (the cluster this machine is in), host:port or ray://... (that cluster), "
        "or local (a private Ray instance here); on several machines, --directory must be shared by every node",
    )
    seeds_per_process: int = flag(
        1,
        "runs that differ in their seed alone train this many at a time in one process (or Ray task), their "
        "networks stacked; 1: each in its own, as fast on a CPU (README, Sweeps)",
    )

    def __post_init__(self) -> None:
        if self.workers is not None and self.workers <= 0:
            raise ConfigError(f"--workers must be positive, got {self.workers}")
        if self.seeds_per_process <= 0:
            raise ConfigError(f"--seeds-per-process must be positive, got {self.seeds_per_process}")


@dataclass(frozen=True, kw_only=True)
class SweepConfig(Execution):
    """How a sweep runs; what it runs is its grid, every train flag with one or several values."""

    sweep_name: str = flag(help="the sweep's folder inside --directory: its run folders, manifest and summary")
    summary: bool = flag(
        False, "print the summary table of the sweep's finished runs, train nothing", action="store_true"
    )

    def __post_init__(self) -> None:
        check_run_name(self.sweep_name, "--sweep-name")
        super().__post_init__()


DEFAULT_SPACES = "; ".join(
    f"{name}: {' '.join(f'{key}={spec}' for key, spec in algorithm.space.items())}"
    for name, algorithm in ALGORITHMS.items()
)


@dataclass(frozen=True, kw_only=True)
class TuneConfig(Execution):
    """How a study runs; what each trial trains is train's flags, the searched ones drawn from the space."""

    study_name: str = flag(help="the study's folder inside --directory: its runs, storage, report and logs")
    trials: int = flag(40, "complete or pruned trials in the study, counting those of earlier commands")
    seeds: tuple[int, ...] = flag((1, 2), "seeds each trial trains; its value is their mean", nargs="+", metavar="S")
    space: tuple[str, ...] = flag(
        (),
        "FLAG=LOW..HIGH[:log] or FLAG=A,B,C (widths 64,64/256,256): replaces that flag's part of the default space, "
        "or adds it; a train flag given is fixed instead. The default spaces keep to what a CPU trains in "
        "reasonable time: widths at most 256 (crossq's critic 1024), one update per step, and no --start-step "
        f"above a quarter of --num-steps (default: {DEFAULT_SPACES})",
        nargs="+",
        metavar="FLAG=SPACE",
    )
    storage: str | None = flag(None, "Optuna storage URL (e.g. postgresql://...); None: sqlite in the study folder")
    report: bool = flag(False, "print the study's report and write its files, train nothing", action="store_true")
    confirm_seeds: tuple[int, ...] = flag(
        (),
        "once the search is done, train the best setting and the defaults on these seeds, which the study never "
        "saw (two sweeps in the study's folder), and print both IQMs with their 95%% CIs",
        nargs="+",
        metavar="S",
    )

    def __post_init__(self) -> None:
        check_run_name(self.study_name, "--study-name")
        super().__post_init__()
        for name in ("seeds", "confirm_seeds"):
            object.__setattr__(self, name, tuple(getattr(self, name)))
            for seed in getattr(self, name):
                check_seed(seed, flag_name(name))
        if self.trials <= 0:
            raise ConfigError(f"--trials must be positive, got {self.trials}")
        if len(set(self.seeds)) < len(self.seeds) or not self.seeds:
            raise ConfigError(f"--seeds must list distinct seeds, got {' '.join(map(str, self.seeds))}")
        if len(set(self.confirm_seeds)) < len(self.confirm_seeds):
            raise ConfigError(f"--confirm-seeds must list distinct seeds, got {show(self.confirm_seeds)}")
