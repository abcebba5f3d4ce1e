"""Every default of the command line, once, with its validation.

The argparse parser in `__main__` reads its defaults from these dataclasses and builds them with
`TrainConfig(**vars(args))`, so a flag and its field can never drift apart. This module must stay
free of torch and gymnasium: `--help` and argument errors answer without importing either.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import math
from collections.abc import Iterator
from dataclasses import dataclass

from soft_actor_critic.algorithms import ALGORITHMS, SameAs
from soft_actor_critic.flags import (
    LAYER_WIDTHS,
    flag,
    flag_name,
    show,
)

PROGRAM = "soft-actor-critic"  # the console script that `pip install .` puts on the PATH
MAX_SEED = 2**32 - 1  # numpy and gymnasium take seeds in [0, 2**32)
MAX_NAME_BYTES = 200  # of a run or sweep name: file systems allow 255, and the sweep adds _2, logs add .log
DEVICES = ("auto", "cpu", "cuda")  # auto: cuda when torch sees a GPU, else cpu
CHECKPOINT_FILES = {"last": "checkpoint.pt", "best": "best.pt"}  # what `eval --checkpoint` loads: the checkpoint,
# or the policy of the best periodic eval


class ConfigError(ValueError):
    """A flag value that can never work; the CLI reports it as a usage error (exit 2)."""


class RunError(Exception):
    """Something on disk or in the environment stops the command; the CLI reports it (exit 1)."""


class Interrupted(RunError):
    """SIGINT or SIGTERM stopped training after a checkpoint; the CLI exits 128 + the signal number."""

    def __init__(self, message: str, signum: int) -> None:
        super().__init__(message)
        self.signum = signum


def first_line(error: BaseException) -> str:
    """An exception as one line of text, for a one-line error message."""
    text = str(error).strip()
    return text.splitlines()[0] if text else type(error).__name__


@contextlib.contextmanager
def reported(message: str, *errors: type[BaseException]) -> Iterator[None]:
    """Any of `errors` raised inside becomes a one-line RunError: '<message>: <what went wrong>'."""
    try:
        yield
    except errors as error:
        raise RunError(f"{message}: {getattr(error, 'strerror', None) or first_line(error)}") from None


def _require(condition: bool, message: str) -> None:
    if not condition:
        raise ConfigError(message)


def check_run_name(run_name: str | None, flag_name: str = "--run-name") -> None:
    if run_name is None:
        return
    _require(run_name.strip() != "", f"{flag_name} must not be empty")
    _require(
        "/" not in run_name and "\\" not in run_name and ".." not in run_name and run_name != ".",
        f"{flag_name} {run_name!r} must be a plain folder name (no path separators or '..')",
    )
    size = len(run_name.encode())
    _require(size <= MAX_NAME_BYTES, f"{flag_name} is {size} bytes long; a folder name has at most {MAX_NAME_BYTES}")


def check_run_reference(run_name: str) -> None:
    """A run to load or resume: its folder's name inside --directory, or a path to its folder (with a '/')."""
    if "/" not in run_name:
        check_run_name(run_name)


def check_seed(seed: int, name: str = "--seed") -> None:
    _require(0 <= seed <= MAX_SEED, f"{name} must be in [0, {MAX_SEED}], got {seed}")


def _check_choice(flag: str, value: str, choices) -> None:
    _require(value in choices, f"{flag} must be one of {', '.join(choices)}, got {value!r}")


def _check_hidden_units(hidden_units: tuple[int, ...], name: str = "--hidden-units") -> None:
    _require(len(hidden_units) > 0, f"{name} needs at least one layer width")
    _require(all(units > 0 for units in hidden_units), f"{name} must be positive, got {list(hidden_units)}")


@dataclass(frozen=True)
class TrainConfig:
    env_name: str = flag(
        "LunarLanderContinuous-v3",
        "Gymnasium id with a continuous action space; module:EnvId imports the module (from the working folder or "
        "the installed packages) first, for an env it registers",
    )
    env_kwargs: tuple[str, ...] = flag(
        (),
        "keyword arguments for the env's constructor, KEY=VALUE each; a value is read as JSON where it parses "
        '(0.05, true, [1, 2], "text"), else as text',
        nargs="+",
        metavar="KEY=VALUE",
    )
    max_episode_steps: int | None = flag(
        None, "steps at which an episode is truncated, a time limit that bootstraps; None: the env's own"
    )
    algorithm: str = flag(
        "sac",
        "sac (Haarnoja et al. 2019), or crossq (Bhatt et al. 2024): batch renormalization in both networks, "
        "no target critic, a policy step every --policy-delay updates",
        choices=tuple(ALGORITHMS),
    )
    hidden_units: tuple[int, ...] = flag(
        (256, 256),
        "widths of the hidden layers of the policy (and of each critic, unless --critic-hidden-units)",
        **LAYER_WIDTHS,
    )
    critic_hidden_units: tuple[int, ...] | None = flag(None, "widths of each critic's hidden layers", **LAYER_WIDTHS)
    directory: str = flag("runs", "folder that holds the run folders")
    seed: int = flag(
        1,
        "the run's seed: the network weights, the policy's noise, the batches, the warm-up actions and the envs "
        "each draw an independent stream derived from it",
    )
    run_name: str | None = flag(None, "name of the run folder; None: <date>_<time>_<env-name>")
    batch_size: int = flag(256, "transitions per update")
    memory_size: int = flag(1_000_000, "replay buffer capacity in transitions")
    learning_rate: float | None = flag(None, "Adam step size of the policy, the critics and the temperature")
    adam_beta1: float | None = flag(None, "Adam's beta1 for the policy and the critics (beta2 is 0.999)")
    gamma: float = flag(0.99, "discount factor")
    tau: float = flag(0.005, "Polyak rate of the target critic (sac; crossq has none)")
    num_steps: int = flag(1_000_000, "env steps in total")
    start_step: int | None = flag(None, "env steps of uniform random actions before the first update")
    alpha: float = flag(0.2, "starting entropy temperature (tuned automatically from there)")
    updates_per_step: int = flag(1, "gradient updates after each env step once the warm-up is over")
    policy_delay: int | None = flag(None, "updates per policy and temperature step (every update steps the critic)")
    renorm_momentum: float = flag(0.01, "crossq: rate at which batch renormalization's running statistics move")
    renorm_eps: float = flag(1e-3, "crossq: added to the variances batch renormalization divides by")
    renorm_warmup: int = flag(
        100_000, "crossq: training passes of each batch-renorm layer that use the batch's statistics alone"
    )
    device: str = flag(
        "auto", "where the networks and the replay buffer live; auto: cuda if available", choices=DEVICES
    )
    cuda_graphs: bool = flag(
        True, "on a GPU, run each update and each action as the replay of a captured CUDA graph (no effect on a CPU)"
    )
    checkpoint_every: int = flag(25_000, "env steps between checkpoints (0: only at the end and on Ctrl-C or SIGTERM)")
    save_buffer: bool = flag(True, "save the replay buffer beside each checkpoint, so that --resume continues with it")
    eval_every: int = flag(10_000, "env steps between evals with deterministic actions, logged to eval.csv (0: none)")
    eval_episodes: int = flag(10, "episodes per periodic eval")
    capture_video: bool = flag(
        False,
        "render the first episode of each periodic eval off-screen (its first 250 frames), as "
        "<run>/videos/step=<N>.gif and as eval/video in TensorBoard's Images tab; the eval returns are the same "
        "without",
    )
    track: bool = flag(
        False,
        "also log the run to Weights & Biases (pip install -r requirements-track.txt): its TensorBoard scalars, its "
        "config and its eval videos; W&B's files go into the run folder, and --resume continues the same W&B run",
    )
    wandb_project: str = flag("soft-actor-critic", "the W&B project of --track")
    wandb_entity: str | None = flag(None, "the W&B team or user of --track; None: your default entity")
    wandb_group: str | None = flag(None, "the W&B group of --track; None: a sweep's or a study's name, else none")

    def __post_init__(self) -> None:
        _check_choice("--algorithm", self.algorithm, ALGORITHMS)
        for name, value in ALGORITHMS[self.algorithm].defaults.items():  # a None takes the algorithm's default
            if getattr(self, name) is None:
                object.__setattr__(self, name, getattr(self, value.field) if isinstance(value, SameAs) else value)
        for name in ("hidden_units", "critic_hidden_units"):
            object.__setattr__(self, name, tuple(getattr(self, name)))
            _check_hidden_units(getattr(self, name), flag_name(name))
        check_run_name(self.run_name)
        check_seed(self.seed)
        object.__setattr__(self, "env_kwargs", tuple(self.env_kwargs))
        keys = [item.partition("=")[0] for item in self.env_kwargs]
        for item, key in zip(self.env_kwargs, keys):
            _require("=" in item and key.isidentifier(), f"--env-kwargs {item}: write KEY=VALUE, KEY a Python name")
            _require(keys.count(key) == 1, f"--env-kwargs gives {key} more than once")
        _require(
            self.max_episode_steps is None or self.max_episode_steps > 0,
            f"--max-episode-steps must be positive, got {self.max_episode_steps}",
        )
        _require(not self.capture_video or self.eval_every, "--capture-video films the evals: it needs --eval-every")
        _check_choice("--device", self.device, DEVICES)
        for name in ("batch_size", "memory_size", "num_steps", "updates_per_step", "policy_delay", "eval_episodes"):
            _require(getattr(self, name) > 0, f"{flag_name(name)} must be positive, got {getattr(self, name)}")
        for name in ("start_step", "checkpoint_every", "eval_every", "renorm_warmup"):
            _require(getattr(self, name) >= 0, f"{flag_name(name)} must be zero or more, got {getattr(self, name)}")
        _require(
            self.batch_size <= self.memory_size,
            f"--batch-size ({self.batch_size}) must not exceed --memory-size ({self.memory_size})",
        )
        for name in ("learning_rate", "alpha", "renorm_eps"):
            value = getattr(self, name)
            _require(math.isfinite(value) and value > 0, f"{flag_name(name)} must be positive, got {value}")
        for name in ("gamma", "tau", "renorm_momentum"):
            _require(0 < getattr(self, name) <= 1, f"{flag_name(name)} must be in (0, 1], got {getattr(self, name)}")
        _require(0 <= self.adam_beta1 < 1, f"--adam-beta1 must be in [0, 1), got {self.adam_beta1}")
        _require(
            not ALGORITHMS[self.algorithm].batch_renorm or self.batch_size >= 2,
            f"--algorithm {self.algorithm} normalizes over the batch: --batch-size must be 2 or more, "
            f"got {self.batch_size}",
        )

    def to_json(self) -> str:
        return json.dumps(dataclasses.asdict(self), indent=2) + "\n"

    def resumed_with(self, flags: dict) -> TrainConfig:
        """This run's config with the flags given to `train --resume`: only RESUME_FLAGS may differ.

        --directory and --run-name say where the run is now, so they are taken as given.
        """
        changeable = (*RESUME_FLAGS, "directory", "run_name")
        for name, value in flags.items():
            value = tuple(value) if isinstance(value, list) else value
            if name not in changeable and value != getattr(self, name):
                allowed = ", ".join(map(flag_name, RESUME_FLAGS))
                raise ConfigError(
                    f"{flag_name(name)} {show(value)} differs from the run's {show(getattr(self, name))}: "
                    f"a resumed run keeps its config (only {allowed} may change)"
                )
        return dataclasses.replace(self, **{name: flags[name] for name in changeable if name in flags})


# How a run is carried out and watched, not what it learns: these may differ when a run, or a sweep, is continued.
WATCHING = ("capture_video", "track", "wandb_project", "wandb_entity", "wandb_group")
EXECUTION_SETTINGS = ("checkpoint_every", "save_buffer", "device", "cuda_graphs", *WATCHING)
# What `train --resume` may change: that, how long it trains, and its evals; anything else would no longer
# be the run that was checkpointed. (The periodic evals use an env and no random stream of their own: they
# never change the training.)
RESUME_FLAGS = ("num_steps", *EXECUTION_SETTINGS, "eval_every", "eval_episodes")
# What a sweep passes to every run as one value, where each other flag takes a value per setting.
ONE_VALUE_IN_A_SWEEP = ("directory", "env_kwargs", *WATCHING)
# What runs of one setting may differ in: their seed, where they are, and how they are carried out.
NOT_SETTINGS = ("seed", "run_name", "directory", *EXECUTION_SETTINGS)


def setting_key(config: TrainConfig) -> tuple[tuple[str, object], ...]:
    """What a run's seeds share, as (field, value) pairs: runs with equal keys are seeds of one setting,
    one curve in `plot`, one row of a sweep's summary and, standing at one step, one packed group."""
    return tuple((name, value) for name, value in dataclasses.asdict(config).items() if name not in NOT_SETTINGS)


@dataclass(frozen=True)
class EvalConfig:
    run_name: str = flag(
        help="the run to load: its folder's name inside --directory, or a path to it, such as runs/my-sweep/seed=1"
    )
    directory: str = flag("runs", "folder that holds the run folders")
    env_name: str | None = flag(None, "None: the run's own; if given, it must match")
    hidden_units: tuple[int, ...] | None = flag(None, "None: the run's own; if given, it must match", **LAYER_WIDTHS)
    seed: int = flag(1, "seed of the env and the policy noise")
    num_episodes: int = flag(3, "episodes to roll out")
    deterministic: bool = flag(False, "act with tanh(mean) instead of sampling", action="store_true")
    render: bool = flag(False, "show the episodes in a window (needs a display)", action="store_true")
    record: bool = flag(
        False,
        "write a GIF per episode, which plays in real time, into <run>/videos/<date>_<time>/",
        action="store_true",
    )
    checkpoint: str = flag(
        "last",
        "last: the latest checkpoint; best: the best policy of the periodic evals",
        choices=tuple(CHECKPOINT_FILES),
    )

    def __post_init__(self) -> None:
        if self.hidden_units is not None:
            object.__setattr__(self, "hidden_units", tuple(self.hidden_units))
            _check_hidden_units(self.hidden_units)
        _require(self.run_name is not None, "--run-name is required")
        check_run_reference(self.run_name)
        check_seed(self.seed)
        _require(self.num_episodes > 0, f"--num-episodes must be positive, got {self.num_episodes}")
        _check_choice("--checkpoint", self.checkpoint, CHECKPOINT_FILES)
        _require(not (self.render and self.record), "--render and --record are exclusive: pick one")


@dataclass(frozen=True)
class ExportConfig:
    run_name: str = flag(help="the run to export: its folder's name inside --directory, or a path to it")
    directory: str = flag("runs", "folder that holds the run folders")
    checkpoint: str = flag(
        "best",
        "best: the best policy of the periodic evals; last: the latest checkpoint's",
        choices=tuple(CHECKPOINT_FILES),
    )
    output: str | None = flag(None, "the ONNX file to write; None: policy-<checkpoint>.onnx in the run folder")

    def __post_init__(self) -> None:
        check_run_reference(self.run_name)
        _check_choice("--checkpoint", self.checkpoint, CHECKPOINT_FILES)


@dataclass(frozen=True)
class PlotConfig:
    runs: tuple[str, ...] = flag(
        help="run folders, or folders of runs (e.g. runs)", nargs="+", metavar="RUN", positional=True
    )
    output: str | None = flag(
        None, "the PNG to write; None: plot.png in the first RUN, or beside it if it is a run folder"
    )
    smooth: int = flag(20, "episodes in the moving average of training returns")

    def __post_init__(self) -> None:
        object.__setattr__(self, "runs", tuple(self.runs))
        _require(len(self.runs) > 0, "plot needs at least one run folder")
        _require(self.smooth > 0, f"--smooth must be positive, got {self.smooth}")
        _require(self.output is None or self.output.endswith(".png"), f"--output must end in .png, got {self.output}")
