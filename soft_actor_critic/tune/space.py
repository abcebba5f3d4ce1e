"""tune's own flags and its search space. Loaded without Optuna or torch, so that `tune --help` and bad
input answer at once.

A flag's space is written as on the command line: LOW..HIGH (uniform), LOW..HIGH:log (log-uniform; whole
numbers for a whole-number flag), or choices A,B,C (layer widths as 64x64)."""

from __future__ import annotations

import argparse
import dataclasses
from dataclasses import dataclass

from soft_actor_critic.config import (
    FIELD_TYPES,
    NOT_SETTINGS,
    ConfigError,
    TrainConfig,
    check_run_name,
    flag,
    flag_name,
    whole_number,
)

# Each algorithm's default space, as --space writes it; RL Zoo's ranges where it has them. CrossQ has no
# target network (no --tau), and its critic is searched apart from the policy.
SPACES = {
    "sac": "learning-rate=1e-5..1e-2:log batch-size=64,128,256,512 tau=0.001..0.05:log "
    "gamma=0.9,0.95,0.98,0.99,0.995,0.999 start-step=100,300,1000,3000,10000 "
    "hidden-units=64x64,128x128,256x256,400x300 alpha=0.01..1:log updates-per-step=1,2,4",
    "crossq": "learning-rate=1e-4..1e-2:log batch-size=64,128,256,512 gamma=0.9,0.95,0.98,0.99,0.995,0.999 "
    "start-step=100,300,1000,3000 hidden-units=64x64,256x256 critic-hidden-units=256x256,512x512,1024x1024,2048x2048 "
    "alpha=0.01..1:log updates-per-step=1,2,4 policy-delay=1,3",
}
# What a trial may not change: how long it trains and is judged, and what is not a setting at all.
FIXED = (*NOT_SETTINGS, "env_name", "algorithm", "num_steps", "eval_every", "eval_episodes")
TYPES = {field.name: FIELD_TYPES[field.type] for field in dataclasses.fields(TrainConfig)}
SEARCHABLE = [name for name, kind in TYPES.items() if name not in FIXED and kind.parse not in (None, str)]


@dataclass(frozen=True)
class TuneConfig:
    """How a study runs; what each trial trains is train's flags, the searched ones drawn from the space."""

    study_name: str = flag(help="the study's folder inside --directory: its runs, storage, report and logs")
    trials: int = flag(40, "trials in the study, counting those of earlier commands")
    seeds: tuple[int, ...] = flag((1, 2), "seeds each trial trains; its value is their mean", nargs="+", metavar="S")
    space: tuple[str, ...] = flag(
        (),
        "FLAG=LOW..HIGH[:log] or FLAG=A,B,C (widths 64x64): replaces that flag's part of the default space, or "
        "adds it; a train flag given is fixed instead (default: "
        + "; ".join(f"{algorithm}: {space}" for algorithm, space in SPACES.items())
        + ")",
        nargs="+",
        metavar="FLAG=SPACE",
    )
    storage: str | None = flag(None, "Optuna storage URL (e.g. postgresql://...); None: sqlite in the study folder")
    workers: int | None = flag(
        None, "runs at once on this machine, each with cores/workers threads; None: one per core"
    )
    ray_address: str | None = flag(None, "run the trials' runs as Ray tasks: auto, host:port, ray://... or local")
    seeds_per_process: int = flag(1, "a trial's seeds train this many at a time in one process, stacked")
    report: bool = flag(False, "print the study's report and write its files, train nothing", action="store_true")

    def __post_init__(self) -> None:
        check_run_name(self.study_name, "--study-name")
        object.__setattr__(self, "seeds", tuple(self.seeds))
        for name in ("trials", "seeds_per_process", "workers"):  # workers may be None: one per core
            if (value := getattr(self, name)) is not None and value <= 0:
                raise ConfigError(f"{flag_name(name)} must be positive, got {value}")
        if len(set(self.seeds)) < len(self.seeds) or not self.seeds:
            raise ConfigError(f"--seeds must list distinct seeds, got {' '.join(map(str, self.seeds))}")


def search_space(config: TuneConfig, base: TrainConfig, given: set[str]) -> dict[str, tuple]:
    """{field: (its space as --space writes it, as an Optuna distribution)}: the algorithm's default space
    without the train flags given, with --space's flags replaced or added; a ConfigError for a bad one."""
    if bad := [item for item in config.space if "=" not in item]:
        raise ConfigError(f"--space {bad[0]}: write FLAG=LOW..HIGH, FLAG=LOW..HIGH:log or FLAG=A,B,C")
    specs = dict(item.lstrip("-").partition("=")[::2] for item in config.space)
    if both := [key for key in specs if key.replace("-", "_") in given]:
        raise ConfigError(f"--{both[0]} is both given (fixed) and in --space (searched): choose one")
    defaults = dict(item.partition("=")[::2] for item in SPACES[base.algorithm].split())
    specs = {key: spec for key, spec in defaults.items() if key.replace("-", "_") not in given} | specs
    return {key.replace("-", "_"): (spec, dimension(key, spec, base)) for key, spec in specs.items()}


def dimension(key: str, spec: str, base: TrainConfig):
    """One flag's space as an Optuna distribution, each end or choice checked as train would check it."""
    from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution

    name, where = key.replace("-", "_"), f"--space {key}={spec}"
    if name not in SEARCHABLE:
        raise ConfigError(f"{where}: tune cannot search --{key}; it searches {', '.join(map(flag_name, SEARCHABLE))}")
    kind, text = TYPES[name], spec.removesuffix(":log")
    try:
        if ".." in text and not kind.sequence:
            values = low, high = tuple(kind.parse(end) for end in text.split("..", 1))
            if not low < high:
                raise ConfigError(f"an empty or inverted range ({low} is not below {high})")
            make = IntDistribution if isinstance(low, int) else FloatDistribution  # which check a log range's low end
            space = make(low, high, log=spec.endswith(":log"))
        elif spec.endswith(":log") or not text:
            raise ConfigError("write LOW..HIGH:log for a log range, or choices A,B,C")
        else:
            values = tuple(widths(value) if kind.sequence else kind.parse(value) for value in text.split(","))
            space = CategoricalDistribution(text.split(",") if kind.sequence else values)
        for value in values:
            dataclasses.replace(base, **{name: value})
    except (ConfigError, ValueError, TypeError, argparse.ArgumentTypeError) as error:
        raise ConfigError(f"{where}: {error}") from None
    return space


def widths(text: str) -> tuple[int, ...]:
    """A layer-widths choice: 400x300."""
    return tuple(whole_number(width) for width in text.split("x"))
