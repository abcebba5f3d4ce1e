"""The environment loop: act, store, update, log and checkpoint; and continuing a run from its checkpoint."""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import math
import os
import random
import shlex
import signal
import sys
import time
from collections import deque
from collections.abc import Callable, Iterator
from pathlib import Path

import gymnasium as gym
import numpy as np
import torch
from torch.utils.tensorboard import SummaryWriter
from torch.utils.tensorboard.summary import hparams
from tqdm import tqdm

from soft_actor_critic.agent import Agent
from soft_actor_critic.config import Interrupted, RunError, TrainConfig, first_line
from soft_actor_critic.cuda_graphs import GraphedAct, GraphedUpdate
from soft_actor_critic.environment import make_env
from soft_actor_critic.evaluate import deterministic_returns
from soft_actor_critic.replay_buffer import ReplayBuffer
from soft_actor_critic.runs import (
    BEST_FILE,
    CHECKPOINT_FILE,
    CONFIG_FILE,
    create_run_dir,
    find_run,
    load_buffer,
    load_checkpoint,
    locked,
    read_eval_rows,
    save_best,
    save_checkpoint,
    write_atomically,
    write_eval_rows,
)

LOG_INTERVAL = 250  # env steps between two points of the loss and SPS curves
EVAL_SEED_OFFSET = 10_000  # the eval env's seed is the run's plus this: starts apart from the training env's


@dataclasses.dataclass
class Progress:
    """How far a run has come: with the networks and the buffer, all that a checkpoint must hold."""

    warmup_rng: np.random.Generator  # draws the uniform warm-up actions
    step: int = 0  # env steps taken
    episodes: int = 0  # episodes finished
    first_update_after: int = 0  # updates run on the steps after this one

    @classmethod
    def start(cls, config: TrainConfig) -> Progress:
        return cls(np.random.default_rng(config.seed + 1), first_update_after=config.start_step)


class PeriodicEval:
    """config.eval_episodes episodes with deterministic actions on an env of its own, logged to
    TensorBoard (eval/return, eval/return_std) and eval.csv; the best policy so far goes to best.pt.

    Every eval plays the same episodes (its first reset is seeded alike), so the curve compares
    policies, not start states. It draws on no random stream of the training: with or without it,
    a run learns the same.
    """

    def __init__(
        self, run_dir: Path, config: TrainConfig, env: gym.Env, agent: Agent, writer: SummaryWriter, step: int
    ):
        self.run_dir, self.env, self.agent, self.writer = run_dir, env, agent, writer
        self.episodes, self.seed = config.eval_episodes, (config.seed + EVAL_SEED_OFFSET) % 2**32
        self.rows = read_eval_rows(run_dir)  # restore() has dropped those past the checkpoint
        self.best_return = best_eval_return(run_dir, step)

    def __call__(self, step: int) -> None:
        returns = deterministic_returns(self.env, self.agent.policy, self.episodes, self.seed)
        mean, std = float(np.mean(returns)), float(np.std(returns))
        self.writer.add_scalar("eval/return", mean, step)
        self.writer.add_scalar("eval/return_std", std, step)
        self.rows.append({"step": step, "return_mean": mean, "return_std": std, "episodes": len(returns)})
        write_eval_rows(self.run_dir, self.rows)
        best = mean > self.best_return
        if best:
            self.best_return = mean
            save_best(self.run_dir, {"policy": self.agent.policy.state_dict(), "step": step, "eval_return": mean})
        say(f"step {step}: eval return {mean:.1f} ± {std:.1f} over {len(returns)} episodes" + " (best)" * best)


def best_eval_return(run_dir: Path, step: int) -> float:
    """The eval return best.pt must beat to be replaced. A best.pt from past the checkpoint (written by a
    run killed after it) is kept: it is a policy that really scored that return; one that cannot be read
    is replaced by the next eval."""
    if not (run_dir / BEST_FILE).is_file():
        return -math.inf
    try:
        best = load_checkpoint(run_dir, BEST_FILE)
        best_step, best_return = int(best["step"]), float(best["eval_return"])
    except (RunError, KeyError, TypeError, ValueError) as error:
        print(
            f"note: {run_dir / BEST_FILE} cannot be read ({first_line(error)}); the next eval replaces it",
            file=sys.stderr,
        )
        return -math.inf
    if best_step > step:
        print(
            f"note: {run_dir / BEST_FILE} is the policy of step {best_step}, past the checkpoint; "
            f"it stays until an eval beats its return of {best_return:.1f}",
            file=sys.stderr,
        )
    return best_return


class ReaderMayLeave:
    """A text stream whose reader may leave (`train ... | head`): from then on what is written to it goes
    nowhere and training goes on, for a closed pipe must never cost a run."""

    def __init__(self, stream) -> None:
        self.stream = stream

    def write(self, text: str) -> None:
        self._guarded(self.stream.write, text)

    def flush(self) -> None:
        self._guarded(self.stream.flush)

    def _guarded(self, method, *args) -> None:
        try:
            method(*args)
        except BrokenPipeError:
            os.dup2(os.open(os.devnull, os.O_WRONLY), self.stream.fileno())

    def __eq__(self, other) -> bool:  # tqdm.write clears the progress bar of a stream equal to its own
        return other is self or other is self.stream

    __hash__ = object.__hash__

    def __getattr__(self, name: str):  # fileno, isatty, encoding... for tqdm
        return getattr(self.stream, name)


def say(text: str) -> None:
    """A line of progress on stdout, above the progress bar."""
    tqdm.write(text, file=ReaderMayLeave(sys.stdout))


@dataclasses.dataclass
class StopRequest:
    signum: int | None = None  # the signal that asked training to stop, once one has


def resolve_device(name: str) -> torch.device:
    """--device as a torch device: auto takes CUDA when torch sees a GPU, and cuda insists on one."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise RunError("--device cuda: torch sees no CUDA GPU here (try --device cpu)")
    return torch.device(name)


def log_hyperparameters(writer: SummaryWriter, config: TrainConfig) -> None:
    """Write the config into TensorBoard's HPARAMS tab, in the run's own event file."""
    values = {
        key: value if isinstance(value, (int, float, str, bool)) else str(value)
        for key, value in dataclasses.asdict(config).items()
    }
    for summary in hparams(values, {"episode/return": 0.0}):
        writer.file_writer.add_summary(summary)


def train(config: TrainConfig, resume: bool = False) -> Path:
    """Train to exactly config.num_steps env steps, in a new run folder or, with `resume`, in the
    existing one from its checkpoint; returns the run folder."""
    device = resolve_device(config.device)
    env = make_env(config.env_name)
    eval_env = None
    try:
        eval_env = make_env(config.env_name) if config.eval_every else None
        torch.manual_seed(config.seed)
        observation_dim, action_dim = env.observation_space.shape[0], env.action_space.shape[0]
        low, high = env.action_space.low, env.action_space.high
        agent = Agent(observation_dim, action_dim, low, high, config, device)
        try:
            buffer = ReplayBuffer(config.memory_size, observation_dim, action_dim, config.seed, device)
        except (MemoryError, RuntimeError):  # torch reports a failed allocation as a RuntimeError
            raise RunError(f"--memory-size {config.memory_size} does not fit in memory") from None
        if resume:
            run_dir = find_run(config.directory, config.run_name)
        else:  # only now that everything is built: a run folder is never left behind by bad input
            run_dir = create_run_dir(config.directory, config.run_name, config.env_name)
        with locked(run_dir):
            progress = restore(run_dir, config, env, agent, buffer) if resume else Progress.start(config)
            config = dataclasses.replace(config, run_name=run_dir.name)
            write_atomically(run_dir / CONFIG_FILE, lambda file: file.write(config.to_json().encode()))
            say(f"run folder: {run_dir}" + (f" (resuming at step {progress.step})" if resume else ""))
            # purge_step: TensorBoard hides what an interrupted run logged after its checkpoint
            with SummaryWriter(str(run_dir), purge_step=progress.step + 1 if resume else None) as writer:
                if not resume:
                    log_hyperparameters(writer, config)
                save = functools.partial(save_run, run_dir, config, env, agent, buffer, writer)
                evaluate = PeriodicEval(run_dir, config, eval_env, agent, writer, progress.step) if eval_env else None
                try:
                    with stop_signals() as stop:
                        run_loop(config, env, agent, buffer, writer, progress, save, stop, evaluate)
                        save(progress)  # the final checkpoint; a signal now only waits for it
                except Interrupted as interruption:
                    command = f"train --resume --run-name {shlex.quote(run_dir.name)}"
                    command += f" --directory {shlex.quote(config.directory)}"
                    message = f"{interruption}, checkpoint saved; continue with: {command}"
                    raise Interrupted(message, interruption.signum) from None
    finally:
        env.close()
        if eval_env is not None:
            eval_env.close()
    say(f"finished {config.num_steps} steps; run folder: {run_dir}")
    return run_dir


def run_loop(
    config: TrainConfig,
    env: gym.Env,
    agent: Agent,
    buffer: ReplayBuffer,
    writer: SummaryWriter,
    progress: Progress | None = None,
    save: Callable[[Progress], None] | None = None,
    stop: StopRequest | None = None,
    evaluate: Callable[[int], None] | None = None,
) -> None:
    """Env steps up to config.num_steps: uniform warm-up actions, then config.updates_per_step updates
    per step; `evaluate` every config.eval_every steps and at the end; `save` every
    config.checkpoint_every steps and when `stop` is requested."""
    progress = progress or Progress.start(config)
    low, high = env.action_space.low, env.action_space.high
    act, update = act_and_update(config, env, agent, buffer)
    stderr = ReaderMayLeave(sys.stderr)
    with tqdm(
        total=config.num_steps, initial=progress.step, unit="step", dynamic_ncols=True, mininterval=1.0, file=stderr
    ) as bar:
        # A resumed run starts a new episode; the env's random stream goes on from the checkpoint.
        observation, _ = env.reset(seed=config.seed if progress.step == 0 else None)
        episode_return, episode_length, recent_returns = 0.0, 0, deque(maxlen=10)
        clock, clock_step = time.perf_counter(), progress.step
        for step in range(progress.step + 1, config.num_steps + 1):
            if step <= config.start_step:  # the policy knows nothing yet: explore uniformly
                action = progress.warmup_rng.uniform(low, high).astype(np.float32)
            else:
                action = act(observation)
            next_observation, reward, terminated, truncated, _ = env.step(action)
            # On truncation gymnasium returns the true last observation (there is no auto-reset here),
            # and only `terminated` is stored: a time limit must not cut the bootstrap.
            buffer.add(observation, action, reward, next_observation, terminated)
            observation = next_observation
            episode_return += float(reward)
            episode_length += 1

            if step > progress.first_update_after:
                for _ in range(config.updates_per_step):
                    metrics = update()
                if step % LOG_INTERVAL == 0:
                    log_metrics(writer, metrics, step)
            if step % LOG_INTERVAL == 0:
                now = time.perf_counter()
                writer.add_scalar("time/sps", (step - clock_step) / (now - clock), step)
                clock, clock_step = now, step

            if terminated or truncated:
                progress.episodes += 1
                writer.add_scalar("episode/return", episode_return, step)
                writer.add_scalar("episode/length", episode_length, step)
                recent_returns.append(episode_return)
                bar.set_postfix(recent_return=f"{np.mean(recent_returns):.1f}", refresh=False)
                observation, _ = env.reset()
                episode_return, episode_length = 0.0, 0
            bar.update()
            progress.step = step

            if (
                evaluate is not None
                and config.eval_every
                and (step % config.eval_every == 0 or step == config.num_steps)
            ):
                evaluate(step)
            if step == config.num_steps:
                break  # done: the caller writes the final checkpoint, whatever signal came
            periodic = save is not None and config.checkpoint_every and step % config.checkpoint_every == 0
            if periodic:
                save(progress)
            if stop is not None and stop.signum is not None:
                if save is not None and not periodic:
                    save(progress)
                raise Interrupted(f"{signal.Signals(stop.signum).name} at step {step}", stop.signum)


def act_and_update(
    config: TrainConfig, env: gym.Env, agent: Agent, buffer: ReplayBuffer
) -> tuple[Callable[[np.ndarray], np.ndarray], Callable[[], dict[str, torch.Tensor]]]:
    """The policy's action for one observation, and one update on a fresh batch: on a GPU (unless
    --no-cuda-graphs) each is the replay of a CUDA graph, captured here."""
    if config.cuda_graphs and agent.device.type == "cuda":
        return GraphedAct(agent, env.observation_space.shape[0]), GraphedUpdate(agent, buffer, config.batch_size)
    return agent.act, lambda: agent.update(buffer.sample(config.batch_size))


def log_metrics(writer: SummaryWriter, metrics: dict[str, torch.Tensor], step: int) -> None:
    """Write the update's metrics; a NaN or infinite one stops training before it reaches a checkpoint."""
    for key, tensor in metrics.items():
        value = tensor.item()
        if not math.isfinite(value):
            raise RunError(f"{key} became {value} at step {step}: training stopped, the last checkpoint is kept")
        writer.add_scalar(key, value, step)


@contextlib.contextmanager
def stop_signals() -> Iterator[StopRequest]:
    """While training, SIGINT (Ctrl-C) and SIGTERM ask the loop to checkpoint and stop after the step
    in progress; a second Ctrl-C stops at once (the previous checkpoint stays whole)."""
    request = StopRequest()

    def handle(signum, frame):
        if request.signum == signal.SIGINT == signum:
            raise KeyboardInterrupt
        request.signum = signum

    # A signal someone chose to ignore (a background job's SIGINT) stays ignored.
    previous = {signum: signal.getsignal(signum) for signum in (signal.SIGINT, signal.SIGTERM)}
    for signum, handler in previous.items():
        if handler != signal.SIG_IGN:
            signal.signal(signum, handle)
    try:
        yield request
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, signal.SIG_DFL if handler is None else handler)


def save_run(
    run_dir: Path,
    config: TrainConfig,
    env: gym.Env,
    agent: Agent,
    buffer: ReplayBuffer,
    writer: SummaryWriter,
    progress: Progress,
) -> None:
    """Checkpoint everything needed to continue exactly: networks, optimizers, counters, RNG states, buffer."""
    writer.flush()  # the curves up to this step reach the disk before a resume may purge what follows
    if not agent.is_finite():
        raise RunError(f"the networks hold NaN or infinite values at step {progress.step}: the last checkpoint is kept")
    state = agent.state_dict() | {
        "step": progress.step,
        "episodes": progress.episodes,
        "first_update_after": progress.first_update_after,
        "rng": random_states(env, agent, buffer, progress),
    }
    save_checkpoint(run_dir, state, buffer.state_dict() if config.save_buffer else None)


def random_states(env: gym.Env, agent: Agent, buffer: ReplayBuffer, progress: Progress) -> dict:
    """Every random stream of a run, as plain values and tensors that weights_only loading accepts."""
    numpy_state = np.random.get_state()
    return {
        "python": random.getstate(),
        "numpy": (numpy_state[0], numpy_state[1].tolist(), *numpy_state[2:]),
        "torch": torch.get_rng_state(),
        "cuda": torch.cuda.get_rng_state() if agent.device.type == "cuda" else None,
        "buffer": buffer.generator.get_state(),
        "buffer_device": buffer.device.type,  # a CPU generator's state doesn't fit a CUDA one
        "warmup": progress.warmup_rng.bit_generator.state,
        "env": env.unwrapped.np_random.bit_generator.state,
        "action_space": env.action_space.np_random.bit_generator.state,
    }


def set_random_states(states: dict, env: gym.Env, agent: Agent, buffer: ReplayBuffer, progress: Progress) -> None:
    """The inverse of random_states."""
    progress.warmup_rng.bit_generator.state = states["warmup"]
    env.unwrapped.np_random.bit_generator.state = states["env"]
    env.action_space.np_random.bit_generator.state = states["action_space"]
    if states["buffer_device"] == buffer.device.type:  # else (resumed on another device) it stays seeded
        buffer.generator.set_state(states["buffer"])
    torch.set_rng_state(states["torch"])
    if states.get("cuda") is not None and agent.device.type == "cuda":  # the policy's noise on a GPU
        torch.cuda.set_rng_state(states["cuda"])
    numpy_state = states["numpy"]
    np.random.set_state((numpy_state[0], np.array(numpy_state[1], dtype=np.uint32), *numpy_state[2:]))
    random.setstate(tuple(tuple(part) if isinstance(part, list) else part for part in states["python"]))


def restore(run_dir: Path, config: TrainConfig, env: gym.Env, agent: Agent, buffer: ReplayBuffer) -> Progress:
    """Load the run's checkpoint into agent, buffer and RNGs; returns where the run stood."""
    path = run_dir / CHECKPOINT_FILE
    state = load_checkpoint(run_dir)
    if "critic" not in state:  # what benchmarks/ship_agent.py writes
        raise RunError(f"{path} holds only a policy's weights (an agent shipped for eval): it cannot be resumed")
    try:
        agent.load_state_dict(state)
        step = state["step"]
        progress = Progress(np.random.default_rng(), step, state["episodes"], state["first_update_after"])
        set_random_states(state["rng"], env, agent, buffer, progress)
    except KeyError as error:
        raise RunError(f"{path} has no {error}: it is not a checkpoint this version can resume") from None
    except (TypeError, ValueError, RuntimeError) as error:
        raise RunError(f"{path} does not fit the run's config: {first_line(error)}") from None
    if step >= config.num_steps:
        raise RunError(f"{run_dir.name} is already at step {step}; raise --num-steps above it to train on")
    # What a run killed after its checkpoint evaluated is logged again by the resumed run.
    rows = read_eval_rows(run_dir)
    if any(row["step"] > step for row in rows):
        write_eval_rows(run_dir, [row for row in rows if row["step"] <= step])
    if state.get("buffer_file"):
        load_buffer(run_dir, state["buffer_file"], buffer)
    else:  # saved with --no-save-buffer: refill with the policy (no second random warm-up) before updating
        progress.first_update_after = max(progress.first_update_after, step + config.batch_size)
        print(
            f"note: {path} has no replay buffer; updates resume once it holds {config.batch_size} new steps",
            file=sys.stderr,
        )
    return progress
