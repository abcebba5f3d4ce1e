"""A sweep's grid: every combination of the values given to train's flags, each run named after the
settings that vary; and the manifest that records the grid, so that a second command with another grid
is refused."""

from __future__ import annotations

import dataclasses
import itertools
import json
from pathlib import Path

from soft_actor_critic.config import (
    EXECUTION_SETTINGS,
    ONE_VALUE_IN_A_SWEEP,
    ConfigError,
    RunError,
    TrainConfig,
    reported,
)
from soft_actor_critic.flags import flag_name
from soft_actor_critic.runs import write_atomically

MANIFEST_FILE = "sweep.json"


def expand(grid: dict, sweep_dir: Path) -> list[TrainConfig]:
    """Every combination of the grid's values (a ConfigError for any that train would refuse), each run
    named after the settings that vary, the seed last: Pendulum-v1_learning-rate=0.001_seed=2."""
    names = [name for name in grid if name != "directory"]
    values = [values_of(name, grid[name]) for name in names]
    varying = sorted((name for name, options in zip(names, values) if len(options) > 1), key=lambda n: n == "seed")
    for name, options in zip(names, values):
        if len(set(options)) < len(options):
            raise ConfigError(f"{flag_name(name)} lists a value twice")
    runs = []
    for combination in itertools.product(*values):
        settings = dict(zip(names, combination))
        parts = [setting_part(name, settings[name]) for name in varying if name != "env_name"]
        env = settings["env_name"].replace("/", "-")
        run_name = "_".join([env] * ("env_name" in varying or not parts) + parts)
        runs.append(TrainConfig(**settings, directory=str(sweep_dir), run_name=run_name))
    return runs


def values_of(name: str, value) -> list:
    """A flag's values in a grid: a list of them, one per setting; or, for a flag the sweep passes to every run
    as it is (ONE_VALUE_IN_A_SWEEP), that one value, its list as a tuple."""
    if name in ONE_VALUE_IN_A_SWEEP:
        return [tuple(value) if isinstance(value, list) else value]
    return value if isinstance(value, list) else [value]


def setting_part(name: str, value) -> str:
    """A setting as it appears in a run's name: learning-rate=0.001, hidden-units=256,256."""
    value = ",".join(map(str, value)) if isinstance(value, tuple) else value
    return f"{flag_name(name).removeprefix('--')}={value}"


def read_manifest(sweep_dir: Path) -> dict:
    """The grid a sweep was run with, as expand() takes it (JSON's lists of widths as tuples); a damaged
    manifest is a RunError."""
    path = sweep_dir / MANIFEST_FILE
    if not path.is_file():
        raise RunError(f"{sweep_dir} is not a sweep (no {MANIFEST_FILE}): run the sweep first")
    with reported(f"{path} is not a valid sweep manifest", OSError, ValueError, KeyError, TypeError, AttributeError):
        return {
            name: [tuple(v) if isinstance(v, list) else v for v in values] if isinstance(values, list) else values
            for name, values in json.loads(path.read_text())["grid"].items()
        }


def resolved(grid: dict, sweep_dir: Path) -> dict[str, set]:
    """Each train flag's values over the grid's runs, as the runs resolve them: a flag that a manifest
    of an older version lacks takes its default, and a None its --algorithm's, so that such a sweep
    still compares equal to the same command now."""
    runs = expand(grid, sweep_dir)
    return {field.name: {getattr(run, field.name) for run in runs} for field in dataclasses.fields(TrainConfig)}


def as_json(value):
    """A grid's value as JSON writes it: its tuples (layer widths) as lists, in a list of values or alone."""
    if isinstance(value, (list, tuple)):
        return [as_json(element) for element in value]
    return value


def write_manifest(sweep_dir: Path, grid: dict) -> None:
    """Write the grid into the sweep folder; a folder that holds another grid (or no sweep) is refused.
    How the runs are carried out (EXECUTION_SETTINGS) may differ when a sweep is continued."""
    manifest = {name: as_json(values) for name, values in grid.items() if name != "directory"}
    path = sweep_dir / MANIFEST_FILE
    if path.is_file():
        there, now = resolved(read_manifest(sweep_dir), sweep_dir), resolved(grid, sweep_dir)
        for name in manifest:
            if name not in EXECUTION_SETTINGS and there[name] != now[name]:
                raise RunError(
                    f"{sweep_dir} is a sweep of another grid ({flag_name(name)} {sorted(there[name])} there, "
                    f"{sorted(now[name])} now): continue it with its own flags, or choose another --sweep-name"
                )
    elif sweep_dir.exists() and not sweep_dir.is_dir():
        raise RunError(f"{sweep_dir} is a file, not a sweep: choose another --sweep-name")
    elif sweep_dir.exists() and any(sweep_dir.iterdir()):
        raise RunError(f"{sweep_dir} exists and is not a sweep (no {MANIFEST_FILE}): choose another --sweep-name")
    with reported(f"cannot create the sweep folder {sweep_dir}", OSError):
        sweep_dir.mkdir(parents=True, exist_ok=True)
    write_atomically(path, lambda file: file.write((json.dumps({"grid": manifest}, indent=2) + "\n").encode()))
