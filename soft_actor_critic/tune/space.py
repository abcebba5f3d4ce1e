"""tune's own flags and its search space. Loaded without Optuna or torch, so that `tune --help` and bad
input answer at once.

A flag's space is written as on the command line: LOW..HIGH (uniform), LOW..HIGH:log (log-uniform; whole
numbers for a whole-number flag), or choices A,B,C (layer widths as a sweep writes them, choices apart by a
slash: 64,64/256,256). Every setting a space can draw is checked against train's rules before a study is
written (check_corners)."""

from __future__ import annotations

import argparse
import dataclasses
import itertools
from dataclasses import dataclass

from soft_actor_critic.algorithms import ALGORITHMS
from soft_actor_critic.config import NOT_SETTINGS, ConfigError, TrainConfig
from soft_actor_critic.flags import FIELD_TYPES, flag_name, layer_widths, show
from soft_actor_critic.study_config import TuneConfig

# What a trial may not change: how long it trains and is judged, and what is not a setting at all.
FIXED = (*NOT_SETTINGS, "env_name", "algorithm", "num_steps", "eval_every", "eval_episodes")
TYPES = {field.name: FIELD_TYPES[field.type] for field in dataclasses.fields(TrainConfig)}
SEARCHABLE = [name for name, kind in TYPES.items() if name not in FIXED and kind.parse not in (None, str)]


@dataclass(frozen=True)
class Dimension:
    """One searched flag: its space as --space writes it, as an Optuna distribution, and the values at its
    corners (a range's ends, a choice's smallest and largest, every choice of widths)."""

    spec: str
    distribution: object
    corners: tuple


def search_space(config: TuneConfig, base: TrainConfig, given: set[str]) -> dict[str, Dimension]:
    """{field: Dimension}: the algorithm's default space without the train flags given, with --space's flags
    replaced or added, each checked as train would check it; a ConfigError for a bad one."""
    if bad := [item for item in config.space if "=" not in item]:
        raise ConfigError(f"--space {bad[0]}: write FLAG=LOW..HIGH, FLAG=LOW..HIGH:log or FLAG=A,B,C")
    specs = dict(item.lstrip("-").partition("=")[::2] for item in config.space)
    if both := [key for key in specs if key.replace("-", "_") in given]:
        raise ConfigError(f"--{both[0]} is both given (fixed) and in --space (searched): choose one")
    defaults = {
        key: spec for key, spec in ALGORITHMS[base.algorithm].space.items() if key.replace("-", "_") not in given
    }
    if "start-step" in defaults:  # no trial spends more than a quarter of its steps on random actions
        fitting = [step for step in defaults.pop("start-step").split(",") if int(step) <= base.num_steps // 4]
        defaults |= {"start-step": ",".join(fitting)} if fitting else {}
    space = {key.replace("-", "_"): dimension(key, spec, base) for key, spec in (defaults | specs).items()}
    check_corners(space, base)
    return space


def dimension(key: str, spec: str, base: TrainConfig) -> Dimension:
    """One flag's space as an Optuna distribution, each end or choice checked as train would check it."""
    from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution

    name, where = key.replace("-", "_"), f"--space {key}={spec}"
    if name not in SEARCHABLE:
        raise ConfigError(f"{where}: tune cannot search --{key}; it searches {', '.join(map(flag_name, SEARCHABLE))}")
    kind, text = TYPES[name], spec.removesuffix(":log")
    try:
        if ".." in text and not kind.sequence:
            low, high = (kind.parse(end) for end in text.split("..", 1))
            if not low < high:
                raise ConfigError(f"an empty or inverted range ({low} is not below {high})")
            make = IntDistribution if isinstance(low, int) else FloatDistribution  # which check a log range's low end
            space, corners = make(low, high, log=spec.endswith(":log")), (low, high)
        elif spec.endswith(":log") or not text:
            raise ConfigError("write LOW..HIGH:log for a log range, or choices A,B,C")
        elif kind.sequence:
            corners = tuple(layer_widths(choice) for choice in text.split("/"))
            space = CategoricalDistribution([",".join(map(str, choice)) for choice in corners])
        else:
            choices = tuple(kind.parse(choice) for choice in text.split(","))
            space, corners = CategoricalDistribution(choices), (min(choices), max(choices))
        for value in corners:
            dataclasses.replace(base, **{name: value})
    except (ConfigError, ValueError, TypeError, argparse.ArgumentTypeError) as error:
        raise ConfigError(f"{where}: {error}") from None
    return Dimension(spec, space, corners)


def check_corners(space: dict[str, Dimension], base: TrainConfig) -> None:
    """Every combination of the dimensions' corners as train would check it, so that a draw that breaks a rule
    between flags (a batch larger than --memory-size) is refused before the study is written, not mid-study;
    the message names only the flags of the draw that break it."""
    for corner in itertools.product(*(dimension.corners for dimension in space.values())):
        setting = dict(zip(space, corner))
        error = refusal(base, setting)
        if error is None:
            continue
        for name in list(setting):  # leave out each flag that the rule does not need
            fewer = {key: value for key, value in setting.items() if key != name}
            if refusal(base, fewer) is not None:
                setting = fewer
        drawn = " ".join(f"{flag_name(name)} {show(value)}" for name, value in setting.items())
        raise ConfigError(f"--space can draw {drawn}, which train refuses: {error}")


def refusal(base: TrainConfig, setting: dict) -> ConfigError | None:
    """Why train would refuse the base config with `setting`, or None."""
    try:
        dataclasses.replace(base, **setting)
    except ConfigError as error:
        return error
    return None


def drawn_setting(params: dict) -> dict:
    """A trial's params as TrainConfig takes them: widths drawn as 256,256 become (256, 256)."""
    return {name: layer_widths(value) if isinstance(value, str) else value for name, value in params.items()}
